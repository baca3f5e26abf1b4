// HandoffServer: the worker's end of the Apache handoff (wire spec: handoff_proto.h).
//
// It listens on the `handoff_socket` Unix socket (mode `handoff_socket_mode`),
// accepts only peers whose uid is in `handoff_allowed_peers` (SO_PEERCRED), reads
// one request per connection and adopts the client connection into lws, replaying a
// rebuilt upgrade request so that lws performs the WebSocket handshake (and answers
// the client 101). A request it will not serve (over capacity, unusable) gets the
// spec's REFUSAL, a 503, written to the client by the worker itself.
//
// Identities: the identity from the request waits for the connection's ESTABLISHED,
// which takes it. lws normally completes the handshake inside the adopt call
// (lws_adopt_socket_vhost_readbuf services the replayed request at once when it can
// attach an HTTP header table, and the pool of those is as large as the fd table), so
// the identity is held only for the duration of that call; a handshake that fails
// there (refused upgrade, client gone) leaves nothing behind. Only if lws defers the
// handshake (no header table: out of memory) does the identity stay, keyed by the
// connection's wsi, until its ESTABLISHED or its destruction (forget_identity from
// LWS_CALLBACK_WSI_DESTROY). pending_identities() counts what is held.
//
// Ownership of the client connection: the worker's once the whole request has arrived;
// the module never waits for the worker and never writes to a connection it sent in
// full. A request cut short by EOF means the module could not send it all and kept
// the connection (it answered 503 itself): the worker closes its copy of the client
// fd without writing to it. So exactly one side ever writes to the client.
//
// Thread: event loop only. lws watches the listener and each pending Unix
// connection as raw file descriptors; all I/O here is non-blocking.
#pragma once

#include <libwebsockets.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "authz/authz.h"
#include "base/config.h"
#include "base/unique_fd.h"

namespace psdm {

class Server;
struct HandoffConn;

class HandoffServer {
 public:
    HandoffServer(const Config &cfg, Server &server);
    ~HandoffServer();  // removes the socket file it created

    // Resolves the allowed peers, creates the socket file and has lws watch it.
    // Returns false and sets *err (naming the key or the path) on failure.
    bool start(struct lws_context *context, struct lws_vhost *vh, std::string *err);

    // The identity Apache handed over with the connection `wsi`, once: for ESTABLISHED
    // of an adopted connection. nullopt for connections not handed over (or taken).
    std::optional<Identity> take_identity(struct lws *wsi);

    // `wsi`, a connection of the handoff vhost, is being destroyed
    // (LWS_CALLBACK_WSI_DESTROY): drop an identity it never took.
    void forget_identity(struct lws *wsi);

    // Identities handed over and not (yet) taken: 0 but during an adopt call or while
    // lws defers a handshake. The worker logs it when it stops.
    size_t pending_identities() const { return deferred_.size() + (adopting_ ? 1 : 0); }

    // What became of the handoff requests so far (logged when the worker stops).
    struct Stats {
        uint64_t adopted = 0;    // given to lws
        uint64_t refused = 0;    // answered with the 503 refusal (capacity, unusable request)
        uint64_t withdrawn = 0;  // cut short: the module kept the connection
    };
    const Stats &stats() const { return stats_; }

    // lws callbacks of the two raw protocols below.
    void on_listener_readable();
    int on_conn_readable(struct lws *wsi, HandoffConn *hc);  // -1: close the Unix connection
    void on_conn_closed(HandoffConn *hc);

    static constexpr const char *kListenerProtocol = "psdm-handoff";
    static constexpr const char *kConnProtocol = "psdm-handoff-conn";

 private:
    bool peer_allowed(uid_t uid) const;
    int refuse(HandoffConn *hc, const char *why);
    int adopt(HandoffConn *hc, const std::string &upgrade);

    const Config &cfg_;
    Server &server_;
    struct lws_vhost *vh_ = nullptr;
    std::vector<uid_t> allowed_uids_;
    int listen_fd_ = -1;  // the listening socket; owned (and closed) by its lws wsi
    bool created_socket_file_ = false;
    // The identity of the connection being adopted, for an ESTABLISHED inside the adopt
    // call (found by the client fd); empty outside that call.
    int adopting_fd_ = -1;
    std::optional<Identity> adopting_;
    std::unordered_map<struct lws *, Identity> deferred_;  // handshakes lws deferred
    Stats stats_;
};

}  // namespace psdm

// HandoffServer: the worker's end of the Apache handoff (wire spec: handoff_proto.h).
//
// It listens on the `handoff_socket` Unix socket (mode `handoff_socket_mode`),
// accepts only peers whose uid is in `handoff_allowed_peers` (SO_PEERCRED), reads
// one request per connection, answers it, waits for the module's commit byte and
// only then adopts the client connection into lws, replaying a rebuilt upgrade
// request so that lws performs the WebSocket handshake. The identity from the
// request is attached to the connection before adoption (lws completes the
// handshake, and so ESTABLISHED, inside the adopt call) and taken by ESTABLISHED.
//
// Ownership of the client connection: the module's until the worker has read the
// commit byte, the worker's after. A module that gives up (timeout) closes the Unix
// connection instead of committing; the worker then closes its copy of the client
// fd without writing to it. So exactly one side ever acts on the connection.
//
// Thread: event loop only. lws watches the listener and each pending Unix
// connection as raw file descriptors; all I/O here is non-blocking.
#pragma once

#include <libwebsockets.h>
#include <sys/types.h>

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

    // The identity Apache handed over with the client socket `fd`, once: for
    // ESTABLISHED of an adopted connection. nullopt for connections not handed over.
    std::optional<Identity> take_identity(int fd);

    // A connection is being destroyed: drop an identity it never took (a handshake
    // that failed before ESTABLISHED), so that the fd number, once reused, can never
    // inherit it.
    void forget_identity(int fd);

    // lws callbacks of the two raw protocols below.
    void on_listener_readable();
    int on_conn_readable(struct lws *wsi, HandoffConn *hc);  // -1: close the Unix connection
    void on_conn_closed(HandoffConn *hc);

    static constexpr const char *kListenerProtocol = "psdm-handoff";
    static constexpr const char *kConnProtocol = "psdm-handoff-conn";

 private:
    bool peer_allowed(uid_t uid) const;
    int refuse(HandoffConn *hc, uint8_t status, const char *why);
    int on_request(HandoffConn *hc);
    int on_commit(HandoffConn *hc);

    const Config &cfg_;
    Server &server_;
    struct lws_vhost *vh_ = nullptr;
    std::vector<uid_t> allowed_uids_;
    int listen_fd_ = -1;  // the listening socket; owned (and closed) by its lws wsi
    bool created_socket_file_ = false;
    std::unordered_map<int, Identity> identities_;  // client fd -> identity, during adoption
};

}  // namespace psdm

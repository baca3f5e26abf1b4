// HandoffServer: the worker's end of the Apache handoff (wire spec: handoff_proto.h).
//
// It listens on the `handoff_socket` Unix socket (mode `handoff_socket_mode`),
// accepts only peers whose uid is in `handoff_allowed_peers` (SO_PEERCRED), reads
// one request per connection, rebuilds the client's upgrade request from it and takes the
// connection the way the direct port does (Server::admit, accept_websocket), with the
// identity Apache authenticated. A request it will not serve (over capacity, unusable) gets
// the spec's REFUSAL, a 503, written to the client by the worker itself.
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
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "authz/authz.h"
#include "base/config.h"
#include "base/unique_fd.h"

namespace psdm {

struct WorkerContext;
struct HandoffConn;

class HandoffServer {
 public:
    HandoffServer(const Config &cfg, WorkerContext &worker);
    ~HandoffServer();  // removes the socket file it created

    // Resolves the allowed peers, creates the socket file and has lws watch it.
    // Returns false and sets *err (naming the key or the path) on failure.
    bool start(struct lws_context *context, struct lws_vhost *vh, std::string *err);

    // What became of the handoff requests so far (logged when the worker stops).
    struct Stats {
        uint64_t adopted = 0;    // taken as websockets
        uint64_t refused = 0;    // answered with a refusal (or unanswerable), all reasons
        uint64_t withdrawn = 0;  // cut short: the module kept the connection
        // Refusals by reason: "unusable_request", "replay_limit", "upgrade_rules",
        // "over_capacity", "stopping".
        std::map<std::string, uint64_t> refused_by;
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
    // Counts the refusal under `reason` (Stats::refused_by), logs `why`, answers the client.
    int refuse(HandoffConn *hc, const char *reason, const char *why, unsigned status, const std::string &answer);
    int refuse_503(HandoffConn *hc, const char *reason, const char *why);

    const Config &cfg_;
    WorkerContext &worker_;
    struct lws_vhost *vh_ = nullptr;
    std::vector<uid_t> allowed_uids_;
    int listen_fd_ = -1;  // the listening socket; owned (and closed) by its lws wsi
    bool created_socket_file_ = false;
    Stats stats_;
};

}  // namespace psdm

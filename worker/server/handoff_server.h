// HandoffServer: the worker's end of the Apache handoff (wire spec: handoff_proto.h).
//
// It listens on the `handoff_socket` Unix socket (mode `handoff_socket_mode`), or on the
// one systemd passes for that path (socket activation: psdm_socketd.socket), accepts only peers whose uid is in `handoff_allowed_peers` (SO_PEERCRED), reads
// the requests each connection carries (an Apache child keeps one connection per worker
// and sends every handoff on it), rebuilds the client's upgrade request from each and takes the
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
#include <unordered_set>
#include <vector>

#include "authz/authz.h"
#include "base/config.h"
#include "base/unique_fd.h"

namespace psdm {

struct WorkerContext;
struct HandoffConn;

// The handoff socket systemd passed (socket activation, sd_listen_fds(3)), checked against
// `path`, the configured handoff_socket (empty: none configured). Unsets LISTEN_PID,
// LISTEN_FDS and LISTEN_FDNAMES either way, so nothing the worker starts inherits them.
// @returns the descriptor (now the caller's) when systemd passed exactly one listening Unix
// stream socket bound to `path`; -1 when systemd passed nothing (the worker creates the
// socket itself); -2 with *err naming what systemd passed and what was expected otherwise
// (the descriptors passed are closed: the worker must not start).
int handoff_socket_from_systemd(const std::string &path, std::string *err);

class HandoffServer {
 public:
    HandoffServer(const Config &cfg, WorkerContext &worker);
    // Removes the socket file it created, if that file is still its own; never one systemd
    // passed (systemd owns it and keeps it across restarts).
    ~HandoffServer();

    // Resolves the allowed peers and has lws watch the listening socket: `inherited`, the
    // one handoff_socket_from_systemd returned (taken over, whatever the result), or, when
    // it is -1, a socket file it creates at handoff_socket with handoff_socket_mode.
    // Returns false and sets *err (naming the key or the path) on failure.
    bool start(struct lws_context *context, struct lws_vhost *vh, int inherited, std::string *err);

    // The worker is stopping: with a socket from systemd, stop accepting, so that the
    // upgrades Apache hands over from now on wait in the socket's backlog for the next
    // worker (systemd keeps the socket open across a restart) instead of being refused by
    // this one. With a socket of its own (nobody would take them), it keeps answering 503.
    // Apache's kept connections are shut for reading, so that it connects again.
    void stop_accepting();

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
    // One request read (rc: psdm_handoff_rx_step's result, not EAGAIN): adopts or refuses
    // the client. -1: close the Unix connection (a relay's, or one that cannot go on).
    int on_request(HandoffConn *hc, int rc);
    // Counts the refusal under `reason` (Stats::refused_by), logs `why`, answers the client.
    int refuse(HandoffConn *hc, const char *reason, const char *why, unsigned status, const std::string &answer);
    int refuse_503(HandoffConn *hc, const char *reason, const char *why);

    const Config &cfg_;
    WorkerContext &worker_;
    struct lws_vhost *vh_ = nullptr;
    std::vector<uid_t> allowed_uids_;
    bool create_socket_file(UniqueFd *listener, std::string *err);

    std::unordered_set<HandoffConn *> conns_;  // open Unix connections (owned by their wsi)
    int listen_fd_ = -1;                       // the listening socket; owned (and closed) by its lws wsi
    struct lws *listen_wsi_ = nullptr;         // its wsi, until the context is destroyed
    bool from_systemd_ = false;                // the socket is systemd's: never unlink it
    bool created_socket_file_ = false;
    dev_t socket_dev_ = 0;  // the socket file created, as bound: removed at exit only if
    ino_t socket_ino_ = 0;  // the path still names it (not a successor's socket)
    Stats stats_;
};

}  // namespace psdm

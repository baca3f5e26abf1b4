// DirectAcceptor: the worker's `listen` port, up to the WebSocket handshake.
//
// It listens (a TcpListener, tcp_listener.h) and reads each connection's request head itself
// (sio/ws_handshake.h), before lws sees the connection:
//   - a request the rules refuse (or one past max_connections) gets its HTTP status written
//     here and one log line, then a lingering close: the client's further bytes are read and
//     dropped for up to TcpListener::kDrainSecs, so that a reset does not destroy the answer;
//   - an accepted upgrade is taken by accept_websocket (ws_protocol.h), anonymous (no
//     identity: the direct port is not behind Apache's authentication), with whatever the
//     client sent after its head as its first frames;
//   - a client that sends no complete head within kHeadSecs is closed.
// Out of descriptors (EMFILE), it stops accepting for a second (see tcp_listener.h, also for
// why the connections wait in an epoll set of their own until lws adopts them).
//
// Thread: event loop only. Every socket here is non-blocking.
#pragma once

#include <libwebsockets.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "server/tcp_listener.h"
#include "sio/ws_handshake.h"

namespace psdm {

struct WorkerContext;

// The one log line of an upgrade refused here: a warning for 503, info else.
void log_refused_upgrade(const HttpAnswer &a, const char *client);

class DirectAcceptor {
 public:
    explicit DirectAcceptor(WorkerContext &worker);
    ~DirectAcceptor();  // closes the listener and the connections still pending

    // Listens on host:port (config_listen_split's values; port 0 = any) and has lws watch
    // the acceptor's epoll set on `ws_vhost`, where accepted upgrades are adopted too.
    // Returns false and sets *err on failure.
    bool start(struct lws_vhost *ws_vhost, const std::string &host, unsigned port, std::string *err);
    unsigned port() const { return listener_.port(); }  // the bound port

    // lws callbacks of the raw file kProtocol (the epoll set): something is ready; the
    // epoll set's wsi is closing (lws closes the fd).
    void on_readable() { listener_.on_readable(); }
    void on_closed() { listener_.on_closed(); }

    size_t pending() const { return pending_.size(); }
    // Upgrades refused so far, by the HTTP status answered (for the metrics).
    const std::map<unsigned, uint64_t> &refused_by_status() const { return refused_by_status_; }

    static constexpr const char *kProtocol = "psdm-direct";
    static constexpr int kHeadSecs = 10;  // to send a complete request head

 private:
    struct Pending;
    void on_accepted(int fd);
    void on_client(int fd);
    // Writes the refusal and starts the lingering close.
    void refuse(int fd, Pending &p, const HttpAnswer &answer);
    void handover(int fd, const RequestHead &h, EioVersion v);  // to accept_websocket
    void drop(int fd);                                          // closes a pending connection
    void on_expired(int fd);

    WorkerContext &worker_;
    struct lws_vhost *ws_vhost_ = nullptr;
    TcpListener listener_;
    std::unordered_map<int, std::unique_ptr<Pending>> pending_;  // by fd
    std::map<unsigned, uint64_t> refused_by_status_;
};

}  // namespace psdm

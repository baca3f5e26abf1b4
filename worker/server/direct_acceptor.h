// DirectAcceptor: the worker's `listen` port, up to the WebSocket handshake.
//
// It owns the listening socket and reads each connection's request head itself
// (sio/ws_handshake.h), before lws sees the connection:
//   - a request the rules refuse (or one past max_connections) gets its HTTP status written
//     here and one log line, then a lingering close: the client's further bytes are read and
//     dropped for up to kDrainSecs, so that a reset does not destroy the answer;
//   - an accepted upgrade is taken by accept_websocket (ws_protocol.h), anonymous (no
//     identity: the direct port is not behind Apache's authentication), with whatever the
//     client sent after its head as its first frames;
//   - a client that sends no complete head within kHeadSecs is closed.
// Out of descriptors (EMFILE), it stops accepting for kSweepSecs: the connections wait in the
// listen backlog (or are refused by the kernel when it is full).
//
// Why its own epoll set (adopted into lws as one raw file, so it works on libev and on poll()):
// a socket handed to lws must never have been watched under another descriptor number. libev
// never removes a closed descriptor from its epoll set (it relies on close() doing it), and
// the kernel keeps the entry of a closed descriptor while a dup of it lives: handing lws a dup
// of a socket lws already watched would leave a stale entry that makes libev rebuild its whole
// epoll set. Here the pending socket is removed from our set (EPOLL_CTL_DEL) before lws
// adopts it under the same number.
//
// Thread: event loop only. Every socket here is non-blocking.
#pragma once

#include <libwebsockets.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "base/unique_fd.h"
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
    unsigned port() const { return port_; }  // the bound port

    // lws callbacks of the raw file kProtocol (the epoll set): something is ready.
    void on_readable();
    // The epoll set's wsi is closing (lws closes the fd).
    void on_closed();

    size_t pending() const { return pending_.size(); }

    static constexpr const char *kProtocol = "psdm-direct";
    static constexpr int kHeadSecs = 10;        // to send a complete request head
    static constexpr int kDrainSecs = 2;        // lingering close after a refusal
    static constexpr size_t kDrainMax = 65536;  // bytes dropped at most while lingering
    static constexpr int kSweepSecs = 1;

 private:
    struct Pending;
    void accept_all();
    void on_client(int fd);
    // Writes the refusal and starts the lingering close.
    void refuse(int fd, Pending &p, const HttpAnswer &answer);
    void handover(int fd, const RequestHead &h, EioVersion v);  // to accept_websocket
    void drop(int fd);                                          // closes a pending connection
    // Every kSweepSecs while a connection is pending or accepting is paused: closes the
    // connections past their deadline and accepts again.
    void sweep();
    void arm_sweep();
    void set_listening(bool on);  // watches the listener or not (out of descriptors)

    WorkerContext &worker_;
    struct lws_vhost *ws_vhost_ = nullptr;
    UniqueFd listener_;
    UniqueFd timer_;     // timerfd, in the epoll set: deadlines
    int epoll_fd_ = -1;  // owned by its lws raw-file wsi
    unsigned port_ = 0;
    bool listening_ = true;                                      // the listener is in the epoll set with EPOLLIN
    bool sweeping_ = false;                                      // the timer ticks
    std::unordered_map<int, std::unique_ptr<Pending>> pending_;  // by fd
};

}  // namespace psdm

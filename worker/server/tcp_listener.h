// TcpListener: a listening TCP port whose connections its owner reads itself, before (or
// instead of) lws: the machinery that DirectAcceptor (the `listen` port until the handshake)
// and AdminServer (admin_listen) share.
//
// It owns the listening socket, an epoll set and a timerfd in that set, and has lws watch the
// epoll set as one raw file. It keeps each connection's deadline, and calls its owner back on
// the event loop:
//   - accepted(fd): a new connection, in the epoll set (EPOLLIN), with no deadline yet (the
//     owner sets one with expire_in); the owner's from then on, closed with close(), or taken
//     out of the set with forget() before lws adopts it;
//   - ready(fd): a connection in the set is ready;
//   - expired(fd): a connection is past its deadline (checked every kTickSecs while any
//     connection is open): the owner closes it.
// While max_connections are open, the listener is not watched: the rest wait in the listen
// backlog. Out of descriptors (EMFILE), it stops accepting until the next tick: the connections
// wait in the backlog too (or are refused by the kernel when it is full).
//
// Why an epoll set of its own (adopted into lws as one raw file, so it works on libev and on
// poll()): a socket handed to lws must never have been watched under another descriptor
// number. libev never removes a closed descriptor from its epoll set (it relies on close()
// doing it), and the kernel keeps the entry of a closed descriptor while a dup of it lives:
// handing lws a dup of a socket lws already watched would leave a stale entry that makes libev
// rebuild its whole epoll set. Here a pending socket is removed from our set (forget(),
// EPOLL_CTL_DEL) before lws adopts it under the same number.
//
// Thread: event loop only. Every socket here is non-blocking.
#pragma once

#include <libwebsockets.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>

#include "base/unique_fd.h"

namespace psdm {

class TcpListener {
 public:
    struct Callbacks {
        std::function<void(int fd)> accepted;
        std::function<void(int fd)> ready;
        std::function<void(int fd)> expired;
    };

    // `tag` and `name` ("port", "admin port") are for its log lines; max_connections 0: any.
    TcpListener(const char *tag, const char *name, size_t max_connections, Callbacks callbacks);
    ~TcpListener();  // closes the connections still open
    TcpListener(const TcpListener &) = delete;
    TcpListener &operator=(const TcpListener &) = delete;

    // Listens on host:port (config_listen_split's values; port 0 = any) and has lws watch the
    // epoll set on `vh` under `protocol`, with this listener as the wsi's opaque user data.
    // Returns false and sets *err ("KEY: HOST:PORT: why") on failure.
    bool start(struct lws_vhost *vh, const char *protocol, const char *key, const std::string &host, unsigned port,
               std::string *err);
    unsigned port() const { return port_; }  // the bound port

    // lws callbacks of the raw file (the epoll set): something is ready; the wsi is closing
    // (lws closes the fd).
    void on_readable();
    void on_closed() { epoll_fd_ = -1; }
    // An lws protocol callback for a raw file adopted by start(): calls the two above.
    static int lws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);

    void expire_in(int fd, int secs);     // sets a connection's deadline
    void watch(int fd, uint32_t events);  // what a connection waits for
    void forget(int fd);                  // out of the set (not closed)
    void close(int fd);                   // out of the set and closed

    static constexpr int kTickSecs = 1;
    static constexpr int kDrainSecs = 2;        // lingering close after an answer
    static constexpr size_t kDrainMax = 65536;  // bytes dropped at most while lingering

 private:
    void accept_all();
    void tick();
    void update_listening();
    void set_ticking(bool on);

    const char *tag_;
    const char *name_;
    size_t max_connections_;
    Callbacks cb_;
    UniqueFd listener_;
    UniqueFd timer_;     // timerfd, in the epoll set: ticks
    int epoll_fd_ = -1;  // owned by its lws raw-file wsi
    unsigned port_ = 0;
    bool listening_ = true;    // the listener is in the epoll set with EPOLLIN
    bool out_of_fds_ = false;  // accept failed for lack of descriptors: paused until the tick
    bool ticking_ = false;
    std::unordered_map<int, int64_t> deadlines_;  // the open connections, by fd: monotonic ms
};

// The peer's address, for log lines; with its port: "1.2.3.4:5678", "[::1]:5678".
std::string peer_of(int fd, bool with_port = false);

// One recv() of up to 4 KB from `fd`, appended to *to (if not null). Returns the byte count,
// 0 if the client closed (or the connection failed), -1 if nothing is there yet.
ssize_t read_some(int fd, std::string *to);

// A lingering close, after the answer and shutdown(SHUT_WR): reads and drops what the client
// sends, so that unread bytes do not turn our close into a reset that destroys the answer.
// Returns true once the connection is to be closed: the client closed, or sent more than
// kDrainMax (counted in *drained).
bool linger_done(int fd, size_t *drained);

}  // namespace psdm

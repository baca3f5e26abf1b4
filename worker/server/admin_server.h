// AdminServer: the admin listener (`admin_listen`), for monitoring, on a TCP port of its own
// (never the clients' `listen` port, which answers these paths 404). It serves exactly:
//   GET /metrics   200, Content-Type kPrometheusContentType, the body of Handlers::metrics
//   GET /healthz   200 "ok\n" or 503 "<reason>\n" (text/plain), from Handlers::health
// HEAD on those two answers the same head without the body. Another method on them gets 405
// (Allow: GET, HEAD), another path 404, a request head that parse_request_head refuses its
// 400/414/431; a query string is ignored. This port never upgrades to WebSocket. Every answer
// carries Connection: close and is followed by a lingering close (the client's further bytes
// are read and dropped for up to TcpListener::kDrainSecs, so that a reset does not destroy
// the answer).
//
// Limits: at most kMaxConnections connections at once (the listener is not watched while that
// many are open: the rest wait in the listen backlog); kIoSecs to send a complete request head,
// and kIoSecs again to read the whole answer: a client that does not is closed (and logged).
// The answer is written without blocking: what the socket does not take at once is written as
// it becomes writable, so a /metrics body of hundreds of KB never holds the loop.
//
// Rendering runs on the event loop (the handlers are called there), so a scrape sees one
// consistent moment of the worker's state; the handlers must not block.
//
// Like DirectAcceptor, it listens with a TcpListener (tcp_listener.h): the sockets live in an
// epoll set of its own that lws watches as one raw file, here on a vhost of its own ("admin",
// listening nowhere): lws never sees an admin connection, and the clients' vhost and protocols
// are untouched.
//
// Thread: event loop only. Every socket here is non-blocking.
#pragma once

#include <libwebsockets.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "server/metrics_report.h"
#include "server/tcp_listener.h"
#include "sio/ws_handshake.h"

namespace psdm {

class AdminServer {
 public:
    // What the two paths answer; both are called on the event loop, per request.
    struct Handlers {
        std::function<std::string()> metrics;  // the /metrics body, Prometheus text format 0.0.4
        std::function<Health()> health;        // /healthz
    };

    explicit AdminServer(Handlers handlers);
    ~AdminServer();  // closes the listener and the connections still open
    AdminServer(const AdminServer &) = delete;
    AdminServer &operator=(const AdminServer &) = delete;

    // Listens on host:port (config_listen_split's values of admin_listen; port 0 = any) and
    // has lws watch the server's epoll set on a vhost of its own in `context`. Returns false
    // and sets *err ("admin_listen: HOST:PORT: why") on failure.
    bool start(struct lws_context *context, const std::string &host, unsigned port, std::string *err);
    unsigned port() const { return listener_.port(); }  // the bound port
    size_t connections() const { return conns_.size(); }

    static constexpr const char *kProtocol = "psdm-admin";
    static constexpr size_t kMaxConnections = 16;
    static constexpr int kIoSecs = 5;  // to send the request head; to read the answer

 private:
    struct Conn;
    void on_conn(int fd);
    void read_head(int fd, Conn &c);
    // The answer to a request head (complete, or refused by parse_request_head), status line
    // to body, and its log line (`client`: the peer's address). Calls a handler for /metrics
    // and /healthz.
    std::string answer(const RequestHead &h, const std::string &client);
    void write_some(int fd, Conn &c);  // writes what the socket takes; then the lingering close
    void drop(int fd);
    void on_expired(int fd);

    Handlers handlers_;
    TcpListener listener_;
    std::unordered_map<int, std::unique_ptr<Conn>> conns_;  // by fd
};

}  // namespace psdm

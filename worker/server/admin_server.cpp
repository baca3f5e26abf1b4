// AdminServer: see admin_server.h.
#include "server/admin_server.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "metrics/prometheus.h"

namespace psdm {

namespace {

constexpr const char *kTag = "PSDM-ADMIN";

const struct lws_protocols kAdminProtocols[] = {
    {AdminServer::kProtocol, TcpListener::lws_callback, 0, 0, 0, nullptr, 0},
    {nullptr, nullptr, 0, 0, 0, nullptr, 0},
};

}  // namespace

// A connection: reading its request head, then writing its answer, then lingering.
struct AdminServer::Conn {
    enum class Phase { head, answer, drain } phase = Phase::head;
    std::string in;   // the request head so far
    std::string out;  // the answer
    size_t sent = 0;  // bytes of `out` written
    size_t drained = 0;
};

AdminServer::AdminServer(Handlers handlers)
    : handlers_(std::move(handlers)),
      listener_(kTag, "admin port", kMaxConnections,
                {[this](int fd) {
                     conns_.emplace(fd, std::make_unique<Conn>());
                     listener_.expire_in(fd, kIoSecs);
                 },
                 [this](int fd) { on_conn(fd); }, [this](int fd) { on_expired(fd); }}) {}

AdminServer::~AdminServer() = default;

bool AdminServer::start(struct lws_context *context, const std::string &host, unsigned port, std::string *err) {
    struct lws_context_creation_info vinfo;
    memset(&vinfo, 0, sizeof vinfo);
    vinfo.vhost_name = "admin";
    vinfo.protocols = kAdminProtocols;
    vinfo.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    return listener_.start(lws_create_vhost(context, &vinfo), kProtocol, "admin_listen", host, port, err);
}

void AdminServer::on_conn(int fd) {
    Conn &c = *conns_.at(fd);
    switch (c.phase) {
    case Conn::Phase::head: read_head(fd, c); return;
    case Conn::Phase::answer: write_some(fd, c); return;  // writable, or an error that send() reports
    case Conn::Phase::drain:
        if (linger_done(fd, &c.drained)) drop(fd);
        return;
    }
}

void AdminServer::read_head(int fd, Conn &c) {
    const ssize_t n = read_some(fd, &c.in);
    if (n < 0) return;
    if (n == 0) {  // the client went away (or reset) before a complete head
        drop(fd);
        return;
    }
    const RequestHead h = parse_request_head(c.in);
    if (h.state == RequestHead::State::incomplete) return;
    c.out = answer(h, peer_of(fd));
    std::string().swap(c.in);  // h's views die here: answer() is done with them
    c.phase = Conn::Phase::answer;
    listener_.expire_in(fd, kIoSecs);
    write_some(fd, c);
}

std::string AdminServer::answer(const RequestHead &h, const std::string &client) {
    if (h.state != RequestHead::State::complete) {
        const HttpAnswer &a = h.refusal;
        PSDM_LOG_INFO(kTag, "admin request refused: %s; answered %u (client %s)", a.reason.c_str(), a.status,
                      client.c_str());
        return http_answer_bytes(a);
    }
    const UpgradeRequest &r = h.request;
    const bool head_only = r.method == "HEAD";
    const std::string what = std::string(r.method) + " " + std::string(r.path);
    if (r.path != "/metrics" && r.path != "/healthz") {
        PSDM_LOG_INFO(kTag, "admin request %.200s: no such path; answered 404 (client %s)", what.c_str(),
                      client.c_str());
        return http_response_bytes(404, "", "text/plain", "Not found: this port serves /metrics and /healthz\n",
                                   head_only);
    }
    if (r.method != "GET" && !head_only) {
        PSDM_LOG_INFO(kTag, "admin request %.200s: method not allowed; answered 405 (client %s)", what.c_str(),
                      client.c_str());
        return http_response_bytes(405, "Allow: GET, HEAD\r\n", "text/plain", "Method not allowed: use GET\n", false);
    }
    if (r.path == "/metrics") {
        const std::string body = handlers_.metrics ? handlers_.metrics() : std::string();
        PSDM_LOG_DEBUG(kTag, "admin request %s: 200, %zu bytes (client %s)", what.c_str(), body.size(), client.c_str());
        return http_response_bytes(200, "", kPrometheusContentType, body, head_only);
    }
    const Health health = handlers_.health ? handlers_.health() : Health{true, ""};
    PSDM_LOG_DEBUG(kTag, "admin request %s: %s (client %s)", what.c_str(), health.ok ? "ok" : health.reason.c_str(),
                   client.c_str());
    if (health.ok) return http_response_bytes(200, "", "text/plain", "ok\n", head_only);
    return http_response_bytes(503, "", "text/plain", health.reason + "\n", head_only);
}

void AdminServer::write_some(int fd, Conn &c) {
    while (c.sent < c.out.size()) {
        const ssize_t n = send(fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            listener_.watch(fd, EPOLLOUT);  // the rest when the client has read some
            return;
        }
        if (n <= 0) {  // the client went away
            PSDM_LOG_DEBUG(kTag, "admin client %s went away after %zu of %zu bytes", peer_of(fd).c_str(), c.sent,
                           c.out.size());
            drop(fd);
            return;
        }
        c.sent += static_cast<size_t>(n);
    }
    // All written: close our side, then the lingering close (linger_done).
    std::string().swap(c.out);
    if (shutdown(fd, SHUT_WR) != 0) {
        drop(fd);
        return;
    }
    c.phase = Conn::Phase::drain;
    listener_.expire_in(fd, TcpListener::kDrainSecs);
    listener_.watch(fd, EPOLLIN);
}

void AdminServer::drop(int fd) {
    conns_.erase(fd);
    listener_.close(fd);
}

void AdminServer::on_expired(int fd) {
    const Conn &c = *conns_.at(fd);
    if (c.phase == Conn::Phase::head) {
        PSDM_LOG_INFO(kTag, "closed an admin connection of client %s: no complete request within %d s (%zu bytes)",
                      peer_of(fd).c_str(), kIoSecs, c.in.size());
    } else if (c.phase == Conn::Phase::answer) {
        PSDM_LOG_INFO(kTag, "closed an admin connection of client %s: answer not read within %d s (%zu of %zu bytes)",
                      peer_of(fd).c_str(), kIoSecs, c.sent, c.out.size());
    }
    drop(fd);
}

}  // namespace psdm

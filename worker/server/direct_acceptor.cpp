// DirectAcceptor: see direct_acceptor.h.
#include "server/direct_acceptor.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/clock.h"
#include "base/log.h"
#include "server/server.h"
#include "server/ws_protocol.h"

namespace psdm {

namespace {

constexpr const char *kTag = "PSDM-WS";
constexpr size_t kReadChunk = 4096;
constexpr int kMaxEvents = 64;

// The peer's address, for log lines.
std::string peer_of(int fd) {
    struct sockaddr_storage ss {};
    socklen_t len = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "?";
    if (getpeername(fd, reinterpret_cast<struct sockaddr *>(&ss), &len) == 0) {
        const void *addr = ss.ss_family == AF_INET6
                               ? static_cast<const void *>(&reinterpret_cast<struct sockaddr_in6 *>(&ss)->sin6_addr)
                               : static_cast<const void *>(&reinterpret_cast<struct sockaddr_in *>(&ss)->sin_addr);
        inet_ntop(ss.ss_family, addr, host, sizeof host);
    }
    return host;
}

}  // namespace

// A connection whose request head is being read, or whose refusal is lingering.
struct DirectAcceptor::Pending {
    std::string head;       // what the client sent so far
    bool draining = false;  // refused: dropping what else arrives until the client closes
    size_t drained = 0;
    int64_t deadline_ms = 0;
};

DirectAcceptor::DirectAcceptor(WorkerContext &worker) : worker_(worker) {}

DirectAcceptor::~DirectAcceptor() {
    for (auto &kv : pending_) ::close(kv.first);
}

bool DirectAcceptor::start(struct lws_vhost *ws_vhost, const std::string &host, unsigned port, std::string *err) {
    ws_vhost_ = ws_vhost;
    const std::string where = "listen: " + host + ":" + std::to_string(port);
    struct addrinfo hints {};
    hints.ai_family = host.find(':') == std::string::npos ? AF_INET : AF_INET6;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    struct addrinfo *ai = nullptr;
    const std::string service = std::to_string(port);
    if (int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &ai)) {
        *err = where + ": " + gai_strerror(rc);
        return false;
    }
    std::unique_ptr<struct addrinfo, void (*)(struct addrinfo *)> own(ai, freeaddrinfo);
    listener_.reset(socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    const int one = 1;
    if (!listener_ || setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(listener_.get(), ai->ai_addr, ai->ai_addrlen) != 0 || listen(listener_.get(), SOMAXCONN) != 0) {
        *err = where + ": " + strerror(errno);
        return false;
    }
    struct sockaddr_storage bound {};
    socklen_t len = sizeof bound;
    getsockname(listener_.get(), reinterpret_cast<struct sockaddr *>(&bound), &len);
    port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<struct sockaddr_in6 *>(&bound)->sin6_port
                                              : reinterpret_cast<struct sockaddr_in *>(&bound)->sin_port);

    UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
    timer_.reset(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    struct epoll_event ev {};
    ev.events = EPOLLIN;
    ev.data.fd = listener_.get();
    bool ok = ep && timer_ && epoll_ctl(ep.get(), EPOLL_CTL_ADD, listener_.get(), &ev) == 0;
    ev.data.fd = timer_.get();
    if (!ok || epoll_ctl(ep.get(), EPOLL_CTL_ADD, timer_.get(), &ev) != 0) {
        *err = where + ": epoll: " + strerror(errno);
        return false;
    }
    lws_sock_file_fd_type fd;
    fd.filefd = ep.get();
    if (!lws_adopt_descriptor_vhost(ws_vhost, LWS_ADOPT_RAW_FILE_DESC, fd, kProtocol, nullptr)) {
        *err = where + ": cannot watch its sockets";  // lws does not close a raw file it could not adopt
        return false;
    }
    epoll_fd_ = ep.release();  // lws's now (closed with its wsi)
    return true;
}

void DirectAcceptor::on_closed() { epoll_fd_ = -1; }

void DirectAcceptor::on_readable() {
    if (epoll_fd_ < 0) return;
    struct epoll_event events[kMaxEvents];
    const int n = epoll_wait(epoll_fd_, events, kMaxEvents, 0);
    for (int i = 0; i < n; i++) {
        const int fd = events[i].data.fd;
        if (fd == listener_.get()) {
            accept_all();
        } else if (fd == timer_.get()) {
            uint64_t expirations;
            ssize_t ignored = read(timer_.get(), &expirations, sizeof expirations);
            (void)ignored;
            sweep();
        } else if (pending_.count(fd)) {  // not dropped by an earlier event of this batch
            on_client(fd);
        }
    }
}

void DirectAcceptor::accept_all() {
    for (int i = 0; i < kMaxEvents; i++) {
        UniqueFd fd(accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!fd) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                // Out of descriptors: new connections wait in the backlog (the listener stays
                // readable, so watching it now would spin) until the next sweep.
                PSDM_LOG_WARN(kTag, "accept on port %u: %s; not accepting for %d s", port_, strerror(errno),
                              kSweepSecs);
                set_listening(false);
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED) {
                PSDM_LOG_WARN(kTag, "accept on port %u: %s", port_, strerror(errno));
            }
            return;
        }
        const int one = 1;  // small frames leave at once, as on lws's own listeners
        setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        auto p = std::make_unique<Pending>();
        p->deadline_ms = monotonic_ms() + kHeadSecs * 1000;
        struct epoll_event ev {};
        ev.events = EPOLLIN;
        ev.data.fd = fd.get();
        if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd.get(), &ev) != 0) {
            PSDM_LOG_WARN(kTag, "cannot watch a connection on port %u: %s", port_, strerror(errno));
            continue;
        }
        pending_.emplace(fd.get(), std::move(p));
        fd.release();  // pending_'s now
        arm_sweep();
    }
}

void DirectAcceptor::set_listening(bool on) {
    if (listening_ == on) return;
    struct epoll_event ev {};
    ev.events = on ? static_cast<uint32_t>(EPOLLIN) : 0u;
    ev.data.fd = listener_.get();
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, listener_.get(), &ev);
    listening_ = on;
    arm_sweep();
}

void DirectAcceptor::on_client(int fd) {
    Pending &p = *pending_.at(fd);
    char buf[kReadChunk];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) {  // the client went away (or reset)
        if (!p.draining && !p.head.empty())
            PSDM_LOG_DEBUG(kTag, "client %s went away before completing its request (%zu bytes)", peer_of(fd).c_str(),
                           p.head.size());
        drop(fd);
        return;
    }
    if (p.draining) {
        p.drained += static_cast<size_t>(n);
        if (p.drained > kDrainMax) drop(fd);
        return;
    }
    p.head.append(buf, static_cast<size_t>(n));
    const RequestHead h = parse_request_head(p.head);
    switch (h.state) {
    case RequestHead::State::incomplete: return;
    case RequestHead::State::refused: refuse(fd, p, h.refusal); return;
    case RequestHead::State::complete: break;
    }
    const HttpAnswer verdict = worker_.server->admit(h.request);
    if (!verdict.accepted()) {
        refuse(fd, p, verdict);
        return;
    }
    handover(fd, h, verdict.version);
}

void log_refused_upgrade(const HttpAnswer &a, const char *client) {
    logf(a.status == 503 ? LogLevel::warn : LogLevel::info, kTag, "refused upgrade: %s; answered %u (client %s)",
         a.reason.c_str(), a.status, client);
}

void DirectAcceptor::refuse(int fd, Pending &p, const HttpAnswer &answer) {
    log_refused_upgrade(answer, peer_of(fd).c_str());
    const std::string bytes = http_answer_bytes(answer);
    // A fresh connection's send buffer takes these few hundred bytes at once; if it does not,
    // the client is not reading and gets nothing more.
    if (send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT) != static_cast<ssize_t>(bytes.size()) ||
        shutdown(fd, SHUT_WR) != 0) {
        drop(fd);
        return;
    }
    p.draining = true;
    std::string().swap(p.head);
    p.deadline_ms = monotonic_ms() + kDrainSecs * 1000;
}

void DirectAcceptor::handover(int fd, const RequestHead &h, EioVersion v) {
    // Out of our set before lws watches it (see the header); then it is lws's, also on failure.
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    const std::unique_ptr<Pending> p = std::move(pending_.at(fd));  // h views p->head
    pending_.erase(fd);
    accept_websocket(worker_, ws_vhost_, fd, h.request, v, std::string_view(p->head).substr(h.length), Identity{});
}

void DirectAcceptor::drop(int fd) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    pending_.erase(fd);
    ::close(fd);
}

void DirectAcceptor::sweep() {
    const int64_t now = monotonic_ms();
    for (auto it = pending_.begin(); it != pending_.end();) {
        const int fd = it->first;
        const Pending &p = *it->second;
        ++it;
        if (now < p.deadline_ms) continue;
        if (!p.draining)
            PSDM_LOG_INFO(kTag, "closed a connection of client %s: no complete request within %d s (%zu bytes)",
                          peer_of(fd).c_str(), kHeadSecs, p.head.size());
        drop(fd);
    }
    set_listening(true);
    if (pending_.empty()) {
        struct itimerspec off {};
        timerfd_settime(timer_.get(), 0, &off, nullptr);
        sweeping_ = false;
    }
}

void DirectAcceptor::arm_sweep() {
    if (sweeping_) return;
    struct itimerspec every {};
    every.it_value.tv_sec = kSweepSecs;
    every.it_interval.tv_sec = kSweepSecs;
    timerfd_settime(timer_.get(), 0, &every, nullptr);
    sweeping_ = true;
}

}  // namespace psdm

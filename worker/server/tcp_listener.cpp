// TcpListener: see tcp_listener.h.
#include "server/tcp_listener.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "base/c_boundary.h"
#include "base/clock.h"
#include "base/log.h"

namespace psdm {

namespace {

constexpr int kMaxEvents = 64;

}  // namespace

TcpListener::TcpListener(const char *tag, const char *name, size_t max_connections, Callbacks callbacks)
    : tag_(tag), name_(name), max_connections_(max_connections), cb_(std::move(callbacks)) {}

TcpListener::~TcpListener() {
    for (const auto &kv : deadlines_) ::close(kv.first);
}

bool TcpListener::start(struct lws_vhost *vh, const char *protocol, const char *key, const std::string &host,
                        unsigned port, std::string *err) {
    const std::string where = std::string(key) + ": " + host + ":" + std::to_string(port);
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
    lws_adopt_desc_t desc;
    memset(&desc, 0, sizeof desc);
    desc.vh = vh;
    desc.type = LWS_ADOPT_RAW_FILE_DESC;
    desc.fd.filefd = ep.get();
    desc.vh_prot_name = protocol;
    desc.opaque = this;
    if (!vh || !lws_adopt_descriptor_vhost_via_info(&desc)) {
        *err = where + ": cannot watch its sockets";  // lws does not close a raw file it could not adopt
        return false;
    }
    epoll_fd_ = ep.release();  // lws's now (closed with its wsi)
    return true;
}

int TcpListener::lws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    auto *l = static_cast<TcpListener *>(lws_get_opaque_user_data(wsi));
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        if (l) guarded("lws TcpListener RAW_RX_FILE", [l] { l->on_readable(); });
        return 0;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (l) l->on_closed();
        lws_set_opaque_user_data(wsi, nullptr);
        return 0;
    default: return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

void TcpListener::on_readable() {
    if (epoll_fd_ < 0) return;
    struct epoll_event events[kMaxEvents];
    const int n = epoll_wait(epoll_fd_, events, kMaxEvents, 0);
    for (int i = 0; i < n; i++) {
        const int fd = events[i].data.fd;
        if (fd == listener_.get()) {
            accept_all();
        } else if (fd == timer_.get()) {
            tick();
        } else if (deadlines_.count(fd)) {  // not closed by an earlier event of this batch
            cb_.ready(fd);
        }
    }
}

void TcpListener::accept_all() {
    for (int i = 0; i < kMaxEvents && listening_; i++) {
        UniqueFd fd(accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!fd) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                // Out of descriptors: new connections wait in the backlog (the listener stays
                // readable, so watching it now would spin) until the next tick.
                PSDM_LOG_WARN(tag_, "accept on %s %u: %s; not accepting for %d s", name_, port_, strerror(errno),
                              kTickSecs);
                out_of_fds_ = true;
                update_listening();
                set_ticking(true);
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED) {
                PSDM_LOG_WARN(tag_, "accept on %s %u: %s", name_, port_, strerror(errno));
            }
            return;
        }
        struct epoll_event ev {};
        ev.events = EPOLLIN;
        ev.data.fd = fd.get();
        if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd.get(), &ev) != 0) {
            PSDM_LOG_WARN(tag_, "cannot watch a connection on %s %u: %s", name_, port_, strerror(errno));
            continue;
        }
        deadlines_.emplace(fd.get(), INT64_MAX);
        update_listening();
        set_ticking(true);
        cb_.accepted(fd.release());  // the owner's now
    }
}

void TcpListener::tick() {
    uint64_t expirations;
    ssize_t ignored = read(timer_.get(), &expirations, sizeof expirations);
    (void)ignored;
    const int64_t now = monotonic_ms();
    std::vector<int> expired;
    for (const auto &kv : deadlines_)
        if (now >= kv.second) expired.push_back(kv.first);
    for (int fd : expired) cb_.expired(fd);
    out_of_fds_ = false;
    update_listening();
    if (deadlines_.empty()) set_ticking(false);
}

void TcpListener::update_listening() {
    const bool want = !out_of_fds_ && (max_connections_ == 0 || deadlines_.size() < max_connections_);
    if (listening_ == want || epoll_fd_ < 0) return;
    watch(listener_.get(), want ? static_cast<uint32_t>(EPOLLIN) : 0u);
    listening_ = want;
}

void TcpListener::watch(int fd, uint32_t events) {
    struct epoll_event ev {};
    ev.events = events;
    ev.data.fd = fd;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
}

void TcpListener::expire_in(int fd, int secs) { deadlines_[fd] = monotonic_ms() + secs * 1000; }

void TcpListener::forget(int fd) {
    if (epoll_fd_ >= 0) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    deadlines_.erase(fd);
    update_listening();
}

void TcpListener::close(int fd) {
    forget(fd);
    ::close(fd);
}

void TcpListener::set_ticking(bool on) {
    if (ticking_ == on) return;
    struct itimerspec every {};
    every.it_value.tv_sec = on ? kTickSecs : 0;
    every.it_interval.tv_sec = on ? kTickSecs : 0;
    timerfd_settime(timer_.get(), 0, &every, nullptr);
    ticking_ = on;
}

std::string peer_of(int fd, bool with_port) {
    struct sockaddr_storage ss {};
    socklen_t len = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "?";
    if (getpeername(fd, reinterpret_cast<struct sockaddr *>(&ss), &len) != 0) return host;
    const bool v6 = ss.ss_family == AF_INET6;
    const auto *in4 = reinterpret_cast<const struct sockaddr_in *>(&ss);
    const auto *in6 = reinterpret_cast<const struct sockaddr_in6 *>(&ss);
    inet_ntop(ss.ss_family, v6 ? static_cast<const void *>(&in6->sin6_addr) : static_cast<const void *>(&in4->sin_addr),
              host, sizeof host);
    if (!with_port) return host;
    const unsigned port = ntohs(v6 ? in6->sin6_port : in4->sin_port);
    return (v6 ? "[" + std::string(host) + "]" : std::string(host)) + ":" + std::to_string(port);
}

ssize_t read_some(int fd, std::string *to) {
    char buf[4096];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return -1;
    if (n <= 0) return 0;
    if (to) to->append(buf, static_cast<size_t>(n));
    return n;
}

bool linger_done(int fd, size_t *drained) {
    const ssize_t n = read_some(fd, nullptr);
    if (n > 0) *drained += static_cast<size_t>(n);
    return n == 0 || *drained > TcpListener::kDrainMax;
}

}  // namespace psdm

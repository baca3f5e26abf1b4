// DirectAcceptor: see direct_acceptor.h.
#include "server/direct_acceptor.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "base/log.h"
#include "server/server.h"
#include "server/ws_protocol.h"

namespace psdm {

namespace {

constexpr const char *kTag = "PSDM-WS";

}  // namespace

// A connection whose request head is being read, or whose refusal is lingering.
struct DirectAcceptor::Pending {
    std::string head;       // what the client sent so far
    bool draining = false;  // refused: dropping what else arrives until the client closes
    size_t drained = 0;
};

DirectAcceptor::DirectAcceptor(WorkerContext &worker)
    : worker_(worker),
      listener_(kTag, "port", 0,
                {[this](int fd) { on_accepted(fd); }, [this](int fd) { on_client(fd); },
                 [this](int fd) { on_expired(fd); }}) {}

DirectAcceptor::~DirectAcceptor() = default;

bool DirectAcceptor::start(struct lws_vhost *ws_vhost, const std::string &host, unsigned port, std::string *err) {
    ws_vhost_ = ws_vhost;
    return listener_.start(ws_vhost, kProtocol, "listen", host, port, err);
}

void DirectAcceptor::on_accepted(int fd) {
    const int one = 1;  // small frames leave at once, as on lws's own listeners
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pending_.emplace(fd, std::make_unique<Pending>());
    listener_.expire_in(fd, kHeadSecs);
}

void DirectAcceptor::on_client(int fd) {
    Pending &p = *pending_.at(fd);
    if (p.draining) {
        if (linger_done(fd, &p.drained)) drop(fd);
        return;
    }
    const ssize_t n = read_some(fd, &p.head);
    if (n < 0) return;
    if (n == 0) {  // the client went away (or reset)
        if (!p.head.empty())
            PSDM_LOG_DEBUG(kTag, "client %s went away before completing its request (%zu bytes)", peer_of(fd).c_str(),
                           p.head.size());
        drop(fd);
        return;
    }
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
    refused_by_status_[answer.status]++;
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
    listener_.expire_in(fd, TcpListener::kDrainSecs);
}

void DirectAcceptor::handover(int fd, const RequestHead &h, EioVersion v) {
    // Out of our set before lws watches it (see tcp_listener.h); then it is lws's, also on failure.
    listener_.forget(fd);
    const std::unique_ptr<Pending> p = std::move(pending_.at(fd));  // h views p->head
    pending_.erase(fd);
    accept_websocket(worker_, ws_vhost_, fd, h.request, v, std::string_view(p->head).substr(h.length), Identity{},
                     peer_of(fd, true), Via::direct);
}

void DirectAcceptor::drop(int fd) {
    pending_.erase(fd);
    listener_.close(fd);
}

void DirectAcceptor::on_expired(int fd) {
    const Pending &p = *pending_.at(fd);
    if (!p.draining)
        PSDM_LOG_INFO(kTag, "closed a connection of client %s: no complete request within %d s (%zu bytes)",
                      peer_of(fd).c_str(), kHeadSecs, p.head.size());
    drop(fd);
}

}  // namespace psdm

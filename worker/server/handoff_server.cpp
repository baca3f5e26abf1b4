#include "server/handoff_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <systemd/sd-daemon.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "handoff/handoff_io.h"
#include "handoff/handoff_proto.h"
#include "base/config_check.h"
#include "base/log.h"
#include "server/server.h"
#include "server/ws_protocol.h"
#include "sio/ws_handshake.h"

namespace psdm {

namespace {
constexpr const char *kTag = "PSDM-HANDOFF";
constexpr int kPendingTimeoutSecs = 10;  // a peer that sends part of a request and stops
constexpr int kRequestsPerWake = 32;     // then other connections get their turn
// Handoffs that wait to be accepted: a burst of reconnections (a restart of a worker with
// 10 000 pages) must not overflow it (Apache then answers 503), as psdm_socketd.socket's
// Backlog=; the kernel caps it at net.core.somaxconn (4096 by default).
constexpr int kHandoffBacklog = 4096;
}  // namespace

// One Unix connection from the module (an Apache child's kept connection, or a relay's),
// from accept until it closes; the fields after rx describe the request being read.
struct HandoffConn {
    int sock = -1;  // owned by its lws raw-file wsi
    pid_t pid = 0;
    std::unique_ptr<unsigned char[]> buf{new unsigned char[PSDM_HS_MAX_MSG]};
    psdm_handoff_rx rx{};
    uint8_t kind = 0;
    UniqueFd client;  // the handed-over client socket, until adopted
    Identity who;
    std::string client_addr;
    bool timed = false;  // lws's timeout runs: part of this request has come

    // Ready for the next request on the same connection.
    void next_request() {
        psdm_handoff_rx_release(&rx);
        psdm_handoff_rx_init(&rx, buf.get(), PSDM_HS_MAX_MSG);
        kind = 0;
        client.reset();
        who = Identity{};
        client_addr.clear();
    }
};

HandoffServer::HandoffServer(const Config &cfg, WorkerContext &worker) : cfg_(cfg), worker_(worker) {}

HandoffServer::~HandoffServer() {
    // Only the file this worker bound: a successor (or systemd's socket unit, started while
    // this worker stopped) may have bound a new socket at the same path meanwhile.
    struct stat st;
    if (created_socket_file_ && lstat(cfg_.handoff_socket.c_str(), &st) == 0 && st.st_dev == socket_dev_ &&
        st.st_ino == socket_ino_)
        unlink(cfg_.handoff_socket.c_str());
}

// What a descriptor is, for an error message: "a TCP socket listening on 127.0.0.1:8080",
// "a Unix datagram socket on /run/x.sock", "a descriptor that is not a socket".
static std::string describe_fd(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) return "descriptor " + std::to_string(fd) + " (" + strerror(errno) + ")";
    if (!S_ISSOCK(st.st_mode)) return "a descriptor that is not a socket";
    int domain = 0, type = 0, listening = 0;
    socklen_t len = sizeof domain;
    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
    len = sizeof type;
    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
    len = sizeof listening;
    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
    struct sockaddr_storage ss {};
    len = sizeof ss;
    getsockname(fd, reinterpret_cast<struct sockaddr *>(&ss), &len);
    const char *how = listening ? " listening on " : " (not listening) on ";
    if (domain == AF_UNIX) {
        const char *kind = type == SOCK_STREAM      ? "stream"
                           : type == SOCK_DGRAM     ? "datagram"
                           : type == SOCK_SEQPACKET ? "seqpacket"
                                                    : "other";
        const auto *sun = reinterpret_cast<const struct sockaddr_un *>(&ss);
        const size_t n = len > offsetof(struct sockaddr_un, sun_path) ? len - offsetof(struct sockaddr_un, sun_path)
                                                                      : 0;
        std::string where = n == 0                  ? std::string("no path")
                            : sun->sun_path[0] == 0 ? "@" + std::string(sun->sun_path + 1, n - 1)  // abstract
                                                    : std::string(sun->sun_path, strnlen(sun->sun_path, n));
        return std::string("a Unix ") + kind + " socket" + how + where;
    }
    if (domain == AF_INET || domain == AF_INET6) {
        char host[INET6_ADDRSTRLEN] = "?";
        unsigned port = 0;
        if (ss.ss_family == AF_INET) {
            const auto *sin = reinterpret_cast<const struct sockaddr_in *>(&ss);
            inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
            port = ntohs(sin->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            const auto *sin6 = reinterpret_cast<const struct sockaddr_in6 *>(&ss);
            inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
            port = ntohs(sin6->sin6_port);
        }
        const bool v6 = ss.ss_family == AF_INET6;
        return std::string("a ") +
               (type == SOCK_STREAM  ? "TCP"
                : type == SOCK_DGRAM ? "UDP"
                                     : "IP") +
               " socket" + how + (v6 ? "[" : "") + host + (v6 ? "]" : "") + ":" + std::to_string(port);
    }
    return "a socket of address family " + std::to_string(domain);
}

int handoff_socket_from_systemd(const std::string &path, std::string *err) {
    char **names = nullptr;
    const int n = sd_listen_fds_with_names(1, &names);  // 1: unsets LISTEN_*
    if (n == 0) return -1;
    if (n < 0) {
        *err = std::string("systemd socket activation: LISTEN_FDS: ") + strerror(-n);
        return -2;
    }
    std::string passed;
    for (int i = 0; i < n; i++) {
        const int fd = SD_LISTEN_FDS_START + i;
        passed += (i ? "; " : "") + describe_fd(fd);
        if (names && names[i] && strcmp(names[i], "unknown") != 0) passed += std::string(" (named ") + names[i] + ")";
        free(names ? names[i] : nullptr);
    }
    free(static_cast<void *>(names));
    const std::string expected = path.empty() ? std::string("none (handoff_socket is not set)")
                                              : "one listening Unix stream socket on " + path + " (handoff_socket)";
    if (n == 1 && !path.empty() && sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, path.c_str(), 0) > 0)
        return SD_LISTEN_FDS_START;
    for (int i = 0; i < n; i++) close(SD_LISTEN_FDS_START + i);
    *err = "systemd passed " + passed + "; expected " + expected +
           ": make ListenStream= of psdm_socketd.socket and handoff_socket name the same path";
    return -2;
}

bool HandoffServer::start(struct lws_context *context, struct lws_vhost *vh, int inherited, std::string *err) {
    (void)context;
    vh_ = vh;
    UniqueFd listener(inherited);  // closed on every failure below
    // The same resolution --check-config ran (base/config_check.h).
    std::vector<std::string> problems;
    if (!config_peer_uids(cfg_, &allowed_uids_, &problems)) {
        *err = problems.front();
        return false;
    }
    std::string peers;
    for (size_t i = 0; i < allowed_uids_.size(); i++)
        peers += (peers.empty() ? "" : ", ") + cfg_.handoff_allowed_peers[i] + "(" + std::to_string(allowed_uids_[i]) +
                 ")";

    const std::string &path = cfg_.handoff_socket;
    std::string origin;
    if (listener) {
        // systemd's (psdm_socketd.socket): bound, with its owner and mode, and listening
        // with its Backlog=. Only made non-blocking here; never unlinked.
        from_systemd_ = true;
        int flags = fcntl(listener.get(), F_GETFL);
        if (flags < 0 || fcntl(listener.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
            *err = "handoff_socket: " + path + " (from systemd): " + strerror(errno);
            return false;
        }
        origin = "from systemd";
    } else {
        if (!create_socket_file(&listener, err)) return false;
        origin = "created";
    }
    struct stat st {};
    char mode[8] = "?";
    if (stat(path.c_str(), &st) == 0) snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    lws_sock_file_fd_type fd;
    fd.filefd = listen_fd_ = listener.release();  // lws owns it now (closes it on destroy)
    listen_wsi_ = lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, fd, kListenerProtocol, nullptr);
    if (!listen_wsi_) {
        close(listen_fd_);  // lws does not close a raw file it could not adopt
        listen_fd_ = -1;
        *err = "handoff_socket: cannot watch " + path;
        return false;
    }
    PSDM_LOG_INFO(kTag, "handoff socket %s (%s), mode %s, accepting peers %s", path.c_str(), origin.c_str(), mode,
                  peers.c_str());
    return true;
}

// The worker's own socket file at handoff_socket, with handoff_socket_mode from the start.
bool HandoffServer::create_socket_file(UniqueFd *listener, std::string *err) {
    const std::string &path = cfg_.handoff_socket;  // config checked it fits sun_path
    struct sockaddr_un sun {};
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, path.c_str(), path.size() + 1);
    struct stat st;
    if (lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            *err = "handoff_socket: " + path + " exists and is not a socket";
            return false;
        }
        // A socket file: stale (remove it) unless another worker, or systemd's socket unit
        // while this worker was started outside it, listens on it.
        UniqueFd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (connect(probe.get(), reinterpret_cast<struct sockaddr *>(&sun), sizeof sun) == 0) {
            *err = "handoff_socket: another process already listens on " + path;
            return false;
        }
        unlink(path.c_str());
    }

    listener->reset(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    // The socket file gets its final mode at creation: no window with wider access.
    mode_t old = umask(static_cast<mode_t>(~cfg_.handoff_socket_mode & 0777));
    int rc = bind(listener->get(), reinterpret_cast<struct sockaddr *>(&sun), sizeof sun);
    int bind_errno = errno;
    umask(old);
    if (rc != 0) {
        *err = "handoff_socket: cannot bind " + path + ": " + strerror(bind_errno);
        return false;
    }
    if (lstat(path.c_str(), &st) == 0) {
        created_socket_file_ = true;
        socket_dev_ = st.st_dev;
        socket_ino_ = st.st_ino;
    }
    if (chmod(path.c_str(), cfg_.handoff_socket_mode) != 0 || listen(listener->get(), kHandoffBacklog) != 0) {
        *err = "handoff_socket: " + path + ": " + strerror(errno);
        return false;
    }
    return true;
}

void HandoffServer::stop_accepting() {
    if (!from_systemd_ || !listen_wsi_) return;
    // Our copy of the socket stays open but unwatched; systemd's copy keeps it listening.
    lws_rx_flow_control(listen_wsi_, 0);
    // Apache's kept connections: its next handoff on one fails (EPIPE) and it connects
    // again, to the backlog. What they already carry is still read (and refused: stopping).
    for (HandoffConn *hc : conns_) shutdown(hc->sock, SHUT_RD);
    PSDM_LOG_NOTICE(kTag, "stopping: new handoffs wait in the backlog of %s (systemd's socket) for the next worker",
                    cfg_.handoff_socket.c_str());
}

bool HandoffServer::peer_allowed(uid_t uid) const {
    for (uid_t a : allowed_uids_)
        if (a == uid) return true;
    return false;
}

void HandoffServer::on_listener_readable() {
    for (int i = 0; i < 64; i++) {
        UniqueFd sock(accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!sock) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                PSDM_LOG_WARN(kTag, "accept on %s: %s", cfg_.handoff_socket.c_str(), strerror(errno));
            return;
        }
        struct ucred cred {};
        socklen_t len = sizeof cred;
        if (getsockopt(sock.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || !peer_allowed(cred.uid)) {
            PSDM_LOG_WARN(kTag, "refused a connection on %s from uid %u (pid %d): not in handoff_allowed_peers",
                          cfg_.handoff_socket.c_str(), static_cast<unsigned>(cred.uid), static_cast<int>(cred.pid));
            continue;  // closes sock: nothing read from it, nothing written anywhere
        }
        auto hc = std::make_unique<HandoffConn>();  // on an exception, sock is closed too
        conns_.reserve(conns_.size() + 1);          // no throw once lws owns it
        hc->sock = sock.get();
        hc->pid = cred.pid;
        psdm_handoff_rx_init(&hc->rx, hc->buf.get(), PSDM_HS_MAX_MSG);
        lws_adopt_desc_t desc{};
        desc.vh = vh_;
        desc.type = LWS_ADOPT_RAW_FILE_DESC;
        desc.fd.filefd = sock.get();
        desc.vh_prot_name = kConnProtocol;
        desc.opaque = hc.get();
        struct lws *wsi = lws_adopt_descriptor_vhost_via_info(&desc);
        if (!wsi) {  // lws does not close a raw file it could not adopt
            PSDM_LOG_WARN(kTag, "cannot watch a handoff connection from pid %d", static_cast<int>(cred.pid));
            continue;
        }
        sock.release();  // lws's now, and hc with it (on_conn_closed deletes it)
        conns_.insert(hc.release());
    }
}

// Answers the client with `answer` (the spec's REFUSAL, or the HTTP status of an upgrade the
// rules refuse): on its socket (handoff) or into the relay (the module passes it on). Best
// effort and non-blocking: nothing was written to the connection before, so the socket
// buffer has room.
int HandoffServer::refuse(HandoffConn *hc, const char *reason, const char *why, unsigned status,
                          const std::string &answer) {
    PSDM_LOG_WARN(kTag, "refused handoff from pid %d (client %s, user '%s'): %s; answered %u",
                  static_cast<int>(hc->pid), hc->client_addr.empty() ? "?" : hc->client_addr.c_str(),
                  hc->who.user.c_str(), why, status);
    stats_.refused++;
    stats_.refused_by[reason]++;
    int fd = hc->kind == PSDM_HS_KIND_HANDOFF ? hc->client.get() : hc->sock;
    if (!answer.empty() && fd >= 0) {
        ssize_t ignored = send(fd, answer.data(), answer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)ignored;
    }
    // A handoff: the client's fd is closed with the next request; the connection goes on.
    // A relay: its connection was the client's, and ends here.
    return hc->kind == PSDM_HS_KIND_HANDOFF ? 0 : -1;
}

// The spec's REFUSAL: 503 with Retry-After.
int HandoffServer::refuse_503(HandoffConn *hc, const char *reason, const char *why) {
    char answer[256];
    int n = psdm_handoff_build_refusal(answer, sizeof answer);
    return refuse(hc, reason, why, 503, n > 0 ? std::string(answer, static_cast<size_t>(n)) : std::string());
}

int HandoffServer::on_conn_readable(struct lws *wsi, HandoffConn *hc) {
    for (int i = 0; i < kRequestsPerWake; i++) {
        const int rc = psdm_handoff_rx_step(&hc->rx, hc->sock);
        if (rc == EAGAIN) {  // a request cut in two waits for its rest, not forever
            if (psdm_handoff_rx_started(&hc->rx) && !hc->timed) {
                lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, kPendingTimeoutSecs);
                hc->timed = true;
            }
            return 0;
        }
        if (on_request(hc, rc) < 0) return -1;
        if (hc->timed) lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
        hc->timed = false;
        hc->next_request();
    }
    return 0;
}

int HandoffServer::on_request(HandoffConn *hc, int rc) {
    if (rc > 0) {
        PSDM_LOG_WARN(kTag, "reading a handoff request from pid %d: %s", static_cast<int>(hc->pid), strerror(rc));
        return -1;
    }
    if (rc == PSDM_HS_E_CLOSED) return -1;  // closed between requests: a child ended, or a probe
    if (rc == PSDM_HS_E_TRUNCATED) {        // the module could not send it all and kept the client
        PSDM_LOG_INFO(kTag, "pid %d sent part of a handoff request and closed: the module kept the client",
                      static_cast<int>(hc->pid));
        stats_.withdrawn++;
        return -1;
    }
    if (rc < 0) {  // rx has closed the fd: no client to answer
        PSDM_LOG_ERROR(kTag, "unusable handoff request from pid %d: %s (module and worker of different versions?)",
                       static_cast<int>(hc->pid), psdm_handoff_strerror(rc));
        stats_.refused++;
        stats_.refused_by["unusable_request"]++;
        return -1;
    }

    psdm_handoff_req req;
    uint8_t bad_tag = 0;
    rc = psdm_handoff_decode(hc->buf.get(), psdm_handoff_rx_len(&hc->rx), &req, &bad_tag);
    hc->kind = hc->buf[5];  // the header passed rx's checks: the kind is valid
    if (hc->kind == PSDM_HS_KIND_HANDOFF) hc->client.reset(psdm_handoff_rx_take_fd(&hc->rx));
    if (rc < 0) {
        std::string why = std::string("unusable request: ") + psdm_handoff_strerror(rc) + (bad_tag ? " (field " : "") +
                          (bad_tag ? std::string(psdm_handoff_tag_name(bad_tag)) + ")" : "");
        return refuse_503(hc, "unusable_request", why.c_str());
    }
    hc->client_addr.assign(req.client_addr.ptr ? req.client_addr.ptr : "", req.client_addr.len);
    hc->who.user.assign(req.user.ptr, req.user.len);
    for (unsigned i = 0; i < req.ngroups; i++) hc->who.groups.emplace_back(req.groups[i].ptr, req.groups[i].len);

    // The one limit both sides apply (handoff_proto.h, REPLAY LIMIT); the module refuses
    // such a request itself, so this is a module of another version, or a bug.
    char upgrade[PSDM_HS_REPLAY_MAX];
    int n = psdm_handoff_build_upgrade(&req, upgrade, sizeof upgrade);
    if (n < 0) {
        std::string why = "upgrade request and early data (" + std::to_string(psdm_handoff_upgrade_len(&req)) +
                          " bytes) exceed the replay limit of " + std::to_string(PSDM_HS_REPLAY_MAX) + " bytes";
        return refuse_503(hc, "replay_limit", why.c_str());
    }
    // The same rules as on the direct port, on the request the module rebuilt: it checked
    // them already, so a refusal here is a module of another version (or capacity).
    const std::string_view bytes(upgrade, static_cast<size_t>(n));
    const RequestHead head = parse_request_head(bytes);
    HttpAnswer verdict;
    switch (head.state) {
    case RequestHead::State::complete: verdict = worker_.server->admit(head.request); break;
    case RequestHead::State::refused: verdict = head.refusal; break;
    case RequestHead::State::incomplete:  // psdm_handoff_build_upgrade always ends the head
        return refuse_503(hc, "unusable_request", "the rebuilt upgrade request has no end");
    }
    if (!verdict.accepted())
        return verdict.status == 503
                   ? refuse_503(hc, worker_.server->draining() ? "stopping" : "over_capacity", verdict.reason.c_str())
                   : refuse(hc, "upgrade_rules", verdict.reason.c_str(), verdict.status, http_answer_bytes(verdict));

    // Relay (TLS): the Unix connection itself carries the client's bytes from now on.
    const bool handoff = hc->kind == PSDM_HS_KIND_HANDOFF;
    int fd = handoff ? hc->client.release() : dup(hc->sock);
    if (fd < 0) {
        PSDM_LOG_ERROR(kTag, "dup: %s", strerror(errno));
        return -1;
    }
    stats_.adopted++;
    accept_websocket(worker_, vh_, fd, head.request, verdict.version, bytes.substr(head.length), std::move(hc->who),
                     hc->client_addr.empty() ? "?" : hc->client_addr, Via::handoff);
    return handoff ? 0 : -1;  // a relay's connection lives on in its dup only
}

void HandoffServer::on_conn_closed(HandoffConn *hc) {
    conns_.erase(hc);
    psdm_handoff_rx_release(&hc->rx);
    delete hc;  // closes a client fd that was never adopted
}

}  // namespace psdm

// psdm_socketd: the worker. One process, one libwebsockets event loop.
//
//   psdm_socketd -c FILE [-o key=value]... [--check-config] [--version]
//
// Lifecycle: load and check the config, raise the open-files limit, create the lws
// context and its vhosts (the `listen` port's DirectAcceptor, the Apache handoff socket),
// start the Kafka bridge and the authorizer, serve until
// SIGTERM/SIGINT. SIGHUP reloads the authorization rules (on the loop thread) and
// re-checks every membership; connections stay open.
//
// Event loop: libev with its epoll backend, through lws's libev plugin
// (libwebsockets-evlib_ev.so, Debian package libwebsockets-evlib-ev), on a loop we own
// (a "foreign" loop for lws): a loop pass costs O(ready sockets), where lws's default
// poll() scans every socket each pass. Without the plugin (or with the environment
// variable PSDM_EVENT_LOOP=poll) the worker falls back to poll() and logs it.
// Signals: the handlers only set a flag and wake the loop (lws_cancel_service); the
// loop thread acts on it in Server's wake hook (reload; stop = leave the loop), then
// main() tears everything down outside the loop, the same way for both loops.
#include <ev.h>
#include <libwebsockets.h>
#include <signal.h>
#include <sys/resource.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "authz/authz.h"
#include "base/c_boundary.h"
#include "base/config.h"
#include "server/direct_acceptor.h"
#include "server/handoff_server.h"
#include "server/kafka_bridge.h"
#include "base/log.h"
#include "server/server.h"
#include "server/ws_protocol.h"

namespace {

constexpr const char *kTag = "PSDM-MAIN";

volatile sig_atomic_t g_stop = 0;
volatile sig_atomic_t g_reload = 0;
struct lws_context *g_context = nullptr;

// Signal handlers: only a flag and lws_cancel_service (a write to lws's pipe); nothing
// here can throw, and the C boundary's logging would not be async-signal-safe.
void on_stop_signal(int) noexcept {
    g_stop = 1;
    if (g_context) lws_cancel_service(g_context);
}

void on_reload_signal(int) noexcept {
    g_reload = 1;
    if (g_context) lws_cancel_service(g_context);
}

int usage(FILE *out, int status) {
    fprintf(out,
            "usage: psdm_socketd -c FILE [-o key=value]... [--check-config]\n"
            "       psdm_socketd --version\n"
            "  -c FILE          configuration file (key = value lines; see conf/psdm_socketd.conf)\n"
            "  -o key=value     override one configuration key (repeatable)\n"
            "  --check-config   validate the configuration, print it, and exit\n");
    return status;
}

// Raises the soft open-files limit to the hard limit; returns the limit in force.
rlim_t raise_open_files_limit() {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
    rlim_t before = rl.rlim_cur;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) rl.rlim_cur = before;
    }
    PSDM_LOG_INFO(kTag, "open-files limit: %llu (was %llu, hard limit %llu)",
                  static_cast<unsigned long long>(rl.rlim_cur), static_cast<unsigned long long>(before),
                  static_cast<unsigned long long>(rl.rlim_max));
    return rl.rlim_cur;
}

// lws logs through ours. lws 4.1 logs two normal events of every handed-over
// connection at error level ("adopt_socket_readbuf: calling service" / "deferring
// handling ah"); they are dropped so that real errors stand out.
// Called by lws (C): no allocation, nothing to throw.
void lws_log_to_ours(int level, const char *line) noexcept {
    if (strstr(line, "adopt_socket_readbuf: calling service") || strstr(line, "deferring handling ah")) return;
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
    const int shown = n > 4096 ? 4096 : static_cast<int>(n);  // our lines hold 2048 bytes anyway
    psdm::logf(level == LLL_ERR ? psdm::LogLevel::error : psdm::LogLevel::warn, "PSDM-LWS", "%.*s", shown, line);
}

// The libev loop lws runs on, when there is one; destroyed after the lws context.
struct EvLoop {
    struct ev_loop *loop = nullptr;
    EvLoop() = default;
    EvLoop(const EvLoop &) = delete;
    EvLoop &operator=(const EvLoop &) = delete;
    ~EvLoop() { reset(); }
    void reset() {
        if (loop) ev_loop_destroy(loop);
        loop = nullptr;
    }
};

// Creates the lws context on a libev (epoll) loop if possible, else on lws's poll().
struct lws_context *create_context(struct lws_context_creation_info *info, EvLoop *ev) {
    const char *want = getenv("PSDM_EVENT_LOOP");
    if (!want || strcmp(want, "poll") != 0) {
        ev->loop = ev_loop_new(EVBACKEND_EPOLL);
        if (!ev->loop) ev->loop = ev_loop_new(EVFLAG_AUTO);
        if (ev->loop) {
            void *foreign[1] = {ev->loop};
            struct lws_context_creation_info evinfo = *info;
            evinfo.options |= LWS_SERVER_OPTION_LIBEV;
            evinfo.foreign_loops = foreign;  // read during creation only
            struct lws_context *ctx = lws_create_context(&evinfo);
            if (ctx) {
                PSDM_LOG_INFO(kTag, "event loop: libev (%s)",
                              ev_backend(ev->loop) == EVBACKEND_EPOLL ? "epoll" : "not epoll");
                return ctx;
            }
            ev->reset();
        }
        PSDM_LOG_WARN(kTag, "event loop: libev unavailable (is libwebsockets-evlib-ev installed?), using poll()");
    } else {
        PSDM_LOG_INFO(kTag, "event loop: poll() (PSDM_EVENT_LOOP=poll)");
    }
    return lws_create_context(info);
}

// A vhost with the worker's protocols that listens nowhere; `port` is CONTEXT_PORT_NO_LISTEN
// or CONTEXT_PORT_NO_LISTEN_SERVER (why each vhost has its own: in main).
struct lws_vhost *create_vhost(struct lws_context *context, const char *name, int port) {
    struct lws_context_creation_info vinfo;
    memset(&vinfo, 0, sizeof vinfo);
    vinfo.vhost_name = name;
    vinfo.protocols = psdm::worker_protocols();
    vinfo.port = port;
    return lws_create_vhost(context, &vinfo);
}

}  // namespace

int main(int argc, char **argv) {
    std::string config_path;
    std::vector<std::string> overrides;
    bool check_only = false;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--version") {
            printf("psdm_socketd %s (libwebsockets %s, librdkafka %s)\n", PSDM_VERSION, lws_get_library_version(),
                   rd_kafka_version_str());
            return 0;
        } else if (a == "-h" || a == "--help") {
            return usage(stdout, 0);
        } else if (a == "--check-config") {
            check_only = true;
        } else if (a == "-c" && i + 1 < argc) {
            config_path = argv[++i];
        } else if (a == "-o" && i + 1 < argc) {
            overrides.emplace_back(argv[++i]);
        } else {
            fprintf(stderr, "psdm_socketd: unknown or incomplete argument '%s'\n", a.c_str());
            return usage(stderr, 2);
        }
    }
    if (config_path.empty()) return usage(stderr, 2);

    psdm::Config cfg;
    psdm::ConfigError cerr;
    if (!psdm::config_load(config_path, overrides, &cfg, &cerr)) {
        PSDM_LOG_ERROR("PSDM-CONFIG", "%s", cerr.message.c_str());
        return 1;
    }
    psdm::LogLevel level;
    if (psdm::log_level_parse(cfg.log_level, &level)) psdm::log_set_level(level);
    if (check_only) {
        fputs(psdm::config_dump(cfg).c_str(), stdout);
        fprintf(stderr, "psdm_socketd: %s: configuration OK\n", config_path.c_str());
        return 0;
    }

    std::string err;
    std::unique_ptr<psdm::Authorizer> authz = psdm::authorizer_create(cfg, &err);
    if (!authz) {
        PSDM_LOG_ERROR("PSDM-CONFIG", "%s: authz: %s", config_path.c_str(), err.c_str());
        return 1;
    }

    // Every connection costs one fd; keep some for the handoff socket, Kafka and logs.
    rlim_t nofile = raise_open_files_limit();
    constexpr rlim_t kReservedFds = 64;
    size_t fd_capacity = nofile > kReservedFds ? static_cast<size_t>(nofile - kReservedFds) : 1;
    size_t max_conn = cfg.max_connections ? std::min(cfg.max_connections, fd_capacity) : fd_capacity;
    PSDM_LOG_INFO(kTag, "accepting up to %zu connections", max_conn);

    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_to_ours);
    psdm::Server server(cfg, std::move(authz), max_conn);
    psdm::KafkaBridge bridge(cfg, server);
    psdm::WorkerContext wctx{&server, &bridge};

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.user = &wctx;
    // No fd_limit_per_thread: lws then sizes its fd table from the (raised) open-files
    // limit and finds a connection by indexing it with the fd. Setting it switches lws
    // 4.1 to a linear scan of the whole table on every event (wsi_from_fd).
    EvLoop ev;  // declared before the context's users: outlives lws_context_destroy below
    g_context = create_context(&info, &ev);
    if (!g_context) {
        PSDM_LOG_ERROR(kTag, "cannot create the libwebsockets context");
        return 1;
    }

    // Two vhosts with the same protocols, listening nowhere: "direct" receives the
    // connections of the `listen` port (DirectAcceptor reads their request heads and hands
    // lws the upgrades it accepts), "handoff" those Apache hands over. Which one a
    // connection is on decides whether it carries an identity (ws_protocol.cpp).
    // Their `port` values differ on purpose: when lws has parsed a request it moves the
    // connection to the vhost the Host header names among the vhosts of the same port, or
    // else to the first of them (lws_select_vhost, lib/roles/http/server/server.c), so two
    // vhosts with one port value would let a client choose. "direct" has
    // CONTEXT_PORT_NO_LISTEN (lws: "serving disabled", which only skips the listening socket
    // and server TLS; adopted sockets are served) and "handoff" CONTEXT_PORT_NO_LISTEN_SERVER.
    struct lws_vhost *direct_vh = nullptr, *handoff_vh = nullptr;
    std::unique_ptr<psdm::DirectAcceptor> direct;
    if (!cfg.listen.empty()) {
        std::string host;
        unsigned port = 0;
        psdm::config_listen_split(cfg.listen, &host, &port);
        direct_vh = create_vhost(g_context, "direct", CONTEXT_PORT_NO_LISTEN);
        direct = std::make_unique<psdm::DirectAcceptor>(server);
        wctx.direct = direct.get();
        if (!direct_vh) err = "cannot create its lws vhost";
        if (!direct_vh || !direct->start(direct_vh, host, port, &err)) {
            PSDM_LOG_ERROR(kTag, "cannot listen on %s: %s", cfg.listen.c_str(), err.c_str());
            lws_context_destroy(g_context);
            return 1;
        }
        PSDM_LOG_INFO(kTag, "listening for WebSocket connections on %s:%u", host.c_str(), direct->port());
    }
    std::unique_ptr<psdm::HandoffServer> handoff;
    if (!cfg.handoff_socket.empty()) {
        handoff_vh = create_vhost(g_context, "handoff", CONTEXT_PORT_NO_LISTEN_SERVER);
        handoff = std::make_unique<psdm::HandoffServer>(cfg, server);
        wctx.handoff = handoff.get();
        wctx.handoff_vhost = handoff_vh;
        if (!handoff_vh || !handoff->start(g_context, handoff_vh, &err)) {
            PSDM_LOG_ERROR("PSDM-CONFIG", "%s: %s", config_path.c_str(), err.c_str());
            lws_context_destroy(g_context);
            return 1;
        }
    }

    if (!bridge.start(g_context, direct_vh ? direct_vh : handoff_vh, &err)) {
        PSDM_LOG_ERROR(kTag, "Kafka: %s", err.c_str());
        lws_context_destroy(g_context);
        return 1;
    }

    if (!server.start_authz(g_context, &err)) {
        PSDM_LOG_ERROR("PSDM-AUTHZ", "cannot start the authorizer: %s", err.c_str());
        lws_context_destroy(g_context);
        return 1;
    }

    server.start_heartbeats(g_context);

    // Signals are acted on by the loop thread, when the handler's lws_cancel_service()
    // wakes it (Server::on_wake, once per vhost: idempotent).
    bool loop_failed = false;
    server.set_wake_hook([&ev, &server] {
        if (g_reload) {
            g_reload = 0;
            server.reload_authz();
        }
        if (g_stop && ev.loop) ev_break(ev.loop, EVBREAK_ALL);
    });

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    sa.sa_handler = on_reload_signal;
    sigaction(SIGHUP, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);

    PSDM_LOG_NOTICE(kTag, "psdm_socketd %s ready", PSDM_VERSION);
    if (ev.loop) {
        // lws (4.1) arms libev's timer for its timers (heartbeats, Kafka, authz) only
        // after an I/O event: wake it once, so that those scheduled before now run.
        lws_cancel_service(g_context);
        while (!g_stop) {
            if (!ev_run(ev.loop, 0) && !g_stop) {  // returns 0 only when nothing is watched
                PSDM_LOG_ERROR(kTag, "the event loop has nothing left to watch; stopping");
                loop_failed = true;
                break;
            }
        }
    } else {
        while (!g_stop && lws_service(g_context, 0) >= 0) {
        }
    }
    PSDM_LOG_NOTICE(kTag, "stopping: %zu client(s), %" PRIu64 " record(s) routed, %" PRIu64 " deliveries",
                    server.client_count(), server.stats().records_routed, server.stats().deliveries);
    const psdm::AuthzCounters &ac = server.authorizer().counters();
    PSDM_LOG_NOTICE("PSDM-AUTHZ",
                    "%s: %" PRIu64 " allowed, %" PRIu64 " denied, %" PRIu64 " failed, %" PRIu64
                    " cache hit(s), %" PRIu64 " request(s), %" PRIu64 " membership(s) revoked",
                    server.authorizer().name(), ac.allowed, ac.denied, ac.failed, ac.cache_hits, ac.requests,
                    server.stats().memberships_revoked);
    if (handoff) {
        const psdm::HandoffServer::Stats &hs = handoff->stats();
        PSDM_LOG_NOTICE("PSDM-HANDOFF",
                        "handoffs: %" PRIu64 " adopted, %" PRIu64 " refused, %" PRIu64
                        " withdrawn; handoff identities pending: %zu",
                        hs.adopted, hs.refused, hs.withdrawn, handoff->pending_identities());
    }
    server.set_wake_hook(nullptr);
    server.stop_heartbeats();
    server.stop_authz();  // its thread wakes the context: stop it first
    lws_context_destroy(g_context);
    g_context = nullptr;
    ev.reset();
    return loop_failed ? 1 : 0;  // handoff (declared after the context) removes its socket file first
}

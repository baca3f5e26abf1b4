// psdm_socketd: the worker. One process, one libwebsockets event loop.
//
//   psdm_socketd -c FILE [-o key=value]... [--check-config]
//   psdm_socketd --version | --help
//
// Lifecycle: load the config and run the startup checks (startup_checks: what the system
// must provide, librdkafka's view of the kafka.* properties, the authz provider; the same
// checks --check-config runs and stops after), raise the open-files limit, create the lws
// context and its vhost (the `listen` port's DirectAcceptor, the Apache handoff socket: the
// one systemd passes, else its own), the admin listener (admin_listen: GET /metrics, GET
// /healthz), start the Kafka bridge and the authorizer, serve (clients at once), tell systemd
// READY=1 once Kafka partitions are assigned, serve until SIGTERM/SIGINT.
//
// Signals:
//   SIGTERM, SIGINT   stop: systemd is told STOPPING=1, the loop ends (begin_stop, the one
//                     stop path), then everything is torn down; exit status 0.
//   SIGHUP            reload the authorization rules (ACL file re-read, http cache dropped)
//                     and re-check every membership, on the loop thread; connections stay.
//                     systemd is told RELOADING=1, then READY=1 when done.
//   SIGUSR1, SIGUSR2  ignored (reserved; they would kill the worker otherwise).
//   SIGPIPE           ignored: a write to a closed connection fails with EPIPE instead.
// All are set first thing in main(), so a signal during startup is not fatal: a stop
// requested then is acted on as soon as the loop runs.
//
// systemd (Type=notify): sd_notify(3) READY=1 once the handoff socket and/or the `listen`
// port are listening, the loop runs and the Kafka consumer has partitions assigned (or, with
// a broker that does not answer, PSDM_KAFKA_READY_TIMEOUT_MS after the loop started:
// Readiness), RELOADING=1 / READY=1 around a SIGHUP reload once ready, STOPPING=1 when
// stopping, and a STATUS= line with each. Without NOTIFY_SOCKET in the environment (not
// under systemd) sd_notify does nothing.
//
// Socket activation (psdm_socketd.socket): a listening Unix socket systemd passes for the
// configured handoff_socket path is used as is (never created, chmod-ed or unlinked: systemd
// keeps it open across `systemctl restart`, so Apache's handoffs queue in its backlog while
// no worker runs, and a stopping worker leaves new ones there for the next); anything else
// passed stops the start (handoff_socket_from_systemd).
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
#include <systemd/sd-daemon.h>
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
#include "base/config_check.h"
#include "kafka/kafka_consumer.h"
#include "server/admin_server.h"
#include "server/direct_acceptor.h"
#include "server/handoff_server.h"
#include "server/kafka_bridge.h"
#include "server/metrics_report.h"
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

void install_signal_handlers() {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    sa.sa_handler = on_reload_signal;
    sigaction(SIGHUP, &sa, nullptr);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGUSR1, &sa, nullptr);
    sigaction(SIGUSR2, &sa, nullptr);
    sigaction(SIGPIPE, &sa, nullptr);
}

int usage(FILE *out, int status) {
    fprintf(out,
            "usage: psdm_socketd -c FILE [-o key=value]... [--check-config]\n"
            "       psdm_socketd --version | --help\n"
            "  -c FILE          configuration file, `key = value` lines: psdm_socketd.conf(5)\n"
            "  -o key=value     override one configuration key (repeatable)\n"
            "  --check-config   run every check a start runs (keys, users, files, Kafka properties,\n"
            "                   the ACL), print the effective configuration, and exit: 0 when the\n"
            "                   worker would start, 1 with one line per problem, FILE:LINE: key: reason\n"
            "  --version        print the versions and exit\n"
            "Signals: SIGTERM/SIGINT stop, SIGHUP reloads the authorization rules.\n"
            "See psdm_socketd(8), psdm_socketd.conf(5) and /usr/share/doc/psdm-socket/.\n");
    return status;
}

// Everything a start checks about its configuration before it serves, after config_load:
// the system (users, files, names: base/config_check.h), librdkafka's verdict on every
// kafka.* property (the rd_kafka_conf_t the consumer is built from), and the authz provider
// (its ACL file read and parsed by its own parser). --check-config runs exactly this, so
// that its "configuration OK" means the start will not fail on configuration. Appends one
// "WHERE: KEY: REASON" line per problem; returns the authorizer the start uses, or nullptr
// when there was any problem.
std::unique_ptr<psdm::Authorizer> startup_checks(const psdm::Config &cfg, std::vector<std::string> *problems) {
    psdm::config_check_system(cfg, problems);
    std::vector<psdm::KafkaPropertyError> refused;
    if (!psdm::kafka_conf_build(psdm::kafka_consumer_properties(cfg.kafka), &refused)) {
        for (const psdm::KafkaPropertyError &r : refused)
            problems->push_back(psdm::config_problem(cfg, "kafka." + r.name, r.reason));
    }
    std::string err;
    std::unique_ptr<psdm::Authorizer> authz = psdm::authorizer_create(cfg, &err);
    if (!authz) problems->push_back(psdm::config_problem(cfg, "authz", err));
    if (!problems->empty()) return nullptr;
    return authz;
}

// A configuration problem, once: --check-config prints "psdm_socketd: MESSAGE" (for a
// person at a terminal, or systemd's ExecStartPre); a start logs it.
void report_config_problem(bool check_only, const std::string &message) {
    if (check_only) {
        fprintf(stderr, "psdm_socketd: %s\n", message.c_str());
    } else {
        PSDM_LOG_ERROR("PSDM-CONFIG", "%s", message.c_str());
    }
}

// sd_notify(3) with a STATUS= line; does nothing outside systemd (no NOTIFY_SOCKET).
// Returns sd_notify's result: > 0 sent, 0 not under systemd, < 0 failed.
int notify(const char *state, const std::string &status) {
    std::string msg = std::string(state) + (*state ? "\n" : "") + "STATUS=" + status;
    return sd_notify(0, msg.c_str());
}

// PSDM_KAFKA_READY_TIMEOUT_MS: how long READY=1 waits for Kafka partitions (0: for ever).
int64_t kafka_ready_timeout_ms() {
    constexpr int64_t kDefault = 60000;  // below the unit's TimeoutStartSec=90
    const char *v = getenv("PSDM_KAFKA_READY_TIMEOUT_MS");
    if (!v || !*v) return kDefault;
    char *end = nullptr;
    errno = 0;
    long long ms = strtoll(v, &end, 10);
    if (errno != 0 || *end != '\0' || ms < 0) {
        PSDM_LOG_WARN(kTag, "PSDM_KAFKA_READY_TIMEOUT_MS=%s is not a number of milliseconds; using %lld", v,
                      static_cast<long long>(kDefault));
        return kDefault;
    }
    return ms;
}

// READY=1 for systemd once the worker serves in full: besides its listeners and loop (it is
// armed only then), its Kafka consumer has partitions assigned, so records flow (KafkaBridge
// logs "ready: N partition(s) assigned" in the same loop turn, before). A broker that does not
// answer must not hold the start until systemd's TimeoutStartSec fails it (Restart=on-failure
// would then restart the worker over and over, closing its clients each time): past
// `timeout_ms` READY=1 goes anyway, with a warning, and STATUS says Kafka is not there yet.
// Polled every 100 ms until sent (the bridge has no hook, and this is cheap). Loop thread only.
struct Readiness {
    lws_sorted_usec_list_t sul{};  // first member: the lws timer hands back only its address
    struct lws_context *context = nullptr;
    const psdm::KafkaBridge *bridge = nullptr;
    const std::string *serving = nullptr;
    lws_usec_t deadline = 0;  // 0: none
    int64_t timeout_ms = 0;
    bool sent = false;

    void start(struct lws_context *ctx, const psdm::KafkaBridge *b, const std::string *status, int64_t ms) {
        context = ctx;
        bridge = b;
        serving = status;
        timeout_ms = ms;
        deadline = ms > 0 ? lws_now_usecs() + ms * LWS_US_PER_MS : 0;
        notify("", "starting: waiting for Kafka partitions; " + *serving);
        lws_sul_schedule(context, 0, &sul, on_tick, 1);
    }
    void cancel() { lws_sul_cancel(&sul); }

    // An lws timer (C): an exception is logged; the poll then ends (READY=1 is not sent).
    static void on_tick(lws_sorted_usec_list_t *s) {
        Readiness *self = reinterpret_cast<Readiness *>(s);
        psdm::guarded("readiness timer", [self] { self->tick(); });
    }
    void tick() {
        const int partitions = bridge->assigned_partitions();
        if (partitions > 0) {
            sent = true;
            if (notify("READY=1", *serving) > 0)
                PSDM_LOG_INFO(kTag, "told systemd READY=1: %d Kafka partition(s) assigned", partitions);
        } else if (deadline && lws_now_usecs() >= deadline) {
            sent = true;
            if (notify("READY=1", *serving + "; Kafka: no partitions assigned yet") > 0)
                PSDM_LOG_WARN(kTag,
                              "no Kafka partition assigned within %lld ms: told systemd READY=1 anyway; clients are "
                              "served, records flow once the broker answers",
                              static_cast<long long>(timeout_ms));
        } else {
            lws_sul_schedule(context, 0, &sul, on_tick, 100 * LWS_US_PER_MS);
        }
    }
};

// RELOADING=1 with the time systemd's Type=notify-reload (systemd >= 253) asks for.
void notify_reloading() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char state[64];
    snprintf(
        state, sizeof state, "RELOADING=1\nMONOTONIC_USEC=%llu",
        static_cast<unsigned long long>(ts.tv_sec) * 1000000ull + static_cast<unsigned long long>(ts.tv_nsec) / 1000);
    notify(state, "reloading the authorization rules");
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

// A vhost with the worker's protocols; `port` CONTEXT_PORT_NO_LISTEN_SERVER listens nowhere.
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
    install_signal_handlers();
    psdm::log_init_sink();
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
        report_config_problem(check_only, cerr.message);
        return 1;
    }
    psdm::LogLevel level;
    if (psdm::log_level_parse(cfg.log_level, &level)) psdm::log_set_level(level);
    std::vector<std::string> problems;
    std::unique_ptr<psdm::Authorizer> authz = startup_checks(cfg, &problems);
    for (const std::string &p : problems) report_config_problem(check_only, p);
    if (!authz) return 1;
    if (check_only) {
        fputs(psdm::config_dump(cfg).c_str(), stdout);
        fprintf(stderr, "psdm_socketd: %s: configuration OK\n", config_path.c_str());
        return 0;
    }

    std::string err;

    // The handoff socket systemd passes (psdm_socketd.socket), checked before anything starts.
    const int inherited = psdm::handoff_socket_from_systemd(cfg.handoff_socket, &err);
    if (inherited == -2) {
        PSDM_LOG_ERROR("PSDM-CONFIG", "%s: %s", config_path.c_str(), err.c_str());
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

    // One vhost, listening nowhere (CONTEXT_PORT_NO_LISTEN_SERVER): lws carries the sockets
    // the worker adopts (raw), and parses no HTTP on them (ws_protocol.h).
    struct lws_vhost *vh = create_vhost(g_context, "worker", CONTEXT_PORT_NO_LISTEN_SERVER);
    if (!vh) {
        PSDM_LOG_ERROR(kTag, "cannot create the lws vhost");
        lws_context_destroy(g_context);
        return 1;
    }
    std::unique_ptr<psdm::DirectAcceptor> direct;
    if (!cfg.listen.empty()) {
        std::string host;
        unsigned port = 0;
        psdm::config_listen_split(cfg.listen, &host, &port);
        direct = std::make_unique<psdm::DirectAcceptor>(wctx);
        wctx.direct = direct.get();
        if (!direct->start(vh, host, port, &err)) {
            PSDM_LOG_ERROR(kTag, "cannot listen on %s: %s", cfg.listen.c_str(), err.c_str());
            lws_context_destroy(g_context);
            return 1;
        }
        PSDM_LOG_INFO(kTag, "listening for WebSocket connections on %s:%u", host.c_str(), direct->port());
    }
    std::unique_ptr<psdm::HandoffServer> handoff;
    if (!cfg.handoff_socket.empty()) {
        handoff = std::make_unique<psdm::HandoffServer>(cfg, wctx);
        wctx.handoff = handoff.get();
        if (!handoff->start(g_context, vh, inherited, &err)) {
            PSDM_LOG_ERROR("PSDM-CONFIG", "%s: %s", config_path.c_str(), err.c_str());
            lws_context_destroy(g_context);
            return 1;
        }
    }

    // The admin listener (GET /metrics, GET /healthz) on a port of its own; its handlers run on
    // the loop and read wctx.
    std::unique_ptr<psdm::AdminServer> admin;
    if (!cfg.admin_listen.empty()) {
        std::string host;
        unsigned port = 0;
        psdm::config_listen_split(cfg.admin_listen, &host, &port);
        admin = std::make_unique<psdm::AdminServer>(psdm::AdminServer::Handlers{
            [&wctx] { return psdm::render_metrics(wctx); }, [&wctx] { return psdm::health_of(wctx); }});
        if (!admin->start(g_context, host, port, &err)) {
            PSDM_LOG_ERROR(kTag, "cannot listen: %s", err.c_str());
            lws_context_destroy(g_context);
            return 1;
        }
        if (host.find(':') != std::string::npos) host = "[" + host + "]";
        PSDM_LOG_INFO(kTag, "admin listener on %s:%u (GET /metrics, GET /healthz)", host.c_str(), admin->port());
    }

    if (!bridge.start(g_context, vh, &err)) {
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

    // What systemctl status shows while the worker serves.
    std::string serving = "serving";
    if (handoff) serving += " handoff " + cfg.handoff_socket;
    if (direct) {
        std::string host;
        unsigned port = 0;
        psdm::config_listen_split(cfg.listen, &host, &port);
        if (host.find(':') != std::string::npos) host = "[" + host + "]";
        serving += std::string(handoff ? "," : "") + " listen " + host + ":" + std::to_string(direct->port());
    }

    // The stop path, one place for every stop: begin_stop runs on the loop thread once a
    // stop signal arrived (and after the loop if it ended by itself). It tells systemd,
    // then drains (Server::start_drain: new upgrades 503, every client closed with 1001,
    // the loop serving until their close frames have left or shutdown_timeout_ms) and ends
    // the loop with leave_loop; main() then tears everything down below.
    bool stopping = false, leave = false, loop_failed = false;
    auto leave_loop = [&ev, &leave] {
        leave = true;
        if (ev.loop) ev_break(ev.loop, EVBREAK_ALL);
    };
    Readiness readiness;
    auto begin_stop = [&stopping, &server, &leave_loop, &cfg, &leave, &readiness, &handoff] {
        if (stopping) return;
        stopping = true;
        readiness.cancel();
        notify("STOPPING=1", "stopping: " + std::to_string(server.client_count()) + " client(s)");
        if (leave) return;                       // the loop already ended (failed): nothing runs a drain
        if (handoff) handoff->stop_accepting();  // systemd's socket: the next worker takes them
        server.start_drain(cfg.shutdown_timeout_ms, leave_loop);
    };

    // Signals are acted on by the loop thread, when the handler's lws_cancel_service()
    // wakes it (Server::on_wake): flags, so that repeated wakes are harmless.
    // Before READY=1 a reload is not announced: READY=1 then would tell systemd too early.
    server.set_wake_hook([&server, &serving, &begin_stop, &readiness] {
        if (g_reload) {
            g_reload = 0;
            if (readiness.sent) notify_reloading();
            server.reload_authz();
            if (readiness.sent) notify("READY=1", serving);
        }
        if (g_stop) begin_stop();
    });

    PSDM_LOG_NOTICE(kTag, "psdm_socketd %s ready", PSDM_VERSION);
    readiness.start(g_context, &bridge, &serving, kafka_ready_timeout_ms());
    // A signal that came during startup (g_context was not set yet) is acted on now; and
    // lws (4.1) arms libev's timer for its timers (heartbeats, Kafka, authz) only after an
    // I/O event: wake it once, so that those scheduled before now run.
    lws_cancel_service(g_context);
    if (ev.loop) {
        while (!leave) {
            if (!ev_run(ev.loop, 0) && !leave) {  // returns 0 only when nothing is watched
                PSDM_LOG_ERROR(kTag, "the event loop has nothing left to watch; stopping");
                loop_failed = true;
                break;
            }
        }
    } else {
        while (!leave && lws_service(g_context, 0) >= 0) {
        }
    }
    leave = true;
    begin_stop();  // the loop ended by itself (failed): systemd is told all the same
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
        PSDM_LOG_NOTICE("PSDM-HANDOFF", "handoffs: %" PRIu64 " adopted, %" PRIu64 " refused, %" PRIu64 " withdrawn",
                        hs.adopted, hs.refused, hs.withdrawn);
    }
    server.set_wake_hook(nullptr);
    readiness.cancel();
    server.stop_heartbeats();
    server.stop_authz();  // its thread wakes the context: stop it first
    lws_context_destroy(g_context);
    g_context = nullptr;
    admin.reset();  // its epoll set went with the context; now its listener and connections
    ev.reset();
    return loop_failed ? 1 : 0;  // handoff (declared after the context) removes its socket file first
}

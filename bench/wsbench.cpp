// psdm_wsbench: WebSocket handshake rate and held-websocket load for the Apache part of
// `make bench` (see bench/README.md, "Apache: handoff vs ProxyPass").
//
//   psdm_wsbench --port P --mode rate --duration S [--concurrency C] [--warmup S] [--tls]
//   psdm_wsbench --port P --mode hold --connections N [--window W] [--max-hold S] [--tls]
//
// rate: for --warmup + --duration seconds keeps --concurrency attempts in flight. One
//       attempt: non-blocking TCP connect from 127.0.0.(1 + i % K), (TLS handshake,) the
//       upgrade GET PATH?EIO=4&transport=websocket, wait for "101" with the right
//       Sec-WebSocket-Accept and for the Engine.IO open packet (a text frame "0{...}"),
//       then close (SO_LINGER 0: no TIME_WAIT pile-up over many runs). Attempts that
//       complete during the warm-up are not counted. Reports handshakes/s, failures by
//       kind and handshake latency (connect to open packet) p50/p90/p99.
// hold: opens --connections websockets, --window attempts in flight, each through the
//       open packet and the namespace connect ("40/psdm_ws," answered by "40/psdm_ws,{");
//       prints {"phase":"held",...} on stdout, then keeps them open (answering Engine.IO
//       pings) until stdin reaches EOF or --max-hold seconds pass, closes them and
//       prints the final JSON object.
//
// One process, one epoll loop; the WebSocket client core is ws_client.h, OpenSSL here
// adds --tls on top of it (no certificate verification: the bench's own self-signed
// certificate). Loopback only: --host must be in 127.0.0.0/8.
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "bench_util.h"
#include "ws_client.h"

namespace {

using bench::cpu_seconds_self;
using bench::now_mono_us;
using bench::parse_double;
using bench::parse_uint;

// ------------------------------------------------------------------------ options

// The clients' options (host, port, path, ns, label, source_addrs, connections and the
// handshake and ramp deadlines) are bench::ClientOptions; the rest is the modes'.
struct Options : bench::ClientOptions {
    Options() : ClientOptions(1000, 10, 60) {}
    // Sets one of the modes' own options (bench::parse_args); false for any other name.
    bool set(const std::string &a, const char *v);
    const char *error() const;                                          // what is wrong with them, or nullptr
    static bool is_flag(const std::string &a) { return a == "--tls"; }  // the one without a value
    std::string mode = "rate";
    bool tls = false;
    double duration = 5;
    double warmup = 0.5;
    unsigned concurrency = 32;
    unsigned window = 100;
    double max_hold = 120;
};

const char kUsage[] =
    "usage: psdm_wsbench --port P --mode rate|hold [options]\n"
    "  --host A               server address in 127.0.0.0/8 (127.0.0.1)\n"
    "  --port P               server port (required)\n"
    "  --path P               Socket.IO path (/bench_socketio/socket.io/)\n"
    "  --tls                  TLS (wss://), certificate not verified\n"
    "  --source-addrs K       bind attempt i to 127.0.0.(1 + i % K) (50)\n"
    "  --handshake-timeout S  one attempt's deadline (10)\n"
    "  --label S              copied into the output\n"
    " rate mode:\n"
    "  --duration S           measured seconds (5)\n"
    "  --warmup S             seconds before that, not counted (0.5)\n"
    "  --concurrency C        attempts in flight (32)\n"
    " hold mode:\n"
    "  --connections N        websockets to open and hold (1000)\n"
    "  --ns NS                namespace to connect each to (/psdm_ws)\n"
    "  --window W             attempts in flight while opening (100)\n"
    "  --ramp-timeout S       stop opening after S seconds (60)\n"
    "  --max-hold S           hold at most S seconds if stdin stays open (120)\n";

bool Options::set(const std::string &a, const char *v) {
    if (a == "--duration") duration = parse_double(v, "--duration");
    else if (a == "--warmup") warmup = parse_double(v, "--warmup");
    else if (a == "--concurrency") concurrency = static_cast<unsigned>(parse_uint(v, "--concurrency"));
    else if (a == "--window") window = static_cast<unsigned>(parse_uint(v, "--window"));
    else if (a == "--max-hold") max_hold = parse_double(v, "--max-hold");
    else if (a == "--mode") mode = v;
    else if (a == "--tls") tls = true;
    else return false;
    return true;
}

const char *Options::error() const {
    if (mode != "rate" && mode != "hold") return "--mode is rate or hold";
    if (concurrency == 0 || window == 0) return "--concurrency and --window must be > 0";
    return nullptr;
}

// ------------------------------------------------------------------------ the clients

enum class St : uint8_t { idle, connecting, tls, http, eio_open, ns, held, closed };

enum Fail : unsigned {
    kFailConnect,
    kFailTls,
    kFailClosedBeforeUpgrade,
    kFailResetBeforeUpgrade,
    kFailHttpStatus,
    kFailClosedBeforeOpen,
    kFailProtocol,
    kFailTimeout,
    kFailNamespaceRefused,
    kFailLocalFds,
    kFailCount
};
const char *const kFailNames[kFailCount] = {
    "connect_error",      "tls_error",      "closed_before_upgrade", "reset_before_upgrade", "http_status",
    "closed_before_open", "protocol_error", "handshake_timeout",     "namespace_refused",    "local_fd_limit"};

struct Conn {
    int fd = -1;
    SSL *ssl = nullptr;
    St st = St::idle;
    bool want_out = false;
    uint64_t seq = 0;  // attempt number (source address)
    int64_t start_us = 0, deadline_us = 0;
    std::string in, out, key;
};

class Bench {
 public:
    explicit Bench(const Options &o) : o_(o), rng_(std::random_device{}()) {
        bench::loopback_address(o.host, o.port, &dst_);  // checked by bench::parse_args
        ns_prefix_ = ws::ns_prefix(o.ns);
    }
    ~Bench() {
        for (auto &c : conns_) close_conn(c);
        if (ctx_) SSL_CTX_free(ctx_);
        if (ep_ >= 0) close(ep_);
    }
    int run();

 private:
    int run_rate();
    int run_hold();
    bool init();
    void start(Conn &c);
    void on_event(Conn &c, uint32_t events);
    void on_connected(Conn &c);
    void do_tls(Conn &c);
    void send_request(Conn &c);
    void on_readable(Conn &c);
    void on_http(Conn &c);
    void parse_frames(Conn &c);
    bool on_frame(Conn &c, const ws::Frame &f);
    void on_text(Conn &c, std::string_view t);
    void send_frame(Conn &c, unsigned opcode, std::string_view payload, uint32_t mask);
    void write_out(Conn &c, const char *p, size_t n);
    void flush_out(Conn &c);
    void set_out(Conn &c, bool want);
    void succeed(Conn &c);
    void fail(Conn &c, Fail why);
    void close_conn(Conn &c);
    void check_timeouts(int64_t now);
    uint64_t tag(const Conn &c) const { return static_cast<uint64_t>(&c - conns_.data()); }
    std::string failures_json() const;
    std::string latency_json();

    const Options &o_;
    std::mt19937_64 rng_;
    int ep_ = -1;
    SSL_CTX *ctx_ = nullptr;
    sockaddr_in dst_{};
    std::string ns_prefix_;
    std::vector<Conn> conns_;
    char rbuf_[64 * 1024];

    uint64_t next_seq_ = 0;
    unsigned in_flight_ = 0;
    bool counting_ = false;           // rate: past the warm-up
    uint64_t attempts_ = 0, ok_ = 0;  // counted ones
    uint64_t fails_[kFailCount] = {};
    std::map<unsigned, uint64_t> http_status_;
    std::vector<uint32_t> lat_us_;
    // hold
    uint64_t held_ = 0, closed_by_server_ = 0, pings_ = 0;
    bool holding_ = false;
};

bool Bench::init() {
    signal(SIGPIPE, SIG_IGN);  // SSL_write writes with write(): a closed peer must not end the run
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) {
        perror("psdm_wsbench: epoll_create1");
        return false;
    }
    if (o_.tls) {
        ctx_ = SSL_CTX_new(TLS_client_method());
        if (!ctx_) {
            fprintf(stderr, "psdm_wsbench: SSL_CTX_new failed\n");
            return false;
        }
        SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
        SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_OFF);  // every attempt a full handshake
    }
    return true;
}

void Bench::set_out(Conn &c, bool want) { ws::want_writable(ep_, c.fd, tag(c), want, &c.want_out); }

void Bench::start(Conn &c) {
    c = Conn{};
    c.seq = next_seq_++;
    c.start_us = now_mono_us();
    c.deadline_us = c.start_us + static_cast<int64_t>(o_.handshake_timeout * 1e6);
    if (counting_ || o_.mode == "hold") attempts_++;
    in_flight_++;
    c.st = St::connecting;
    c.fd = ws::new_socket();
    if (c.fd < 0) {
        fail(c, kFailLocalFds);
        return;
    }
    if (!ws::start_connect(ep_, c.fd, static_cast<uint32_t>(c.seq % o_.source_addrs), dst_, tag(c))) {
        fail(c, kFailConnect);
        return;
    }
    c.want_out = true;
}

void Bench::close_conn(Conn &c) {
    if (c.ssl) {
        SSL_free(c.ssl);
        c.ssl = nullptr;
    }
    if (c.fd >= 0) {
        linger lg{1, 0};  // reset: no TIME_WAIT on our side
        setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(c.fd);
        c.fd = -1;
    }
    c.in.clear();
    c.out.clear();
}

void Bench::fail(Conn &c, Fail why) {
    bool counted = counting_ || o_.mode == "hold";
    bool was_held = c.st == St::held;
    close_conn(c);
    if (was_held) {
        held_--;
        closed_by_server_++;
        c.st = St::closed;
        return;
    }
    if (c.st != St::closed && c.st != St::idle) in_flight_--;
    c.st = St::closed;
    if (counted) fails_[why]++;
}

void Bench::succeed(Conn &c) {
    in_flight_--;
    if (counting_ || o_.mode == "hold") {
        ok_++;
        lat_us_.push_back(static_cast<uint32_t>(std::min<int64_t>(now_mono_us() - c.start_us, UINT32_MAX)));
    }
    if (o_.mode == "rate") {
        close_conn(c);
        c.st = St::closed;
    } else {
        c.st = St::held;
        held_++;
        c.key.clear();
        c.key.shrink_to_fit();
    }
}

void Bench::send_request(Conn &c) {
    c.key = ws::new_key(rng_);
    std::string req = ws::upgrade_request(o_.path, o_.host, o_.port, c.key);
    c.st = St::http;
    write_out(c, req.data(), req.size());
}

void Bench::do_tls(Conn &c) {
    ERR_clear_error();
    int r = SSL_connect(c.ssl);
    if (r == 1) {
        set_out(c, false);
        send_request(c);
        return;
    }
    int e = SSL_get_error(c.ssl, r);
    if (e == SSL_ERROR_WANT_READ) set_out(c, false);
    else if (e == SSL_ERROR_WANT_WRITE) set_out(c, true);
    else fail(c, kFailTls);
}

void Bench::on_event(Conn &c, uint32_t events) {
    if (c.st == St::connecting) {
        ws::Connect r = ws::connect_result(c.fd, events);
        if (r == ws::Connect::connected) on_connected(c);
        else if (r == ws::Connect::failed) fail(c, kFailConnect);
        return;
    }
    if (c.st == St::tls) {
        do_tls(c);
        return;
    }
    if ((events & EPOLLOUT) && !c.out.empty()) flush_out(c);
    if (c.fd >= 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) on_readable(c);
}

// The TCP connection is up: the TLS handshake first with --tls, else the upgrade request.
void Bench::on_connected(Conn &c) {
    if (!o_.tls) {
        set_out(c, false);
        send_request(c);
        return;
    }
    c.ssl = SSL_new(ctx_);
    if (!c.ssl || SSL_set_fd(c.ssl, c.fd) != 1) {
        fail(c, kFailTls);
        return;
    }
    SSL_set_mode(c.ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    c.st = St::tls;
    do_tls(c);
}

void Bench::flush_out(Conn &c) {
    while (!c.out.empty() && c.fd >= 0) {
        ssize_t w;
        if (c.ssl) {
            ERR_clear_error();
            int r = SSL_write(c.ssl, c.out.data(), static_cast<int>(c.out.size()));
            if (r <= 0) {
                int e = SSL_get_error(c.ssl, r);
                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                    set_out(c, e == SSL_ERROR_WANT_WRITE);
                    return;
                }
                fail(c, c.st == St::http ? kFailClosedBeforeUpgrade : kFailClosedBeforeOpen);
                return;
            }
            w = r;
        } else {
            w = ws::send_some(c.fd, c.out.data(), c.out.size());
            if (w < 0) {
                fail(c, c.st == St::http ? kFailClosedBeforeUpgrade : kFailClosedBeforeOpen);
                return;
            }
            if (w == 0) {
                set_out(c, true);
                return;
            }
        }
        c.out.erase(0, static_cast<size_t>(w));
    }
    set_out(c, false);
}

void Bench::write_out(Conn &c, const char *p, size_t n) {
    c.out.append(p, n);
    flush_out(c);
}

void Bench::on_readable(Conn &c) {
    for (;;) {
        size_t n = 0;
        ws::Rx rx = ws::Rx::data;
        if (c.ssl) {
            ERR_clear_error();
            int r = SSL_read(c.ssl, rbuf_, sizeof rbuf_);
            if (r <= 0) {
                int e = SSL_get_error(c.ssl, r);
                if (e == SSL_ERROR_WANT_READ) return;
                if (e == SSL_ERROR_WANT_WRITE) {
                    set_out(c, true);
                    return;
                }
                rx = ws::Rx::eof;
            } else {
                n = static_cast<size_t>(r);
            }
        } else {
            rx = ws::recv_some(c.fd, rbuf_, sizeof rbuf_, &n);
            if (rx == ws::Rx::again) return;
            if (rx == ws::Rx::reset && c.st == St::http) {
                fail(c, kFailResetBeforeUpgrade);
                return;
            }
        }
        if (rx != ws::Rx::data) {
            fail(c, c.st == St::http ? kFailClosedBeforeUpgrade : kFailClosedBeforeOpen);
            return;
        }
        c.in.append(rbuf_, n);
        if (c.st == St::http) on_http(c);
        if (c.fd >= 0 && c.st != St::http) parse_frames(c);
        if (c.fd < 0 || c.st == St::closed) return;
        if (!c.ssl) return;  // level-triggered: the next epoll_wait comes back if more is queued
        // TLS: SSL may hold decrypted bytes the socket no longer signals; loop until WANT_READ.
    }
}

void Bench::on_http(Conn &c) {
    ws::Answer a = ws::read_answer(c.in, c.key);
    if (!a.complete) {
        if (a.oversized) fail(c, kFailProtocol);
        return;
    }
    if (counting_ || o_.mode == "hold") http_status_[a.status]++;
    if (a.status != 101) {
        fail(c, a.status ? kFailHttpStatus : kFailProtocol);
        return;
    }
    if (!a.accepted) {
        fail(c, kFailProtocol);
        return;
    }
    c.in.erase(0, a.head_len);
    c.st = St::eio_open;
}

void Bench::parse_frames(Conn &c) {
    ws::FrameError err;
    size_t used = ws::decode_frames(c.in.data(), c.in.size(), 1u << 20, &err,
                                    [&](const ws::Frame &f) { return on_frame(c, f); });
    if (err != ws::FrameError::none) {
        fail(c, kFailProtocol);
        return;
    }
    if (c.fd >= 0) c.in.erase(0, used);
}

// One server frame; false once the connection is closed (or, in rate mode, done).
bool Bench::on_frame(Conn &c, const ws::Frame &f) {
    if (f.opcode == ws::kOpClose) {
        fail(c, c.st == St::held ? kFailProtocol : kFailClosedBeforeOpen);
        return false;
    }
    if (f.opcode == ws::kOpPing) send_frame(c, ws::kOpPong, f.payload, 0);  // zero mask: nothing to hide
    else if (f.opcode == ws::kOpText) on_text(c, f.payload);
    return c.fd >= 0 && c.st != St::closed;
}

void Bench::send_frame(Conn &c, unsigned opcode, std::string_view payload, uint32_t mask) {
    std::string f;
    ws::append_frame(&f, opcode, payload, mask);
    write_out(c, f.data(), f.size());
}

void Bench::on_text(Conn &c, std::string_view t) {
    if (t.empty()) return;
    if (c.st == St::eio_open) {
        if (!ws::is_open(t)) {
            fail(c, kFailProtocol);
            return;
        }
        if (o_.mode == "rate") {
            succeed(c);
            return;
        }
        c.st = St::ns;
        send_frame(c, ws::kOpText, ws::connect_packet(ns_prefix_), static_cast<uint32_t>(rng_()));
        return;
    }
    if (t[0] == ws::kEioPing) {
        pings_++;
        send_frame(c, ws::kOpText, ws::pong_for(t), static_cast<uint32_t>(rng_()));
        return;
    }
    if (t[0] == ws::kEioClose) {
        fail(c, kFailClosedBeforeOpen);
        return;
    }
    char type;
    std::string_view rest;
    if (c.st == St::ns && ws::sio_packet(t, ns_prefix_, &type, &rest)) {
        if (type == ws::kSioConnect) succeed(c);
        else if (type == ws::kSioConnectError) fail(c, kFailNamespaceRefused);
    }
}

void Bench::check_timeouts(int64_t now) {
    for (auto &c : conns_)
        if (c.st != St::idle && c.st != St::closed && c.st != St::held && now > c.deadline_us) fail(c, kFailTimeout);
}

std::string Bench::failures_json() const {
    std::string s = "{";
    for (unsigned i = 0; i < kFailCount; i++) {
        if (i) s += ",";
        s += "\"" + std::string(kFailNames[i]) + "\":" + std::to_string(fails_[i]);
    }
    s += "}";
    std::string h = "{";
    for (auto &[k, v] : http_status_)
        h += (h.size() > 1 ? ",\"" : "\"") + std::to_string(k) + "\":" + std::to_string(v);
    h += "}";
    return "\"failures\":" + s + ",\"http_status\":" + h;
}

std::string Bench::latency_json() {
    std::sort(lat_us_.begin(), lat_us_.end());
    auto pct = [&](double p) -> double {
        if (lat_us_.empty()) return -1;
        size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(lat_us_.size())));
        i = std::min(lat_us_.size() - 1, i ? i - 1 : 0);
        return lat_us_[i] / 1000.0;
    };
    char b[160];
    snprintf(b, sizeof b, "\"lat_p50_ms\":%.3f,\"lat_p90_ms\":%.3f,\"lat_p99_ms\":%.3f,\"lat_max_ms\":%.3f", pct(0.5),
             pct(0.9), pct(0.99), lat_us_.empty() ? -1.0 : lat_us_.back() / 1000.0);
    return b;
}

int Bench::run() {
    if (!init()) return 1;
    return o_.mode == "rate" ? run_rate() : run_hold();
}

int Bench::run_rate() {
    conns_.resize(o_.concurrency);
    double cpu0 = 0;
    int64_t t0 = now_mono_us();
    int64_t t_count = t0 + static_cast<int64_t>(o_.warmup * 1e6);
    int64_t t_end = t_count + static_cast<int64_t>(o_.duration * 1e6);
    int64_t last_timeout_check = t0;
    std::vector<epoll_event> evs(256);
    for (;;) {
        int64_t now = now_mono_us();
        if (!counting_ && now >= t_count) {
            counting_ = true;
            cpu0 = cpu_seconds_self();
        }
        if (now < t_end)
            for (auto &c : conns_)
                if (c.st == St::idle || c.st == St::closed) start(c);
        if (now >= t_end) break;  // attempts still in flight at the end are not counted
        int n = epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), 100);
        for (int i = 0; i < n; i++) {
            Conn &c = conns_[evs[static_cast<size_t>(i)].data.u64];
            if (c.fd >= 0) on_event(c, evs[static_cast<size_t>(i)].events);
        }
        if (now - last_timeout_check > 100000) {
            check_timeouts(now);
            last_timeout_check = now;
        }
    }
    double window = static_cast<double>(now_mono_us() - t_count) / 1e6;
    double cpu = cpu_seconds_self() - cpu0;
    uint64_t unfinished = in_flight_;
    for (auto &c : conns_) close_conn(c);
    printf("{\"label\":\"%s\",\"mode\":\"rate\",\"tls\":%s,\"concurrency\":%u,\"window_s\":%.3f,\"attempted\":%" PRIu64
           ",\"handshakes\":%" PRIu64 ",\"handshakes_per_s\":%.1f,\"unfinished\":%" PRIu64
           ",\"loadgen_cpu_s\":%.3f,%s,%s}\n",
           o_.label.c_str(), o_.tls ? "true" : "false", o_.concurrency, window, attempts_, ok_,
           static_cast<double>(ok_) / window, unfinished, cpu, failures_json().c_str(), latency_json().c_str());
    fflush(stdout);
    return 0;
}

int Bench::run_hold() {
    bench::raise_fd_limit();  // one fd per connection plus a few
    conns_.resize(o_.connections);
    epoll_event sev{};
    sev.events = EPOLLIN;
    sev.data.u64 = UINT64_MAX;
    bool stdin_open = epoll_ctl(ep_, EPOLL_CTL_ADD, 0, &sev) == 0;
    int64_t t0 = now_mono_us();
    int64_t ramp_deadline = t0 + static_cast<int64_t>(o_.ramp_timeout * 1e6);
    size_t next = 0;
    double ramp_s = -1;
    int64_t hold_deadline = 0, last_timeout_check = t0;
    std::vector<epoll_event> evs(256);
    for (;;) {
        int64_t now = now_mono_us();
        if (!holding_) {
            while (next < conns_.size() && in_flight_ < o_.window && now < ramp_deadline) start(conns_[next++]);
            if ((next == conns_.size() || now >= ramp_deadline) && in_flight_ == 0) {
                holding_ = true;
                ramp_s = static_cast<double>(now - t0) / 1e6;
                hold_deadline = now + static_cast<int64_t>(o_.max_hold * 1e6);
                printf("{\"phase\":\"held\",\"attempted\":%" PRIu64 ",\"held\":%" PRIu64 ",\"ramp_s\":%.3f,%s}\n",
                       attempts_, held_, ramp_s, failures_json().c_str());
                fflush(stdout);
            }
        } else if (now >= hold_deadline || !stdin_open) {
            break;
        }
        int n = epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), 100);
        for (int i = 0; i < n; i++) {
            uint64_t t = evs[static_cast<size_t>(i)].data.u64;
            if (t == UINT64_MAX) {  // stdin: EOF (or anything) ends the hold
                char b[256];
                ssize_t r = read(0, b, sizeof b);
                if (r <= 0) {
                    epoll_ctl(ep_, EPOLL_CTL_DEL, 0, nullptr);
                    stdin_open = false;
                }
                continue;
            }
            Conn &c = conns_[t];
            if (c.fd >= 0) on_event(c, evs[static_cast<size_t>(i)].events);
        }
        if (now - last_timeout_check > 100000) {
            check_timeouts(now);
            last_timeout_check = now;
        }
    }
    uint64_t open_at_end = held_;
    for (auto &c : conns_) close_conn(c);
    printf("{\"label\":\"%s\",\"mode\":\"hold\",\"tls\":%s,\"connections\":%u,\"attempted\":%" PRIu64
           ",\"held_after_ramp\":%" PRIu64 ",\"ramp_s\":%.3f,\"open_at_end\":%" PRIu64 ",\"closed_by_server\":%" PRIu64
           ",\"pings\":%" PRIu64 ",%s,%s}\n",
           o_.label.c_str(), o_.tls ? "true" : "false", o_.connections, attempts_, ok_, ramp_s, open_at_end,
           closed_by_server_, pings_, failures_json().c_str(), latency_json().c_str());
    fflush(stdout);
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    Options o = bench::parse_args<Options>(argc, argv, kUsage);
    Bench b(o);
    return b.run();
}

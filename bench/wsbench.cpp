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
// One process, one epoll loop, OpenSSL for --tls (no certificate verification: the
// bench's own self-signed certificate). Loopback only: --host must be in 127.0.0.0/8.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "bench_util.h"

namespace {

using bench::base64;
using bench::cpu_seconds_self;
using bench::header_value;
using bench::now_mono_us;
using bench::parse_double;
using bench::parse_uint;

// ------------------------------------------------------------------------ options

struct Options {
    std::string host = "127.0.0.1";
    unsigned port = 0;
    std::string path = "/bench_socketio/socket.io/";
    std::string ns = "/psdm_ws";
    std::string mode = "rate";
    std::string label;
    bool tls = false;
    unsigned source_addrs = 50;
    double duration = 5;
    double warmup = 0.5;
    unsigned concurrency = 32;
    uint32_t connections = 1000;
    unsigned window = 100;
    double handshake_timeout = 10;
    double ramp_timeout = 60;
    double max_hold = 120;
};

[[noreturn]] void usage_exit(const char *msg) {
    if (msg) fprintf(stderr, "psdm_wsbench: %s\n", msg);
    fputs(
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
        "  --max-hold S           hold at most S seconds if stdin stays open (120)\n",
        stderr);
    exit(2);
}

Options parse_options(int argc, char **argv) {
    Options o;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "-h" || a == "--help") usage_exit(nullptr);
        if (a == "--tls") {
            o.tls = true;
            continue;
        }
        if (i + 1 >= argc) usage_exit(("missing value for " + a).c_str());
        const char *v = argv[++i];
        if (a == "--host") o.host = v;
        else if (a == "--port") o.port = static_cast<unsigned>(parse_uint(v, "--port"));
        else if (a == "--path") o.path = v;
        else if (a == "--ns") o.ns = v;
        else if (a == "--mode") o.mode = v;
        else if (a == "--label") o.label = v;
        else if (a == "--source-addrs") o.source_addrs = static_cast<unsigned>(parse_uint(v, "--source-addrs"));
        else if (a == "--duration") o.duration = parse_double(v, "--duration");
        else if (a == "--warmup") o.warmup = parse_double(v, "--warmup");
        else if (a == "--concurrency") o.concurrency = static_cast<unsigned>(parse_uint(v, "--concurrency"));
        else if (a == "--connections") o.connections = static_cast<uint32_t>(parse_uint(v, "--connections"));
        else if (a == "--window") o.window = static_cast<unsigned>(parse_uint(v, "--window"));
        else if (a == "--handshake-timeout") o.handshake_timeout = parse_double(v, "--handshake-timeout");
        else if (a == "--ramp-timeout") o.ramp_timeout = parse_double(v, "--ramp-timeout");
        else if (a == "--max-hold") o.max_hold = parse_double(v, "--max-hold");
        else usage_exit(("unknown option " + a).c_str());
    }
    if (o.port == 0 || o.port > 65535) usage_exit("--port is required");
    if (o.mode != "rate" && o.mode != "hold") usage_exit("--mode is rate or hold");
    in_addr a{};
    if (inet_pton(AF_INET, o.host.c_str(), &a) != 1 || (ntohl(a.s_addr) >> 24) != 127)
        usage_exit("--host must be an IPv4 address in 127.0.0.0/8 (loopback only)");
    if (o.source_addrs == 0 || o.source_addrs > 250) usage_exit("--source-addrs is 1..250");
    if (o.concurrency == 0 || o.window == 0) usage_exit("--concurrency and --window must be > 0");
    return o;
}

// ------------------------------------------------------------------------ SHA-1 (OpenSSL), base64

std::string ws_accept_for(const std::string &key);  // below, after the OpenSSL includes are used

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
const char *const kFailNames[kFailCount] = {"connect_error",       "tls_error",          "closed_before_upgrade",
                                            "reset_before_upgrade", "http_status",        "closed_before_open",
                                            "protocol_error",       "handshake_timeout",  "namespace_refused",
                                            "local_fd_limit"};

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
        dst_.sin_family = AF_INET;
        dst_.sin_port = htons(static_cast<uint16_t>(o.port));
        inet_pton(AF_INET, o.host.c_str(), &dst_.sin_addr);
        ns_prefix_ = o.ns + ",";
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
    void do_tls(Conn &c);
    void send_request(Conn &c);
    void on_readable(Conn &c);
    void on_http(Conn &c);
    void parse_frames(Conn &c);
    void on_text(Conn &c, std::string_view t);
    void send_text(Conn &c, std::string_view payload);
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

std::string ws_accept_for(const std::string &key) {
    std::string m = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char d[20];
    SHA1(reinterpret_cast<const unsigned char *>(m.data()), m.size(), d);
    return base64(d, sizeof d);
}

bool Bench::init() {
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

void Bench::set_out(Conn &c, bool want) {
    if (c.fd < 0 || c.want_out == want) return;
    epoll_event ev{};
    ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
    ev.data.u64 = tag(c);
    epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
    c.want_out = want;
}

void Bench::start(Conn &c) {
    c = Conn{};
    c.seq = next_seq_++;
    c.start_us = now_mono_us();
    c.deadline_us = c.start_us + static_cast<int64_t>(o_.handshake_timeout * 1e6);
    if (counting_ || o_.mode == "hold") attempts_++;
    in_flight_++;
    c.st = St::connecting;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail(c, kFailLocalFds);
        return;
    }
    c.fd = fd;
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl((127u << 24) | (1u + static_cast<uint32_t>(c.seq % o_.source_addrs)));
    if (bind(fd, reinterpret_cast<sockaddr *>(&src), sizeof src) != 0 ||
        (connect(fd, reinterpret_cast<sockaddr *>(&dst_), sizeof dst_) != 0 && errno != EINPROGRESS)) {
        fail(c, kFailConnect);
        return;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.u64 = tag(c);
    c.want_out = true;
    epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
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
    unsigned char k[16];
    for (auto &b : k) b = static_cast<unsigned char>(rng_());
    c.key = base64(k, sizeof k);
    std::string req = "GET " + o_.path + "?EIO=4&transport=websocket HTTP/1.1\r\nHost: " + o_.host + ":" +
                      std::to_string(o_.port) +
                      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + c.key +
                      "\r\nSec-WebSocket-Version: 13\r\n\r\n";
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
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            fail(c, kFailConnect);
            return;
        }
        if (o_.tls) {
            c.ssl = SSL_new(ctx_);
            if (!c.ssl || SSL_set_fd(c.ssl, c.fd) != 1) {
                fail(c, kFailTls);
                return;
            }
            SSL_set_mode(c.ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
            c.st = St::tls;
            do_tls(c);
            return;
        }
        set_out(c, false);
        send_request(c);
        return;
    }
    if (c.st == St::tls) {
        do_tls(c);
        return;
    }
    if ((events & EPOLLOUT) && !c.out.empty()) flush_out(c);
    if (c.fd >= 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) on_readable(c);
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
            w = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    set_out(c, true);
                    return;
                }
                fail(c, c.st == St::http ? kFailClosedBeforeUpgrade : kFailClosedBeforeOpen);
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
        ssize_t n;
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
                n = 0;
            } else {
                n = r;
            }
        } else {
            n = recv(c.fd, rbuf_, sizeof rbuf_, 0);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
            if (n < 0 && errno == ECONNRESET && c.st == St::http) {
                fail(c, kFailResetBeforeUpgrade);
                return;
            }
        }
        if (n <= 0) {
            fail(c, c.st == St::http ? kFailClosedBeforeUpgrade : kFailClosedBeforeOpen);
            return;
        }
        c.in.append(rbuf_, static_cast<size_t>(n));
        if (c.st == St::http) on_http(c);
        if (c.fd >= 0 && c.st != St::http) parse_frames(c);
        if (c.fd < 0 || c.st == St::closed) return;
        if (!c.ssl) return;  // level-triggered: the next epoll_wait comes back if more is queued
        // TLS: SSL may hold decrypted bytes the socket no longer signals; loop until WANT_READ.
    }
}

void Bench::on_http(Conn &c) {
    size_t end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) {
        if (c.in.size() > 16384) fail(c, kFailProtocol);
        return;
    }
    std::string_view head(c.in.data(), end + 2);
    unsigned status = 0;
    if (head.size() > 12 && head.substr(0, 5) == "HTTP/") {
        size_t sp = head.find(' ');
        if (sp != std::string_view::npos) status = static_cast<unsigned>(atoi(c.in.c_str() + sp + 1));
    }
    if (counting_ || o_.mode == "hold") http_status_[status]++;
    if (status != 101) {
        fail(c, status ? kFailHttpStatus : kFailProtocol);
        return;
    }
    std::string_view accept;
    if (!header_value(head, "sec-websocket-accept", &accept) || accept != ws_accept_for(c.key)) {
        fail(c, kFailProtocol);
        return;
    }
    c.in.erase(0, end + 4);
    c.st = St::eio_open;
}

void Bench::parse_frames(Conn &c) {
    size_t off = 0;
    const std::string &p = c.in;
    while (c.fd >= 0 && p.size() - off >= 2) {
        auto b0 = static_cast<unsigned char>(p[off]), b1 = static_cast<unsigned char>(p[off + 1]);
        if (b1 & 0x80) {  // servers never mask
            fail(c, kFailProtocol);
            return;
        }
        uint64_t len = b1 & 0x7f;
        size_t hdr = 2;
        if (len == 126) {
            if (p.size() - off < 4) break;
            len = (uint64_t{static_cast<unsigned char>(p[off + 2])} << 8) | static_cast<unsigned char>(p[off + 3]);
            hdr = 4;
        } else if (len == 127) {
            if (p.size() - off < 10) break;
            len = 0;
            for (size_t i = 0; i < 8; i++) len = (len << 8) | static_cast<unsigned char>(p[off + 2 + i]);
            hdr = 10;
        }
        if (len > (1u << 20)) {
            fail(c, kFailProtocol);
            return;
        }
        if (p.size() - off - hdr < len) break;
        std::string payload = p.substr(off + hdr, static_cast<size_t>(len));
        off += hdr + static_cast<size_t>(len);
        unsigned opcode = b0 & 0x0f;
        if (opcode == 0x8) {
            fail(c, c.st == St::held ? kFailProtocol : kFailClosedBeforeOpen);
            return;
        }
        if (opcode == 0x9) {  // ping: pong, masked
            std::string f;
            f += static_cast<char>(0x8A);
            f += static_cast<char>(0x80 | payload.size());
            f.append(4, '\0');  // zero mask
            f += payload;
            write_out(c, f.data(), f.size());
            continue;
        }
        if (opcode == 0x1) on_text(c, payload);
        if (c.st == St::closed) return;  // rate mode: done with it
    }
    if (c.fd >= 0) c.in.erase(0, off);
}

void Bench::send_text(Conn &c, std::string_view payload) {
    std::string f;
    f += static_cast<char>(0x81);
    size_t n = payload.size();
    if (n < 126) {
        f += static_cast<char>(0x80 | n);
    } else {
        f += static_cast<char>(0x80 | 126);
        f += static_cast<char>((n >> 8) & 0xff);
        f += static_cast<char>(n & 0xff);
    }
    uint64_t r = rng_();
    char mask[4] = {static_cast<char>(r), static_cast<char>(r >> 8), static_cast<char>(r >> 16),
                    static_cast<char>(r >> 24)};
    f.append(mask, 4);
    for (size_t i = 0; i < n; i++) f += static_cast<char>(payload[i] ^ mask[i & 3]);
    write_out(c, f.data(), f.size());
}

void Bench::on_text(Conn &c, std::string_view t) {
    if (t.empty()) return;
    if (c.st == St::eio_open) {
        if (t.size() < 2 || t[0] != '0' || t[1] != '{') {
            fail(c, kFailProtocol);
            return;
        }
        if (o_.mode == "rate") {
            succeed(c);
            return;
        }
        c.st = St::ns;
        send_text(c, "40" + ns_prefix_);
        return;
    }
    if (t[0] == '2') {  // Engine.IO ping
        pings_++;
        std::string pong(t);
        pong[0] = '3';
        send_text(c, pong);
        return;
    }
    if (t[0] == '1') {
        fail(c, kFailClosedBeforeOpen);
        return;
    }
    if (c.st == St::ns && t.size() > 2 && t[0] == '4') {
        std::string_view rest = t.substr(2);
        if (rest.substr(0, ns_prefix_.size()) != ns_prefix_) return;
        if (t[1] == '0') succeed(c);
        else if (t[1] == '4') fail(c, kFailNamespaceRefused);
    }
}

void Bench::check_timeouts(int64_t now) {
    for (auto &c : conns_)
        if (c.st != St::idle && c.st != St::closed && c.st != St::held && now > c.deadline_us)
            fail(c, kFailTimeout);
}

std::string Bench::failures_json() const {
    std::string s = "{";
    for (unsigned i = 0; i < kFailCount; i++) {
        if (i) s += ",";
        s += "\"" + std::string(kFailNames[i]) + "\":" + std::to_string(fails_[i]);
    }
    s += "}";
    std::string h = "{";
    for (auto &[k, v] : http_status_) h += (h.size() > 1 ? ",\"" : "\"") + std::to_string(k) + "\":" + std::to_string(v);
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
    // One fd per connection plus a few: take the whole open-files allowance.
    rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
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
           ",\"held_after_ramp\":%" PRIu64 ",\"ramp_s\":%.3f,\"open_at_end\":%" PRIu64
           ",\"closed_by_server\":%" PRIu64 ",\"pings\":%" PRIu64 ",%s,%s}\n",
           o_.label.c_str(), o_.tls ? "true" : "false", o_.connections, attempts_, ok_, ramp_s, open_at_end,
           closed_by_server_, pings_, failures_json().c_str(), latency_json().c_str());
    fflush(stdout);
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    Options o = parse_options(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    Bench b(o);
    return b.run();
}

// Small pieces the bench tools (loadgen.cpp, wsbench.cpp, sendfloor.cpp) share: clocks, CPU time,
// the open-files limit, option parsing (and the options they share, with the loopback
// address check), base64 and HTTP header lookup. Header-only. Their WebSocket client
// core is ws_client.h.
#pragma once

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace bench {

// Microseconds of CLOCK_MONOTONIC.
inline int64_t now_mono_us() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

// CPU seconds (user + system) this process used so far.
inline double cpu_seconds_self() {
    rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// CPU seconds (user + system, clock ticks) of process `pid` from /proc/PID/stat; -1 if
// unreadable.
inline double cpu_seconds_of(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char buf[2048];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *q = strrchr(buf, ')');  // the command name may hold anything but ends there
    unsigned long long ut = 0, st = 0;
    // fields after ")": 3 state, 4 ppid, ... 14 utime, 15 stime
    if (!q || sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
    return static_cast<double>(ut + st) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Raises this process's open-files limit to its hard limit (one fd per client: take the
// whole allowance) and returns the limit now in force (0 if it cannot be read).
inline rlim_t raise_fd_limit() {
    rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur;
}

// A non-negative finite number for option `what`; exits 2 with a message otherwise.
inline double parse_double(const char *s, const char *what) {
    char *end = nullptr;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < 0 || !std::isfinite(v)) {
        fprintf(stderr, "%s: bad value '%s' for %s\n", program_invocation_short_name, s, what);
        exit(2);
    }
    return v;
}

// A decimal unsigned integer for option `what`; exits 2 with a message otherwise.
inline unsigned long parse_uint(const char *s, const char *what) {
    char *end = nullptr;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || *s == '-') {
        fprintf(stderr, "%s: bad value '%s' for %s\n", program_invocation_short_name, s, what);
        exit(2);
    }
    return v;
}

// Parses `host` (dotted IPv4) into *dst with `port`. False unless it is in 127.0.0.0/8:
// the load generators only ever target this machine.
inline bool loopback_address(const std::string &host, unsigned port, sockaddr_in *dst) {
    *dst = sockaddr_in{};
    dst->sin_family = AF_INET;
    dst->sin_port = htons(static_cast<uint16_t>(port));
    return inet_pton(AF_INET, host.c_str(), &dst->sin_addr) == 1 && (ntohl(dst->sin_addr.s_addr) >> 24) == 127;
}

// Prints "PROGRAM: msg" when msg is set, then `usage`, to stderr; exits 2.
[[noreturn]] inline void usage_exit(const char *usage, const char *msg) {
    if (msg) fprintf(stderr, "%s: %s\n", program_invocation_short_name, msg);
    fputs(usage, stderr);
    exit(2);
}

// The options both load generators take for their clients: the server and its Socket.IO
// path and namespace, the source addresses, how many clients and their deadlines, and a
// label copied into the output. Each program derives its Options from it (see
// parse_args), with its own defaults for the counts and deadlines.
struct ClientOptions {
    ClientOptions(uint32_t connections_, double handshake_timeout_, double ramp_timeout_)
        : connections(connections_), handshake_timeout(handshake_timeout_), ramp_timeout(ramp_timeout_) {}

    // Sets option `name` (--host, --port, --path, --ns, --label, --source-addrs,
    // --connections, --handshake-timeout, --ramp-timeout) from `value`; false for any other.
    bool set_client_option(const std::string &name, const char *value) {
        if (name == "--host") host = value;
        else if (name == "--port") port = static_cast<unsigned>(parse_uint(value, "--port"));
        else if (name == "--path") path = value;
        else if (name == "--ns") ns = value;
        else if (name == "--label") label = value;
        else if (name == "--source-addrs") source_addrs = static_cast<unsigned>(parse_uint(value, "--source-addrs"));
        else if (name == "--connections") connections = static_cast<uint32_t>(parse_uint(value, "--connections"));
        else if (name == "--handshake-timeout") handshake_timeout = parse_double(value, "--handshake-timeout");
        else if (name == "--ramp-timeout") ramp_timeout = parse_double(value, "--ramp-timeout");
        else return false;
        return true;
    }

    // What is wrong with these options (a message), or nullptr. The server must be on this
    // machine: host in 127.0.0.0/8; clients bind to 127.0.0.(1 + i % source_addrs).
    const char *client_options_error() const {
        if (port == 0 || port > 65535) return "--port is required (1..65535)";
        sockaddr_in a;
        if (!loopback_address(host, port, &a)) return "--host must be an IPv4 address in 127.0.0.0/8 (loopback only)";
        if (path.empty() || path[0] != '/') return "--path must start with '/'";
        if (source_addrs == 0 || source_addrs > 254) return "--source-addrs must be 1..254";
        return nullptr;
    }

    std::string host = "127.0.0.1";
    unsigned port = 0;
    std::string path = "/bench_socketio/socket.io/";
    std::string ns = "/psdm_ws";
    std::string label;
    unsigned source_addrs = 50;
    uint32_t connections;
    double handshake_timeout;
    double ramp_timeout;
};

// Reads the command line into an Options derived from ClientOptions that has
// `bool set(name, value)` for the program's own options (false for a name it does not
// know), `const char *error() const` for what is wrong with them (nullptr: nothing) and
// `static bool is_flag(name)` for those that take no value (set gets nullptr then).
// "-h" / "--help", a missing value, an unknown option or wrong options print `usage`
// (with the reason) and exit 2.
template <class Options>
Options parse_args(int argc, char **argv, const char *usage) {
    Options o;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "-h" || a == "--help") usage_exit(usage, nullptr);
        const char *v = nullptr;
        if (!Options::is_flag(a)) {
            if (i + 1 >= argc) usage_exit(usage, ("missing value for " + a).c_str());
            v = argv[++i];
        }
        if (!o.set_client_option(a, v) && !o.set(a, v)) usage_exit(usage, ("unknown option " + a).c_str());
    }
    const char *error = o.client_options_error();
    if (!error) error = o.error();
    if (error) usage_exit(usage, error);
    return o;
}

// Standard base64 with padding.
inline std::string base64(const unsigned char *p, size_t n) {
    static const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = uint32_t{p[i]} << 16;
        if (i + 1 < n) v |= uint32_t{p[i + 1]} << 8;
        if (i + 2 < n) v |= uint32_t{p[i + 2]};
        out += kB64[(v >> 18) & 63];
        out += kB64[(v >> 12) & 63];
        out += i + 1 < n ? kB64[(v >> 6) & 63] : '=';
        out += i + 2 < n ? kB64[v & 63] : '=';
    }
    return out;
}

// Finds header `name` (lower case) in an HTTP response head (status line first).
// Returns true and the trimmed value, or false.
inline bool header_value(std::string_view head, std::string_view name, std::string_view *value) {
    size_t pos = 0;
    while ((pos = head.find("\r\n", pos)) != std::string_view::npos) {
        pos += 2;
        if (head.size() - pos < name.size() + 1) return false;
        bool match = true;
        for (size_t i = 0; i < name.size() && match; i++)
            match = tolower(static_cast<unsigned char>(head[pos + i])) == name[i];
        if (!match || head[pos + name.size()] != ':') continue;
        size_t b = pos + name.size() + 1, e = head.find("\r\n", b);
        while (b < e && (head[b] == ' ' || head[b] == '\t')) b++;
        while (e > b && (head[e - 1] == ' ' || head[e - 1] == '\t')) e--;
        *value = head.substr(b, e - b);
        return true;
    }
    return false;
}

// A JSON string literal of s: quotes and backslashes escaped, control characters dropped
// (what the tools print is ours: names, paths, error texts).
inline std::string json_str(const std::string &s) {
    std::string out = "\"";
    for (char ch : s) {
        if (ch == '"' || ch == '\\') out += '\\';
        if (static_cast<unsigned char>(ch) < 0x20) continue;
        out += ch;
    }
    return out + "\"";
}

}  // namespace bench

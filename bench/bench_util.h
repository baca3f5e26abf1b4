// Small pieces both load generators (loadgen.cpp, wsbench.cpp) use: clocks, CPU time,
// option parsing, base64 and HTTP header lookup. Header-only, one TU per binary.
#pragma once

#include <errno.h>
#include <sys/resource.h>
#include <time.h>

#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
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

}  // namespace bench

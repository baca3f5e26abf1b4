// Configuration parser: see config.h for the file syntax and the contract of each key.
#include "base/config.h"

#include "base/read_file.h"

#include "base/log.h"
#include "base/unique_fd.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <set>
#include <system_error>

namespace psdm {

namespace {

constexpr size_t kMaxFileSize = 1u << 20;
constexpr size_t kMaxQuoted = 100;  // values longer than this are cut in error messages

// A key for messages: cut when long, like quote() but bare (the message reads "KEY: reason").
std::string key_text(std::string_view key) {
    return key.size() > kMaxQuoted ? std::string(key.substr(0, kMaxQuoted)) + "..." : std::string(key);
}

std::string_view trim(std::string_view s) {
    const std::string_view ws = " \t\r";
    size_t b = s.find_first_not_of(ws);
    if (b == std::string_view::npos) return {};
    return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }

// 'value' for messages, cut when long so one bad line cannot flood the log.
std::string quote(std::string_view v) {
    std::string q = "'";
    if (v.size() > kMaxQuoted) {
        q.append(v.substr(0, kMaxQuoted)).append("...");
    } else {
        q.append(v);
    }
    return q + "'";
}

enum class Num { ok, bad, overflow };

// Decimal digits only: no sign, no spaces, no trailing text. *out <= max on ok.
Num parse_decimal(std::string_view s, uint64_t max, uint64_t *out) {
    if (s.empty()) return Num::bad;
    uint64_t v = 0;
    for (char ch : s) {
        if (!is_digit(ch)) return Num::bad;
        unsigned d = static_cast<unsigned>(ch - '0');
        if (v > (max - d) / 10) return Num::overflow;
        v = v * 10 + d;
    }
    *out = v;
    return Num::ok;
}

// A count or duration in [lo, hi]; the message is set on failure.
bool parse_uint(std::string_view v, uint64_t lo, uint64_t hi, uint64_t *out, std::string *why) {
    uint64_t n = 0;
    Num r = parse_decimal(v, UINT64_MAX, &n);
    if (r == Num::bad) {
        *why = "expected a decimal integer, got " + quote(v);
        return false;
    }
    if (r == Num::overflow || n < lo || n > hi) {
        *why = "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " + quote(v);
        return false;
    }
    *out = n;
    return true;
}

bool parse_ms(std::string_view v, unsigned lo, unsigned hi, unsigned *out, std::string *why) {
    uint64_t n = 0;
    if (!parse_uint(v, lo, hi, &n, why)) return false;
    *out = static_cast<unsigned>(n);
    return true;
}

// Bytes, or a k/K (x1024) or M (x1048576) suffix.
bool parse_size(std::string_view v, size_t *out, std::string *why) {
    uint64_t mult = 1;
    std::string_view digits = v;
    if (!v.empty() && (v.back() == 'k' || v.back() == 'K' || v.back() == 'M')) {
        mult = v.back() == 'M' ? (1u << 20) : 1024u;
        digits.remove_suffix(1);
    }
    uint64_t n = 0;
    Num r = parse_decimal(digits, SIZE_MAX / mult, &n);
    if (r == Num::bad) {
        *why = "expected a size like 1048576, 512k or 4M, got " + quote(v);
        return false;
    }
    if (r == Num::overflow) {
        *why = "size too large, got " + quote(v);
        return false;
    }
    *out = static_cast<size_t>(n * mult);
    return true;
}

std::string size_text(size_t n) {
    if (n != 0 && n % (1u << 20) == 0) return std::to_string(n >> 20) + "M";
    if (n != 0 && n % 1024 == 0) return std::to_string(n >> 10) + "k";
    return std::to_string(n);
}

bool parse_size(std::string_view v, size_t lo, size_t hi, size_t *out, std::string *why) {
    size_t n = 0;
    if (!parse_size(v, &n, why)) return false;
    if (n < lo || n > hi) {
        *why = "must be between " + size_text(lo) + " and " + size_text(hi) + ", got " + quote(v);
        return false;
    }
    *out = n;
    return true;
}

// The characters of Kafka topic names, librdkafka property names and Unix user names.
constexpr std::string_view kNameChars =
    "abcdefghijklmnopqrstuvwxyz"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "0123456789._-";

bool only_name_chars(std::string_view s) { return s.find_first_not_of(kNameChars) == std::string_view::npos; }

// Comma list: entries trimmed, none empty, no duplicates. An empty value gives an empty list.
bool parse_list(std::string_view v, std::vector<std::string> *out, std::string *why) {
    std::vector<std::string> items;
    if (!v.empty()) {
        size_t pos = 0;
        for (;;) {
            size_t comma = v.find(',', pos);
            std::string_view item = trim(v.substr(pos, comma == std::string_view::npos ? v.npos : comma - pos));
            if (item.empty()) {
                *why = "empty entry in the comma-separated list " + quote(v);
                return false;
            }
            for (const std::string &seen : items) {
                if (seen == item) {
                    *why = quote(item) + " is listed twice in " + quote(v);
                    return false;
                }
            }
            items.emplace_back(item);
            if (comma == std::string_view::npos) break;
            pos = comma + 1;
        }
    }
    *out = std::move(items);
    return true;
}

// A list of Kafka topic names (parse_list, then kafka_topic_name_ok for each).
bool parse_topics(std::string_view v, std::vector<std::string> *out, std::string *why) {
    std::vector<std::string> topics;
    if (!parse_list(v, &topics, why)) return false;
    for (const std::string &t : topics) {
        if (!kafka_topic_name_ok(t)) {
            *why = quote(t) + " is not a Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -, not '.' or '..')";
            return false;
        }
    }
    *out = std::move(topics);
    return true;
}

bool valid_hostname(std::string_view h) {
    if (h.empty() || h.size() > 253) return false;
    size_t label = 0;
    char prev = '.';
    for (char ch : h) {
        if (ch == '.') {
            if (label == 0 || prev == '-') return false;
            label = 0;
        } else if (is_digit(ch) || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch == '-' && label > 0)) {
            if (++label > 63) return false;
        } else {
            return false;
        }
        prev = ch;
    }
    return prev != '-';
}

// "host:port" -> host (IPv6 without brackets), port. *why is set on failure.
bool split_listen(std::string_view v, std::string *host, unsigned *port, std::string *why) {
    const std::string expected = "expected host:port like 0.0.0.0:8080, localhost:8080 or [::1]:8080, got " + quote(v);
    std::string_view h, p;
    if (!v.empty() && v.front() == '[') {
        size_t close = v.find(']');
        if (close == std::string_view::npos || close + 1 >= v.size() || v[close + 1] != ':') {
            *why = expected;
            return false;
        }
        h = v.substr(1, close - 1);
        p = v.substr(close + 2);
        unsigned char buf[sizeof(struct in6_addr)];
        if (!inet_pton(AF_INET6, std::string(h).c_str(), buf)) {
            *why = quote(h) + " is not an IPv6 address, in " + quote(v);
            return false;
        }
    } else {
        size_t colon = v.rfind(':');
        if (colon == std::string_view::npos || colon == 0) {
            *why = expected;
            return false;
        }
        h = v.substr(0, colon);
        p = v.substr(colon + 1);
        if (h.find(':') != std::string_view::npos) {
            *why = "an IPv6 address must be in brackets like [::1]:8080, got " + quote(v);
            return false;
        }
        bool numeric = h.find_first_not_of("0123456789.") == std::string_view::npos;
        unsigned char buf[sizeof(struct in_addr)];
        if (numeric ? !inet_pton(AF_INET, std::string(h).c_str(), buf) : !valid_hostname(h)) {
            *why = quote(h) + " is neither an IPv4 address nor a host name, in " + quote(v);
            return false;
        }
    }
    uint64_t n = 0;
    if (parse_decimal(p, 65535, &n) != Num::ok) {
        *why = "port must be a number from 0 to 65535 (0 = any free port), in " + quote(v);
        return false;
    }
    *host = std::string(h);
    *port = static_cast<unsigned>(n);
    return true;
}

// True when two listen values that split_listen accepted name the same fixed port on the same
// address, or on addresses that overlap (one is a wildcard). Port 0 (any free port) never
// clashes. Host names are not resolved: that is for bind() to find.
bool same_listener(std::string_view a, std::string_view b) {
    std::string host_a, host_b, why;
    unsigned port_a = 0, port_b = 0;
    if (!split_listen(a, &host_a, &port_a, &why) || !split_listen(b, &host_b, &port_b, &why)) return false;
    const auto wildcard = [](const std::string &h) { return h == "0.0.0.0" || h == "::"; };
    return port_a != 0 && port_a == port_b && (host_a == host_b || wildcard(host_a) || wildcard(host_b));
}

// A key: how to set it from a trimmed value (false + *why on a bad value) and how to print it.
struct Key {
    const char *name;
    bool (*set)(Config &c, std::string_view v, std::string *why);
    std::string (*get)(const Config &c);
};

std::string join(const std::vector<std::string> &v) {
    std::string s;
    for (const std::string &item : v) s.append(s.empty() ? "" : ", ").append(item);
    return s;
}

// Stores v in *out if ok; otherwise sets *why to "expected <expected>, got 'v'".
bool store_if(bool ok, std::string_view v, std::string *out, const char *expected, std::string *why) {
    if (!ok) {
        *why = std::string("expected ") + expected + ", got " + quote(v);
        return false;
    }
    *out = std::string(v);
    return true;
}

bool non_empty(std::string_view v, std::string *out, std::string *why) {
    if (v.empty()) {
        *why = "must not be empty";
        return false;
    }
    *out = std::string(v);
    return true;
}

// Setters and getters shared by the numeric keys; F is the field, [Lo, Hi] its bounds.
template <size_t Config::*F, size_t Lo, size_t Hi>
bool set_size(Config &c, std::string_view v, std::string *why) {
    return parse_size(v, Lo, Hi, &(c.*F), why);
}

template <size_t Config::*F, size_t Lo, size_t Hi>
bool set_count(Config &c, std::string_view v, std::string *why) {
    uint64_t n = 0;
    if (!parse_uint(v, Lo, Hi, &n, why)) return false;
    c.*F = static_cast<size_t>(n);
    return true;
}

template <unsigned Config::*F, unsigned Lo, unsigned Hi>
bool set_ms(Config &c, std::string_view v, std::string *why) {
    return parse_ms(v, Lo, Hi, &(c.*F), why);
}

template <typename T, T Config::*F>
std::string get_number(const Config &c) {
    return std::to_string(c.*F);
}

const Key kKeys[] = {
    {"handoff_socket",
     [](Config &c, std::string_view v, std::string *why) {
         if (!v.empty() && (v.front() != '/' || v.size() >= sizeof(sockaddr_un::sun_path))) {
             *why = "expected an absolute path of at most " + std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                    " bytes, got " + quote(v);
             return false;
         }
         c.handoff_socket = std::string(v);
         return true;
     },
     [](const Config &c) { return c.handoff_socket; }},
    {"handoff_socket_mode",
     [](Config &c, std::string_view v, std::string *why) {
         if (v.empty() || v.size() > 5 || v.find_first_not_of("01234567") != v.npos) {
             *why = "expected an octal mode like 0660, got " + quote(v);
             return false;
         }
         unsigned mode = 0;
         for (char ch : v) mode = mode * 8 + static_cast<unsigned>(ch - '0');
         if (mode > kConfigSocketModeMax) {
             *why = "must be at most 0777 (no setuid, setgid or sticky bit), got " + quote(v);
             return false;
         }
         c.handoff_socket_mode = mode;
         return true;
     },
     [](const Config &c) {
         char buf[16];
         snprintf(buf, sizeof buf, "0%03o", c.handoff_socket_mode);
         return std::string(buf);
     }},
    {"handoff_allowed_peers",
     [](Config &c, std::string_view v, std::string *why) {
         std::vector<std::string> peers;
         if (!parse_list(v, &peers, why)) return false;
         for (const std::string &p : peers) {
             uint64_t uid = 0;
             bool numeric = p.find_first_not_of("0123456789") == std::string::npos;
             bool ok = numeric ? parse_decimal(p, 4294967294u, &uid) == Num::ok
                               : p.size() <= 32 && p.front() != '-' && only_name_chars(p);
             if (!ok) {
                 *why = quote(p) + " is neither a user name nor a numeric uid";
                 return false;
             }
         }
         c.handoff_allowed_peers = std::move(peers);
         return true;
     },
     [](const Config &c) { return join(c.handoff_allowed_peers); }},
    {"listen",
     [](Config &c, std::string_view v, std::string *why) {
         std::string host;
         unsigned port = 0;
         if (!v.empty() && !split_listen(v, &host, &port, why)) return false;
         c.listen = std::string(v);
         return true;
     },
     [](const Config &c) { return c.listen; }},
    {"admin_listen",
     [](Config &c, std::string_view v, std::string *why) {
         std::string host;
         unsigned port = 0;
         if (!v.empty() && !split_listen(v, &host, &port, why)) return false;
         c.admin_listen = std::string(v);
         return true;
     },
     [](const Config &c) { return c.admin_listen; }},
    {"topics", [](Config &c, std::string_view v, std::string *why) { return parse_topics(v, &c.topics, why); },
     [](const Config &c) { return join(c.topics); }},
    {"global_room_topics",
     [](Config &c, std::string_view v, std::string *why) { return parse_topics(v, &c.global_room_topics, why); },
     [](const Config &c) { return join(c.global_room_topics); }},
    {"room_field", [](Config &c, std::string_view v, std::string *why) { return non_empty(v, &c.room_field, why); },
     [](const Config &c) { return c.room_field; }},
    {"namespace",
     [](Config &c, std::string_view v, std::string *why) {
         bool ok = !v.empty() && v.front() == '/';
         for (char ch : v) ok = ok && ch > ' ' && ch < 0x7f && ch != ',' && ch != '?' && ch != '#';
         return store_if(ok, v, &c.ns,
                         "a Socket.IO namespace like /psdm_ws (printable ASCII, no ',', '?', '#' or space)", why);
     },
     [](const Config &c) { return c.ns; }},
    {"event",
     [](Config &c, std::string_view v, std::string *why) {
         // Names the Socket.IO client reserves for itself: emitting them makes it throw.
         for (const char *reserved :
              {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}) {
             if (v == reserved) {
                 *why = quote(v) + " is reserved by the Socket.IO client";
                 return false;
             }
         }
         return non_empty(v, &c.event, why);
     },
     [](const Config &c) { return c.event; }},
    {"authz",
     [](Config &c, std::string_view v, std::string *why) {
         bool ok = v == "allow-all" || (v.substr(0, 6) == "file:/" && v.size() > 6);
         for (std::string_view scheme : {"http://", "https://"}) {
             if (v.substr(0, scheme.size()) == scheme) {
                 std::string_view rest = v.substr(scheme.size());
                 ok = !rest.empty() && rest.front() != '/' && rest.front() != '?' && rest.front() != '#' &&
                      v.find_first_of(" \t") == v.npos;
             }
         }
         return store_if(ok, v, &c.authz, "'allow-all', 'file:/ABSOLUTE/PATH', 'http://HOST/...' or 'https://HOST/...'",
                         why);
     },
     [](const Config &c) { return c.authz; }},
    {"max_connections", set_count<&Config::max_connections, 0, SIZE_MAX>, get_number<size_t, &Config::max_connections>},
    {"max_payload", set_size<&Config::max_payload, kConfigMaxPayloadMin, kConfigMaxPayloadMax>,
     get_number<size_t, &Config::max_payload>},
    {"client_backlog", set_size<&Config::client_backlog, 0, SIZE_MAX>, get_number<size_t, &Config::client_backlog>},
    {"ping_interval_ms", set_ms<&Config::ping_interval_ms, kConfigPingMinMs, kConfigPingMaxMs>,
     get_number<unsigned, &Config::ping_interval_ms>},
    {"ping_timeout_ms", set_ms<&Config::ping_timeout_ms, kConfigPingMinMs, kConfigPingMaxMs>,
     get_number<unsigned, &Config::ping_timeout_ms>},
    {"fanout_sends",
     [](Config &c, std::string_view v, std::string *why) {
         return store_if(v == "io_uring" || v == "send", v, &c.fanout_sends, "io_uring or send", why);
     },
     [](const Config &c) { return c.fanout_sends; }},
    {"max_rooms_per_client", set_count<&Config::max_rooms_per_client, kConfigMaxRoomsMin, kConfigMaxRoomsMax>,
     get_number<size_t, &Config::max_rooms_per_client>},
    {"log_level",
     [](Config &c, std::string_view v, std::string *why) {
         LogLevel ignored;
         return store_if(log_level_parse(v, &ignored), v, &c.log_level, "debug, info, notice, warn or error", why);
     },
     [](const Config &c) { return c.log_level; }},
    {"authz_timeout_ms", set_ms<&Config::authz_timeout_ms, kConfigAuthzTimeoutMinMs, kConfigAuthzTimeoutMaxMs>,
     get_number<unsigned, &Config::authz_timeout_ms>},
    {"authz_user_header",
     [](Config &c, std::string_view v, std::string *why) {
         // RFC 7230 token characters: what an HTTP header name may contain.
         bool ok = !v.empty();
         for (char ch : v)
             ok = ok && ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || is_digit(ch) ||
                         std::string_view("!#$%&'*+-.^_`|~").find(ch) != std::string_view::npos);
         return store_if(ok, v, &c.authz_user_header, "an HTTP header name like REMOTE-USER", why);
     },
     [](const Config &c) { return c.authz_user_header; }},
    {"authz_allow_ttl_ms", set_ms<&Config::authz_allow_ttl_ms, kConfigAuthzAllowTtlMinMs, kConfigAuthzTtlMaxMs>,
     get_number<unsigned, &Config::authz_allow_ttl_ms>},
    {"authz_deny_ttl_ms", set_ms<&Config::authz_deny_ttl_ms, 0, kConfigAuthzTtlMaxMs>,
     get_number<unsigned, &Config::authz_deny_ttl_ms>},
    {"shutdown_timeout_ms", set_ms<&Config::shutdown_timeout_ms, 0, kConfigShutdownMaxMs>,
     get_number<unsigned, &Config::shutdown_timeout_ms>},
    {"recovery_window_ms", set_ms<&Config::recovery_window_ms, 0, kConfigRecoveryMaxMs>,
     get_number<unsigned, &Config::recovery_window_ms>},
    {"recovery_max_bytes", set_size<&Config::recovery_max_bytes, 0, SIZE_MAX>,
     get_number<size_t, &Config::recovery_max_bytes>},
    {"recovery_max_records", set_count<&Config::recovery_max_records, 0, SIZE_MAX>,
     get_number<size_t, &Config::recovery_max_records>},
    {"recovery_timeout_ms",
     set_ms<&Config::recovery_timeout_ms, kConfigRecoveryTimeoutMinMs, kConfigRecoveryTimeoutMaxMs>,
     get_number<unsigned, &Config::recovery_timeout_ms>},
    {"authz_max_in_flight", set_count<&Config::authz_max_in_flight, kConfigAuthzInFlightMin, kConfigAuthzInFlightMax>,
     get_number<size_t, &Config::authz_max_in_flight>},
};

// Where a comment starts in `line` at or after `from`: a '#' at the start of the line or
// after a blank (see config.h); npos if none.
size_t comment_at(std::string_view line, size_t from) {
    for (size_t i = from; i < line.size(); ++i)
        if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) return i;
    return std::string_view::npos;
}

// A quoted value: `"` ... `"` with \" and \\ as the only escapes, then only blanks or a comment.
// `q` starts at the opening quote. Returns false and sets *why on a malformed one.
bool unquote(std::string_view q, std::string *out, std::string *why) {
    std::string v;
    size_t i = 1;
    for (; i < q.size() && q[i] != '"'; ++i) {
        if (q[i] == '\\') {
            if (i + 1 == q.size() || (q[i + 1] != '"' && q[i + 1] != '\\')) {
                *why = "in a quoted value '\\' must be followed by '\"' or '\\', got " + quote(q);
                return false;
            }
            ++i;
        }
        v += q[i];
    }
    if (i == q.size()) {
        *why = "the quoted value " + quote(q) + " has no closing '\"'";
        return false;
    }
    std::string_view rest = trim(q.substr(i + 1));
    if (!rest.empty() && rest.front() != '#') {
        *why = "unexpected text after the closing '\"' of " + quote(q);
        return false;
    }
    *out = std::move(v);
    return true;
}

enum class Line { blank, entry, bad };

// One file line (without its line end): a blank or comment line, or `key = value` with the
// value unquoted or stripped of its comment and trimmed (see config.h). *why on bad.
Line split_line(std::string_view line, std::string_view *key, std::string *value, std::string *why) {
    const size_t eq = line.find('=');
    const size_t comment = comment_at(line, 0);
    if (eq == std::string_view::npos || comment < eq) {  // no '=' before any comment
        std::string_view rest = trim(line.substr(0, comment));
        if (rest.empty()) return Line::blank;
        *why = "expected 'key = value', got " + quote(rest);
        return Line::bad;
    }
    *key = trim(line.substr(0, eq));
    if (key->empty()) {
        *why = "expected 'key = value', got " + quote(trim(line.substr(0, comment)));
        return Line::bad;
    }
    std::string_view v = line.substr(eq + 1);
    const size_t lead = v.find_first_not_of(" \t");
    if (lead != std::string_view::npos && v[lead] == '"') {
        if (!unquote(v.substr(lead), value, why)) {
            *why = key_text(*key) + ": " + *why;
            return Line::bad;
        }
        return Line::entry;
    }
    const size_t vc = comment_at(line, eq + 1);
    *value = std::string(trim(vc == std::string_view::npos ? v : line.substr(eq + 1, vc - eq - 1)));
    return Line::entry;
}

// True if `v`, written bare after "key = ", would not read back as itself: it has blanks at
// either end, starts with '"', or holds a '#' at its start or after a blank.
bool needs_quotes(std::string_view v) {
    if (v.empty()) return false;
    const auto blank = [](char ch) { return ch == ' ' || ch == '\t'; };
    return blank(v.front()) || blank(v.back()) || v.front() == '"' || comment_at(v, 0) != std::string_view::npos;
}

// `v` as the file syntax writes it: bare when it reads back as itself, else quoted.
std::string file_value(std::string_view v) {
    if (!needs_quotes(v)) return std::string(v);
    std::string q = "\"";
    for (char ch : v) {
        if (ch == '"' || ch == '\\') q += '\\';
        q += ch;
    }
    return q + '"';
}

// One parse: the Config being built and where each key was set, for messages.
class Parser {
 public:
    Parser(std::string_view source, ConfigError *err) : source_(source), err_(err) { config_.source = source_; }

    bool file(std::string_view text) {
        if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
        size_t line_no = 0;
        while (!text.empty()) {
            ++line_no;
            size_t nl = text.find('\n');
            std::string_view line = text.substr(0, nl);
            text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
            std::string loc = source_ + ":" + std::to_string(line_no);

            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            if (!check_chars(line, loc)) return false;
            std::string_view key;
            std::string value, why;
            switch (split_line(line, &key, &value, &why)) {
            case Line::blank: continue;
            case Line::bad: return fail(loc, why);
            case Line::entry: break;
            }
            std::string key_s(key);
            auto seen = file_lines_.find(key_s);
            if (seen != file_lines_.end())
                return fail(loc, key_text(key_s) + ": already set at line " + std::to_string(seen->second));
            file_lines_[key_s] = line_no;
            if (!set(key_s, value, loc)) return false;
        }
        return true;
    }

    bool option(std::string_view kv) {
        const std::string loc = "-o";
        if (!check_chars(kv, loc)) return false;
        size_t eq = kv.find('=');
        std::string key(trim(kv.substr(0, eq)));
        if (eq == std::string_view::npos || key.empty()) return fail(loc, "expected key=value, got " + quote(kv));
        if (!override_keys_.insert(key).second) return fail(loc, key_text(key) + ": given twice");
        return set(key, trim(kv.substr(eq + 1)), loc);
    }

    bool finish(Config *out) {
        const Config &c = config_;
        if (c.authz.empty())
            return fail(source_,
                        "authz: not set: write 'authz = allow-all' explicitly to allow every "
                        "user into every room");
        if (c.handoff_socket.empty() && c.listen.empty())
            return fail(source_,
                        "handoff_socket, listen: nothing to listen on: set 'handoff_socket' (connections handed "
                        "over by the Apache module) and/or 'listen' (direct WebSocket connections)");
        if (c.topics.empty())
            return fail(where("topics"),
                        "topics: not set: list the Kafka topics to consume, "
                        "e.g. 'topics = experiments, runs'");
        if (!c.handoff_socket.empty() && c.handoff_allowed_peers.empty())
            return fail(where("handoff_allowed_peers"),
                        "handoff_allowed_peers: empty while 'handoff_socket' is set: no process "
                        "could hand connections over");
        if (!c.admin_listen.empty() && !c.listen.empty() && same_listener(c.admin_listen, c.listen))
            return fail(where("admin_listen"), "admin_listen: " + quote(c.admin_listen) + " is the port of 'listen' (" +
                                                   quote(c.listen) +
                                                   "): the admin port must be a port of its own, never the clients'");
        if (c.client_backlog < c.max_payload) {
            const char *blamed = locations_.count("client_backlog") ? "client_backlog" : "max_payload";
            return fail(where(blamed), std::string(blamed) + ": client_backlog (" + size_text(c.client_backlog) +
                                           ") must be at least max_payload (" + size_text(c.max_payload) +
                                           "): a client must be able to queue one full message");
        }
        config_.locations = locations_;
        *out = std::move(config_);
        return true;
    }

 private:
    bool fail(const std::string &loc, const std::string &msg) {
        err_->message = loc + ": " + msg;
        return false;
    }

    std::string where(const std::string &key) const {
        auto it = locations_.find(key);
        return it == locations_.end() ? source_ : it->second;
    }

    bool check_chars(std::string_view s, const std::string &loc) {
        for (char ch : s) {
            auto u = static_cast<unsigned char>(ch);
            if ((u < 0x20 && ch != '\t') || u == 0x7f) {
                char hex[8];
                snprintf(hex, sizeof hex, "0x%02x", u);
                return fail(loc, std::string("control character ") + hex + " is not allowed");
            }
        }
        return true;
    }

    bool set(const std::string &key, std::string_view value, const std::string &loc) {
        locations_[key] = loc;
        if (key.compare(0, 6, "kafka.") == 0) {
            if (key.size() == 6) return fail(loc, "kafka.: missing the librdkafka property name");
            if (!only_name_chars(std::string_view(key).substr(6)))
                return fail(loc, key_text(key) + ": not a librdkafka property name (a-z A-Z 0-9 . _ -)");
            config_.kafka[key.substr(6)] = std::string(value);
            return true;
        }
        for (const Key &k : kKeys) {
            if (key != k.name) continue;
            std::string why;
            if (!k.set(config_, value, &why)) return fail(loc, key + ": " + why);
            return true;
        }
        return fail(loc, key_text(key) + ": unknown key");
    }

    std::string source_;
    ConfigError *err_;
    Config config_;
    std::map<std::string, size_t> file_lines_;      // key -> line in the file (duplicates)
    std::set<std::string> override_keys_;           // keys given with -o (duplicates)
    std::map<std::string, std::string> locations_;  // key -> last "FILE:LINE" or "-o"
};

bool is_sensitive(const std::string &name) {
    std::string lower;
    for (char ch : name) lower += static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
    return lower.find("password") != std::string::npos || lower.find("secret") != std::string::npos ||
           lower == "ssl.key.pem" || lower == "sasl.oauthbearer.config";
}

}  // namespace

bool kafka_topic_name_ok(std::string_view t) {
    return !t.empty() && t.size() <= kMaxKafkaTopicName && t != "." && t != ".." && only_name_chars(t);
}

bool config_parse(std::string_view text, std::string_view source, const std::vector<std::string> &overrides,
                  Config *out, ConfigError *err) {
    try {
        Parser p(source, err);
        if (!p.file(text)) return false;
        for (const std::string &o : overrides)
            if (!p.option(o)) return false;
        return p.finish(out);
    } catch (const std::exception &e) {
        err->message = std::string(source) + ": " + e.what();
        return false;
    }
}

bool config_load(const std::string &path, const std::vector<std::string> &overrides, Config *out, ConfigError *err) {
    try {
        std::string text;
        if (int e = read_small_file(path, kMaxFileSize, &text)) {
            err->message = read_small_file_error("config file", path, e, kMaxFileSize);
            return false;
        }
        return config_parse(text, path, overrides, out, err);
    } catch (const std::exception &ex) {
        err->message = "cannot read config file " + quote(path) + ": " + ex.what();
        return false;
    }
}

std::string config_dump(const Config &c) {
    std::string s;
    auto line = [&s](const std::string &key, const std::string &value) {
        s.append(key).append(value.empty() ? " =" : " = ").append(file_value(value)).append("\n");
    };
    for (const Key &k : kKeys) line(k.name, k.get(c));
    for (const auto &[name, value] : c.kafka) line("kafka." + name, is_sensitive(name) ? "***" : value);
    return s;
}

std::string config_where(const Config &c, const std::string &key) {
    auto it = c.locations.find(key);
    return it == c.locations.end() ? c.source : it->second;
}

std::string config_problem(const Config &c, const std::string &key, const std::string &reason) {
    return config_where(c, key) + ": " + key + ": " + reason;
}

bool config_listen_split(std::string_view listen, std::string *host, unsigned *port) {
    try {
        std::string why;
        return split_listen(listen, host, port, &why);
    } catch (const std::exception &) {
        return false;
    }
}

}  // namespace psdm

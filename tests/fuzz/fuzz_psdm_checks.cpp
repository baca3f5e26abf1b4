// libFuzzer target for the Apache module's request checks (mod_psdm_socket/psdm_checks.h):
// what the module makes of the client's request (method, Upgrade, Connection,
// Sec-WebSocket-*, the Socket.IO path and query, Origin) and of the identity it is given
// (PsdmSocketUser, PsdmSocketGroups) before anything reaches the worker. psdm_checks.c is
// compiled into the target (the module's own copy is never instrumented).
// Built by CMake with -DPSDM_FUZZ=ON; run with `make fuzz` (README, "Fuzzing").
//
// Input: NUL-separated strings, in order: method, Upgrade, Connection,
// Sec-WebSocket-Version, Sec-WebSocket-Key, path, query, Origin, user, realms stripped
// (space-separated), groups, the site's scheme, its hosts (space-separated), its port, the
// local port, then up to 8 allowed origins (PsdmSocketAllowOrigin). A string the input does
// not reach is an absent header (NULL).
// Checks, beyond the sanitizers:
//   - psdm_user_normalize: the name is the input, less one trailing "@REALM" of a stripped
//     realm; 0 exactly for no name; -1 exactly for a name too long for cap or 256 bytes, with
//     a control character, or with a blank at either end;
//   - psdm_groups_split: the groups are the runs between ",; \t", in order; -1 exactly for
//     more than max runs, a run of 256 bytes or more, or a control character;
//   - psdm_upgrade_check: the verdict is the first failing check of RFC 6455 4.2.1 (a token
//     of a comma list, blanks trimmed, any case; a key that is the base64 of 16 bytes);
//   - psdm_sio_check agrees with the worker itself: the path rule, and for a query without
//     escapes ('%', '+', ';') the verdict of the worker's parse_handshake_query
//     (worker/sio) on the query as the worker's query_of joins it; only '%' makes bad_query;
//   - psdm_origin_allowed: no Origin is allowed, "*" allows all, an invalid origin nothing
//     else; a list allows what one of its entries allows, symmetrically; an entry allows
//     what the site rule allows for a site of just that scheme, host and port; the site
//     rule allows what one of its hosts allows, and "*" every host on its scheme and ports;
//     blind to ASCII case and to a spelled-out default port.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <strings.h>

#include "fuzz_check.h"
#include "psdm_checks.h"
#include "sio/sio_codec.h"

namespace {

enum Field {
    kMethod,
    kUpgrade,
    kConnection,
    kVersion,
    kKey,
    kPath,
    kQuery,
    kOrigin,
    kUser,
    kRealms,
    kGroups,
    kSiteScheme,
    kSiteHosts,
    kSitePort,
    kLocalPort,
    kFields
};
constexpr size_t kMaxAllowed = 8;
constexpr size_t kMaxInput = 8192;
constexpr int kMaxGroups = 64;

bool is_ctl(char ch) { return static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f; }
bool is_blank(char ch) { return ch == ' ' || ch == '\t'; }
bool is_sep(char ch) { return ch == ',' || ch == ';' || is_blank(ch); }
bool ends_with(std::string_view s, std::string_view tail) {
    return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

std::vector<std::string> words(const char *s) {
    std::vector<std::string> out;
    for (std::string_view v = s ? s : ""; !v.empty() && out.size() < kMaxAllowed;) {
        const size_t sp = v.find(' ');
        out.emplace_back(v.substr(0, sp));
        v = sp == std::string_view::npos ? std::string_view() : v.substr(sp + 1);
    }
    return out;
}

std::vector<const char *> c_strs(const std::vector<std::string> &v) {
    std::vector<const char *> out;
    for (const std::string &s : v) out.push_back(s.c_str());
    return out;
}

void check_user(const char *raw, const std::vector<const char *> &realms, size_t cap) {
    char out[PSDM_MAX_NAME + 2];
    const int r = psdm_user_normalize(raw, realms.data(), realms.size(), out, cap);
    if (raw == nullptr) {
        CHECK(r == 0);
        return;
    }
    std::string_view name(raw);
    const size_t at = name.rfind('@');
    for (const char *realm : realms) {
        if (at != std::string_view::npos && name.substr(at + 1) == realm) {
            name = name.substr(0, at);
            break;
        }
    }
    bool bad = name.size() >= cap || name.size() > PSDM_MAX_NAME;
    bad = bad || (!name.empty() && (is_blank(name.front()) || is_blank(name.back())));
    for (const char ch : name) bad = bad || is_ctl(ch);
    if (name.empty()) {
        CHECK(r == 0);
    } else if (bad) {
        CHECK(r == -1);
    } else {
        CHECK(r == static_cast<int>(name.size()) && name == out);
    }
}

void check_groups(const char *list, int max) {
    static char out[kMaxGroups][PSDM_MAX_NAME];
    const int n = psdm_groups_split(list, out, max);
    const std::string_view p = list ? list : "";
    int runs = 0;
    bool bad = false;
    for (size_t i = 0; i < p.size();) {
        if (is_sep(p[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < p.size() && !is_sep(p[j])) bad = is_ctl(p[j++]) || bad;
        bad = bad || j - i >= PSDM_MAX_NAME || runs == max;
        if (!bad && n >= 0) CHECK(runs < n && p.substr(i, j - i) == out[runs]);
        runs++;
        i = j;
    }
    CHECK(n == (bad ? -1 : runs));
}

// Is `token` an element of the comma list `value` (elements trimmed of blanks, any case)?
bool list_has(std::string_view value, std::string_view token) {
    for (;;) {
        const size_t comma = value.find(',');
        std::string_view e = value.substr(0, comma);
        while (!e.empty() && is_blank(e.front())) e.remove_prefix(1);
        while (!e.empty() && is_blank(e.back())) e.remove_suffix(1);
        if (e.size() == token.size() && strncasecmp(e.data(), token.data(), e.size()) == 0) return true;
        if (comma == std::string_view::npos) return false;
        value.remove_prefix(comma + 1);
    }
}

int b64(char c) {
    const char *digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *at = c != '\0' ? std::strchr(digits, c) : nullptr;
    return at ? static_cast<int>(at - digits) : -1;
}

// 16 bytes in canonical base64: 22 digits, the last with its low 4 bits zero, then "==".
bool ws_key_ok(std::string_view k) {
    if (k.size() != 24 || k.substr(22) != "==") return false;
    for (size_t i = 0; i < 22; i++)
        if (b64(k[i]) < 0) return false;
    return (b64(k[21]) & 0x0f) == 0;
}

void check_upgrade(const char *const *f) {
    const psdm_upgrade_verdict v = psdm_upgrade_check(f[kMethod], f[kUpgrade], f[kConnection], f[kVersion], f[kKey]);
    psdm_upgrade_verdict want = PSDM_UPGRADE_OK;
    if (!f[kMethod] || std::strcmp(f[kMethod], "GET") != 0) {
        want = PSDM_UPGRADE_NOT_GET;
    } else if (!f[kUpgrade] || !list_has(f[kUpgrade], "websocket")) {
        want = PSDM_UPGRADE_NO_UPGRADE;
    } else if (!f[kConnection] || !list_has(f[kConnection], "upgrade")) {
        want = PSDM_UPGRADE_NO_CONNECTION;
    } else if (!f[kVersion] || std::strcmp(f[kVersion], "13") != 0) {
        want = PSDM_UPGRADE_BAD_VERSION;
    } else if (!f[kKey] || !ws_key_ok(f[kKey])) {
        want = PSDM_UPGRADE_BAD_KEY;
    }
    CHECK(v == want);
    const char *text = psdm_upgrade_verdict_text(v);
    CHECK(text != nullptr && text[0] != '\0');
}

void check_sio(const char *path, const char *query) {
    const psdm_upgrade_verdict v = psdm_sio_check(path, query);
    const char *text = psdm_upgrade_verdict_text(v);
    CHECK(text != nullptr && text[0] != '\0');
    CHECK(v == PSDM_UPGRADE_OK || v >= PSDM_UPGRADE_BAD_PATH);
    const std::string_view p = path ? path : "", q = query ? query : "";
    if (!ends_with(p, "/socket.io/") && !ends_with(p, "/socket.io")) {
        CHECK(v == PSDM_UPGRADE_BAD_PATH);
        return;
    }
    CHECK(v != PSDM_UPGRADE_BAD_PATH);
    if (v == PSDM_UPGRADE_BAD_QUERY) CHECK(q.find('%') != std::string_view::npos);
    if (q.find_first_of("%+;") != std::string_view::npos) return;
    // Without escapes libwebsockets' fragments are the '&' pieces; query_of joins the first 16.
    std::string joined;
    size_t pieces = 0;
    for (std::string_view rest = q;; ++pieces) {
        const size_t amp = rest.find('&');
        const std::string_view piece = rest.substr(0, amp);
        if (pieces == 16 || piece.size() >= 200) return;  // past what both read whole
        if (!joined.empty()) joined += '&';
        joined.append(piece);
        if (amp == std::string_view::npos) break;
        rest.remove_prefix(amp + 1);
    }
    const psdm::HandshakeQuery hq = psdm::parse_handshake_query(joined);
    const psdm_upgrade_verdict want = hq.ok          ? PSDM_UPGRADE_OK
                                      : hq.code == 0 ? PSDM_UPGRADE_BAD_TRANSPORT
                                      : hq.code == 5 ? PSDM_UPGRADE_BAD_EIO
                                      : hq.code == 1 ? PSDM_UPGRADE_HAS_SID
                                                     : PSDM_UPGRADE_BAD_QUERY;
    CHECK(v == want);
}

// The parts of an origin psdm_origin_valid accepted.
struct Parts {
    bool https = false;
    std::string host;
    unsigned port = 0;
    bool explicit_port = false;
};

Parts parts_of(std::string_view o) {
    Parts r;
    r.https = strncasecmp(o.data(), "https://", 8) == 0;
    o.remove_prefix(r.https ? 8 : 7);
    const size_t colon = o.find(':', o[0] == '[' ? o.find(']') : 0);
    r.host = std::string(o.substr(0, colon));
    r.explicit_port = colon != std::string_view::npos;
    r.port = r.explicit_port ? static_cast<unsigned>(std::atoi(std::string(o.substr(colon + 1)).c_str()))
                             : (r.https ? 443 : 80);
    return r;
}

int allowed_by(const char *origin, const char *entry) {
    const char *list[1] = {entry};
    return psdm_origin_allowed(origin, list, 1, nullptr);
}

int allowed_by_site(const char *origin, const char *scheme, const char *host, unsigned port, unsigned local) {
    const char *hosts[1] = {host};
    const psdm_site site = {scheme, hosts, 1, port, local};
    return psdm_origin_allowed(origin, nullptr, 0, &site);
}

void check_origin(const char *o, const std::vector<const char *> &allowed, const psdm_site &site) {
    const int r = psdm_origin_allowed(o, allowed.data(), allowed.size(), &site);
    CHECK(r == 0 || r == 1);
    if (o == nullptr) {
        CHECK(r == 1);
        return;
    }
    bool star = false;
    for (const char *a : allowed) star = star || std::strcmp(a, "*") == 0;
    const bool valid = psdm_origin_valid(o) == 1;
    if (star || !valid) {
        CHECK(r == (star ? 1 : 0));
        return;
    }
    const Parts op = parts_of(o);
    if (!allowed.empty()) {
        int any = 0;
        for (const char *a : allowed) {
            const int one = allowed_by(o, a);
            any = any || one;
            CHECK(allowed_by(a, o) == one);
            if (psdm_origin_valid(a) == 1) {
                const Parts ap = parts_of(a);
                CHECK(allowed_by_site(o, ap.https ? "https" : "http", ap.host.c_str(), ap.port, 0) == one);
            } else {
                CHECK(one == 0);
            }
        }
        CHECK(r == any);
    } else {
        int any = 0;
        for (size_t i = 0; i < site.nhosts; i++) {
            any = any || allowed_by_site(o, site.scheme, site.hosts[i], site.port, site.local_port);
        }
        CHECK(r == any);
        const bool https = site.scheme && strcasecmp(site.scheme, "https") == 0;
        const bool port_ok = site.port ? op.port == site.port
                                       : op.port == (https ? 443u : 80u) || op.port == site.local_port;
        CHECK(allowed_by_site(o, site.scheme, "*", site.port, site.local_port) == (op.https == https && port_ok));
    }
    // Blind to ASCII case and to a default port written out.
    std::string other(o);
    for (char &ch : other) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    CHECK(psdm_origin_allowed(other.c_str(), allowed.data(), allowed.size(), &site) == r);
    if (!op.explicit_port) {
        other = std::string(o) + (op.https ? ":443" : ":80");
        CHECK(psdm_origin_allowed(other.c_str(), allowed.data(), allowed.size(), &site) == r);
    }
}

unsigned port_of(const char *s) {
    if (s == nullptr || std::strlen(s) > 5 || std::strspn(s, "0123456789") != std::strlen(s)) return 0;
    const unsigned long p = std::strtoul(s, nullptr, 10);
    return p <= 65535 ? static_cast<unsigned>(p) : 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char text[kMaxInput + 1];
    if (size > kMaxInput) return 0;
    std::memcpy(text, data, size);
    text[size] = '\0';
    const char *f[kFields + kMaxAllowed] = {};
    size_t nf = 0;
    for (size_t at = 0; at <= size && nf < kFields + kMaxAllowed; at += std::strlen(text + at) + 1) f[nf++] = text + at;

    const std::vector<std::string> realms = words(f[kRealms]), hosts = words(f[kSiteHosts]);
    const std::vector<const char *> realm_ptrs = c_strs(realms), host_ptrs = c_strs(hosts);
    check_user(f[kUser], realm_ptrs, PSDM_MAX_NAME + 2);
    if (f[kUser]) check_user(f[kUser], realm_ptrs, std::strlen(f[kUser]) % (PSDM_MAX_NAME + 2) + 1);
    check_groups(f[kGroups], static_cast<int>(size % 9));
    check_groups(f[kGroups], kMaxGroups);
    check_upgrade(f);
    check_sio(f[kPath], f[kQuery]);

    const psdm_site site = {f[kSiteScheme], host_ptrs.data(), host_ptrs.size(), port_of(f[kSitePort]),
                            port_of(f[kLocalPort])};
    std::vector<const char *> allowed;
    for (size_t i = kFields; i < nf; i++) allowed.push_back(f[i]);
    check_origin(f[kOrigin], allowed, site);
    return 0;
}

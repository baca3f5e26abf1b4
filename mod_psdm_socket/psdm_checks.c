#include "psdm_checks.h"

#include <string.h>
#include <strings.h>

static int is_blank(unsigned char c) { return c == ' ' || c == '\t'; }
static int is_control(unsigned char c) { return c < 0x20 || c == 0x7f; }
static unsigned char ascii_lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c; }

/* Does p[0..n) equal the string lit? */
static int span_is(const char *p, size_t n, const char *lit) { return strlen(lit) == n && memcmp(p, lit, n) == 0; }

static int ends_with(const char *s, size_t n, const char *suffix) {
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

int psdm_user_normalize(const char *raw, const char *const *realms, size_t nrealms, char *out, size_t cap) {
    if (!raw) return 0;
    size_t len = strlen(raw);
    const char *at = strrchr(raw, '@'); /* a realm has no '@': only the last one can start it */
    for (size_t i = 0; at && i < nrealms; i++) {
        if (strcmp(at + 1, realms[i]) == 0) {
            len = (size_t)(at - raw);
            break;
        }
    }
    if (len == 0) return 0;
    if (len >= cap || len > PSDM_MAX_NAME) return -1;
    if (is_blank((unsigned char)raw[0]) || is_blank((unsigned char)raw[len - 1])) return -1;
    for (size_t i = 0; i < len; i++)
        if (is_control((unsigned char)raw[i])) return -1;
    memcpy(out, raw, len);
    out[len] = '\0';
    return (int)len;
}

/* Does the comma-separated header value contain `token` (case-insensitive)? */
static int header_has_token(const char *value, const char *token) {
    size_t tlen = strlen(token);
    const char *p = value;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        const char *start = p;
        while (*p && *p != ',') p++;
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t')) end--;
        if ((size_t)(end - start) == tlen && strncasecmp(start, token, tlen) == 0) return 1;
    }
    return 0;
}

/* The value of a base64 digit (RFC 4648 section 4), -1 for anything else. */
static int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* 16 bytes in canonical base64: 22 digits, the last carrying 2 bits (its low 4 zero), "==". */
static int is_ws_key(const char *key) {
    if (strlen(key) != 24 || key[22] != '=' || key[23] != '=') return 0;
    for (size_t i = 0; i < 22; i++)
        if (b64_value((unsigned char)key[i]) < 0) return 0;
    return (b64_value((unsigned char)key[21]) & 0x0f) == 0;
}

psdm_upgrade_verdict psdm_upgrade_check(const char *method, const char *upgrade, const char *connection,
                                        const char *ws_version, const char *ws_key) {
    if (!method || strcmp(method, "GET") != 0) return PSDM_UPGRADE_NOT_GET;
    if (!upgrade || !header_has_token(upgrade, "websocket")) return PSDM_UPGRADE_NO_UPGRADE;
    if (!connection || !header_has_token(connection, "upgrade")) return PSDM_UPGRADE_NO_CONNECTION;
    if (!ws_version || strcmp(ws_version, "13") != 0) return PSDM_UPGRADE_BAD_VERSION;
    if (!ws_key || !is_ws_key(ws_key)) return PSDM_UPGRADE_BAD_KEY;
    return PSDM_UPGRADE_OK;
}

const char *psdm_upgrade_verdict_text(psdm_upgrade_verdict v) {
    switch (v) {
    case PSDM_UPGRADE_OK: return "WebSocket upgrade";
    case PSDM_UPGRADE_NOT_GET: return "not a WebSocket upgrade (method is not GET)";
    case PSDM_UPGRADE_NO_UPGRADE: return "not a WebSocket upgrade (expected 'Upgrade: websocket')";
    case PSDM_UPGRADE_NO_CONNECTION: return "not a WebSocket upgrade (expected 'Connection: Upgrade')";
    case PSDM_UPGRADE_BAD_VERSION: return "unsupported WebSocket version (expected 'Sec-WebSocket-Version: 13')";
    case PSDM_UPGRADE_BAD_KEY: return "bad WebSocket handshake (Sec-WebSocket-Key is not the base64 of 16 bytes)";
    case PSDM_UPGRADE_BAD_PATH: return "not a Socket.IO endpoint (the path must end in /socket.io/)";
    case PSDM_UPGRADE_BAD_QUERY: return "bad Socket.IO handshake (malformed %-escape in the query)";
    case PSDM_UPGRADE_BAD_TRANSPORT: return "Socket.IO transport unknown (expected transport=websocket)";
    case PSDM_UPGRADE_BAD_EIO: return "unsupported Engine.IO version (expected EIO=3 or EIO=4)";
    case PSDM_UPGRADE_HAS_SID: return "Socket.IO session id unknown (a websocket handshake has no sid)";
    }
    return "bad WebSocket handshake";
}

/* ---- the worker's Socket.IO handshake rules ---------------------------------------- */

#define SIO_MAX_PARAMS 16 /* query_of reads this many parameters at most */
#define SIO_PARAM_BUF 256 /* ... each shorter than this; a longer one ends the query */

static int hex_value(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = ascii_lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* One parameter p[0..n) (between '&' or ';') decoded as libwebsockets does, into out
 * (SIO_PARAM_BUF bytes). Returns its length, -1 for an escape libwebsockets would
 * refuse (or one for a control byte), -2 if it is too long for query_of. */
static int sio_decode_param(const char *p, size_t n, char *out) {
    size_t k = 0;
    int seen_eq = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        int encoded = c == '%';
        if (encoded) {
            if (i + 2 >= n || hex_value((unsigned char)p[i + 1]) < 0 || hex_value((unsigned char)p[i + 2]) < 0)
                return -1;
            c = (unsigned char)(hex_value((unsigned char)p[i + 1]) << 4 | hex_value((unsigned char)p[i + 2]));
            i += 2;
            if (is_control(c)) return -1;
        } else if (c == '+') {
            c = ' ';
        }
        if (c == '=' && encoded && !seen_eq) c = '_';
        if (c == '=' && !encoded) seen_eq = 1;
        if (k == SIO_PARAM_BUF - 1) return -2;
        out[k++] = (char)c;
    }
    return (int)k;
}

/* What parse_handshake_query has found so far: the first EIO and transport, any sid. */
typedef struct {
    const char *eio, *transport;
    size_t eio_len, transport_len;
    int sid;
} sio_params;

/* parse_handshake_query's loop over s[0..n): pairs split at '&', key before the first '='. */
static void sio_read_pairs(const char *s, size_t n, sio_params *sp) {
    while (n > 0) {
        const char *amp = memchr(s, '&', n);
        size_t plen = amp ? (size_t)(amp - s) : n;
        const char *eq = memchr(s, '=', plen);
        size_t klen = eq ? (size_t)(eq - s) : plen;
        const char *value = eq ? eq + 1 : s + plen;
        size_t vlen = (size_t)(s + plen - value);
        if (span_is(s, klen, "EIO") && !sp->eio) {
            sp->eio = value;
            sp->eio_len = vlen;
        } else if (span_is(s, klen, "transport") && !sp->transport) {
            sp->transport = value;
            sp->transport_len = vlen;
        } else if (span_is(s, klen, "sid")) {
            sp->sid = 1;
        }
        n -= amp ? plen + 1 : plen;
        s += amp ? plen + 1 : plen;
    }
}

psdm_upgrade_verdict psdm_sio_check(const char *path, const char *query) {
    const char *p = path ? path : "";
    if (!ends_with(p, strlen(p), "/socket.io/") && !ends_with(p, strlen(p), "/socket.io")) return PSDM_UPGRADE_BAD_PATH;
    /* The decoded parameters live here: the values sio_params points to stay put. */
    char params[SIO_MAX_PARAMS][SIO_PARAM_BUF];
    sio_params sp = {NULL, NULL, 0, 0, 0};
    const char *q = query ? query : "";
    int nread = 0, reading = 1, joined_empty = 1;
    for (;;) {
        size_t n = strcspn(q, "&;");
        char scratch[SIO_PARAM_BUF];
        char *out = reading && nread < SIO_MAX_PARAMS ? params[nread] : scratch;
        int k = sio_decode_param(q, n, out);
        if (k == -1) return PSDM_UPGRADE_BAD_QUERY; /* libwebsockets refuses the whole request */
        if (k == -2 || nread == SIO_MAX_PARAMS) reading = 0;
        if (reading) {
            const char *s = out;
            size_t len = (size_t)k;
            if (joined_empty && len > 0 && s[0] == '?') s++, len--; /* a leading '?' is tolerated */
            if (k > 0) joined_empty = 0;
            sio_read_pairs(s, len, &sp);
            nread++;
        }
        if (!q[n]) break;
        q += n + 1;
    }
    if (!sp.transport || !span_is(sp.transport, sp.transport_len, "websocket")) return PSDM_UPGRADE_BAD_TRANSPORT;
    if (!sp.eio || !(span_is(sp.eio, sp.eio_len, "3") || span_is(sp.eio, sp.eio_len, "4"))) return PSDM_UPGRADE_BAD_EIO;
    if (sp.sid) return PSDM_UPGRADE_HAS_SID;
    return PSDM_UPGRADE_OK;
}

/* ---- Origin ------------------------------------------------------------------------- */

typedef struct {
    int https;
    const char *host;
    size_t host_len;
    unsigned port; /* the scheme's default when the origin names none */
} origin_parts;

static int is_host_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_';
}

/* "http[s]://host[:port]" with host a DNS name, an IPv4 address or "[IPv6]"; nothing after. */
static int origin_parse(const char *s, origin_parts *o) {
    if (strncasecmp(s, "http://", 7) == 0) {
        o->https = 0;
        s += 7;
    } else if (strncasecmp(s, "https://", 8) == 0) {
        o->https = 1;
        s += 8;
    } else {
        return 0;
    }
    o->host = s;
    if (*s == '[') {
        s += 1 + strspn(s + 1, "0123456789abcdefABCDEF:.");
        if (*s++ != ']') return 0;
    } else {
        while (is_host_char((unsigned char)*s)) s++;
    }
    o->host_len = (size_t)(s - o->host);
    if (o->host_len == 0) return 0;
    o->port = o->https ? 443 : 80;
    if (*s == ':') {
        size_t digits = strspn(++s, "0123456789");
        if (digits == 0 || digits > 5) return 0;
        unsigned port = 0;
        for (size_t i = 0; i < digits; i++) port = port * 10 + (unsigned)(s[i] - '0');
        if (port == 0 || port > 65535) return 0;
        o->port = port;
        s += digits;
    }
    return *s == '\0';
}

int psdm_origin_valid(const char *s) {
    origin_parts o;
    return s && origin_parse(s, &o);
}

/* Does host h[0..n) match pattern pat ('*' any run, '?' one character), ignoring case? */
static int host_matches(const char *pat, const char *h, size_t n) {
    const char *star = NULL;
    size_t i = 0, star_i = 0;
    while (i < n) {
        if (*pat == '*') {
            star = pat++;
            star_i = i;
        } else if (*pat && (*pat == '?' || ascii_lower((unsigned char)*pat) == ascii_lower((unsigned char)h[i]))) {
            pat++;
            i++;
        } else if (star) {
            pat = star + 1;
            i = ++star_i;
        } else {
            return 0;
        }
    }
    while (*pat == '*') pat++;
    return *pat == '\0';
}

static int origin_is_site(const origin_parts *o, const psdm_site *site) {
    int https = site->scheme && strcasecmp(site->scheme, "https") == 0;
    if (o->https != https) return 0;
    int port_ok = site->port ? o->port == site->port : o->port == (https ? 443u : 80u) || o->port == site->local_port;
    if (!port_ok) return 0;
    for (size_t i = 0; i < site->nhosts; i++)
        if (site->hosts[i] && host_matches(site->hosts[i], o->host, o->host_len)) return 1;
    return 0;
}

int psdm_origin_allowed(const char *origin, const char *const *allowed, size_t n, const psdm_site *site) {
    if (!origin) return 1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(allowed[i], "*") == 0) return 1;
    origin_parts o, a;
    if (!origin_parse(origin, &o)) return 0;
    if (n == 0) return site && origin_is_site(&o, site);
    for (size_t i = 0; i < n; i++) {
        if (origin_parse(allowed[i], &a) && a.https == o.https && a.port == o.port && a.host_len == o.host_len &&
            strncasecmp(a.host, o.host, o.host_len) == 0)
            return 1;
    }
    return 0;
}

int psdm_groups_split(const char *list, char out[][PSDM_MAX_NAME], int max) {
    int n = 0;
    const char *p = list ? list : "";
    for (;;) {
        p += strspn(p, ",; \t");
        if (!*p) return n;
        size_t len = strcspn(p, ",; \t");
        if (n == max || len >= PSDM_MAX_NAME) return -1;
        for (size_t i = 0; i < len; i++)
            if (is_control((unsigned char)p[i])) return -1;
        memcpy(out[n], p, len);
        out[n][len] = '\0';
        n++;
        p += len;
    }
}

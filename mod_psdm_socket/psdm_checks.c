#include "psdm_checks.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int psdm_user_normalize(const char *raw, char *out, size_t cap) {
    if (!raw) return 0;
    while (*raw == ' ' || *raw == '\t') raw++;
    size_t len = strcspn(raw, "@");
    while (len > 0 && (raw[len - 1] == ' ' || raw[len - 1] == '\t')) len--;
    if (len == 0) return 0;
    if (len >= cap || len > PSDM_MAX_NAME) return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)raw[i];
        if (ch < 0x20 || ch == 0x7f) return -1;
    }
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

static int is_base64_key(const char *key) {
    size_t n = strlen(key);
    if (n != 24 || key[22] != '=' || key[23] != '=') return 0;
    for (size_t i = 0; i < 22; i++) {
        unsigned char ch = (unsigned char)key[i];
        if (!isalnum(ch) && ch != '+' && ch != '/') return 0;
    }
    return 1;
}

psdm_upgrade_verdict psdm_upgrade_check(const char *method, const char *upgrade, const char *connection,
                                        const char *ws_version, const char *ws_key) {
    if (!method || strcmp(method, "GET") != 0) return PSDM_UPGRADE_NOT_GET;
    if (!upgrade || !header_has_token(upgrade, "websocket")) return PSDM_UPGRADE_NO_UPGRADE;
    if (!connection || !header_has_token(connection, "upgrade")) return PSDM_UPGRADE_NO_CONNECTION;
    if (!ws_version || strcmp(ws_version, "13") != 0) return PSDM_UPGRADE_BAD_VERSION;
    if (!ws_key || !is_base64_key(ws_key)) return PSDM_UPGRADE_BAD_KEY;
    return PSDM_UPGRADE_OK;
}

const char *psdm_upgrade_verdict_text(psdm_upgrade_verdict v) {
    switch (v) {
    case PSDM_UPGRADE_OK: return "WebSocket upgrade";
    case PSDM_UPGRADE_NOT_GET: return "not a WebSocket upgrade (method is not GET)";
    case PSDM_UPGRADE_NO_UPGRADE: return "not a WebSocket upgrade (expected 'Upgrade: websocket')";
    case PSDM_UPGRADE_NO_CONNECTION: return "not a WebSocket upgrade (expected 'Connection: Upgrade')";
    case PSDM_UPGRADE_BAD_VERSION: return "unsupported WebSocket version (expected 'Sec-WebSocket-Version: 13')";
    case PSDM_UPGRADE_BAD_KEY: return "bad WebSocket handshake (Sec-WebSocket-Key missing or malformed)";
    }
    return "bad WebSocket handshake";
}

/* The length of origin o without a default port (":80" after http://, ":443" after
 * https://), which browsers omit but configurations may spell out. */
static size_t origin_len_without_default_port(const char *o, size_t len) {
    if (len > 10 && strncasecmp(o, "http://", 7) == 0 && strncmp(o + len - 3, ":80", 3) == 0) return len - 3;
    if (len > 12 && strncasecmp(o, "https://", 8) == 0 && strncmp(o + len - 4, ":443", 4) == 0) return len - 4;
    return len;
}

static int origin_equal(const char *a, size_t alen, const char *b, size_t blen) {
    alen = origin_len_without_default_port(a, alen);
    blen = origin_len_without_default_port(b, blen);
    return alen == blen && strncasecmp(a, b, alen) == 0;
}

int psdm_origin_allowed(const char *origin, const char *const *allowed, size_t n, const char *self_scheme,
                        const char *self_host) {
    if (!origin) return 1;
    size_t olen = strlen(origin);
    if (n == 0) {
        if (!self_scheme || !self_host) return 0;
        char self[600];
        int k = snprintf(self, sizeof self, "%s://%s", self_scheme, self_host);
        if (k < 0 || (size_t)k >= sizeof self) return 0;
        return origin_equal(origin, olen, self, (size_t)k);
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(allowed[i], "*") == 0) return 1;
        if (origin_equal(origin, olen, allowed[i], strlen(allowed[i]))) return 1;
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
        for (size_t i = 0; i < len; i++) {
            unsigned char ch = (unsigned char)p[i];
            if (ch < 0x20 || ch == 0x7f) return -1;
        }
        memcpy(out[n], p, len);
        out[n][len] = '\0';
        n++;
        p += len;
    }
}

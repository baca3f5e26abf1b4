/* handoff_proto: the request codec, the replayed upgrade request and the refusal.
 * The spec is the comment at the top of handoff_proto.h. */
#include "handoff/handoff_proto.h"

#include <stdbool.h>
#include <string.h>

static const unsigned char kReqMagic[4] = {'P', 'S', 'D', 'M'};

/* ---- field rules ---- */

enum charclass {
    CC_TEXT,    /* no control chars */
    CC_TOKEN,   /* no control chars, no space */
    CC_URI,     /* CC_TOKEN and starts with '/' */
    CC_WS_KEY,  /* 22 base64 chars then "==" */
    CC_VERSION, /* exactly "13" */
    CC_BYTES    /* anything */
};

struct field_rule {
    const char *name;
    uint16_t min, max;
    enum charclass cc;
    bool required;
};

/* Indexed by tag; entry 0 unused. Group (tag 2) is checked per element. */
static const struct field_rule kRules[] = {
    [0] = {"unknown", 0, 0, CC_BYTES, false},
    [PSDM_HS_TAG_USER] = {"user", 1, PSDM_HS_MAX_USER, CC_TEXT, true},
    [PSDM_HS_TAG_GROUP] = {"group", 1, PSDM_HS_MAX_USER, CC_TEXT, false},
    [PSDM_HS_TAG_CLIENT_ADDR] = {"client_addr", 1, PSDM_HS_MAX_CLIENT_ADDR, CC_TOKEN, false},
    [PSDM_HS_TAG_HOST] = {"host", 1, PSDM_HS_MAX_HOST, CC_TOKEN, false},
    [PSDM_HS_TAG_URI] = {"uri", 1, PSDM_HS_MAX_URI, CC_URI, true},
    [PSDM_HS_TAG_WS_KEY] = {"ws_key", PSDM_HS_WS_KEY_LEN, PSDM_HS_WS_KEY_LEN, CC_WS_KEY, true},
    [PSDM_HS_TAG_WS_VERSION] = {"ws_version", 2, 2, CC_VERSION, true},
    [PSDM_HS_TAG_ORIGIN] = {"origin", 1, PSDM_HS_MAX_ORIGIN, CC_TEXT, false},
    [PSDM_HS_TAG_WS_PROTOCOL] = {"ws_protocol", 1, PSDM_HS_MAX_WS_PROTOCOL, CC_TEXT, false},
    [PSDM_HS_TAG_WS_EXTENSIONS] = {"ws_extensions", 1, PSDM_HS_MAX_WS_EXTENSIONS, CC_TEXT, false},
    [PSDM_HS_TAG_EARLY_DATA] = {"early_data", 1, PSDM_HS_MAX_EARLY_DATA, CC_BYTES, false},
};
enum { kMaxTag = PSDM_HS_TAG_EARLY_DATA };
_Static_assert(sizeof kRules / sizeof kRules[0] == kMaxTag + 1, "one rule per tag");

/* Every field at its maximum must fit the body limit (so encode never fails for size). */
#define FH PSDM_HS_FIELD_HEADER_LEN
_Static_assert(FH + PSDM_HS_MAX_USER + PSDM_HS_MAX_GROUPS * (FH + PSDM_HS_MAX_USER) + FH + PSDM_HS_MAX_CLIENT_ADDR +
                       FH + PSDM_HS_MAX_HOST + FH + PSDM_HS_MAX_URI + FH + PSDM_HS_WS_KEY_LEN + FH + 2 + FH +
                       PSDM_HS_MAX_ORIGIN + FH + PSDM_HS_MAX_WS_PROTOCOL + FH + PSDM_HS_MAX_WS_EXTENSIONS + FH +
                       PSDM_HS_MAX_EARLY_DATA <=
                   PSDM_HS_MAX_BODY,
               "worst-case request fits PSDM_HS_MAX_BODY");
#undef FH

static bool is_ctl(unsigned char c) { return c < 0x20 || c == 0x7f; }

static bool is_b64(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

static bool content_ok(enum charclass cc, const unsigned char *p, size_t n) {
    switch (cc) {
    case CC_BYTES: return true;
    case CC_TEXT:
        for (size_t i = 0; i < n; i++)
            if (is_ctl(p[i])) return false;
        return true;
    case CC_URI:
        if (n == 0 || p[0] != '/') return false;
        /* fall through */
    case CC_TOKEN:
        for (size_t i = 0; i < n; i++)
            if (is_ctl(p[i]) || p[i] == ' ') return false;
        return true;
    case CC_WS_KEY:
        if (n != PSDM_HS_WS_KEY_LEN || p[22] != '=' || p[23] != '=') return false;
        for (size_t i = 0; i < 22; i++)
            if (!is_b64(p[i])) return false;
        return true;
    case CC_VERSION: return n == 2 && p[0] == '1' && p[1] == '3';
    }
    return false;
}

/* 0 if absent and optional or present and valid. */
static int check_field(unsigned tag, const psdm_hs_str *s, uint8_t *bad_tag) {
    const struct field_rule *r = &kRules[tag];
    if (s->len == 0) {
        if (!r->required) return PSDM_HS_OK;
        *bad_tag = (uint8_t)tag;
        return PSDM_HS_E_MISSING_FIELD;
    }
    if (s->ptr == NULL || s->len < r->min || s->len > r->max ||
        !content_ok(r->cc, (const unsigned char *)s->ptr, s->len)) {
        *bad_tag = (uint8_t)tag;
        return PSDM_HS_E_BAD_FIELD;
    }
    return PSDM_HS_OK;
}

/* The single-valued fields of a request, in tag order (groups are separate). */
struct slot {
    uint8_t tag;
    size_t off;
};
static const struct slot kSlots[] = {
    {PSDM_HS_TAG_USER, offsetof(psdm_handoff_req, user)},
    {PSDM_HS_TAG_CLIENT_ADDR, offsetof(psdm_handoff_req, client_addr)},
    {PSDM_HS_TAG_HOST, offsetof(psdm_handoff_req, host)},
    {PSDM_HS_TAG_URI, offsetof(psdm_handoff_req, uri)},
    {PSDM_HS_TAG_WS_KEY, offsetof(psdm_handoff_req, ws_key)},
    {PSDM_HS_TAG_WS_VERSION, offsetof(psdm_handoff_req, ws_version)},
    {PSDM_HS_TAG_ORIGIN, offsetof(psdm_handoff_req, origin)},
    {PSDM_HS_TAG_WS_PROTOCOL, offsetof(psdm_handoff_req, ws_protocol)},
    {PSDM_HS_TAG_WS_EXTENSIONS, offsetof(psdm_handoff_req, ws_extensions)},
    {PSDM_HS_TAG_EARLY_DATA, offsetof(psdm_handoff_req, early_data)},
};
enum { kNumSlots = sizeof kSlots / sizeof kSlots[0] };

static const psdm_hs_str *slot_cget(const psdm_handoff_req *req, size_t i) {
    return (const psdm_hs_str *)(const void *)((const char *)req + kSlots[i].off);
}

static psdm_hs_str *slot_for_tag(psdm_handoff_req *req, unsigned tag) {
    for (size_t i = 0; i < kNumSlots; i++)
        if (kSlots[i].tag == tag) return (psdm_hs_str *)(void *)((char *)req + kSlots[i].off);
    return NULL;
}

int psdm_handoff_validate(const psdm_handoff_req *req, uint8_t *bad_tag) {
    uint8_t scratch;
    if (bad_tag == NULL) bad_tag = &scratch;
    *bad_tag = 0;
    if (req == NULL) return PSDM_HS_E_INVALID_ARG;
    if (req->kind != PSDM_HS_KIND_HANDOFF && req->kind != PSDM_HS_KIND_RELAY) return PSDM_HS_E_BAD_KIND;
    if (req->ngroups > PSDM_HS_MAX_GROUPS) {
        *bad_tag = PSDM_HS_TAG_GROUP;
        return PSDM_HS_E_TOO_MANY_GROUPS;
    }
    for (size_t i = 0; i < kNumSlots; i++) {
        int rc = check_field(kSlots[i].tag, slot_cget(req, i), bad_tag);
        if (rc != PSDM_HS_OK) return rc;
    }
    for (unsigned i = 0; i < req->ngroups; i++) {
        if (req->groups[i].len == 0) { /* present but empty: check_field would call it absent */
            *bad_tag = PSDM_HS_TAG_GROUP;
            return PSDM_HS_E_BAD_FIELD;
        }
        int rc = check_field(PSDM_HS_TAG_GROUP, &req->groups[i], bad_tag);
        if (rc != PSDM_HS_OK) return rc;
    }
    return PSDM_HS_OK;
}

/* ---- encode ---- */

static void put_u16(unsigned char *p, uint16_t v) {
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void put_u32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint16_t get_u16(const unsigned char *p) { return (uint16_t)(((unsigned)p[0] << 8) | p[1]); }

static uint32_t get_u32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static size_t put_field(unsigned char *p, uint8_t tag, const psdm_hs_str *s) {
    p[0] = tag;
    put_u16(p + 1, s->len);
    memcpy(p + PSDM_HS_FIELD_HEADER_LEN, s->ptr, s->len);
    return PSDM_HS_FIELD_HEADER_LEN + (size_t)s->len;
}

int psdm_handoff_encode(const psdm_handoff_req *req, unsigned char *buf, size_t cap, uint8_t *bad_tag) {
    int rc = psdm_handoff_validate(req, bad_tag);
    if (rc != PSDM_HS_OK) return rc;
    if (buf == NULL && cap > 0) return PSDM_HS_E_INVALID_ARG;

    size_t body = 0;
    unsigned count = 0;
    for (size_t i = 0; i < kNumSlots; i++) {
        const psdm_hs_str *s = slot_cget(req, i);
        if (s->len == 0) continue;
        body += PSDM_HS_FIELD_HEADER_LEN + (size_t)s->len;
        count++;
    }
    for (unsigned i = 0; i < req->ngroups; i++) body += PSDM_HS_FIELD_HEADER_LEN + (size_t)req->groups[i].len;
    count += req->ngroups;
    /* Cannot exceed PSDM_HS_MAX_BODY after validation (static assert above). */
    const size_t total = PSDM_HS_HEADER_LEN + body;
    if (total > cap || buf == NULL) return PSDM_HS_E_NO_SPACE;

    memcpy(buf, kReqMagic, 4);
    buf[4] = PSDM_HS_VERSION;
    buf[5] = req->kind;
    put_u16(buf + 6, 0);
    put_u32(buf + 8, (uint32_t)body);
    put_u16(buf + 12, (uint16_t)count);
    unsigned char *p = buf + PSDM_HS_HEADER_LEN;
    /* Tag order: user, groups, then the rest. */
    p += put_field(p, PSDM_HS_TAG_USER, &req->user);
    for (unsigned i = 0; i < req->ngroups; i++) p += put_field(p, PSDM_HS_TAG_GROUP, &req->groups[i]);
    for (size_t i = 1; i < kNumSlots; i++) {
        const psdm_hs_str *s = slot_cget(req, i);
        if (s->len != 0) p += put_field(p, kSlots[i].tag, s);
    }
    return (int)total;
}

/* ---- decode ---- */

int psdm_handoff_header_total(const unsigned char *buf, size_t len) {
    if (buf == NULL && len > 0) return PSDM_HS_E_INVALID_ARG;
    if (len < PSDM_HS_HEADER_LEN) return PSDM_HS_E_TRUNCATED;
    if (memcmp(buf, kReqMagic, 4) != 0) return PSDM_HS_E_BAD_MAGIC;
    if (buf[4] != PSDM_HS_VERSION) return PSDM_HS_E_BAD_VERSION;
    if (buf[5] != PSDM_HS_KIND_HANDOFF && buf[5] != PSDM_HS_KIND_RELAY) return PSDM_HS_E_BAD_KIND;
    if (get_u16(buf + 6) != 0) return PSDM_HS_E_BAD_FLAGS;
    const uint32_t body = get_u32(buf + 8);
    if (body > PSDM_HS_MAX_BODY) return PSDM_HS_E_TOO_LONG;
    if ((uint32_t)get_u16(buf + 12) * PSDM_HS_FIELD_HEADER_LEN > body) return PSDM_HS_E_BAD_LENGTH;
    return (int)(PSDM_HS_HEADER_LEN + body);
}

int psdm_handoff_decode(const unsigned char *buf, size_t len, psdm_handoff_req *out, uint8_t *bad_tag) {
    uint8_t scratch;
    if (bad_tag == NULL) bad_tag = &scratch;
    *bad_tag = 0;
    if (out == NULL) return PSDM_HS_E_INVALID_ARG;
    const int total = psdm_handoff_header_total(buf, len);
    if (total < 0) return total;
    if (len < (size_t)total) return PSDM_HS_E_TRUNCATED;
    if (len > (size_t)total) return PSDM_HS_E_BAD_LENGTH;

    memset(out, 0, sizeof *out);
    out->kind = buf[5];
    const size_t end = (size_t)total;
    const unsigned count = get_u16(buf + 12);
    size_t pos = PSDM_HS_HEADER_LEN;
    for (unsigned i = 0; i < count; i++) {
        if (end - pos < PSDM_HS_FIELD_HEADER_LEN) return PSDM_HS_E_BAD_LENGTH;
        const uint8_t tag = buf[pos];
        const uint16_t flen = get_u16(buf + pos + 1);
        pos += PSDM_HS_FIELD_HEADER_LEN;
        if (end - pos < flen) {
            *bad_tag = tag;
            return PSDM_HS_E_BAD_LENGTH;
        }
        const psdm_hs_str view = {(const char *)(buf + pos), flen};
        pos += flen;

        if (tag == 0 || tag > kMaxTag) {
            *bad_tag = tag;
            return PSDM_HS_E_UNKNOWN_FIELD;
        }
        if (flen == 0) { /* absent fields are omitted, never sent empty */
            *bad_tag = tag;
            return PSDM_HS_E_BAD_FIELD;
        }
        if (tag == PSDM_HS_TAG_GROUP) {
            if (out->ngroups == PSDM_HS_MAX_GROUPS) {
                *bad_tag = tag;
                return PSDM_HS_E_TOO_MANY_GROUPS;
            }
            out->groups[out->ngroups++] = view;
            continue;
        }
        psdm_hs_str *slot = slot_for_tag(out, tag);
        if (slot == NULL) { /* unreachable: every tag but group has a slot */
            *bad_tag = tag;
            return PSDM_HS_E_UNKNOWN_FIELD;
        }
        if (slot->ptr != NULL) {
            *bad_tag = tag;
            return PSDM_HS_E_DUPLICATE_FIELD;
        }
        *slot = view;
    }
    if (pos != end) return PSDM_HS_E_BAD_LENGTH;
    return psdm_handoff_validate(out, bad_tag);
}

/* ---- names ---- */

const char *psdm_handoff_strerror(int err) {
    switch (err) {
    case PSDM_HS_OK: return "ok";
    case PSDM_HS_E_TRUNCATED: return "truncated";
    case PSDM_HS_E_BAD_MAGIC: return "bad_magic";
    case PSDM_HS_E_BAD_VERSION: return "bad_version";
    case PSDM_HS_E_BAD_KIND: return "bad_kind";
    case PSDM_HS_E_BAD_FLAGS: return "bad_flags";
    case PSDM_HS_E_TOO_LONG: return "too_long";
    case PSDM_HS_E_BAD_LENGTH: return "bad_length";
    case PSDM_HS_E_BAD_FIELD: return "bad_field";
    case PSDM_HS_E_UNKNOWN_FIELD: return "unknown_field";
    case PSDM_HS_E_MISSING_FIELD: return "missing_field";
    case PSDM_HS_E_DUPLICATE_FIELD: return "duplicate_field";
    case PSDM_HS_E_TOO_MANY_GROUPS: return "too_many_groups";
    case PSDM_HS_E_NO_SPACE: return "no_space";
    case PSDM_HS_E_INVALID_ARG: return "invalid_arg";
    case PSDM_HS_E_CLOSED: return "closed";
    case PSDM_HS_E_NO_FD: return "no_fd";
    case PSDM_HS_E_BAD_FD: return "bad_fd";
    default: return "unknown_error";
    }
}

const char *psdm_handoff_tag_name(unsigned tag) { return tag >= 1 && tag <= kMaxTag ? kRules[tag].name : "unknown"; }

/* ---- refusal ---- */

int psdm_handoff_build_refusal(char *buf, size_t cap) {
    static const char kBody[] = "live updates are unavailable, try again later\n";
    static const char kHead[] =
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Retry-After: 5\r\n"
        "Content-Type: text/plain\r\n"
        "Content-Length: 46\r\n"
        "Connection: close\r\n"
        "\r\n";
    _Static_assert(sizeof kBody - 1 == 46, "Content-Length matches the body");
    const size_t len = sizeof kHead - 1 + sizeof kBody - 1;
    if (buf == NULL || cap < len) return PSDM_HS_E_NO_SPACE;
    memcpy(buf, kHead, sizeof kHead - 1);
    memcpy(buf + sizeof kHead - 1, kBody, sizeof kBody - 1);
    return (int)len;
}

/* ---- replayed upgrade request ---- */

struct out {
    char *buf;
    size_t cap, len;
    bool overflow;
    bool count_only; /* only add up len: buf and cap unused */
};

static void out_put(struct out *o, const void *p, size_t n) {
    if (o->count_only) {
        o->len += n;
        return;
    }
    if (o->overflow || n > o->cap - o->len) {
        o->overflow = true;
        return;
    }
    if (n > 0) memcpy(o->buf + o->len, p, n);
    o->len += n;
}

static void out_str(struct out *o, const char *s) { out_put(o, s, strlen(s)); }

static void out_header(struct out *o, const char *name, const psdm_hs_str *v) {
    if (v->len == 0) return;
    out_str(o, name);
    out_put(o, v->ptr, v->len);
    out_str(o, "\r\n");
}

/* The replay of req into o: the one definition of its format, for build and length. */
static void put_upgrade(struct out *o, const psdm_handoff_req *req) {
    out_str(o, "GET ");
    out_put(o, req->uri.ptr, req->uri.len);
    out_str(o, " HTTP/1.1\r\n");
    out_header(o, "Host: ", &req->host);
    out_str(o, "Upgrade: websocket\r\nConnection: Upgrade\r\n");
    out_header(o, "Sec-WebSocket-Key: ", &req->ws_key);
    out_header(o, "Sec-WebSocket-Version: ", &req->ws_version);
    out_header(o, "Origin: ", &req->origin);
    out_header(o, "Sec-WebSocket-Protocol: ", &req->ws_protocol);
    out_str(o, "\r\n");
    if (req->early_data.len > 0) out_put(o, req->early_data.ptr, req->early_data.len);
}

size_t psdm_handoff_upgrade_len(const psdm_handoff_req *req) {
    if (req == NULL) return 0;
    struct out o = {NULL, 0, 0, false, true};
    put_upgrade(&o, req);
    return o.len;
}

int psdm_handoff_build_upgrade(const psdm_handoff_req *req, char *buf, size_t cap) {
    int rc = psdm_handoff_validate(req, NULL);
    if (rc != PSDM_HS_OK) return rc;
    if (buf == NULL && cap > 0) return PSDM_HS_E_INVALID_ARG;
    struct out o = {buf, cap, 0, false, false};
    put_upgrade(&o, req);
    if (o.overflow) return PSDM_HS_E_NO_SPACE;
    return (int)o.len;
}

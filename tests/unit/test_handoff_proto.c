/* Unit tests for handoff/handoff_proto: golden bytes, round trips up to every maximum,
 * every decode error (table-driven, from raw bytes the encoder would refuse to write),
 * truncation at every byte, the worker's refusal, and the replayed upgrade request up to the
 * 2048-byte lws limit. The spec is the comment at the top of handoff_proto.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "handoff/handoff_proto.h"

/* RFC 6455 section 1.3 example key. */
#define KEY "dGhlIHNhbXBsZSBub25jZQ=="

/* Filler for long fields: 'a' repeated, long enough for any field maximum + 1. */
static char g_long[PSDM_HS_MAX_EARLY_DATA + 16];
static unsigned char g_buf[PSDM_HS_MAX_MSG + 64];

static int setup_long(void **state) {
    (void)state;
    memset(g_long, 'a', sizeof g_long);
    return 0;
}

static psdm_hs_str S(const char *s) {
    psdm_hs_str v = {s, (uint16_t)strlen(s)};
    return v;
}

static psdm_hs_str L(size_t n) { /* n bytes of 'a' */
    psdm_hs_str v = {g_long, (uint16_t)n};
    return v;
}

static psdm_handoff_req minimal_req(void) {
    psdm_handoff_req r;
    memset(&r, 0, sizeof r);
    r.kind = PSDM_HS_KIND_HANDOFF;
    r.user = S("alice");
    r.uri = S("/x");
    r.ws_key = S(KEY);
    r.ws_version = S("13");
    return r;
}

static psdm_handoff_req full_req(void) {
    psdm_handoff_req r = minimal_req();
    r.uri = S("/elog_socketio/?EIO=4&transport=websocket");
    r.groups[0] = S("ps-data");
    r.groups[1] = S("xpp");
    r.groups[2] = S("group with space");
    r.ngroups = 3;
    r.client_addr = S("[2001:db8::1]:51234");
    r.host = S("pswww.slac.stanford.edu");
    r.origin = S("https://pswww.slac.stanford.edu");
    r.ws_protocol = S("chat, superchat");
    r.ws_extensions = S("permessage-deflate; client_max_window_bits");
    static const char early[] = {(char)0x81, (char)0x82, 0, '\r', '\n', 'x'};
    r.early_data.ptr = early;
    r.early_data.len = sizeof early;
    return r;
}

static void assert_str_eq(psdm_hs_str a, psdm_hs_str b) {
    assert_int_equal(a.len, b.len);
    if (a.len > 0) assert_memory_equal(a.ptr, b.ptr, a.len);
}

static void assert_req_eq(const psdm_handoff_req *a, const psdm_handoff_req *b) {
    assert_int_equal(a->kind, b->kind);
    assert_str_eq(a->user, b->user);
    assert_str_eq(a->client_addr, b->client_addr);
    assert_str_eq(a->host, b->host);
    assert_str_eq(a->uri, b->uri);
    assert_str_eq(a->ws_key, b->ws_key);
    assert_str_eq(a->ws_version, b->ws_version);
    assert_str_eq(a->origin, b->origin);
    assert_str_eq(a->ws_protocol, b->ws_protocol);
    assert_str_eq(a->ws_extensions, b->ws_extensions);
    assert_str_eq(a->early_data, b->early_data);
    assert_int_equal(a->ngroups, b->ngroups);
    for (unsigned i = 0; i < a->ngroups; i++) assert_str_eq(a->groups[i], b->groups[i]);
}

static int encode(const psdm_handoff_req *r) {
    uint8_t tag = 99;
    int n = psdm_handoff_encode(r, g_buf, sizeof g_buf, &tag);
    assert_true(n > 0);
    assert_int_equal(tag, 0);
    return n;
}

/* ---- golden bytes: pins the byte layout of the spec ---- */

static const unsigned char kGolden[] = {
    'P', 'S', 'D', 'M', 2,   1,   0,   0,   /* magic, version 2, kind handoff, flags 0 */
    0,   0,   0,   45,  0,   4,             /* body_len 45, count 4 */
    1,   0,   5,   'a', 'l', 'i', 'c', 'e', /* user */
    5,   0,   2,   '/', 'x',                /* uri */
    6,   0,   24,  'd', 'G', 'h', 'l', 'I', 'H', 'N', 'h', 'b', 'X', 'B',
    's', 'Z', 'S', 'B', 'u', 'b', '2', '5', 'j', 'Z', 'Q', '=', '=', /* ws_key */
    7,   0,   2,   '1', '3',                                         /* ws_version */
};

static void test_golden_encode(void **state) {
    (void)state;
    psdm_handoff_req r = minimal_req();
    int n = encode(&r);
    assert_int_equal(n, sizeof kGolden);
    assert_memory_equal(g_buf, kGolden, sizeof kGolden);
    assert_int_equal(psdm_handoff_header_total(kGolden, PSDM_HS_HEADER_LEN), sizeof kGolden);
}

static void test_golden_decode(void **state) {
    (void)state;
    psdm_handoff_req out, want = minimal_req();
    uint8_t tag = 99;
    assert_int_equal(psdm_handoff_decode(kGolden, sizeof kGolden, &out, &tag), PSDM_HS_OK);
    assert_int_equal(tag, 0);
    assert_req_eq(&out, &want);
    /* views point into the input */
    assert_ptr_equal(out.user.ptr, (const char *)kGolden + 17);
    assert_ptr_equal(out.early_data.ptr, NULL);
}

/* ---- round trips ---- */

static void roundtrip(const psdm_handoff_req *r) {
    const int n = encode(r);
    assert_int_equal(psdm_handoff_header_total(g_buf, (size_t)n), n);
    psdm_handoff_req out;
    assert_int_equal(psdm_handoff_decode(g_buf, (size_t)n, &out, NULL), PSDM_HS_OK);
    assert_req_eq(&out, r);
    /* canonical: decode then encode gives the same bytes */
    static unsigned char again[PSDM_HS_MAX_MSG];
    assert_int_equal(psdm_handoff_encode(&out, again, sizeof again, NULL), n);
    assert_memory_equal(again, g_buf, (size_t)n);
    /* exactly n bytes of room is enough, one less is not */
    assert_int_equal(psdm_handoff_encode(r, again, (size_t)n, NULL), n);
    assert_int_equal(psdm_handoff_encode(r, again, (size_t)n - 1, NULL), PSDM_HS_E_NO_SPACE);
}

static void test_roundtrip_minimal(void **state) {
    (void)state;
    psdm_handoff_req r = minimal_req();
    roundtrip(&r);
    r.kind = PSDM_HS_KIND_RELAY;
    roundtrip(&r);
}

static void test_roundtrip_full(void **state) {
    (void)state;
    psdm_handoff_req r = full_req();
    roundtrip(&r);
    r.kind = PSDM_HS_KIND_RELAY;
    roundtrip(&r);
}

static void test_roundtrip_max(void **state) {
    (void)state;
    static char uri[PSDM_HS_MAX_URI];
    memset(uri, 'u', sizeof uri);
    uri[0] = '/';
    static char early[PSDM_HS_MAX_EARLY_DATA];
    for (size_t i = 0; i < sizeof early; i++) early[i] = (char)i; /* every byte value */

    psdm_handoff_req r = minimal_req();
    r.user = L(PSDM_HS_MAX_USER);
    for (unsigned i = 0; i < PSDM_HS_MAX_GROUPS; i++) r.groups[i] = L(PSDM_HS_MAX_USER);
    r.ngroups = PSDM_HS_MAX_GROUPS;
    r.client_addr = L(PSDM_HS_MAX_CLIENT_ADDR);
    r.host = L(PSDM_HS_MAX_HOST);
    r.uri.ptr = uri;
    r.uri.len = sizeof uri;
    r.origin = L(PSDM_HS_MAX_ORIGIN);
    r.ws_protocol = L(PSDM_HS_MAX_WS_PROTOCOL);
    r.ws_extensions = L(PSDM_HS_MAX_WS_EXTENSIONS);
    r.early_data.ptr = early;
    r.early_data.len = sizeof early;
    roundtrip(&r);
    /* the worst case stated in the spec */
    assert_int_equal(encode(&r), PSDM_HS_HEADER_LEN + 22584);
}

/* ---- encode refuses what decode would refuse ---- */

static void test_encode_validation(void **state) {
    (void)state;
    uint8_t tag;
    psdm_handoff_req r = minimal_req();
    r.kind = 0;
    assert_int_equal(psdm_handoff_encode(&r, g_buf, sizeof g_buf, &tag), PSDM_HS_E_BAD_KIND);
    r.kind = 3;
    assert_int_equal(psdm_handoff_encode(&r, g_buf, sizeof g_buf, &tag), PSDM_HS_E_BAD_KIND);

    r = minimal_req();
    r.ngroups = PSDM_HS_MAX_GROUPS + 1;
    for (unsigned i = 0; i < r.ngroups && i < PSDM_HS_MAX_GROUPS; i++) r.groups[i] = S("g");
    assert_int_equal(psdm_handoff_encode(&r, g_buf, sizeof g_buf, &tag), PSDM_HS_E_TOO_MANY_GROUPS);
    assert_int_equal(tag, PSDM_HS_TAG_GROUP);

    r = minimal_req();
    r.groups[0] = S("");
    r.ngroups = 1;
    assert_int_equal(psdm_handoff_encode(&r, g_buf, sizeof g_buf, &tag), PSDM_HS_E_BAD_FIELD);
    assert_int_equal(tag, PSDM_HS_TAG_GROUP);

    r = minimal_req();
    r.origin.ptr = NULL;
    r.origin.len = 4;
    assert_int_equal(psdm_handoff_encode(&r, g_buf, sizeof g_buf, &tag), PSDM_HS_E_BAD_FIELD);
    assert_int_equal(tag, PSDM_HS_TAG_ORIGIN);

    r = minimal_req();
    r.ws_version = S("");
    assert_int_equal(psdm_handoff_encode(&r, g_buf, sizeof g_buf, &tag), PSDM_HS_E_MISSING_FIELD);
    assert_int_equal(tag, PSDM_HS_TAG_WS_VERSION);

    r = minimal_req();
    r.host = S("evil\r\nX-Injected: 1");
    assert_int_equal(psdm_handoff_encode(&r, g_buf, sizeof g_buf, &tag), PSDM_HS_E_BAD_FIELD);
    assert_int_equal(tag, PSDM_HS_TAG_HOST);

    r = minimal_req();
    assert_int_equal(psdm_handoff_encode(NULL, g_buf, sizeof g_buf, &tag), PSDM_HS_E_INVALID_ARG);
    assert_int_equal(psdm_handoff_encode(&r, NULL, 0, NULL), PSDM_HS_E_NO_SPACE);
    assert_int_equal(psdm_handoff_encode(&r, NULL, 100, NULL), PSDM_HS_E_INVALID_ARG);
    assert_int_equal(psdm_handoff_validate(&r, NULL), PSDM_HS_OK);
}

/* ---- decode errors from raw bytes ---- */

typedef struct {
    unsigned char b[PSDM_HS_MAX_MSG + 64];
    size_t n;
    unsigned count;
} msg_builder;

static void mb_init(msg_builder *m) {
    m->n = PSDM_HS_HEADER_LEN;
    m->count = 0;
}

static void mb_field(msg_builder *m, unsigned tag, const void *p, size_t len) {
    m->b[m->n] = (unsigned char)tag;
    m->b[m->n + 1] = (unsigned char)(len >> 8);
    m->b[m->n + 2] = (unsigned char)len;
    if (len > 0) memcpy(m->b + m->n + 3, p, len);
    m->n += 3 + len;
    m->count++;
}

static size_t mb_finish(msg_builder *m, unsigned kind) {
    const size_t body = m->n - PSDM_HS_HEADER_LEN;
    memcpy(m->b, "PSDM", 4);
    m->b[4] = PSDM_HS_VERSION;
    m->b[5] = (unsigned char)kind;
    m->b[6] = m->b[7] = 0;
    m->b[8] = (unsigned char)(body >> 24);
    m->b[9] = (unsigned char)(body >> 16);
    m->b[10] = (unsigned char)(body >> 8);
    m->b[11] = (unsigned char)body;
    m->b[12] = (unsigned char)(m->count >> 8);
    m->b[13] = (unsigned char)m->count;
    return m->n;
}

#define OMIT ((const char *)-1)
#define LONG(n) g_long, (n) /* val, len of n 'a' */
#define STR(s) s, -1        /* val, len = strlen */
#define BYTES(s) s, (int)(sizeof s - 1)

struct dcase {
    const char *name;
    uint8_t set_tag;     /* replace this base field (user/uri/ws_key/ws_version) or add it */
    const char *set_val; /* OMIT: drop the base field */
    int set_len;         /* -1: strlen */
    uint8_t add_tag;     /* then append one more field, if add_tag or add_val */
    const char *add_val;
    int add_len;
    int expect;
    uint8_t expect_tag;
};

static const struct dcase kDecodeCases[] = {
    /* user */
    {"user empty", 1, STR(""), 0, NULL, 0, PSDM_HS_E_BAD_FIELD, 1},
    {"user 256", 1, LONG(256), 0, NULL, 0, PSDM_HS_OK, 0},
    {"user 257", 1, LONG(257), 0, NULL, 0, PSDM_HS_E_BAD_FIELD, 1},
    {"user newline", 1, STR("ali\nce"), 0, NULL, 0, PSDM_HS_E_BAD_FIELD, 1},
    {"user NUL", 1, BYTES("ali\0ce"), 0, NULL, 0, PSDM_HS_E_BAD_FIELD, 1},
    {"user DEL", 1, STR("ali\x7f"), 0, NULL, 0, PSDM_HS_E_BAD_FIELD, 1},
    {"user tab", 1, STR("a\tb"), 0, NULL, 0, PSDM_HS_E_BAD_FIELD, 1},
    {"user space ok", 1, STR("Alice Smith"), 0, NULL, 0, PSDM_HS_OK, 0},
    {"user utf8 ok", 1, STR("jos\xc3\xa9"), 0, NULL, 0, PSDM_HS_OK, 0},
    {"user missing", 1, OMIT, 0, 0, NULL, 0, PSDM_HS_E_MISSING_FIELD, 1},
    {"user duplicate", 0, NULL, 0, 1, STR("bob"), PSDM_HS_E_DUPLICATE_FIELD, 1},
    /* groups */
    {"group ok", 0, NULL, 0, 2, STR("ps-data"), PSDM_HS_OK, 0},
    {"group empty", 0, NULL, 0, 2, STR(""), PSDM_HS_E_BAD_FIELD, 2},
    {"group 256", 0, NULL, 0, 2, LONG(256), PSDM_HS_OK, 0},
    {"group 257", 0, NULL, 0, 2, LONG(257), PSDM_HS_E_BAD_FIELD, 2},
    {"group CR", 0, NULL, 0, 2, STR("g\r"), PSDM_HS_E_BAD_FIELD, 2},
    /* client_addr, host */
    {"addr ok", 0, NULL, 0, 3, STR("203.0.113.5:51234"), PSDM_HS_OK, 0},
    {"addr 64", 0, NULL, 0, 3, LONG(64), PSDM_HS_OK, 0},
    {"addr 65", 0, NULL, 0, 3, LONG(65), PSDM_HS_E_BAD_FIELD, 3},
    {"addr space", 0, NULL, 0, 3, STR("1.2.3.4 :5"), PSDM_HS_E_BAD_FIELD, 3},
    {"host 256", 0, NULL, 0, 4, LONG(256), PSDM_HS_OK, 0},
    {"host 257", 0, NULL, 0, 4, LONG(257), PSDM_HS_E_BAD_FIELD, 4},
    {"host space", 0, NULL, 0, 4, STR("a b"), PSDM_HS_E_BAD_FIELD, 4},
    {"host empty", 0, NULL, 0, 4, STR(""), PSDM_HS_E_BAD_FIELD, 4},
    {"host duplicate", 4, STR("a"), 4, STR("b"), PSDM_HS_E_DUPLICATE_FIELD, 4},
    /* uri */
    {"uri root", 5, STR("/"), 0, NULL, 0, PSDM_HS_OK, 0},
    {"uri no slash", 5, STR("x/"), 0, NULL, 0, PSDM_HS_E_BAD_FIELD, 5},
    {"uri absolute", 5, STR("http://h/"), 0, NULL, 0, PSDM_HS_E_BAD_FIELD, 5},
    {"uri space", 5, STR("/a b"), 0, NULL, 0, PSDM_HS_E_BAD_FIELD, 5},
    {"uri CRLF", 5, STR("/a\r\nX: y"), 0, NULL, 0, PSDM_HS_E_BAD_FIELD, 5},
    {"uri empty", 5, STR(""), 0, NULL, 0, PSDM_HS_E_BAD_FIELD, 5},
    {"uri missing", 5, OMIT, 0, 0, NULL, 0, PSDM_HS_E_MISSING_FIELD, 5},
    {"uri duplicate", 0, NULL, 0, 5, STR("/y"), PSDM_HS_E_DUPLICATE_FIELD, 5},
    /* ws_key */
    {"key 23", 6, STR("dGhlIHNhbXBsZSBub25jZQ="), 0, NULL, 0, PSDM_HS_E_BAD_FIELD, 6},
    {"key 25", 6, STR("dGhlIHNhbXBsZSBub25jZQ==="), 0, NULL, 0, PSDM_HS_E_BAD_FIELD, 6},
    {"key no padding", 6, STR("dGhlIHNhbXBsZSBub25jZQAA"), 0, NULL, 0, PSDM_HS_E_BAD_FIELD, 6},
    {"key bad char", 6, STR("dGhlIHNhbXBsZSBub25jZ*=="), 0, NULL, 0, PSDM_HS_E_BAD_FIELD, 6},
    {"key +/ ok", 6, STR("+/+/+/+/+/+/+/+/+/+/+/=="), 0, NULL, 0, PSDM_HS_OK, 0},
    {"key missing", 6, OMIT, 0, 0, NULL, 0, PSDM_HS_E_MISSING_FIELD, 6},
    /* ws_version */
    {"version 8", 7, STR("8"), 0, NULL, 0, PSDM_HS_E_BAD_FIELD, 7},
    {"version 14", 7, STR("14"), 0, NULL, 0, PSDM_HS_E_BAD_FIELD, 7},
    {"version 130", 7, STR("130"), 0, NULL, 0, PSDM_HS_E_BAD_FIELD, 7},
    {"version missing", 7, OMIT, 0, 0, NULL, 0, PSDM_HS_E_MISSING_FIELD, 7},
    /* optional headers */
    {"origin 512", 0, NULL, 0, 8, LONG(512), PSDM_HS_OK, 0},
    {"origin 513", 0, NULL, 0, 8, LONG(513), PSDM_HS_E_BAD_FIELD, 8},
    {"origin CRLF", 0, NULL, 0, 8, STR("https://a\r\nX: y"), PSDM_HS_E_BAD_FIELD, 8},
    {"protocol 256", 0, NULL, 0, 9, LONG(256), PSDM_HS_OK, 0},
    {"protocol 257", 0, NULL, 0, 9, LONG(257), PSDM_HS_E_BAD_FIELD, 9},
    {"extensions 512", 0, NULL, 0, 10, LONG(512), PSDM_HS_OK, 0},
    {"extensions 513", 0, NULL, 0, 10, LONG(513), PSDM_HS_E_BAD_FIELD, 10},
    {"extensions LF", 0, NULL, 0, 10, STR("a\nb"), PSDM_HS_E_BAD_FIELD, 10},
    /* early data: any bytes */
    {"early binary", 0, NULL, 0, 11, BYTES("\x81\x00\r\n\x7f"), PSDM_HS_OK, 0},
    {"early 2048", 0, NULL, 0, 11, LONG(2048), PSDM_HS_OK, 0},
    {"early 2049", 0, NULL, 0, 11, LONG(2049), PSDM_HS_E_BAD_FIELD, 11},
    {"early empty", 0, NULL, 0, 11, STR(""), PSDM_HS_E_BAD_FIELD, 11},
    {"early duplicate", 11, STR("a"), 11, STR("b"), PSDM_HS_E_DUPLICATE_FIELD, 11},
    /* unknown tags are errors, not skipped */
    {"tag 0", 0, NULL, 0, 0, STR("x"), PSDM_HS_E_UNKNOWN_FIELD, 0},
    {"tag 12", 0, NULL, 0, 12, STR("x"), PSDM_HS_E_UNKNOWN_FIELD, 12},
    {"tag 255", 0, NULL, 0, 255, STR(""), PSDM_HS_E_UNKNOWN_FIELD, 255},
};

static void add_base_or_override(msg_builder *m, const struct dcase *c, uint8_t tag, const char *val) {
    if (c->set_tag == tag) {
        if (c->set_val == OMIT) return;
        const size_t len = c->set_len < 0 ? strlen(c->set_val) : (size_t)c->set_len;
        mb_field(m, tag, c->set_val, len);
        return;
    }
    if (val != NULL) mb_field(m, tag, val, strlen(val));
}

static void test_decode_table(void **state) {
    (void)state;
    static msg_builder m;
    for (size_t i = 0; i < sizeof kDecodeCases / sizeof kDecodeCases[0]; i++) {
        const struct dcase *c = &kDecodeCases[i];
        mb_init(&m);
        add_base_or_override(&m, c, PSDM_HS_TAG_USER, "alice");
        add_base_or_override(&m, c, PSDM_HS_TAG_URI, "/ws/?EIO=4");
        add_base_or_override(&m, c, PSDM_HS_TAG_WS_KEY, KEY);
        add_base_or_override(&m, c, PSDM_HS_TAG_WS_VERSION, "13");
        if (c->set_tag != 0 && c->set_tag != PSDM_HS_TAG_USER && c->set_tag != PSDM_HS_TAG_URI &&
            c->set_tag != PSDM_HS_TAG_WS_KEY && c->set_tag != PSDM_HS_TAG_WS_VERSION)
            add_base_or_override(&m, c, c->set_tag, NULL);
        if (c->add_tag != 0 || c->add_val != NULL) {
            const size_t len = c->add_len < 0 ? strlen(c->add_val) : (size_t)c->add_len;
            mb_field(&m, c->add_tag, c->add_val, len);
        }
        const size_t n = mb_finish(&m, PSDM_HS_KIND_HANDOFF);
        psdm_handoff_req out;
        uint8_t tag = 99;
        const int rc = psdm_handoff_decode(m.b, n, &out, &tag);
        if (rc != c->expect || tag != c->expect_tag)
            fail_msg("%s: got %s (tag %u), want %s (tag %u)", c->name, psdm_handoff_strerror(rc), tag,
                     psdm_handoff_strerror(c->expect), c->expect_tag);
        /* Whatever decode accepted, encode accepts and reproduces (field order aside). */
        if (rc == PSDM_HS_OK) {
            static unsigned char again[PSDM_HS_MAX_MSG];
            assert_int_equal(psdm_handoff_encode(&out, again, sizeof again, NULL), (int)n);
        }
    }
}

static void test_groups_64_and_65(void **state) {
    (void)state;
    static msg_builder m;
    mb_init(&m);
    mb_field(&m, 1, "alice", 5);
    mb_field(&m, 5, "/", 1);
    mb_field(&m, 6, KEY, 24);
    mb_field(&m, 7, "13", 2);
    char name[8];
    for (int i = 0; i < PSDM_HS_MAX_GROUPS; i++) {
        int len = snprintf(name, sizeof name, "g%d", i);
        mb_field(&m, 2, name, (size_t)len);
    }
    size_t n = mb_finish(&m, PSDM_HS_KIND_RELAY);
    psdm_handoff_req out;
    uint8_t tag = 99;
    assert_int_equal(psdm_handoff_decode(m.b, n, &out, &tag), PSDM_HS_OK);
    assert_int_equal(out.ngroups, PSDM_HS_MAX_GROUPS);
    assert_int_equal(out.kind, PSDM_HS_KIND_RELAY);
    assert_memory_equal(out.groups[63].ptr, "g63", 3); /* order kept */

    mb_field(&m, 2, "g64", 3);
    n = mb_finish(&m, PSDM_HS_KIND_RELAY);
    assert_int_equal(psdm_handoff_decode(m.b, n, &out, &tag), PSDM_HS_E_TOO_MANY_GROUPS);
    assert_int_equal(tag, PSDM_HS_TAG_GROUP);
}

/* Fields in any order decode the same. */
static void test_decode_any_order(void **state) {
    (void)state;
    static msg_builder m;
    mb_init(&m);
    mb_field(&m, 7, "13", 2);
    mb_field(&m, 2, "g1", 2);
    mb_field(&m, 6, KEY, 24);
    mb_field(&m, 5, "/x", 2);
    mb_field(&m, 2, "g2", 2);
    mb_field(&m, 1, "alice", 5);
    const size_t n = mb_finish(&m, PSDM_HS_KIND_HANDOFF);
    psdm_handoff_req out, want = minimal_req();
    want.groups[0] = S("g1");
    want.groups[1] = S("g2");
    want.ngroups = 2;
    assert_int_equal(psdm_handoff_decode(m.b, n, &out, NULL), PSDM_HS_OK);
    assert_req_eq(&out, &want);
}

/* ---- header and length errors, by mutating a valid message ---- */

static void put32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static int decode_mutated(size_t off, unsigned char val, size_t len, uint8_t *tag) {
    static unsigned char b[sizeof kGolden + 8];
    memset(b, 0, sizeof b);
    memcpy(b, kGolden, sizeof kGolden);
    b[off] = val;
    psdm_handoff_req out;
    return psdm_handoff_decode(b, len, &out, tag);
}

static void test_header_errors(void **state) {
    (void)state;
    const size_t n = sizeof kGolden;
    uint8_t tag;
    for (size_t i = 0; i < 4; i++) assert_int_equal(decode_mutated(i, 'X', n, &tag), PSDM_HS_E_BAD_MAGIC);
    assert_int_equal(decode_mutated(4, 0, n, &tag), PSDM_HS_E_BAD_VERSION);
    assert_int_equal(decode_mutated(4, 1, n, &tag), PSDM_HS_E_BAD_VERSION); /* version 1: answer + commit */
    assert_int_equal(decode_mutated(4, 3, n, &tag), PSDM_HS_E_BAD_VERSION);
    assert_int_equal(decode_mutated(4, 255, n, &tag), PSDM_HS_E_BAD_VERSION);
    assert_int_equal(decode_mutated(5, 0, n, &tag), PSDM_HS_E_BAD_KIND);
    assert_int_equal(decode_mutated(5, 3, n, &tag), PSDM_HS_E_BAD_KIND);
    assert_int_equal(decode_mutated(5, PSDM_HS_KIND_RELAY, n, &tag), PSDM_HS_OK);
    assert_int_equal(decode_mutated(6, 0x80, n, &tag), PSDM_HS_E_BAD_FLAGS);
    assert_int_equal(decode_mutated(7, 1, n, &tag), PSDM_HS_E_BAD_FLAGS);
    /* count*3 > body_len: refused from the header */
    assert_int_equal(decode_mutated(12, 0xff, n, &tag), PSDM_HS_E_BAD_LENGTH);
    /* count one too many: the 5th field header would run past the body */
    assert_int_equal(decode_mutated(13, 5, n, &tag), PSDM_HS_E_BAD_LENGTH);
    /* count one too few: bytes left in the body */
    assert_int_equal(decode_mutated(13, 3, n, &tag), PSDM_HS_E_BAD_LENGTH);
    /* the first field's length runs past the body */
    assert_int_equal(decode_mutated(15, 0xff, n, &tag), PSDM_HS_E_BAD_LENGTH);
    assert_int_equal(tag, PSDM_HS_TAG_USER);
    assert_int_equal(decode_mutated(16, 6, n, &tag), PSDM_HS_E_BAD_LENGTH);
    /* body_len one short (and the buffer too): the last field overruns */
    assert_int_equal(decode_mutated(11, 44, n - 1, &tag), PSDM_HS_E_BAD_LENGTH);
    assert_int_equal(tag, PSDM_HS_TAG_WS_VERSION);
    /* body_len one long, with one more (zero) byte: trailing byte */
    assert_int_equal(decode_mutated(11, 46, n + 1, &tag), PSDM_HS_E_BAD_LENGTH);
    /* more bytes than announced */
    assert_int_equal(decode_mutated(0, 'P', n + 1, &tag), PSDM_HS_E_BAD_LENGTH);
}

static void test_oversize_length(void **state) {
    (void)state;
    unsigned char h[PSDM_HS_HEADER_LEN];
    memcpy(h, kGolden, sizeof h);
    put32(h + 8, PSDM_HS_MAX_BODY);
    h[12] = h[13] = 0;
    assert_int_equal(psdm_handoff_header_total(h, sizeof h), PSDM_HS_MAX_MSG);
    put32(h + 8, PSDM_HS_MAX_BODY + 1);
    assert_int_equal(psdm_handoff_header_total(h, sizeof h), PSDM_HS_E_TOO_LONG);
    put32(h + 8, 0xffffffffu);
    assert_int_equal(psdm_handoff_header_total(h, sizeof h), PSDM_HS_E_TOO_LONG);
    psdm_handoff_req out;
    assert_int_equal(psdm_handoff_decode(h, sizeof h, &out, NULL), PSDM_HS_E_TOO_LONG);
    /* empty body: header fine, required fields missing */
    put32(h + 8, 0);
    assert_int_equal(psdm_handoff_header_total(h, sizeof h), PSDM_HS_HEADER_LEN);
    uint8_t tag;
    assert_int_equal(psdm_handoff_decode(h, sizeof h, &out, &tag), PSDM_HS_E_MISSING_FIELD);
    assert_int_equal(tag, PSDM_HS_TAG_USER);
}

static void test_truncated_every_byte(void **state) {
    (void)state;
    psdm_handoff_req r = full_req();
    const int n = encode(&r);
    psdm_handoff_req out;
    for (int len = 0; len < n; len++) {
        /* a fresh heap copy of exactly len bytes, so ASan catches any read past it */
        unsigned char *cut = malloc(len > 0 ? (size_t)len : 1);
        assert_non_null(cut);
        memcpy(cut, g_buf, (size_t)len);
        assert_int_equal(psdm_handoff_decode(cut, (size_t)len, &out, NULL), PSDM_HS_E_TRUNCATED);
        assert_int_equal(psdm_handoff_header_total(cut, (size_t)len),
                         len < PSDM_HS_HEADER_LEN ? PSDM_HS_E_TRUNCATED : n);
        free(cut);
    }
    assert_int_equal(psdm_handoff_decode(g_buf, (size_t)n, &out, NULL), PSDM_HS_OK);
}

/* Random byte flips of a valid message: never crashes, reads past nothing (ASan), and
 * whatever it accepts is valid. */
static void test_mutation_smoke(void **state) {
    (void)state;
    psdm_handoff_req r = full_req();
    const int n = encode(&r);
    unsigned char *b = malloc((size_t)n);
    assert_non_null(b);
    uint32_t x = 12345;
    unsigned accepted = 0;
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(b, g_buf, (size_t)n);
        for (int k = 0; k < 1 + iter % 4; k++) {
            x = x * 1103515245u + 12345u;
            b[(x >> 8) % (uint32_t)n] = (unsigned char)(x >> 20);
        }
        psdm_handoff_req out;
        if (psdm_handoff_decode(b, (size_t)n, &out, NULL) == PSDM_HS_OK) {
            accepted++;
            assert_int_equal(psdm_handoff_validate(&out, NULL), PSDM_HS_OK);
        }
    }
    assert_true(accepted > 0); /* flips inside user/origin text etc. stay valid */
    free(b);
}

static void test_null_args(void **state) {
    (void)state;
    psdm_handoff_req out;
    assert_int_equal(psdm_handoff_decode(NULL, 0, &out, NULL), PSDM_HS_E_TRUNCATED);
    assert_int_equal(psdm_handoff_decode(NULL, 5, &out, NULL), PSDM_HS_E_INVALID_ARG);
    assert_int_equal(psdm_handoff_decode(kGolden, sizeof kGolden, NULL, NULL), PSDM_HS_E_INVALID_ARG);
    assert_int_equal(psdm_handoff_header_total(NULL, 14), PSDM_HS_E_INVALID_ARG);
    assert_int_equal(psdm_handoff_validate(NULL, NULL), PSDM_HS_E_INVALID_ARG);
    assert_int_equal(psdm_handoff_build_refusal(NULL, 256), PSDM_HS_E_NO_SPACE);
}

/* ---- refusal ---- */

/* The worker's 503, byte for byte as the spec writes it; Content-Length matches. */
static void test_refusal(void **state) {
    (void)state;
    static const char kWant[] =
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: text/plain\r\n"
        "Content-Length: 46\r\nConnection: close\r\n\r\nlive updates are unavailable, try again later\n";
    char buf[256];
    int n = psdm_handoff_build_refusal(buf, sizeof buf);
    assert_int_equal(n, (int)sizeof kWant - 1);
    assert_memory_equal(buf, kWant, sizeof kWant - 1);
    const char *body = strstr(kWant, "\r\n\r\n") + 4;
    assert_int_equal(strlen(body), 46);
    assert_int_equal(psdm_handoff_build_refusal(buf, (size_t)n), n);
    assert_int_equal(psdm_handoff_build_refusal(buf, (size_t)n - 1), PSDM_HS_E_NO_SPACE);
}

/* ---- names ---- */

static void test_names(void **state) {
    (void)state;
    for (int e = PSDM_HS_E_BAD_FD; e <= 0; e++) {
        const char *name = psdm_handoff_strerror(e);
        if (e == -15) { /* bad_status, retired with the answer of version 1 */
            assert_string_equal(name, "unknown_error");
            continue;
        }
        assert_string_not_equal(name, "unknown_error");
        for (int f = PSDM_HS_E_BAD_FD; f < e; f++)
            if (f != -15) assert_string_not_equal(name, psdm_handoff_strerror(f));
    }
    assert_string_equal(psdm_handoff_strerror(PSDM_HS_E_BAD_FD - 1), "unknown_error");
    assert_string_equal(psdm_handoff_strerror(1), "unknown_error");
    assert_string_equal(psdm_handoff_strerror(PSDM_HS_E_BAD_FIELD), "bad_field");
    for (unsigned t = 1; t <= PSDM_HS_TAG_EARLY_DATA; t++) {
        assert_string_not_equal(psdm_handoff_tag_name(t), "unknown");
        for (unsigned u = 1; u < t; u++) assert_string_not_equal(psdm_handoff_tag_name(t), psdm_handoff_tag_name(u));
    }
    assert_string_equal(psdm_handoff_tag_name(PSDM_HS_TAG_ORIGIN), "origin");
    assert_string_equal(psdm_handoff_tag_name(0), "unknown");
    assert_string_equal(psdm_handoff_tag_name(12), "unknown");
}

/* ---- the replayed upgrade request ---- */

static void test_upgrade_full(void **state) {
    (void)state;
    psdm_handoff_req r = full_req();
    char out[PSDM_HS_REPLAY_MAX];
    const int n = psdm_handoff_build_upgrade(&r, out, sizeof out);
    static const char want[] =
        "GET /elog_socketio/?EIO=4&transport=websocket HTTP/1.1\r\n"
        "Host: pswww.slac.stanford.edu\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Key: " KEY
        "\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "Origin: https://pswww.slac.stanford.edu\r\n"
        "Sec-WebSocket-Protocol: chat, superchat\r\n"
        "\r\n"
        "\x81\x82\0\r\nx"; /* early data; extensions are not replayed */
    assert_int_equal(n, sizeof want - 1);
    assert_memory_equal(out, want, sizeof want - 1);
}

static void test_upgrade_minimal(void **state) {
    (void)state;
    psdm_handoff_req r = minimal_req();
    char out[PSDM_HS_REPLAY_MAX];
    const int n = psdm_handoff_build_upgrade(&r, out, sizeof out);
    static const char want[] =
        "GET /x HTTP/1.1\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Key: " KEY
        "\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "\r\n";
    assert_int_equal(n, sizeof want - 1);
    assert_memory_equal(out, want, sizeof want - 1);
}

static void test_upgrade_limit(void **state) {
    (void)state;
    static char uri[PSDM_HS_MAX_URI];
    memset(uri, 'u', sizeof uri);
    uri[0] = '/';
    static char out[PSDM_HS_REPLAY_MAX + 64];
    psdm_handoff_req r = minimal_req();
    r.uri.ptr = uri;
    r.uri.len = 1;
    const int base = psdm_handoff_build_upgrade(&r, out, PSDM_HS_REPLAY_MAX);
    assert_true(base > 0);

    /* grow the URI to exactly 2048 output bytes, then one more */
    r.uri.len = (uint16_t)(1 + PSDM_HS_REPLAY_MAX - base);
    memset(out, '#', sizeof out);
    assert_int_equal(psdm_handoff_build_upgrade(&r, out, PSDM_HS_REPLAY_MAX), PSDM_HS_REPLAY_MAX);
    assert_memory_equal(out + PSDM_HS_REPLAY_MAX - 4, "\r\n\r\n", 4);
    assert_int_equal(out[PSDM_HS_REPLAY_MAX], '#'); /* nothing written past cap */
    r.uri.len++;
    memset(out, '#', sizeof out);
    assert_int_equal(psdm_handoff_build_upgrade(&r, out, PSDM_HS_REPLAY_MAX), PSDM_HS_E_NO_SPACE);
    assert_int_equal(out[PSDM_HS_REPLAY_MAX], '#');

    /* the same boundary reached with early data */
    r.uri.len = 1;
    r.early_data = L((size_t)(PSDM_HS_REPLAY_MAX - base));
    assert_int_equal(psdm_handoff_build_upgrade(&r, out, PSDM_HS_REPLAY_MAX), PSDM_HS_REPLAY_MAX);
    r.early_data.len++;
    assert_int_equal(psdm_handoff_build_upgrade(&r, out, PSDM_HS_REPLAY_MAX), PSDM_HS_E_NO_SPACE);
    /* early data at its field maximum never fits with a request (the worker refuses it) */
    r.early_data = L(PSDM_HS_MAX_EARLY_DATA);
    assert_int_equal(psdm_handoff_build_upgrade(&r, out, PSDM_HS_REPLAY_MAX), PSDM_HS_E_NO_SPACE);

    r = minimal_req();
    assert_int_equal(psdm_handoff_build_upgrade(&r, out, 0), PSDM_HS_E_NO_SPACE);
    assert_int_equal(psdm_handoff_build_upgrade(&r, NULL, 0), PSDM_HS_E_NO_SPACE);
}

/* upgrade_len: what build_upgrade writes, from the lengths alone; the module's check. */
static void test_upgrade_len(void **state) {
    (void)state;
    static char out[PSDM_HS_REPLAY_MAX + 64];
    psdm_handoff_req r = full_req();
    assert_int_equal(psdm_handoff_upgrade_len(&r), psdm_handoff_build_upgrade(&r, out, sizeof out));
    r = minimal_req();
    const size_t base = psdm_handoff_upgrade_len(&r);
    assert_int_equal(base, psdm_handoff_build_upgrade(&r, out, sizeof out));

    /* exactly at the limit: the worker's build fits; one byte over: it does not */
    r.early_data = L(PSDM_HS_REPLAY_MAX - base);
    assert_int_equal(psdm_handoff_upgrade_len(&r), PSDM_HS_REPLAY_MAX);
    assert_int_equal(psdm_handoff_build_upgrade(&r, out, PSDM_HS_REPLAY_MAX), PSDM_HS_REPLAY_MAX);
    r.early_data.len++;
    assert_int_equal(psdm_handoff_upgrade_len(&r), PSDM_HS_REPLAY_MAX + 1);
    assert_int_equal(psdm_handoff_build_upgrade(&r, out, PSDM_HS_REPLAY_MAX), PSDM_HS_E_NO_SPACE);
    /* ... and still encodes: the field limit is the same constant, the replay is the bound */
    assert_true(psdm_handoff_encode(&r, g_buf, sizeof g_buf, NULL) > 0);
    r.early_data.len = PSDM_HS_REPLAY_MAX + 1;
    assert_int_equal(psdm_handoff_encode(&r, g_buf, sizeof g_buf, NULL), PSDM_HS_E_BAD_FIELD);

    /* lengths only: an invalid or over-long request still has a length, nothing is read */
    r = minimal_req();
    r.origin = S("https://a\r\nCookie: x");
    assert_int_equal(psdm_handoff_upgrade_len(&r), base + strlen("Origin: https://a\r\nCookie: x\r\n"));
    r = minimal_req();
    r.early_data.ptr = NULL;
    r.early_data.len = 60000;
    assert_int_equal(psdm_handoff_upgrade_len(&r), base + 60000);
    assert_int_equal(psdm_handoff_upgrade_len(NULL), 0);
}

static void test_upgrade_refuses_invalid(void **state) {
    (void)state;
    char out[PSDM_HS_REPLAY_MAX];
    psdm_handoff_req r = minimal_req();
    r.origin = S("https://a\r\nCookie: x");
    assert_int_equal(psdm_handoff_build_upgrade(&r, out, sizeof out), PSDM_HS_E_BAD_FIELD);
    r = minimal_req();
    r.ws_key = S("");
    assert_int_equal(psdm_handoff_build_upgrade(&r, out, sizeof out), PSDM_HS_E_MISSING_FIELD);
    assert_int_equal(psdm_handoff_build_upgrade(NULL, out, sizeof out), PSDM_HS_E_INVALID_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_encode),
        cmocka_unit_test(test_golden_decode),
        cmocka_unit_test(test_roundtrip_minimal),
        cmocka_unit_test(test_roundtrip_full),
        cmocka_unit_test(test_roundtrip_max),
        cmocka_unit_test(test_encode_validation),
        cmocka_unit_test(test_decode_table),
        cmocka_unit_test(test_groups_64_and_65),
        cmocka_unit_test(test_decode_any_order),
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_oversize_length),
        cmocka_unit_test(test_truncated_every_byte),
        cmocka_unit_test(test_mutation_smoke),
        cmocka_unit_test(test_null_args),
        cmocka_unit_test(test_refusal),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_upgrade_full),
        cmocka_unit_test(test_upgrade_minimal),
        cmocka_unit_test(test_upgrade_limit),
        cmocka_unit_test(test_upgrade_len),
        cmocka_unit_test(test_upgrade_refuses_invalid),
    };
    return cmocka_run_group_tests(tests, setup_long, NULL);
}

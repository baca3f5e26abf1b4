/* Unit tests for mod_psdm_socket/psdm_checks.c: identity, upgrade headers, the worker's
 * Socket.IO handshake rules, Origin, groups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "psdm_checks.h"

static void test_user_normalize(void **state) {
    (void)state;
    static const char *const realms[] = {"SLAC.STANFORD.EDU", "OTHER.REALM"};
    static const struct {
        const char *raw;
        size_t nrealms; /* how many of realms[] the site strips */
        int len;
        const char *user;
    } cases[] = {
        {"alice", 2, 5, "alice"},
        {"alice@SLAC.STANFORD.EDU", 2, 5, "alice"}, /* a listed realm is stripped */
        {"alice@OTHER.REALM", 2, 5, "alice"},
        {"alice@SLAC.STANFORD.EDU", 0, 23, "alice@SLAC.STANFORD.EDU"}, /* nothing listed: whole */
        {"alice@evil", 2, 10, "alice@evil"},                           /* not a listed realm: whole */
        {"alice@slac.stanford.edu", 2, 23, "alice@slac.stanford.edu"}, /* realms are case-sensitive */
        {"alice@SLAC.STANFORD.EDU.evil", 2, 28, "alice@SLAC.STANFORD.EDU.evil"},
        {"bob@x@SLAC.STANFORD.EDU", 2, 5, "bob@x"}, /* one trailing realm only */
        {"bob@x@y", 2, 7, "bob@x@y"},
        {"bob@SLAC.STANFORD.EDU@evil", 2, 26, "bob@SLAC.STANFORD.EDU@evil"},
        {"bob@SLAC.STANFORD.EDU@SLAC.STANFORD.EDU", 2, 21, "bob@SLAC.STANFORD.EDU"},
        {"carol@", 2, 6, "carol@"},
        {"@SLAC.STANFORD.EDU", 2, 0, ""}, /* empty once stripped: no user */
        {"@realm", 2, 6, "@realm"},
        {"", 2, 0, ""},
        {"   ", 2, -1, ""},
        {"  bob  ", 2, -1, ""}, /* " bob" is not "bob" */
        {"bob @SLAC.STANFORD.EDU", 2, -1, ""},
        {"alice smith", 2, 11, "alice smith"},
        {"ev\x01il", 2, -1, ""},
        {"tab\tinside", 2, -1, ""},
        {"del\x7f@SLAC.STANFORD.EDU", 2, -1, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[PSDM_MAX_NAME + 1] = "";
        int n = psdm_user_normalize(cases[i].raw, realms, cases[i].nrealms, out, sizeof out);
        printf("user: '%s' (%zu realms)\n", cases[i].raw, cases[i].nrealms);
        assert_int_equal(n, cases[i].len);
        if (n > 0) assert_string_equal(out, cases[i].user);
    }
    char out[8];
    assert_int_equal(psdm_user_normalize(NULL, realms, 2, out, sizeof out), 0);
    assert_int_equal(psdm_user_normalize("toolongname", realms, 2, out, sizeof out), -1);
    assert_int_equal(psdm_user_normalize("eightchr@SLAC.STANFORD.EDU", realms, 2, out, sizeof out), -1);
    assert_int_equal(psdm_user_normalize("sevench@SLAC.STANFORD.EDU", realms, 2, out, sizeof out), 7); /* fits */
    char big[PSDM_MAX_NAME + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char out2[sizeof big];
    assert_int_equal(psdm_user_normalize(big, NULL, 0, out2, sizeof out2), -1);
    big[PSDM_MAX_NAME] = '\0'; /* exactly the limit */
    assert_int_equal(psdm_user_normalize(big, NULL, 0, out2, sizeof out2), PSDM_MAX_NAME);
}

static void test_upgrade_check(void **state) {
    (void)state;
    const char *key = "dGhlIHNhbXBsZSBub25jZQ=="; /* RFC 6455 section 1.3 */
    static const char *const no = NULL;
    assert_int_equal(psdm_upgrade_check("GET", "websocket", "Upgrade", "13", key), PSDM_UPGRADE_OK);
    assert_int_equal(psdm_upgrade_check("GET", "WebSocket", "keep-alive, Upgrade", "13", key), PSDM_UPGRADE_OK);
    assert_int_equal(psdm_upgrade_check("POST", "websocket", "Upgrade", "13", key), PSDM_UPGRADE_NOT_GET);
    assert_int_equal(psdm_upgrade_check("GET", no, "Upgrade", "13", key), PSDM_UPGRADE_NO_UPGRADE);
    assert_int_equal(psdm_upgrade_check("GET", "h2c", "Upgrade", "13", key), PSDM_UPGRADE_NO_UPGRADE);
    assert_int_equal(psdm_upgrade_check("GET", "websocket", "keep-alive", "13", key), PSDM_UPGRADE_NO_CONNECTION);
    assert_int_equal(psdm_upgrade_check("GET", "websocket", "Upgrade", "8", key), PSDM_UPGRADE_BAD_VERSION);
    assert_int_equal(psdm_upgrade_check("GET", "websocket", "Upgrade", "13, 8", key), PSDM_UPGRADE_BAD_VERSION);
    assert_int_equal(psdm_upgrade_check("GET", "websocket", "Upgrade", no, key), PSDM_UPGRADE_BAD_VERSION);
    /* The key: exactly 16 bytes in canonical base64 (RFC 6455 section 4.2.1, item 5). */
    static const struct {
        const char *key;
        int ok;
    } keys[] = {
        {"dGhlIHNhbXBsZSBub25jZQ==", 1},
        {"AAAAAAAAAAAAAAAAAAAAAA==", 1},
        {"/////////////////////w==", 1}, /* sixteen 0xff bytes */
        {"+++++++++++++++++++++g==", 1},
        {"dGhlIHNhbXBsZSBub25jZR==", 0}, /* 'R' leaves bits past the 16th byte set */
        {"dGhlIHNhbXBsZSBub25jZQ=", 0},
        {"dGhlIHNhbXBsZSBub25jZQ===", 0},
        {"dGhlIHNhbXBsZSBub25jZQAA", 0}, /* 18 bytes */
        {"dGhlIHNhbXBsZSBub25j", 0},     /* 15 bytes */
        {"dGhlIHNhbXBsZSBub25jZQ!=", 0},
        {"dGhlIHNhbXBsZSBub25jZ-==", 0},       /* base64url is not base64 */
        {"dGhlIHNhbXBsZSBub25j\xc3\xa9==", 0}, /* 24 bytes, not base64 */
        {"short==", 0},
        {"", 0},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        printf("key: '%s'\n", keys[i].key);
        assert_int_equal(psdm_upgrade_check("GET", "websocket", "Upgrade", "13", keys[i].key),
                         keys[i].ok ? PSDM_UPGRADE_OK : PSDM_UPGRADE_BAD_KEY);
    }
    assert_int_equal(psdm_upgrade_check("GET", "websocket", "Upgrade", "13", no), PSDM_UPGRADE_BAD_KEY);
    assert_string_equal(psdm_upgrade_verdict_text(PSDM_UPGRADE_NO_UPGRADE),
                        "not a WebSocket upgrade (expected 'Upgrade: websocket')");
}

/* The worker's handshake cases (tests/unit/test_sio_codec.cpp, kHandshakeCases), then
 * the path, and the query as libwebsockets hands it to the worker. */
static void test_sio_check(void **state) {
    (void)state;
    const char *path = "/lgbk_socketio/socket.io/";
    static const struct {
        const char *query;
        psdm_upgrade_verdict verdict;
    } cases[] = {
        /* kHandshakeCases, in its order */
        {"EIO=4&transport=websocket&t=N8x", PSDM_UPGRADE_OK},
        {"EIO=3&transport=websocket", PSDM_UPGRADE_OK},
        {"?EIO=4&transport=websocket", PSDM_UPGRADE_OK},
        {"transport=websocket&EIO=3&b64=1", PSDM_UPGRADE_OK},
        {"t=1&&EIO=4&transport=websocket&", PSDM_UPGRADE_OK},
        {"EIO=4&transport=websocket&EIO=2", PSDM_UPGRADE_OK}, /* first occurrence counts */
        {"transport=websocket", PSDM_UPGRADE_BAD_EIO},
        {"EIO=2&transport=websocket", PSDM_UPGRADE_BAD_EIO},
        {"EIO=5&transport=websocket", PSDM_UPGRADE_BAD_EIO},
        {"EIO=44&transport=websocket", PSDM_UPGRADE_BAD_EIO},
        {"EIO&transport=websocket", PSDM_UPGRADE_BAD_EIO},
        {"EIO=&transport=websocket", PSDM_UPGRADE_BAD_EIO},
        {"EIO=4", PSDM_UPGRADE_BAD_TRANSPORT},
        {"EIO=4&transport=polling", PSDM_UPGRADE_BAD_TRANSPORT},
        {"EIO=4&transport=websocketX", PSDM_UPGRADE_BAD_TRANSPORT},
        {"EIO=4&Transport=websocket", PSDM_UPGRADE_BAD_TRANSPORT},
        {"", PSDM_UPGRADE_BAD_TRANSPORT},
        {"EIO=4&transport=websocket&sid=abc", PSDM_UPGRADE_HAS_SID},
        /* the worker's codes: transport before EIO before sid */
        {"EIO=9&transport=websocket", PSDM_UPGRADE_BAD_EIO},
        {"EIO=3&transport=websocket&sid=x", PSDM_UPGRADE_HAS_SID},
        {"EIO=5&transport=polling&sid=x", PSDM_UPGRADE_BAD_TRANSPORT},
        /* as libwebsockets decodes it: %XX and '+', ';' splits too */
        {"EIO=%34&transport=web%73ocket", PSDM_UPGRADE_OK},
        {"EIO=4&transport=websocket&x=%26sid%3D1", PSDM_UPGRADE_HAS_SID}, /* a decoded '&' splits in the worker */
        {"EIO=4&transport=websocket;sid=1", PSDM_UPGRADE_HAS_SID},
        {"EIO=4;transport=websocket", PSDM_UPGRADE_OK},
        {"%45IO=5&EIO=4&transport=websocket", PSDM_UPGRADE_BAD_EIO}, /* the decoded EIO comes first */
        {"EIO%3D4&transport=websocket", PSDM_UPGRADE_BAD_EIO},       /* an encoded '=' in a name is '_' */
        {"EIO=4%3D&transport=websocket", PSDM_UPGRADE_BAD_EIO},
        {"EIO=4+&transport=websocket", PSDM_UPGRADE_BAD_EIO}, /* '+' is a space */
        {"%3FEIO=4&transport=websocket", PSDM_UPGRADE_OK},
        {"EIO=4&transport=websocket&x=%zz", PSDM_UPGRADE_BAD_QUERY},
        {"EIO=4&transport=websocket&x=%4", PSDM_UPGRADE_BAD_QUERY},
        {"EIO=4&transport=websocket&x=%", PSDM_UPGRADE_BAD_QUERY},
        {"EIO=4&transport=websocket&x=%00", PSDM_UPGRADE_BAD_QUERY},
        {"EIO=4&transport=websocket&x=%0d%0a", PSDM_UPGRADE_BAD_QUERY},
        {"EIO=4&transport=websocket&x=caf%C3%A9", PSDM_UPGRADE_OK},
        /* the worker reads 16 parameters, each under 256 bytes */
        {"a&b&c&d&e&f&g&h&i&j&k&l&m&n&EIO=4&transport=websocket", PSDM_UPGRADE_OK},
        {"a&b&c&d&e&f&g&h&i&j&k&l&m&n&o&EIO=4&transport=websocket", PSDM_UPGRADE_BAD_TRANSPORT},
        {"a&b&c&d&e&f&g&h&i&j&k&l&m&n&o&p&EIO=4&transport=websocket&x=%zz", PSDM_UPGRADE_BAD_QUERY},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        printf("query: '%s'\n", cases[i].query);
        assert_int_equal(psdm_sio_check(path, cases[i].query), cases[i].verdict);
    }
    assert_int_equal(psdm_sio_check(path, NULL), PSDM_UPGRADE_BAD_TRANSPORT);
    char q[600];
    snprintf(q, sizeof q, "t=%0253d&EIO=4&transport=websocket", 0); /* t=... is 255 bytes */
    assert_int_equal(psdm_sio_check(path, q), PSDM_UPGRADE_OK);
    snprintf(q, sizeof q, "t=%0254d&EIO=4&transport=websocket", 0); /* 256: the worker stops there */
    assert_int_equal(psdm_sio_check(path, q), PSDM_UPGRADE_BAD_TRANSPORT);
    snprintf(q, sizeof q, "EIO=4&transport=websocket&t=%%41%0252d", 0); /* 255 once decoded */
    assert_int_equal(psdm_sio_check(path, q), PSDM_UPGRADE_OK);

    static const struct {
        const char *path;
        psdm_upgrade_verdict verdict;
    } paths[] = {
        {"/lgbk_socketio/socket.io/", PSDM_UPGRADE_OK},
        {"/lgbk_socketio/socket.io", PSDM_UPGRADE_OK},
        {"/socket.io/", PSDM_UPGRADE_OK},
        {"/lgbk_socketio/x/socket.io/", PSDM_UPGRADE_OK},
        {"/lgbk_socketio/", PSDM_UPGRADE_BAD_PATH},
        {"/lgbk_socketio/socket.io/x", PSDM_UPGRADE_BAD_PATH},
        {"/lgbk_socketio/socket.io//", PSDM_UPGRADE_BAD_PATH},
        {"/lgbk_socketio/xsocket.io/", PSDM_UPGRADE_BAD_PATH},
        {"/lgbk_socketio/Socket.IO/", PSDM_UPGRADE_BAD_PATH},
        {"/lgbk_socketio/socket%2Eio/", PSDM_UPGRADE_BAD_PATH}, /* compared as sent */
        {"socket.io/", PSDM_UPGRADE_BAD_PATH},
        {"", PSDM_UPGRADE_BAD_PATH},
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        printf("path: '%s'\n", paths[i].path);
        assert_int_equal(psdm_sio_check(paths[i].path, "EIO=4&transport=websocket"), paths[i].verdict);
    }
    assert_int_equal(psdm_sio_check(NULL, "EIO=4&transport=websocket"), PSDM_UPGRADE_BAD_PATH);
    assert_string_equal(psdm_upgrade_verdict_text(PSDM_UPGRADE_BAD_EIO),
                        "unsupported Engine.IO version (expected EIO=3 or EIO=4)");
}

static void test_origin_default_is_the_site(void **state) {
    (void)state;
    static const char *const hosts[] = {"pswww.slac.stanford.edu", "pswww", "*.psdm.example", "node?.example"};
    static const psdm_site https_site = {"https", hosts, 4, 0, 443};
    static const psdm_site http_8080 = {"http", hosts, 4, 8080, 8080};
    static const psdm_site unnamed_port = {"http", hosts, 4, 0, 8080}; /* ServerName without a port */
    static const struct {
        const char *origin;
        const psdm_site *site;
        int ok;
    } cases[] = {
        {"https://pswww.slac.stanford.edu", &https_site, 1},
        {"HTTPS://PSWWW.slac.stanford.edu", &https_site, 1},
        {"https://pswww.slac.stanford.edu:443", &https_site, 1},
        {"https://pswww", &https_site, 1}, /* an alias */
        {"https://a.psdm.example", &https_site, 1},
        {"https://a.b.psdm.example", &https_site, 1},
        {"https://psdm.example", &https_site, 0},
        {"https://node1.example", &https_site, 1},
        {"https://node12.example", &https_site, 0},
        {"https://evil.example", &https_site, 0},
        {"https://pswww.slac.stanford.edu.evil.example", &https_site, 0},
        {"https://evil.pswww.slac.stanford.edu", &https_site, 0},
        {"http://pswww.slac.stanford.edu", &https_site, 0}, /* another scheme */
        {"https://pswww.slac.stanford.edu:8443", &https_site, 0},
        {"https://pswww.slac.stanford.edu/", &https_site, 0}, /* not an origin */
        {"https://pswww.slac.stanford.edu/lgbk", &https_site, 0},
        {"https://user@pswww.slac.stanford.edu", &https_site, 0},
        {"https://pswww.slac.stanford.edu:", &https_site, 0},
        {"https://pswww.slac.stanford.edu:0443", &https_site, 1},
        {"https://pswww.slac.stanford.edu:99999", &https_site, 0},
        {"null", &https_site, 0},
        {"", &https_site, 0},
        {"file://", &https_site, 0},
        {"http://pswww:8080", &http_8080, 1},
        {"http://pswww", &http_8080, 0},
        {"http://pswww:8081", &http_8080, 0},
        {"http://pswww:8080", &unnamed_port, 1}, /* the port the connection came in on */
        {"http://pswww", &unnamed_port, 1},      /* or the scheme's default */
        {"http://pswww:8081", &unnamed_port, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        printf("origin: '%s'\n", cases[i].origin);
        assert_int_equal(psdm_origin_allowed(cases[i].origin, NULL, 0, cases[i].site), cases[i].ok);
    }
    assert_true(psdm_origin_allowed(NULL, NULL, 0, &https_site)); /* not a browser */
    const psdm_site ipv6 = {"http", (const char *const[]){"[::1]"}, 1, 8080, 8080};
    assert_true(psdm_origin_allowed("http://[::1]:8080", NULL, 0, &ipv6));
    assert_false(psdm_origin_allowed("http://[::2]:8080", NULL, 0, &ipv6));
    const psdm_site nameless = {"http", NULL, 0, 80, 80};
    assert_false(psdm_origin_allowed("http://localhost", NULL, 0, &nameless));
}

static void test_origin_configured_list(void **state) {
    (void)state;
    static const char *const hosts[] = {"c.example"};
    const psdm_site site = {"https", hosts, 1, 0, 443};
    /* A configured list replaces the default. */
    const char *const list[] = {"https://a.example", "http://b.example:80"};
    assert_true(psdm_origin_allowed("https://a.example", list, 2, &site));
    assert_true(psdm_origin_allowed("https://A.EXAMPLE:443", list, 2, &site));
    assert_true(psdm_origin_allowed("http://b.example", list, 2, &site));
    assert_false(psdm_origin_allowed("https://c.example", list, 2, &site));
    assert_false(psdm_origin_allowed("https://a.example.evil", list, 2, &site));
    assert_false(psdm_origin_allowed("http://a.example", list, 2, &site));
    assert_false(psdm_origin_allowed("null", list, 2, &site));
    const char *const any[] = {"*"};
    assert_true(psdm_origin_allowed("https://anything", any, 1, &site));
    assert_true(psdm_origin_allowed("null", any, 1, &site));
    /* What PsdmSocketAllowOrigin accepts. */
    assert_true(psdm_origin_valid("https://a.example"));
    assert_true(psdm_origin_valid("http://127.0.0.1:8080"));
    assert_true(psdm_origin_valid("http://[::1]:8080"));
    assert_false(psdm_origin_valid("a.example"));
    assert_false(psdm_origin_valid("https://a.example/"));
    assert_false(psdm_origin_valid("https://*.example"));
    assert_false(psdm_origin_valid("ws://a.example"));
    assert_false(psdm_origin_valid("https://"));
    assert_false(psdm_origin_valid(NULL));
}

static void test_groups(void **state) {
    (void)state;
    char g[4][PSDM_MAX_NAME];
    assert_int_equal(psdm_groups_split("ps-data, xpp;  amo", g, 4), 3);
    assert_string_equal(g[0], "ps-data");
    assert_string_equal(g[1], "xpp");
    assert_string_equal(g[2], "amo");
    assert_int_equal(psdm_groups_split("", g, 4), 0);
    assert_int_equal(psdm_groups_split(NULL, g, 4), 0);
    assert_int_equal(psdm_groups_split(" , ;", g, 4), 0);
    assert_int_equal(psdm_groups_split("a b c d e", g, 4), -1);
    assert_int_equal(psdm_groups_split("a\x01", g, 4), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_normalize),
        cmocka_unit_test(test_upgrade_check),
        cmocka_unit_test(test_sio_check),
        cmocka_unit_test(test_origin_default_is_the_site),
        cmocka_unit_test(test_origin_configured_list),
        cmocka_unit_test(test_groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for mod_psdm_socket/psdm_checks.c: identity, upgrade headers, Origin, groups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "psdm_checks.h"

static void test_user_normalize(void **state) {
    (void)state;
    static const struct {
        const char *raw;
        int len;
        const char *user;
    } cases[] = {
        {"alice", 5, "alice"},   {"alice@SLAC.STANFORD.EDU", 5, "alice"}, /* realm dropped, as flask_authnz does */
        {"  bob  ", 3, "bob"},   {"carol@", 5, "carol"},
        {"@realm", 0, ""},       {"", 0, ""},
        {"   ", 0, ""},          {"ev\x01il", -1, ""},
        {"tab\tinside", -1, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[PSDM_MAX_NAME + 1] = "";
        int n = psdm_user_normalize(cases[i].raw, out, sizeof out);
        assert_int_equal(n, cases[i].len);
        if (n > 0) assert_string_equal(out, cases[i].user);
    }
    char out[8];
    assert_int_equal(psdm_user_normalize(NULL, out, sizeof out), 0);
    assert_int_equal(psdm_user_normalize("toolongname", out, sizeof out), -1);
    char big[PSDM_MAX_NAME + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char out2[sizeof big];
    assert_int_equal(psdm_user_normalize(big, out2, sizeof out2), -1);
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
    assert_int_equal(psdm_upgrade_check("GET", "websocket", "Upgrade", no, key), PSDM_UPGRADE_BAD_VERSION);
    assert_int_equal(psdm_upgrade_check("GET", "websocket", "Upgrade", "13", no), PSDM_UPGRADE_BAD_KEY);
    assert_int_equal(psdm_upgrade_check("GET", "websocket", "Upgrade", "13", "short=="), PSDM_UPGRADE_BAD_KEY);
    assert_int_equal(psdm_upgrade_check("GET", "websocket", "Upgrade", "13", "dGhlIHNhbXBsZSBub25jZQ!="),
                     PSDM_UPGRADE_BAD_KEY);
    assert_string_equal(psdm_upgrade_verdict_text(PSDM_UPGRADE_NO_UPGRADE),
                        "not a WebSocket upgrade (expected 'Upgrade: websocket')");
}

static void test_origin(void **state) {
    (void)state;
    /* Default: the request's own scheme and Host. */
    assert_true(psdm_origin_allowed("https://pswww.slac.stanford.edu", NULL, 0, "https", "pswww.slac.stanford.edu"));
    assert_true(psdm_origin_allowed("HTTPS://PSWWW.slac.stanford.edu", NULL, 0, "https", "pswww.slac.stanford.edu"));
    assert_true(
        psdm_origin_allowed("https://pswww.slac.stanford.edu", NULL, 0, "https", "pswww.slac.stanford.edu:443"));
    assert_true(psdm_origin_allowed("http://127.0.0.1:8080", NULL, 0, "http", "127.0.0.1:8080"));
    assert_false(psdm_origin_allowed("http://127.0.0.1:8081", NULL, 0, "http", "127.0.0.1:8080"));
    assert_false(psdm_origin_allowed("https://evil.example", NULL, 0, "https", "pswww.slac.stanford.edu"));
    assert_false(psdm_origin_allowed("http://pswww.slac.stanford.edu", NULL, 0, "https", "pswww.slac.stanford.edu"));
    assert_false(psdm_origin_allowed("null", NULL, 0, "https", "pswww.slac.stanford.edu"));
    assert_true(psdm_origin_allowed(NULL, NULL, 0, "https", "x")); /* not a browser */
    /* A configured list replaces the default. */
    const char *const list[] = {"https://a.example", "http://b.example:80"};
    assert_true(psdm_origin_allowed("https://a.example", list, 2, "https", "c.example"));
    assert_true(psdm_origin_allowed("http://b.example", list, 2, "https", "c.example"));
    assert_false(psdm_origin_allowed("https://c.example", list, 2, "https", "c.example"));
    assert_false(psdm_origin_allowed("https://a.example.evil", list, 2, "https", "c.example"));
    const char *const any[] = {"*"};
    assert_true(psdm_origin_allowed("https://anything", any, 1, "https", "c.example"));
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
        cmocka_unit_test(test_origin),
        cmocka_unit_test(test_groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * psdm_checks: the module's request checks as pure functions (plain C strings in,
 * verdict out; no httpd or APR types), so that they are unit-tested directly
 * (tests/unit/test_psdm_checks.c) and the handler only wires them to request_rec.
 */
#ifndef PSDM_CHECKS_H
#define PSDM_CHECKS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Longest user name or group name passed to the worker (the handoff protocol's limit). */
#define PSDM_MAX_NAME 256

/*
 * Reduces an identity as the SSO layer gives it to the user name the worker sees:
 * surrounding whitespace is dropped and "user@realm" becomes "user", as flask_authnz
 * does. Writes a NUL-terminated name into out (cap bytes).
 * Returns the name's length, 0 if there is no usable name (NULL, empty, "@realm"),
 * or -1 if it is too long or contains a control character.
 */
int psdm_user_normalize(const char *raw, char *out, size_t cap);

/* Why an upgrade request was refused; PSDM_UPGRADE_OK when it is a usable one. */
typedef enum {
    PSDM_UPGRADE_OK = 0,
    PSDM_UPGRADE_NOT_GET,       /* method is not GET */
    PSDM_UPGRADE_NO_UPGRADE,    /* no "Upgrade: websocket" */
    PSDM_UPGRADE_NO_CONNECTION, /* "Connection" lacks the "upgrade" token */
    PSDM_UPGRADE_BAD_VERSION,   /* Sec-WebSocket-Version is not 13 */
    PSDM_UPGRADE_BAD_KEY        /* Sec-WebSocket-Key missing or not 24 base64 characters */
} psdm_upgrade_verdict;

/* Checks the handshake headers of RFC 6455 section 4.2.1; any argument may be NULL
 * (header absent). */
psdm_upgrade_verdict psdm_upgrade_check(const char *method, const char *upgrade, const char *connection,
                                        const char *ws_version, const char *ws_key);

/* One line for the 400 body and the log: "not a WebSocket upgrade (...)". Never NULL. */
const char *psdm_upgrade_verdict_text(psdm_upgrade_verdict v);

/*
 * Is `origin` (the Origin header, may be NULL) allowed?
 *  - allowed[0..n) are origins as "scheme://host[:port]" or "*"; matching is exact and
 *    case-insensitive, after dropping a default port (:80 for http, :443 for https);
 *  - with n == 0 the only allowed origin is the request's own: self_scheme "://" self_host
 *    (self_host is the Host header, port included if given);
 *  - no Origin header at all is allowed: browsers always send one on WebSocket
 *    handshakes, and cross-site WebSocket hijacking needs a browser.
 * Returns 1 if allowed, 0 if not.
 */
int psdm_origin_allowed(const char *origin, const char *const *allowed, size_t n, const char *self_scheme,
                        const char *self_host);

/*
 * Splits a group list ("a, b c;d") at commas, semicolons and whitespace into at most
 * max names, each stored NUL-terminated in out[i] (PSDM_MAX_NAME bytes each).
 * Returns the number of groups, or -1 if there are more than max or one is too long
 * or contains a control character.
 */
int psdm_groups_split(const char *list, char out[][PSDM_MAX_NAME], int max);

#ifdef __cplusplus
}
#endif

#endif /* PSDM_CHECKS_H */

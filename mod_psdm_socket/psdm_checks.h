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
 * The user name the worker sees for an identity as the SSO layer gives it. The name
 * is kept whole, except that one trailing "@REALM" is removed when REALM is exactly
 * (case-sensitively: Kerberos realms are) one of realms[0..nrealms), the realms the
 * site strips (PsdmSocketStripRealm): "bob@x@SLAC.STANFORD.EDU" -> "bob@x",
 * "alice@evil" stays "alice@evil". Distinct names stay distinct, except that a name in
 * a stripped realm meets the bare name, which is what listing the realm declares.
 * Writes a NUL-terminated name into out (cap bytes).
 * Returns the name's length; 0 if there is no name (NULL, empty, "@REALM" with a
 * stripped realm); -1 if it is too long (over PSDM_MAX_NAME or cap - 1 bytes), has a
 * control character, or begins or ends with a blank (" alice" is not "alice").
 */
int psdm_user_normalize(const char *raw, const char *const *realms, size_t nrealms, char *out, size_t cap);

/* Why an upgrade request was refused; PSDM_UPGRADE_OK when it is a usable one. */
typedef enum {
    PSDM_UPGRADE_OK = 0,
    /* psdm_upgrade_check: the handshake headers */
    PSDM_UPGRADE_NOT_GET,       /* method is not GET */
    PSDM_UPGRADE_NO_UPGRADE,    /* no "Upgrade: websocket" */
    PSDM_UPGRADE_NO_CONNECTION, /* "Connection" lacks the "upgrade" token */
    PSDM_UPGRADE_BAD_VERSION,   /* Sec-WebSocket-Version missing or not 13: 426, the others 400 */
    PSDM_UPGRADE_BAD_KEY,       /* Sec-WebSocket-Key missing or not the base64 of 16 bytes */
    /* psdm_sio_check: what the worker refuses */
    PSDM_UPGRADE_BAD_PATH,      /* the path does not end in /socket.io/ or /socket.io */
    PSDM_UPGRADE_BAD_QUERY,     /* a %-escape that is not two hex digits, or one for a control byte */
    PSDM_UPGRADE_BAD_TRANSPORT, /* transport missing or not websocket (Engine.IO "transport unknown") */
    PSDM_UPGRADE_BAD_EIO,       /* EIO missing or not 3 or 4 ("unsupported protocol version") */
    PSDM_UPGRADE_HAS_SID        /* a sid parameter: no polling session to upgrade ("session id unknown") */
} psdm_upgrade_verdict;

/* Checks the handshake headers of RFC 6455 section 4.2.1; any argument may be NULL
 * (header absent). */
psdm_upgrade_verdict psdm_upgrade_check(const char *method, const char *upgrade, const char *connection,
                                        const char *ws_version, const char *ws_key);

/*
 * Would the worker take an upgrade of `path` with `query` (both as the client sent
 * them, still %-encoded; either may be NULL)? The worker's own rules, in C:
 * is_socketio_path (worker/server/ws_protocol.cpp) on the path, and
 * parse_handshake_query (worker/sio/sio_codec.h) on the query as the worker reads it:
 * libwebsockets splits it at '&' and ';', decodes %XX and '+' (an encoded '=' before a
 * parameter's first '=' becomes '_'), and the worker joins the first 16 parameters,
 * up to one of 256 bytes or more, with '&' (ws_protocol.cpp, query_of). The path is
 * compared as sent: one that ends in /socket.io/ only once decoded is refused here
 * (stricter than the worker, never looser), as is a %-escape for a control byte.
 * Returns PSDM_UPGRADE_OK or one of the verdicts from PSDM_UPGRADE_BAD_PATH on.
 */
psdm_upgrade_verdict psdm_sio_check(const char *path, const char *query);

/* One line for the 400/426 body and the log: "not a WebSocket upgrade (...)". Never NULL. */
const char *psdm_upgrade_verdict_text(psdm_upgrade_verdict v);

/* The site a request came to, for the default Origin rule (all from the server's
 * configuration, nothing from the request's headers). */
typedef struct {
    const char *scheme;       /* "http" or "https" */
    const char *const *hosts; /* ServerName, then each ServerAlias; '*' and '?' are wildcards in both */
    size_t nhosts;
    unsigned port;       /* the port ServerName or <VirtualHost> names; 0 if none */
    unsigned local_port; /* the port the connection came in on */
} psdm_site;

/*
 * Is `origin` (the Origin header, may be NULL) allowed?
 *  - an origin is "scheme://host[:port]" with scheme http or https (anything else,
 *    "null" included, is never allowed but by "*"); schemes and hosts compare
 *    case-insensitively, a missing port is the scheme's default (80, 443);
 *  - allowed[0..n), when n > 0, are the origins allowed (PsdmSocketAllowOrigin),
 *    exactly, or "*" for any;
 *  - with n == 0 the allowed origins are the site's own: its scheme, one of its hosts
 *    (a glob as ServerAlias has: '*' any run, '?' one character) and its port, or,
 *    when site->port is 0, the scheme's default port or site->local_port;
 *  - no Origin header at all is allowed: browsers always send one on WebSocket
 *    handshakes, and cross-site WebSocket hijacking needs a browser.
 * Returns 1 if allowed, 0 if not.
 */
int psdm_origin_allowed(const char *origin, const char *const *allowed, size_t n, const psdm_site *site);

/* Is s a usable origin "http[s]://host[:port]" (as psdm_origin_allowed reads one)? 1 or 0. */
int psdm_origin_valid(const char *s);

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

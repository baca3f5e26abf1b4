/*
 * mod_psdm_socket: authenticates WebSocket upgrades in Apache and hands the
 * connection itself to the psdm_socketd worker, with no proxy hop.
 *
 *   LoadModule psdm_socket_module /usr/lib/apache2/modules/mod_psdm_socket.so
 *   PsdmSocketWorker unix:/run/psdm_socket/handoff.sock
 *   <LocationMatch "^/[^/]+_socketio/">
 *       SetHandler psdm-socket
 *       PsdmSocketUser env:WEBAUTH_USER
 *   </LocationMatch>
 *
 * For each request at such a location the handler:
 *   1. checks it is a WebSocket upgrade (else 400 with a one-line body; 426 naming
 *      version 13 for another Sec-WebSocket-Version) that the worker takes: a path
 *      ending in /socket.io/, Engine.IO 3 or 4 over websocket (else 400);
 *   2. takes the user from PsdmSocketUser (r->user, a variable or a trusted header),
 *      whole but for one trailing "@REALM" of PsdmSocketStripRealm - none: 401, or 403
 *      when an auth module ran;
 *   3. checks the Origin against PsdmSocketAllowOrigin (default: this virtual host's
 *      scheme, ServerName or ServerAlias, and port) - 403 otherwise;
 *   4. checks that the worker can take it: the upgrade request it replays plus the
 *      bytes the client sent past the request must fit PSDM_HS_REPLAY_MAX (the one
 *      limit of handoff_proto.h, which the worker applies too) - else 413 (too much
 *      early data) or 431 (upgrade request too large);
 *   5. hands the connection to the worker over its Unix socket without waiting for it
 *      (non-blocking connect and sendmsg, as mod_proxy_fdpass does): plaintext
 *      connections travel as a file descriptor (SCM_RIGHTS) and the worker answers the
 *      client itself (101, or its 503); TLS connections are relayed (mod_ssl holds the
 *      TLS session), waiting at most PsdmSocketTimeout for the worker's first bytes;
 *      see psdm_worker_client.c. No worker, a full backlog, a silent relay: 503;
 *   6. once handed over, forgets the connection: c->aborted stops the core output
 *      filter from writing anything more (it would append a response after the
 *      worker's 101) and from the lingering close; Apache only closes its own copy of
 *      the descriptor. The access log says 101; the worker's log has its refusals.
 *      A relay holds this thread until either side closes; its end is one info line
 *      (PSDM0010: why, how long, bytes each way).
 * Every refusal is one ap_log_rerror line with a PSDMnnnn tag, and is counted with its
 * code (psdm_stats.c: handoffs, refusals by code, relays open, on mod_status's page).
 * Codes: 0001-0008 and 0010-0012 per request (0009 is retired), 0013 at start.
 */
#include "mpm_common.h" /* ap_hook_monitor */
#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http_ssl.h"
#include "util_filter.h"
#include "apr_portable.h"
#include "apr_strings.h"
#include "mod_status.h"

#include <unistd.h>

#include "handoff/handoff_proto.h"
#include "psdm_checks.h"
#include "psdm_config.h"
#include "psdm_daemon.h"
#include "psdm_stats.h"
#include "psdm_worker_client.h"

module AP_MODULE_DECLARE_DATA psdm_socket_module;

#define PSDM_HANDLER "psdm-socket"
#define PSDM_MAX_GROUPS 64

/* Ends the request with `status` and a one-line plain-text body. */
static int psdm_answer(request_rec *r, int status, const char *line) {
    r->status = status;
    ap_set_content_type(r, "text/plain");
    ap_rprintf(r, "%s\n", line);
    return OK;
}

static const char *psdm_source_value(request_rec *r, const psdm_source *src) {
    switch (src->kind) {
    case PSDM_SRC_ENV: return apr_table_get(r->subprocess_env, src->name);
    case PSDM_SRC_HEADER: return apr_table_get(r->headers_in, src->name);
    case PSDM_SRC_REMOTE_USER:
    case PSDM_SRC_UNSET:
    default: return r->user;
    }
}

static const char *psdm_source_text(request_rec *r, const psdm_source *src) {
    switch (src->kind) {
    case PSDM_SRC_ENV: return apr_pstrcat(r->pool, "variable ", src->name, NULL);
    case PSDM_SRC_HEADER: return apr_pstrcat(r->pool, "header ", src->name, NULL);
    default: return "r->user (remote-user)";
    }
}

/* A view of a C string for the handoff request; absent (len 0) for NULL. An
 * over-long value is cut at 65535 bytes, which the encoder then rejects. */
static psdm_hs_str psdm_view(const char *s) {
    psdm_hs_str v = {NULL, 0};
    if (s) {
        size_t n = strlen(s);
        v.ptr = s;
        v.len = (uint16_t)(n > UINT16_MAX ? UINT16_MAX : n);
    }
    return v;
}

/* Bytes the client sent past the request (its first frames), read without blocking
 * from the connection's filters, where they wait after the request was parsed. */
static apr_status_t psdm_early_data(request_rec *r, char *buf, apr_size_t *len) {
    conn_rec *c = r->connection;
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, c->bucket_alloc);
    apr_size_t cap = *len;
    *len = 0;
    apr_status_t rv = ap_get_brigade(c->input_filters, bb, AP_MODE_READBYTES, APR_NONBLOCK_READ, cap);
    if (APR_STATUS_IS_EAGAIN(rv) || rv == APR_EOF) return APR_SUCCESS;
    if (rv != APR_SUCCESS) return rv;
    *len = cap;
    return apr_brigade_flatten(bb, buf, len);
}

/* The site as this virtual host is configured: its scheme, ServerName and ServerAlias
 * names, and port (psdm_origin_allowed). Nothing comes from the request's headers. */
static void psdm_site_of(request_rec *r, psdm_site *site) {
    const server_rec *s = r->server;
    int nnames = s->names ? s->names->nelts : 0, nwild = s->wild_names ? s->wild_names->nelts : 0;
    const char **hosts = apr_palloc(r->pool, (size_t)(1 + nnames + nwild) * sizeof *hosts);
    hosts[0] = s->server_hostname ? s->server_hostname : "";
    for (int i = 0; i < nnames; i++) hosts[1 + i] = APR_ARRAY_IDX(s->names, i, const char *);
    for (int i = 0; i < nwild; i++) hosts[1 + nnames + i] = APR_ARRAY_IDX(s->wild_names, i, const char *);
    site->scheme = ap_http_scheme(r);
    site->hosts = hosts;
    site->nhosts = (size_t)(1 + nnames + nwild);
    site->port = s->port;
    site->local_port = r->connection->local_addr ? r->connection->local_addr->port : 0;
}

static int psdm_handler(request_rec *r) {
    if (!r->handler || strcmp(r->handler, PSDM_HANDLER) != 0) return DECLINED;
    const psdm_dir_conf *conf = ap_get_module_config(r->per_dir_config, &psdm_socket_module);
    conn_rec *c = r->connection;

    /* 1. A WebSocket upgrade, of a version we speak (426 names it, RFC 6455 section 4.4)? */
    psdm_upgrade_verdict v = psdm_upgrade_check(
        r->method, apr_table_get(r->headers_in, "Upgrade"), apr_table_get(r->headers_in, "Connection"),
        apr_table_get(r->headers_in, "Sec-WebSocket-Version"), apr_table_get(r->headers_in, "Sec-WebSocket-Key"));
    if (v != PSDM_UPGRADE_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "PSDM0001: refusing %s %s: %s", r->method, r->uri,
                      psdm_upgrade_verdict_text(v));
        psdm_stats_refused(1);
        if (v != PSDM_UPGRADE_BAD_VERSION) return psdm_answer(r, HTTP_BAD_REQUEST, psdm_upgrade_verdict_text(v));
        apr_table_setn(r->err_headers_out, "Sec-WebSocket-Version", "13");
        apr_table_setn(r->err_headers_out, "Upgrade", "websocket"); /* a 426 names the protocol (RFC 9110) */
        apr_table_mergen(r->err_headers_out, "Connection", "Upgrade");
        return psdm_answer(r, HTTP_UPGRADE_REQUIRED, psdm_upgrade_verdict_text(v));
    }

    /* ... and one the worker takes: its Socket.IO path and query rules, on the URI as
     * sent (what the worker receives), so that it never refuses what we hand over. */
    v = psdm_sio_check(r->parsed_uri.path, r->parsed_uri.query);
    if (v != PSDM_UPGRADE_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "PSDM0012: refusing %s: %s", r->unparsed_uri,
                      psdm_upgrade_verdict_text(v));
        psdm_stats_refused(12);
        return psdm_answer(r, HTTP_BAD_REQUEST, psdm_upgrade_verdict_text(v));
    }

    /* 2. Who? Only from where PsdmSocketUser says: anything else the client sent is ignored. */
    char user[PSDM_MAX_NAME + 1];
    const char *const *realms = conf->realms ? (const char *const *)conf->realms->elts : NULL;
    int ulen = psdm_user_normalize(psdm_source_value(r, &conf->user), realms,
                                   conf->realms ? (size_t)conf->realms->nelts : 0, user, sizeof user);
    if (ulen <= 0) {
        int status = ap_auth_type(r) ? HTTP_FORBIDDEN : HTTP_UNAUTHORIZED;
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "PSDM0002: refusing %s: %s identity from %s", r->uri,
                      ulen == 0 ? "no" : "an unusable", psdm_source_text(r, &conf->user));
        psdm_stats_refused(2);
        return psdm_answer(r, status, ulen == 0 ? "no authenticated user" : "unusable user identity");
    }
    char(*groups)[PSDM_MAX_NAME] = NULL;
    int ngroups = 0;
    if (conf->groups.kind) {
        groups = apr_palloc(r->pool, PSDM_MAX_GROUPS * PSDM_MAX_NAME);
        ngroups = psdm_groups_split(psdm_source_value(r, &conf->groups), groups, PSDM_MAX_GROUPS);
        if (ngroups < 0) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          "PSDM0003: refusing %s for user %s: unusable group list in %s", r->uri, user,
                          psdm_source_text(r, &conf->groups));
            psdm_stats_refused(3);
            return psdm_answer(r, HTTP_FORBIDDEN, "unusable group list");
        }
    }

    /* 3. From a page of ours? (cross-site WebSocket hijacking) Ours: PsdmSocketAllowOrigin,
     * else this virtual host as configured, never the client's Host (DNS rebinding). */
    const char *origin = apr_table_get(r->headers_in, "Origin");
    const char *host = apr_table_get(r->headers_in, "Host");
    const char *const *allowed = conf->origins ? (const char *const *)conf->origins->elts : NULL;
    size_t nallowed = conf->origins ? (size_t)conf->origins->nelts : 0;
    psdm_site site;
    psdm_site_of(r, &site);
    if (!psdm_origin_allowed(origin, allowed, nallowed, &site)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "PSDM0004: refusing %s for user %s: Origin %s is not allowed (expected %s)", r->uri, user, origin,
                      nallowed ? "one of PsdmSocketAllowOrigin"
                               : apr_psprintf(r->pool, "%s://%s:%u or a ServerAlias of that virtual host", site.scheme,
                                              site.hosts[0], site.port ? site.port : site.local_port));
        psdm_stats_refused(4);
        return psdm_answer(r, HTTP_FORBIDDEN, "origin not allowed");
    }

    const apr_array_header_t *workers = conf->workers ? conf->workers : psdm_daemon_sockets();
    if (!workers) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "PSDM0005: refusing %s: neither PsdmSocketWorker nor PsdmSocketDaemon is set", r->uri);
        psdm_stats_refused(5);
        return psdm_answer(r, HTTP_SERVICE_UNAVAILABLE, "live updates are not configured");
    }

    /* 4. The request for the worker. Early data: one byte more than can ever fit, to
     * tell "at the limit" from "over it". */
    int relay = ap_ssl_conn_is_ssl(c);
    apr_size_t early_len = PSDM_HS_REPLAY_MAX + 1;
    char *early = apr_palloc(r->pool, early_len);
    apr_status_t rv = psdm_early_data(r, early, &early_len);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, rv, r, "PSDM0006: client of %s went away during the upgrade", r->uri);
        psdm_stats_refused(6);
        c->aborted = 1;
        return OK;
    }
    psdm_handoff_req req;
    memset(&req, 0, sizeof req);
    req.kind = relay ? PSDM_HS_KIND_RELAY : PSDM_HS_KIND_HANDOFF;
    req.user = psdm_view(user);
    for (int i = 0; i < ngroups; i++) {
        req.groups[i].ptr = groups[i];
        req.groups[i].len = (uint16_t)strlen(groups[i]);
    }
    req.ngroups = (unsigned)ngroups;
    req.client_addr = psdm_view(apr_psprintf(r->pool, strchr(c->client_ip, ':') ? "[%s]:%d" : "%s:%d", c->client_ip,
                                             c->client_addr ? c->client_addr->port : 0));
    req.host = psdm_view(host);
    req.uri = psdm_view(r->unparsed_uri);
    req.ws_key = psdm_view(apr_table_get(r->headers_in, "Sec-WebSocket-Key"));
    req.ws_version = psdm_view(apr_table_get(r->headers_in, "Sec-WebSocket-Version"));
    req.origin = psdm_view(origin);
    req.ws_protocol = psdm_view(apr_table_get(r->headers_in, "Sec-WebSocket-Protocol"));
    req.ws_extensions = psdm_view(apr_table_get(r->headers_in, "Sec-WebSocket-Extensions"));
    if (early_len > 0) {
        req.early_data.ptr = early;
        req.early_data.len = (uint16_t)early_len;
    }
    /* Refuse here what the worker would refuse (handoff_proto.h, REPLAY LIMIT). */
    size_t replay = psdm_handoff_upgrade_len(&req);
    if (replay > PSDM_HS_REPLAY_MAX) {
        int early_over = replay - early_len <= PSDM_HS_REPLAY_MAX; /* fits without the early data */
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "PSDM0011: refusing %s for user %s: upgrade request (%" APR_SIZE_T_FMT
                      " bytes) and data sent before the handshake (%" APR_SIZE_T_FMT
                      " bytes) exceed the %d bytes the worker takes",
                      r->uri, user, (apr_size_t)(replay - early_len), early_len, (int)PSDM_HS_REPLAY_MAX);
        psdm_stats_refused(11);
        c->keepalive = AP_CONN_CLOSE; /* the early bytes are WebSocket frames, not a next request */
        return psdm_answer(r, early_over ? HTTP_REQUEST_ENTITY_TOO_LARGE : HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE,
                           early_over ? "too much data sent before the WebSocket handshake"
                                      : "upgrade request too large to hand over");
    }
    unsigned char *msg = apr_palloc(r->pool, PSDM_HS_MAX_MSG);
    uint8_t bad_tag = 0;
    int len = psdm_handoff_encode(&req, msg, PSDM_HS_MAX_MSG, &bad_tag);
    if (len < 0) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "PSDM0007: refusing %s for user %s: %s in field %s", r->uri,
                      user, psdm_handoff_strerror(len), psdm_handoff_tag_name(bad_tag));
        psdm_stats_refused(7);
        return psdm_answer(r, HTTP_BAD_REQUEST, "request cannot be handed over");
    }

    /* 5. Hand it to a worker, without waiting for it: round-robin over PsdmSocketWorker's
     * (every worker gets every record, so any will do, and turns spread the load without
     * asking anyone), the next one when a worker does not take it: not listening (killed,
     * restarting), its backlog full, or, for a relay, no answer within PsdmSocketTimeout
     * (nothing has reached the client then). A handed-over connection is the worker's: it is
     * never offered twice. Each worker that fails is logged (PSDM0008); 503 only when all did. */
    int client_fd = -1;
    if (!relay) apr_os_sock_get(&client_fd, ap_get_conn_socket(c));
    int sock = -1;
    const int nworkers = workers->nelts;
    const unsigned turn = psdm_stats_next_worker();
    rv = APR_EGENERAL;
    for (int i = 0; i < nworkers && rv != APR_SUCCESS; i++) {
        const char *path = APR_ARRAY_IDX(workers, (int)((turn + (unsigned)i) % (unsigned)nworkers), const char *);
        const char *step = "connect";
        rv = psdm_worker_offer(path, msg, (size_t)len, client_fd, &sock, &step);
        if (rv == APR_SUCCESS && relay && (rv = psdm_relay_wait(sock, psdm_conf_timeout(conf))) != APR_SUCCESS) {
            close(sock); /* the worker's answer, if it ever comes, goes nowhere */
            sock = -1;
            step = "relay answer";
        }
        if (rv != APR_SUCCESS)
            ap_log_rerror(APLOG_MARK, nworkers > 1 ? APLOG_WARNING : APLOG_ERR, rv, r,
                          "PSDM0008: worker at %s unavailable for %s (user %s): %s failed%s", path, r->uri, user, step,
                          i + 1 < nworkers ? "; trying the next" : "");
    }
    if (rv != APR_SUCCESS) {
        if (nworkers > 1)
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "PSDM0014: refusing %s (user %s): none of the %d workers took it", r->uri, user, nworkers);
        psdm_stats_refused(8);
        apr_table_setn(r->err_headers_out, "Retry-After", "5");
        return psdm_answer(r, HTTP_SERVICE_UNAVAILABLE, "live updates are unavailable, try again later");
    }

    /* 6. The worker owns the connection (handoff) or speaks through us (relay). */
    r->status = HTTP_SWITCHING_PROTOCOLS; /* for the access log */
    c->keepalive = AP_CONN_CLOSE;
    if (relay) {
        psdm_relay_result res;
        apr_time_t start = apr_time_now();
        psdm_stats_relay_open();
        psdm_relay(r, sock, &res);
        close(sock);
        psdm_stats_relay_closed(res.from_client, res.from_worker);
        ap_log_rerror(APLOG_MARK, APLOG_INFO, res.status, r,
                      "PSDM0010: relay of %s for user %s ended (%s) after %.1f s: %" APR_OFF_T_FMT
                      " bytes from the client, %" APR_OFF_T_FMT " bytes from the worker",
                      r->uri, user, psdm_relay_end_text(res.end), (double)(apr_time_now() - start) / APR_USEC_PER_SEC,
                      res.from_client, res.from_worker);
    } else {
        psdm_stats_handoff();
    }
    /* Nothing more may be written to the client by Apache: no response, no lingering close. */
    c->aborted = 1;
    return OK;
}

/* The counters shared by every child (psdm_stats.c), created before the children are. */
static int psdm_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s) {
    (void)pconf, (void)plog, (void)ptemp;
    apr_status_t rv = psdm_stats_init(s);
    if (rv != APR_SUCCESS)
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                     "PSDM0013: cannot create the shared memory for the module's counters; "
                     "server-status shows none (upgrades are not affected)");
    return psdm_daemon_post_config(pconf, s); /* PsdmSocketDaemon: Apache's own workers */
}

/* Each child keeps one connection per worker for its handoffs (psdm_worker_client.c). */
static void psdm_child_init(apr_pool_t *pchild, server_rec *s) {
    (void)s;
    psdm_worker_client_child_init(pchild);
}

static void psdm_register_hooks(apr_pool_t *p) {
    (void)p;
    ap_hook_post_config(psdm_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(psdm_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(psdm_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_monitor(psdm_daemon_monitor, NULL, NULL, APR_HOOK_MIDDLE);
    /* Our counters on mod_status's page; a no-op when mod_status is not loaded. */
    APR_OPTIONAL_HOOK(ap, status_hook, psdm_stats_status, NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(psdm_socket) = {
    STANDARD20_MODULE_STUFF,
    psdm_create_dir_conf,           /* per-directory config creator */
    psdm_merge_dir_conf,            /* dir config merger */
    psdm_daemon_create_server_conf, /* server config creator (PsdmSocketDaemon) */
    NULL,                           /* server config merger */
    psdm_cmds,                      /* command table (psdm_config.c) */
    psdm_register_hooks,            /* set up other request processing hooks */
    AP_MODULE_FLAG_NONE,            /* flags */
};

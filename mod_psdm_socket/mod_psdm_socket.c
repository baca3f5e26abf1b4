/*
 * mod_psdm_socket: hands WebSocket upgrades to the psdm_socketd worker.
 *
 *   LoadModule psdm_socket_module /usr/lib/apache2/modules/mod_psdm_socket.so
 *   PsdmSocketWorker unix:/run/psdm_socket/handoff.sock
 *   <LocationMatch "^/[^/]+_socketio/">
 *       SetHandler psdm-socket
 *   </LocationMatch>
 *
 * Status: this is the module's skeleton. It loads, parses its directive and
 * answers requests at its location; handing the connection over to the worker
 * (SCM_RIGHTS over the Unix socket) is not implemented yet, so a valid upgrade
 * gets 501 and a log line saying so.
 */
#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "apr_strings.h"

module AP_MODULE_DECLARE_DATA psdm_socket_module;

#define PSDM_HANDLER "psdm-socket"

typedef struct {
    const char *worker_path; /* Unix socket of the worker, "unix:" stripped; NULL = unset */
} psdm_server_conf;

/* 400 with a one-line body. */
static int psdm_bad_request(request_rec *r, const char *why) {
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "PSDM0001: refusing %s: %s", r->uri, why);
    r->status = HTTP_BAD_REQUEST;
    ap_set_content_type(r, "text/plain");
    ap_rprintf(r, "%s\n", why);
    return OK;
}

static int psdm_handler(request_rec *r) {
    if (!r->handler || strcmp(r->handler, PSDM_HANDLER) != 0) return DECLINED;

    const char *upgrade = apr_table_get(r->headers_in, "Upgrade");
    if (!upgrade || ap_cstr_casecmp(upgrade, "websocket") != 0)
        return psdm_bad_request(r, "not a WebSocket upgrade (expected 'Upgrade: websocket')");

    psdm_server_conf *sc = ap_get_module_config(r->server->module_config, &psdm_socket_module);
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                  "PSDM0002: handoff to the worker at %s is not implemented yet",
                  sc->worker_path ? sc->worker_path : "(PsdmSocketWorker not set)");
    return HTTP_NOT_IMPLEMENTED;
}

static void *psdm_create_server_conf(apr_pool_t *p, server_rec *s) {
    (void)s;
    return apr_pcalloc(p, sizeof(psdm_server_conf));
}

static void *psdm_merge_server_conf(apr_pool_t *p, void *basev, void *addv) {
    psdm_server_conf *base = basev, *add = addv;
    psdm_server_conf *conf = apr_pcalloc(p, sizeof(*conf));
    conf->worker_path = add->worker_path ? add->worker_path : base->worker_path;
    return conf;
}

static const char *psdm_set_worker(cmd_parms *cmd, void *dummy, const char *arg) {
    (void)dummy;
    psdm_server_conf *sc = ap_get_module_config(cmd->server->module_config, &psdm_socket_module);
    if (strncmp(arg, "unix:/", 6) != 0)
        return apr_pstrcat(cmd->pool, "PsdmSocketWorker: expected unix:/absolute/path, got '", arg, "'", NULL);
    sc->worker_path = arg + 5;
    return NULL;
}

static void psdm_register_hooks(apr_pool_t *p) {
    (void)p;
    ap_hook_handler(psdm_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

static const command_rec psdm_cmds[] = {
    AP_INIT_TAKE1("PsdmSocketWorker", psdm_set_worker, NULL, RSRC_CONF,
                  "unix:/path of the psdm_socketd handoff socket"),
    {NULL},
};

AP_DECLARE_MODULE(psdm_socket) = {
    STANDARD20_MODULE_STUFF,
    NULL,                    /* per-directory config creator */
    NULL,                    /* dir config merger */
    psdm_create_server_conf, /* server config creator */
    psdm_merge_server_conf,  /* server config merger */
    psdm_cmds,               /* command table */
    psdm_register_hooks,     /* set up other request processing hooks */
    AP_MODULE_FLAG_NONE,     /* flags */
};

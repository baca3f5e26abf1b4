#include "psdm_config.h"

#include "apr_strings.h"
#include "http_log.h"

#include "psdm_checks.h"
#include "psdm_daemon.h"

#include <sys/un.h>

void *psdm_create_dir_conf(apr_pool_t *p, char *dir) {
    (void)dir;
    psdm_dir_conf *conf = apr_pcalloc(p, sizeof *conf);
    conf->timeout = -1;
    return conf;
}

void *psdm_merge_dir_conf(apr_pool_t *p, void *basev, void *addv) {
    const psdm_dir_conf *base = basev, *add = addv;
    psdm_dir_conf *conf = apr_pcalloc(p, sizeof *conf);
    conf->workers = add->workers ? add->workers : base->workers;
    conf->user = add->user.kind ? add->user : base->user;
    conf->groups = add->groups.kind ? add->groups : base->groups;
    conf->realms = add->realms ? add->realms : base->realms;
    conf->origins = add->origins ? add->origins : base->origins;
    conf->timeout = add->timeout >= 0 ? add->timeout : base->timeout;
    return conf;
}

apr_interval_time_t psdm_conf_timeout(const psdm_dir_conf *conf) {
    return conf->timeout >= 0 ? conf->timeout : PSDM_DEFAULT_TIMEOUT;
}

/* PsdmSocketWorker unix:/path [unix:/path ...]: one socket per worker process. */
static const char *bad_worker(cmd_parms *cmd, const char *arg) {
    struct sockaddr_un sun;
    if (strncmp(arg, "unix:/", 6) != 0)
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": expected unix:/absolute/path, got '", arg, "'", NULL);
    if (strlen(arg + 5) >= sizeof sun.sun_path)
        return apr_psprintf(cmd->pool, "%s: socket path '%s' is longer than %d bytes", cmd->cmd->name, arg + 5,
                            (int)sizeof sun.sun_path - 1);
    return NULL;
}

/* "remote-user" | "env:NAME" | "header:NAME" (remote-user only where allow_remote_user). */
static const char *parse_source(cmd_parms *cmd, const char *arg, int allow_remote_user, psdm_source *out) {
    if (allow_remote_user && strcasecmp(arg, "remote-user") == 0) {
        out->kind = PSDM_SRC_REMOTE_USER;
        out->name = NULL;
        return NULL;
    }
    if (strncasecmp(arg, "env:", 4) == 0 && arg[4]) {
        out->kind = PSDM_SRC_ENV;
        out->name = arg + 4;
        return NULL;
    }
    if (strncasecmp(arg, "header:", 7) == 0 && arg[7]) {
        out->kind = PSDM_SRC_HEADER;
        out->name = arg + 7;
        return NULL;
    }
    return apr_pstrcat(cmd->pool, cmd->cmd->name, ": expected ", allow_remote_user ? "remote-user, " : "",
                       "env:NAME or header:NAME, got '", arg, "'", NULL);
}

static const char *set_user(cmd_parms *cmd, void *confv, const char *arg) {
    return parse_source(cmd, arg, 1, &((psdm_dir_conf *)confv)->user);
}

static const char *set_groups(cmd_parms *cmd, void *confv, const char *arg) {
    return parse_source(cmd, arg, 0, &((psdm_dir_conf *)confv)->groups);
}

/* A list directive: each argument, checked by `bad` (an error naming it, or NULL), into *out. */
static const char *set_list(cmd_parms *cmd, int argc, char *const argv[],
                            const char *(*bad)(cmd_parms *cmd, const char *arg), apr_array_header_t **out) {
    if (argc == 0) return apr_pstrcat(cmd->pool, cmd->cmd->name, ": expects at least one value", NULL);
    *out = apr_array_make(cmd->pool, argc, sizeof(const char *));
    for (int i = 0; i < argc; i++) {
        const char *err = bad(cmd, argv[i]);
        if (err) return err;
        APR_ARRAY_PUSH(*out, const char *) = argv[i];
    }
    return NULL;
}

/* A realm as Kerberos writes it: no '@' (psdm_user_normalize cuts at the last one), no blanks. */
static const char *bad_realm(cmd_parms *cmd, const char *realm) {
    int bad = !*realm;
    for (const unsigned char *p = (const unsigned char *)realm; *p; p++) bad |= *p == '@' || *p <= ' ' || *p == 0x7f;
    if (!bad) return NULL;
    return apr_pstrcat(cmd->pool, cmd->cmd->name, ": expected a realm without '@', blanks or controls ",
                       "(e.g. SLAC.STANFORD.EDU), got '", realm, "'", NULL);
}

static const char *bad_origin(cmd_parms *cmd, const char *o) {
    if (strcmp(o, "*") == 0 || psdm_origin_valid(o)) return NULL;
    return apr_pstrcat(cmd->pool, cmd->cmd->name, ": expected http[s]://host[:port] (no path, no wildcard) or *, got '",
                       o, "'", NULL);
}

/* PsdmSocketStripRealm REALM [REALM ...]: the realms whose "@REALM" is cut off user names
 * (psdm_user_normalize); compared case-sensitively, as Kerberos compares realms. */
static const char *set_realms(cmd_parms *cmd, void *confv, int argc, char *const argv[]) {
    return set_list(cmd, argc, argv, bad_realm, &((psdm_dir_conf *)confv)->realms);
}

/* PsdmSocketAllowOrigin https://a.example [https://b.example ...] | * */
static const char *set_origins(cmd_parms *cmd, void *confv, int argc, char *const argv[]) {
    return set_list(cmd, argc, argv, bad_origin, &((psdm_dir_conf *)confv)->origins);
}

/* PsdmSocketWorker: the paths, "unix:" cut off. */
static const char *set_workers(cmd_parms *cmd, void *confv, int argc, char *const argv[]) {
    psdm_dir_conf *conf = confv;
    const char *err = set_list(cmd, argc, argv, bad_worker, &conf->workers);
    for (int i = 0; !err && i < conf->workers->nelts; i++) APR_ARRAY_IDX(conf->workers, i, const char *) += 5;
    return err;
}

/* PsdmSocketTimeout 5 | 500ms */
static const char *set_timeout(cmd_parms *cmd, void *confv, const char *arg) {
    psdm_dir_conf *conf = confv;
    apr_interval_time_t t;
    if (ap_timeout_parameter_parse(arg, &t, "s") != APR_SUCCESS || t <= 0 || t > apr_time_from_sec(300))
        return apr_pstrcat(cmd->pool, cmd->cmd->name,
                           ": expected a duration between 1ms and 300s (e.g. 5 or 500ms), got '", arg, "'", NULL);
    conf->timeout = t;
    return NULL;
}

const command_rec psdm_cmds[] = {
    /* The worker. */
    AP_INIT_TAKE_ARGV("PsdmSocketWorker", set_workers, NULL, RSRC_CONF | ACCESS_CONF,
                      "unix:/path of each psdm_socketd's socket; upgrades go round-robin to those that take them"),
    AP_INIT_TAKE1("PsdmSocketTimeout", set_timeout, NULL, RSRC_CONF | ACCESS_CONF,
                  "TLS relay: how long to wait for a worker's first bytes before trying the next (default 5s)"),
    /* Apache runs the workers itself (psdm_daemon.h): server config only. */
    AP_INIT_TAKE_ARGV("PsdmSocketDaemon", psdm_daemon_set_command, NULL, RSRC_CONF,
                      "the worker's program and arguments: Apache starts, supervises and keeps it"),
    AP_INIT_TAKE1("PsdmSocketDaemonUser", psdm_daemon_set_user, NULL, RSRC_CONF,
                  "the user the worker runs as (default: Apache's User)"),
    AP_INIT_TAKE1("PsdmSocketDaemonGroup", psdm_daemon_set_group, NULL, RSRC_CONF,
                  "the group the worker runs as (default: the user's, or Apache's Group)"),
    AP_INIT_TAKE1("PsdmSocketDaemonLog", psdm_daemon_set_log, NULL, RSRC_CONF,
                  "a file for the worker's log lines (default: Apache's error log)"),
    AP_INIT_TAKE1("PsdmSocketDaemonWorkers", psdm_daemon_set_workers, NULL, RSRC_CONF,
                  "how many workers Apache runs (default 1)"),
    /* Who: the identity and groups the worker gets. */
    AP_INIT_TAKE1("PsdmSocketUser", set_user, NULL, RSRC_CONF | ACCESS_CONF,
                  "where the user comes from: remote-user (default), env:NAME or header:NAME"),
    AP_INIT_TAKE_ARGV("PsdmSocketStripRealm", set_realms, NULL, RSRC_CONF | ACCESS_CONF,
                      "realms cut off user@REALM (case-sensitive); default none: names stay whole"),
    AP_INIT_TAKE1("PsdmSocketGroups", set_groups, NULL, RSRC_CONF | ACCESS_CONF,
                  "optional group list for authorization: env:NAME or header:NAME"),
    /* From where: the pages that may open a websocket. */
    AP_INIT_TAKE_ARGV("PsdmSocketAllowOrigin", set_origins, NULL, RSRC_CONF | ACCESS_CONF,
                      "origins allowed to open a WebSocket (default: the vhost's ServerName and aliases), or *"),
    {NULL},
};

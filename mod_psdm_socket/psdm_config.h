/*
 * psdm_config: the module's per-directory configuration and its directives.
 * Every directive may appear in server config, <VirtualHost>, <Location> and
 * <LocationMatch>; inner sections override outer ones key by key.
 */
#ifndef PSDM_CONFIG_H
#define PSDM_CONFIG_H

#include "httpd.h"
#include "http_config.h"
#include "apr_tables.h"

/* Where the identity (or the group list) comes from. */
typedef enum {
    PSDM_SRC_UNSET = 0,
    PSDM_SRC_REMOTE_USER, /* r->user, set by any Apache auth module */
    PSDM_SRC_ENV,         /* a request variable, e.g. WEBAUTH_USER (subprocess_env) */
    PSDM_SRC_HEADER       /* a request header set by a trusted front proxy */
} psdm_source_kind;

typedef struct {
    psdm_source_kind kind;
    const char *name; /* variable or header name for ENV / HEADER */
} psdm_source;

typedef struct {
    apr_array_header_t *workers; /* PsdmSocketWorker's sockets (const char *, "unix:" stripped); NULL = unset */
    psdm_source user;            /* PsdmSocketUser; default remote-user */
    psdm_source groups;          /* PsdmSocketGroups; default none */
    apr_array_header_t *realms;  /* PsdmSocketStripRealm (const char *); NULL = unset (keep names whole) */
    apr_array_header_t *origins; /* PsdmSocketAllowOrigin (const char *); NULL = unset (the site's own) */
    apr_interval_time_t timeout; /* PsdmSocketTimeout; -1 = unset (default 5 s) */
} psdm_dir_conf;

#define PSDM_DEFAULT_TIMEOUT apr_time_from_sec(5)

void *psdm_create_dir_conf(apr_pool_t *p, char *dir);
void *psdm_merge_dir_conf(apr_pool_t *p, void *basev, void *addv);

extern const command_rec psdm_cmds[];

/* The effective timeout of a configuration (the default when unset). */
apr_interval_time_t psdm_conf_timeout(const psdm_dir_conf *conf);

#endif /* PSDM_CONFIG_H */

/*
 * psdm_daemon: Apache starts, supervises and keeps its psdm_socketd workers
 * (PsdmSocketDaemon), as mod_cgid and mod_fcgid do their daemons: enabling the module and
 * one directive is the whole installation.
 *
 * Who does what:
 *   - Apache's parent process forks each worker after reading its configuration
 *     (post_config), as PsdmSocketDaemonUser/Group or Apache's User/Group, never as root,
 *     with stdin /dev/null and stdout/stderr into Apache's error log (or PsdmSocketDaemonLog),
 *     none of Apache's other descriptors, and PR_SET_PDEATHSIG: when Apache's parent ends,
 *     however it ends (stop, graceful-stop, SIGKILL), its workers get SIGTERM and drain.
 *   - Worker i is the program with "-o handoff_socket=RUNTIME/psdm_socket/workerIa.sock"
 *     (or ...b.sock: a replacement takes the other name, so that it never contends for the
 *     socket of the worker still draining; a restart after a death keeps the name, which
 *     Apache's running children know), "-o handoff_allowed_peers=UID" (Apache's children) and
 *     "-o handoff_socket_mode=0666" (the peer check decides) appended; PsdmSocketWorker
 *     defaults to the sockets of the running workers.
 *   - Supervision: the MPM reaps a dead worker and tells us (apr_proc_other_child); it is
 *     started again at once, or, when it keeps dying within PSDM_DAEMON_STABLE_SECS of its
 *     start, after a back-off (2, 4 ... 60 s, served by the monitor hook: every ~10 s);
 *     each death is one error-log line (PSDM0015).
 *   - Restarts (graceful, restart): the parent lives on, so do the workers (same PIDs, open
 *     websockets). The new generation adopts them and sends SIGHUP (the worker reloads its
 *     ACL); when the directive's command line, user, group or log, or the contents of the
 *     worker's configuration file (-c) changed, each worker is replaced: the new one starts on
 *     a new socket, then the old one gets SIGTERM (its drain closes its websockets with 1001:
 *     the pages reconnect, to the new one, and resume).
 * The state that outlives a generation (PIDs, start times, back-off) is plain data in the
 * process pool; everything that points into the module's code (the other-child callbacks)
 * is registered again by each generation, in its own pconf.
 *
 * Errors: a program that is not an executable absolute path, or a user or group that does
 * not exist, fails the directive (apache2 -t); a configuration the worker rejects fails the
 * start (post_config runs the program with --check-config, as the worker's user, first:
 * PSDM0016, after the worker's own line saying why).
 */
#ifndef PSDM_DAEMON_H
#define PSDM_DAEMON_H

#include "httpd.h"
#include "http_config.h"
#include "apr_tables.h"

#define PSDM_DAEMON_MAX_WORKERS 64
#define PSDM_DAEMON_STABLE_SECS 10

/* Server config (main server only: the directives are GLOBAL_ONLY). */
typedef struct {
    apr_array_header_t *argv; /* PsdmSocketDaemon: program and arguments (const char *); NULL: none */
    const char *user, *group; /* PsdmSocketDaemonUser/Group; NULL: Apache's User/Group */
    const char *log;          /* PsdmSocketDaemonLog; NULL: Apache's error log */
    int workers;              /* PsdmSocketDaemonWorkers; 0 = unset (1) */
} psdm_daemon_conf;

void *psdm_daemon_create_server_conf(apr_pool_t *p, server_rec *s);

/* Directive handlers (psdm_config.c's table). */
const char *psdm_daemon_set_command(cmd_parms *cmd, void *dconf, int argc, char *const argv[]);
const char *psdm_daemon_set_user(cmd_parms *cmd, void *dconf, const char *arg);
const char *psdm_daemon_set_group(cmd_parms *cmd, void *dconf, const char *arg);
const char *psdm_daemon_set_log(cmd_parms *cmd, void *dconf, const char *arg);
const char *psdm_daemon_set_workers(cmd_parms *cmd, void *dconf, const char *arg);

/* post_config (in the parent, after the configuration pass): starts or adopts the workers.
 * Returns OK, or HTTP_INTERNAL_SERVER_ERROR (logged) to fail the start. */
int psdm_daemon_post_config(apr_pool_t *pconf, server_rec *s);

/* The monitor hook (the parent, every ~10 s): starts the workers whose back-off is over. */
int psdm_daemon_monitor(apr_pool_t *p, server_rec *s);

/* The handoff sockets of the workers Apache runs (const char *), for PsdmSocketWorker's
 * default; NULL without PsdmSocketDaemon. Set in the parent, inherited by the children. */
const apr_array_header_t *psdm_daemon_sockets(void);

#endif /* PSDM_DAEMON_H */

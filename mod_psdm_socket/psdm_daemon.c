#include "psdm_daemon.h"

#include "http_core.h"
#include "http_log.h"
#include "ap_mpm.h"
#include "unixd.h"
#include "apr_strings.h"
#include "apr_thread_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern module AP_MODULE_DECLARE_DATA psdm_socket_module;

/* ------------------------------------------------------------------ directives */

void *psdm_daemon_create_server_conf(apr_pool_t *p, server_rec *s) {
    (void)s;
    return apr_pcalloc(p, sizeof(psdm_daemon_conf));
}

static psdm_daemon_conf *conf_of(cmd_parms *cmd) {
    return ap_get_module_config(cmd->server->module_config, &psdm_socket_module);
}

/* PsdmSocketDaemon /usr/sbin/psdm_socketd [ARG ...] */
const char *psdm_daemon_set_command(cmd_parms *cmd, void *dconf, int argc, char *const argv[]) {
    (void)dconf;
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (err) return err;
    if (argc == 0)
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": expects the worker's program and its arguments", NULL);
    if (argv[0][0] != '/')
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": expected an absolute path to the program, got '", argv[0], "'",
                           NULL);
    struct stat st;
    if (stat(argv[0], &st) != 0)
        return apr_psprintf(cmd->pool, "%s: program %s: %s", cmd->cmd->name, argv[0], strerror(errno));
    if (!S_ISREG(st.st_mode) || access(argv[0], X_OK) != 0)
        return apr_psprintf(cmd->pool, "%s: program %s is not an executable file", cmd->cmd->name, argv[0]);
    psdm_daemon_conf *conf = conf_of(cmd);
    conf->argv = apr_array_make(cmd->pool, argc, sizeof(const char *));
    for (int i = 0; i < argc; i++) APR_ARRAY_PUSH(conf->argv, const char *) = argv[i];
    return NULL;
}

const char *psdm_daemon_set_user(cmd_parms *cmd, void *dconf, const char *arg) {
    (void)dconf;
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (err) return err;
    const struct passwd *pw = getpwnam(arg);
    if (!pw) return apr_pstrcat(cmd->pool, cmd->cmd->name, ": no such user '", arg, "'", NULL);
    if (pw->pw_uid == 0) return apr_pstrcat(cmd->pool, cmd->cmd->name, ": the worker never runs as root", NULL);
    conf_of(cmd)->user = arg;
    return NULL;
}

const char *psdm_daemon_set_group(cmd_parms *cmd, void *dconf, const char *arg) {
    (void)dconf;
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (err) return err;
    if (!getgrnam(arg)) return apr_pstrcat(cmd->pool, cmd->cmd->name, ": no such group '", arg, "'", NULL);
    conf_of(cmd)->group = arg;
    return NULL;
}

const char *psdm_daemon_set_log(cmd_parms *cmd, void *dconf, const char *arg) {
    (void)dconf;
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (err) return err;
    if (arg[0] != '/')
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": expected an absolute path, got '", arg, "'", NULL);
    conf_of(cmd)->log = arg;
    return NULL;
}

const char *psdm_daemon_set_workers(cmd_parms *cmd, void *dconf, const char *arg) {
    (void)dconf;
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (err) return err;
    char *end;
    long n = strtol(arg, &end, 10);
    if (*end || end == arg || n < 1 || n > PSDM_DAEMON_MAX_WORKERS)
        return apr_psprintf(cmd->pool, "%s: expected a number of workers from 1 to %d, got '%s'", cmd->cmd->name,
                            PSDM_DAEMON_MAX_WORKERS, arg);
    conf_of(cmd)->workers = (int)n;
    return NULL;
}

/* ------------------------------------------------------------------ state */

/* One worker: plain data in the process pool, kept across generations. */
typedef struct {
    apr_proc_t proc;       /* pid 0: not running; what apr_proc_other_child knows it by */
    apr_time_t started;    /* when it was started */
    int quick_deaths;      /* deaths in a row within PSDM_DAEMON_STABLE_SECS of the start */
    apr_time_t restart_at; /* a back-off restart is due then (0: none) */
    char variant;          /* 'a' or 'b': its socket's name (a replacement takes the other) */
    int index;             /* 1-based */
} psdm_worker_slot;

typedef struct {
    uint64_t signature; /* what the running workers were started with (see signature_of) */
    int count;
    psdm_worker_slot slots[PSDM_DAEMON_MAX_WORKERS];
} psdm_daemon_state;

#define PSDM_DAEMON_KEY "psdm_socket_daemon"

/* This generation's view: the state, and what starting a worker takes. */
static psdm_daemon_state *state;
static const psdm_daemon_conf *dconf_gen;
static apr_pool_t *gen_pool;
static server_rec *gen_server;
static const char *socket_dir;
static uid_t run_uid;
static gid_t run_gid;
static apr_array_header_t *sockets; /* const char *, by slot */

const apr_array_header_t *psdm_daemon_sockets(void) { return sockets; }

static const char *socket_of(apr_pool_t *p, const psdm_worker_slot *w) {
    return apr_psprintf(p, "%s/worker%d%c.sock", socket_dir, w->index, w->variant);
}

/* FNV-1a over what needs a new process when it changes: the command line, user, group and
 * log, and the contents of the worker's configuration file (-c FILE). */
static uint64_t fnv(uint64_t h, const void *data, size_t len) {
    const unsigned char *b = data;
    for (size_t i = 0; i < len; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static uint64_t signature_of(const psdm_daemon_conf *conf) {
    uint64_t h = 14695981039346656037ull;
    for (int i = 0; i < conf->argv->nelts; i++) {
        const char *a = APR_ARRAY_IDX(conf->argv, i, const char *);
        h = fnv(h, a, strlen(a) + 1);
        if (strcmp(a, "-c") == 0 && i + 1 < conf->argv->nelts) {
            FILE *f = fopen(APR_ARRAY_IDX(conf->argv, i + 1, const char *), "rb");
            char buf[4096];
            size_t n;
            while (f && (n = fread(buf, 1, sizeof buf, f)) > 0) h = fnv(h, buf, n);
            if (f) fclose(f);
        }
    }
    const char *more[] = {conf->user ? conf->user : "", conf->group ? conf->group : "", conf->log ? conf->log : ""};
    for (int i = 0; i < 3; i++) h = fnv(h, more[i], strlen(more[i]) + 1);
    return h;
}

/* ------------------------------------------------------------------ starting a worker */

/* In the forked child, before exec: descriptors, signals, user, parent-death signal.
 * Never returns. Errors go to stderr (Apache's error log) and exit 127. */
static void exec_worker(const char *const *argv, const char *log, pid_t parent) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int sigs[] = {SIGTERM, SIGHUP, SIGINT, SIGUSR1, SIGUSR2, SIGPIPE, SIGCHLD, SIGWINCH};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], SIG_DFL);
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, 0);
    if (log) {
        int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0) {
            fprintf(stderr, "PsdmSocketDaemonLog %s: %s\n", log, strerror(errno));
            _exit(127);
        }
        dup2(fd, 2);
    }
    dup2(2, 1);
    for (int fd = 3; fd < 65536; fd++) close(fd); /* Apache's listeners, logs, pipes: none is the worker's */
    if (getuid() == 0) {
        if (setgroups(1, &run_gid) != 0 || setgid(run_gid) != 0 || setuid(run_uid) != 0 || getuid() == 0) {
            fprintf(stderr, "PsdmSocketDaemon: cannot become uid %ld gid %ld: %s\n", (long)run_uid, (long)run_gid,
                    strerror(errno));
            _exit(127);
        }
    }
    /* After the credentials change, which clears it; then Apache's parent may already be
     * gone (the signal would never come): give up. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);
    execv(argv[0], (char *const *)argv);
    fprintf(stderr, "PsdmSocketDaemon: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* The worker's argv: the directive's, then the keys Apache decides; with `extra` (NULL or
 * "--check-config") last. */
static const char **argv_of(apr_pool_t *p, const psdm_worker_slot *w, const char *extra) {
    const apr_array_header_t *a = dconf_gen->argv;
    const char **argv = apr_pcalloc(p, (size_t)(a->nelts + 8) * sizeof *argv);
    int n = 0;
    for (int i = 0; i < a->nelts; i++) argv[n++] = APR_ARRAY_IDX(a, i, const char *);
    argv[n++] = "-o";
    argv[n++] = apr_pstrcat(p, "handoff_socket=", socket_of(p, w), NULL);
    argv[n++] = "-o";
    /* Apache's children: its User, or (an unprivileged Apache) its own uid. */
    argv[n++] = apr_psprintf(p, "handoff_allowed_peers=%ld",
                             (long)(getuid() == 0 ? ap_unixd_config.user_id : getuid()));
    argv[n++] = "-o";
    argv[n++] = "handoff_socket_mode=0666";
    if (extra) argv[n++] = extra;
    return argv;
}

static void maintenance(int reason, void *data, apr_wait_t status);

static int start_worker(psdm_worker_slot *w) {
    const char **argv = argv_of(gen_pool, w, NULL);
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, gen_server, "PSDM0015: PsdmSocketDaemon: cannot fork worker %d",
                     w->index);
        return -1;
    }
    if (pid == 0) exec_worker(argv, dconf_gen->log, parent);
    memset(&w->proc, 0, sizeof w->proc);
    w->proc.pid = pid;
    w->started = apr_time_now();
    w->restart_at = 0;
    apr_proc_other_child_register(&w->proc, maintenance, w, NULL, gen_pool);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, gen_server, "PSDM0017: PsdmSocketDaemon: worker %d started (pid %ld) on %s",
                 w->index, (long)pid, socket_of(gen_pool, w));
    return 0;
}

/* The worker's --check-config, as its user; returns its exit status (-1: could not run). */
static int check_config(apr_pool_t *p) {
    psdm_worker_slot probe = {.index = 1, .variant = 'a'};
    const char **argv = argv_of(p, &probe, "--check-config");
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) exec_worker(argv, dconf_gen->log, parent);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ------------------------------------------------------------------ supervision */

static int stopping(void) {
    int mpm_state;
    return ap_mpm_query(AP_MPMQ_MPM_STATE, &mpm_state) != APR_SUCCESS || mpm_state == AP_MPMQ_STOPPING;
}

/* A worker died (the MPM reaped it): one line, then started again, at once unless it keeps
 * dying right after its start. The MPM gives the exit status or the signal, not which. */
static void on_death(psdm_worker_slot *w, apr_wait_t status) {
    const apr_time_t now = apr_time_now();
    const double lived = (double)(now - w->started) / APR_USEC_PER_SEC;
    w->proc.pid = 0;
    if (stopping()) return;
    w->quick_deaths = lived < PSDM_DAEMON_STABLE_SECS ? w->quick_deaths + 1 : 0;
    int delay = 0;
    if (w->quick_deaths > 1) delay = w->quick_deaths > 6 ? 60 : 1 << (w->quick_deaths - 1);
    ap_log_error(
        APLOG_MARK, APLOG_ERR, 0, gen_server,
        "PSDM0015: PsdmSocketDaemon: worker %d ended (exit status or signal %d) after %.1f s; %s", w->index,
        (int)status, lived,
        delay ? apr_psprintf(gen_pool, "starting it again in %d s (it keeps ending)", delay) : "starting it again");
    if (delay) w->restart_at = now + apr_time_from_sec(delay);
    else start_worker(w);
}

static void maintenance(int reason, void *data, apr_wait_t status) {
    psdm_worker_slot *w = data;
    switch (reason) {
    case APR_OC_REASON_DEATH:
    case APR_OC_REASON_LOST:
        apr_proc_other_child_unregister(data);
        on_death(w, reason == APR_OC_REASON_DEATH ? status : -1);
        break;
    case APR_OC_REASON_RESTART: /* Apache restarts or stops: the worker stays (or gets SIGTERM at exit) */
        apr_proc_other_child_unregister(data);
        break;
    default: break; /* UNREGISTER (pconf cleared), RUNNING */
    }
}

int psdm_daemon_monitor(apr_pool_t *p, server_rec *s) {
    (void)p, (void)s;
    if (!state || !dconf_gen) return DECLINED;
    const apr_time_t now = apr_time_now();
    for (int i = 0; i < state->count; i++) {
        psdm_worker_slot *w = &state->slots[i];
        if (w->proc.pid == 0 && w->restart_at && now >= w->restart_at) start_worker(w);
    }
    return DECLINED;
}

/* ------------------------------------------------------------------ each generation */

/* Alive, and our child (not reaped by the MPM as an unknown one during the restart)? */
static int alive(pid_t pid) {
    if (pid <= 0) return 0;
    int st;
    if (waitpid(pid, &st, WNOHANG) != 0) return 0; /* reaped now, or no child of ours */
    return kill(pid, 0) == 0;
}

/* Replaced or no longer wanted: SIGTERM, its drain; reaped by the MPM as an unknown child. */
static void retire(psdm_worker_slot *w, const char *why) {
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, gen_server,
                 "PSDM0017: PsdmSocketDaemon: stopping worker %d (pid %ld): %s", w->index, (long)w->proc.pid, why);
    kill(w->proc.pid, SIGTERM);
    w->proc.pid = 0;
}

static int identities(apr_pool_t *p, server_rec *s) {
    run_uid = ap_unixd_config.user_id;
    run_gid = ap_unixd_config.group_id;
    if (dconf_gen->user) {
        const struct passwd *pw = getpwnam(dconf_gen->user);
        if (!pw) return -1;
        run_uid = pw->pw_uid;
        run_gid = pw->pw_gid;
    }
    if (dconf_gen->group) {
        const struct group *gr = getgrnam(dconf_gen->group);
        if (!gr) return -1;
        run_gid = gr->gr_gid;
    }
    if (getuid() != 0) { /* an unprivileged Apache (tests, a developer): the worker is ours */
        run_uid = getuid();
        run_gid = getgid();
    }
    /* Its sockets' directory: the worker's to write, anyone's to traverse (the socket's
     * peer check decides who may hand over). */
    socket_dir = ap_runtime_dir_relative(p, "psdm_socket");
    if (mkdir(socket_dir, 0755) != 0 && errno != EEXIST) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, s, "PSDM0016: PsdmSocketDaemon: cannot create %s", socket_dir);
        return -1;
    }
    if (getuid() == 0 && chown(socket_dir, run_uid, run_gid) != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, s, "PSDM0016: PsdmSocketDaemon: cannot give %s to uid %ld",
                     socket_dir, (long)run_uid);
        return -1;
    }
    return 0;
}

int psdm_daemon_post_config(apr_pool_t *pconf, server_rec *s) {
    void *data = NULL;
    apr_pool_t *process_pool = s->process->pool;
    apr_pool_userdata_get(&data, PSDM_DAEMON_KEY, process_pool);
    if (!data) {
        data = apr_pcalloc(process_pool, sizeof(psdm_daemon_state));
        apr_pool_userdata_set(data, PSDM_DAEMON_KEY, apr_pool_cleanup_null, process_pool);
    }
    state = data;
    sockets = NULL;
    dconf_gen = ap_get_module_config(s->module_config, &psdm_socket_module);
    gen_pool = pconf;
    gen_server = s;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) return OK; /* the first, trial pass */

    if (!dconf_gen->argv) { /* none (any more) */
        for (int i = 0; i < state->count; i++)
            if (alive(state->slots[i].proc.pid)) retire(&state->slots[i], "PsdmSocketDaemon was removed");
        state->count = 0;
        dconf_gen = NULL;
        return OK;
    }
    if (identities(pconf, s) != 0) return HTTP_INTERNAL_SERVER_ERROR;
    const int rc = check_config(pconf);
    if (rc != 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                     "PSDM0016: PsdmSocketDaemon: %s --check-config failed (exit status %d): the worker's "
                     "configuration is refused, see the line before this one",
                     APR_ARRAY_IDX(dconf_gen->argv, 0, const char *), rc);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    const uint64_t sig = signature_of(dconf_gen);
    const int changed = state->count > 0 && sig != state->signature;
    const int want = dconf_gen->workers ? dconf_gen->workers : 1;
    for (int i = want; i < state->count; i++) /* fewer workers now */
        if (alive(state->slots[i].proc.pid)) retire(&state->slots[i], "PsdmSocketDaemonWorkers was lowered");
    sockets = apr_array_make(pconf, want, sizeof(const char *));
    for (int i = 0; i < want; i++) {
        psdm_worker_slot *w = &state->slots[i];
        if (i >= state->count) { /* a new slot */
            memset(w, 0, sizeof *w);
            w->index = i + 1;
            w->variant = 'a';
        }
        if (alive(w->proc.pid) && !changed) { /* adopted: same PID, its websockets stay */
            apr_proc_other_child_register(&w->proc, maintenance, w, NULL, pconf);
            kill(w->proc.pid, SIGHUP); /* reload its ACL (its configuration file did not change) */
        } else {
            psdm_worker_slot old = *w;
            w->variant = changed ? (w->variant == 'a' ? 'b' : 'a') : w->variant;
            w->quick_deaths = 0;
            if (start_worker(w) != 0) return HTTP_INTERNAL_SERVER_ERROR;
            if (alive(old.proc.pid)) retire(&old, "its configuration changed; the new worker took over");
        }
        APR_ARRAY_PUSH(sockets, const char *) = socket_of(pconf, w);
    }
    state->count = want;
    state->signature = sig;
    return OK;
}

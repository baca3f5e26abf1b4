#include "psdm_worker_client.h"

#include "http_core.h"
#include "http_protocol.h"
#include "util_filter.h"
#include "apr_poll.h"
#include "apr_portable.h"
#include "apr_strings.h"
#include "apr_thread_mutex.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "handoff/handoff_io.h"
#include "handoff/handoff_proto.h"

/* A protocol error from handoff_io as an APR status (the handler logs its name). */
static apr_status_t io_status(int rc) {
    if (rc == 0) return APR_SUCCESS;
    if (rc > 0) return APR_FROM_OS_ERROR(rc);
    return rc == PSDM_HS_E_CLOSED ? APR_EOF : APR_EGENERAL;
}

/* A non-blocking connect() to the worker's socket at path: fails with EAGAIN when its
 * listen backlog is full, instead of waiting for a worker that may be stopped. */
static int connect_worker(const char *path, int *sock) {
    struct sockaddr_un sun;
    int rc;
    *sock = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (*sock < 0) return errno;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    apr_cpystrn(sun.sun_path, path, sizeof sun.sun_path);
    do {
        rc = connect(*sock, (struct sockaddr *)&sun, sizeof sun);
    } while (rc < 0 && errno == EINTR);
    if (rc == 0) return 0;
    rc = errno;
    close(*sock);
    *sock = -1;
    return rc;
}

/*
 * Kept connections (handoffs only): one Unix connection per worker socket and Apache
 * child, used by every thread of the child in turn (its lock held for one sendmsg), so
 * that an upgrade costs one sendmsg instead of socket, connect, sendmsg and close, and the
 * worker no accept. The table is filled on first use and lives as long as the child.
 */
#define PSDM_KEPT_MAX 64

typedef struct {
    const char *path;
    int sock; /* -1 until connected, and again after a failure */
    apr_thread_mutex_t *lock;
} kept_conn;

static apr_pool_t *kept_pool; /* the child's pool; NULL: no child_init (keep nothing) */
static apr_thread_mutex_t *kept_table_lock;
static kept_conn kept[PSDM_KEPT_MAX];
static int nkept;

static apr_status_t kept_close_all(void *unused) {
    (void)unused;
    for (int i = 0; i < nkept; i++)
        if (kept[i].sock >= 0) close(kept[i].sock);
    nkept = 0;
    kept_pool = NULL;
    return APR_SUCCESS;
}

void psdm_worker_client_child_init(apr_pool_t *pchild) {
    if (apr_thread_mutex_create(&kept_table_lock, APR_THREAD_MUTEX_DEFAULT, pchild) != APR_SUCCESS) return;
    kept_pool = pchild;
    apr_pool_cleanup_register(pchild, NULL, kept_close_all, apr_pool_cleanup_null);
}

/* The kept connection of `path`, added on first use; NULL when there is no table (or no
 * room in it): then the caller connects for this request alone. */
static kept_conn *kept_conn_of(const char *path) {
    kept_conn *k = NULL;
    if (kept_pool == NULL || apr_thread_mutex_lock(kept_table_lock) != APR_SUCCESS) return NULL;
    for (int i = 0; i < nkept && k == NULL; i++)
        if (strcmp(kept[i].path, path) == 0) k = &kept[i];
    if (k == NULL && nkept < PSDM_KEPT_MAX &&
        apr_thread_mutex_create(&kept[nkept].lock, APR_THREAD_MUTEX_DEFAULT, kept_pool) == APR_SUCCESS) {
        k = &kept[nkept++];
        k->path = apr_pstrdup(kept_pool, path);
        k->sock = -1;
    }
    apr_thread_mutex_unlock(kept_table_lock);
    return k;
}

/* A handoff on the kept connection of k, connecting it first if needed. A connection kept
 * from before that fails with EPIPE/ECONNRESET went to a worker that has gone or asked us
 * to connect again (it shut its reading side: stopping, handoff_proto.h): nothing of this
 * request was sent, so it is sent once more on a new connection. */
static int kept_send(kept_conn *k, const unsigned char *msg, size_t len, int client_fd, const char **step) {
    int rc = 0;
    apr_thread_mutex_lock(k->lock);
    for (int attempt = 0; attempt < 2; attempt++) {
        const int fresh = k->sock < 0;
        *step = "connect";
        if (fresh && (rc = connect_worker(k->path, &k->sock)) != 0) break;
        *step = "send";
        if ((rc = psdm_handoff_send(k->sock, msg, len, client_fd)) == 0) break;
        close(k->sock); /* part of it may have gone: the worker drops what it got (spec) */
        k->sock = -1;
        if (fresh || (rc != EPIPE && rc != ECONNRESET)) break;
    }
    apr_thread_mutex_unlock(k->lock);
    return rc;
}

apr_status_t psdm_worker_offer(const char *path, const unsigned char *msg, size_t len, int client_fd, int *sock,
                               const char **step) {
    int rc;
    kept_conn *k = client_fd >= 0 ? kept_conn_of(path) : NULL;
    *sock = -1;
    if (k != NULL && (rc = kept_send(k, msg, len, client_fd, step)) != EAGAIN) return io_status(rc);
    /* No kept connection, or it is full (the worker is behind: a burst of reconnections
     * after a restart): this request gets a connection of its own, which waits in the
     * worker's listen backlog. */

    *step = "connect";
    if ((rc = connect_worker(path, sock)) != 0) return io_status(rc);
    *step = "send";
    rc = psdm_handoff_send(*sock, msg, len, client_fd);
    if (rc != 0) goto fail;
    if (client_fd >= 0) { /* handoff: the connection is the worker's; nothing more to say */
        close(*sock);
        *sock = -1;
    } else { /* relay: the blocking poll/recv/send of the relay loop from here on */
        int flags = fcntl(*sock, F_GETFL);
        if (flags < 0 || fcntl(*sock, F_SETFL, flags & ~O_NONBLOCK) < 0) {
            rc = errno;
            goto fail;
        }
    }
    return APR_SUCCESS;

fail:
    close(*sock);
    *sock = -1;
    return io_status(rc);
}

apr_status_t psdm_relay_wait(int sock, apr_interval_time_t timeout) {
    struct pollfd pfd = {.fd = sock, .events = POLLIN};
    int ms = (int)apr_time_as_msec(timeout);
    int n;
    do {
        n = poll(&pfd, 1, ms);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return APR_FROM_OS_ERROR(errno);
    return n == 0 ? APR_TIMEUP : APR_SUCCESS;
}

/* Writes all of buf to a blocking socket. */
static apr_status_t write_all(int sock, const char *buf, apr_size_t len) {
    while (len > 0) {
        ssize_t n = send(sock, buf, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return APR_FROM_OS_ERROR(errno);
        }
        buf += n;
        len -= (apr_size_t)n;
    }
    return APR_SUCCESS;
}

const char *psdm_relay_end_text(psdm_relay_end end) {
    switch (end) {
    case PSDM_RELAY_CLIENT_CLOSED: return "client closed";
    case PSDM_RELAY_WORKER_CLOSED: return "worker closed";
    case PSDM_RELAY_CLIENT_ERROR: return "client error";
    case PSDM_RELAY_WORKER_ERROR: return "worker error";
    case PSDM_RELAY_ERROR:
    default: return "relay error";
    }
}

/* Ends a relay: records why. Returns 1, for `return relay_end(...)` in the loop's helpers. */
static int relay_end(psdm_relay_result *res, psdm_relay_end end, apr_status_t status) {
    res->end = end;
    res->status = status;
    return 1;
}

/* Worker -> client (encrypted by mod_ssl): one recv, passed on and flushed. Returns 1
 * when the relay is over (*res says why), 0 to go on. */
static int relay_from_worker(conn_rec *c, int sock, apr_bucket_brigade *bb, char *buf, apr_size_t cap,
                             psdm_relay_result *res) {
    ssize_t got;
    do {
        got = recv(sock, buf, cap, 0);
    } while (got < 0 && errno == EINTR);
    if (got == 0) return relay_end(res, PSDM_RELAY_WORKER_CLOSED, APR_SUCCESS);
    if (got < 0) return relay_end(res, PSDM_RELAY_WORKER_ERROR, APR_FROM_OS_ERROR(errno));
    apr_brigade_cleanup(bb);
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_transient_create(buf, (apr_size_t)got, c->bucket_alloc));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(c->bucket_alloc));
    apr_status_t rv = ap_pass_brigade(c->output_filters, bb);
    apr_brigade_cleanup(bb);
    if (rv != APR_SUCCESS) return relay_end(res, PSDM_RELAY_CLIENT_ERROR, rv);
    res->from_worker += got;
    return 0;
}

/* Client -> worker (decrypted by mod_ssl): reads until nothing is left, so that nothing
 * stays buffered in the filters unseen by poll. Returns 1 when the relay is over, 0 to
 * go on. */
static int relay_from_client(conn_rec *c, int sock, apr_bucket_brigade *bb, char *buf, apr_size_t cap,
                             psdm_relay_result *res) {
    for (;;) {
        apr_size_t len = cap;
        apr_brigade_cleanup(bb);
        apr_status_t rv = ap_get_brigade(c->input_filters, bb, AP_MODE_READBYTES, APR_NONBLOCK_READ, cap);
        if (APR_STATUS_IS_EAGAIN(rv)) return 0;
        if (rv == APR_EOF) return relay_end(res, PSDM_RELAY_CLIENT_CLOSED, APR_SUCCESS);
        if (rv != APR_SUCCESS) return relay_end(res, PSDM_RELAY_CLIENT_ERROR, rv);
        if (APR_BRIGADE_EMPTY(bb)) return 0;
        rv = apr_brigade_flatten(bb, buf, &len);
        if (rv != APR_SUCCESS) return relay_end(res, PSDM_RELAY_CLIENT_ERROR, rv);
        if (len == 0) {
            if (APR_BUCKET_IS_EOS(APR_BRIGADE_LAST(bb))) return relay_end(res, PSDM_RELAY_CLIENT_CLOSED, APR_SUCCESS);
            return 0;
        }
        if ((rv = write_all(sock, buf, len)) != APR_SUCCESS) return relay_end(res, PSDM_RELAY_WORKER_ERROR, rv);
        res->from_client += (apr_off_t)len;
    }
}

void psdm_relay(request_rec *r, int sock, psdm_relay_result *res) {
    conn_rec *c = r->connection;
    apr_pool_t *p = r->pool;
    apr_pollset_t *ps;
    apr_socket_t *wsock = NULL;
    apr_pollfd_t pfd_client, pfd_worker;
    apr_bucket_brigade *bb = apr_brigade_create(p, c->bucket_alloc);
    char buf[16384];
    apr_status_t rv;

    memset(res, 0, sizeof *res);
    /* From here on the connection carries WebSocket frames, not an HTTP request:
     * mod_reqtimeout would end it once the "request body" (the client's frames) came
     * slower than its minrate (Debian: body=10,minrate=500, i.e. at the first pong
     * after 10 s), and the coalescing filter would only copy what we flush at once. */
    ap_remove_input_filter_byhandle(c->input_filters, "reqtimeout");
    ap_remove_output_filter_byhandle(c->output_filters, "SSL/TLS Coalescing Filter");

    /* No timeout on the relay itself: the WebSocket's heartbeat is the worker's job. */
    apr_os_sock_put(&wsock, &sock, p);
    if ((rv = apr_pollset_create(&ps, 2, p, 0)) != APR_SUCCESS) {
        relay_end(res, PSDM_RELAY_ERROR, rv);
        return;
    }
    memset(&pfd_client, 0, sizeof pfd_client);
    pfd_client.p = p;
    pfd_client.desc_type = APR_POLL_SOCKET;
    pfd_client.desc.s = ap_get_conn_socket(c);
    pfd_client.reqevents = APR_POLLIN | APR_POLLHUP | APR_POLLERR;
    pfd_worker = pfd_client;
    pfd_worker.desc.s = wsock;
    apr_pollset_add(ps, &pfd_client);
    apr_pollset_add(ps, &pfd_worker);

    for (;;) {
        apr_int32_t n;
        const apr_pollfd_t *ready;
        rv = apr_pollset_poll(ps, -1, &n, &ready);
        if (APR_STATUS_IS_EINTR(rv)) continue;
        if (rv != APR_SUCCESS) {
            relay_end(res, PSDM_RELAY_ERROR, rv);
            return;
        }
        for (apr_int32_t i = 0; i < n; i++) {
            int over = ready[i].desc.s == wsock ? relay_from_worker(c, sock, bb, buf, sizeof buf, res)
                                                : relay_from_client(c, sock, bb, buf, sizeof buf, res);
            if (over) return;
        }
    }
}

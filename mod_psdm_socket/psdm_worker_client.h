/*
 * psdm_worker_client: the module's side of the conversation with psdm_socketd over
 * its Unix socket (wire spec: handoff/handoff_proto.h), and the byte relay used for
 * TLS connections. Functions return an apr_status_t and never log: the handler logs
 * once, with the socket path and the reason.
 */
#ifndef PSDM_WORKER_CLIENT_H
#define PSDM_WORKER_CLIENT_H

#include "httpd.h"
#include "apr_time.h"

/* Sets up the child's table of kept connections (child_init hook). Without it every
 * handoff connects for itself. */
void psdm_worker_client_child_init(apr_pool_t *pchild);

/*
 * Offers a connection to the worker listening at `path`, never waiting for it: one
 * non-blocking sendmsg() of `msg` (an encoded request) with `client_fd` attached (-1 for
 * a relay), after a non-blocking connect(). A handoff goes over the child's kept
 * connection to that worker (connected on first use, again once after it broke); a relay
 * gets a connection of its own, which then carries its bytes. *step names the step that
 * failed ("connect", "send").
 *
 * APR_SUCCESS: the whole request was sent. For a handoff the worker owns the client
 * connection now (it answers the client itself: 101 or 503) and *sock is closed and
 * -1; for a relay *sock is the caller's, blocking, to wait on and relay through.
 * Any other status (APR_EAGAIN: the worker is behind, its listen backlog full or its
 * socket not taking the request at once; ENOENT/ECONNREFUSED: no worker): the module still owns
 * the client connection and nothing was written to it; *sock is closed and -1.
 */
apr_status_t psdm_worker_offer(const char *path, const unsigned char *msg, size_t len, int client_fd, int *sock,
                               const char **step);

/*
 * Relay only: waits up to `timeout` for the worker's first bytes (its HTTP answer to
 * the client) on sock, without reading them. APR_SUCCESS when they are there; APR_TIMEUP,
 * or the error, when not: then nothing has reached the client.
 */
apr_status_t psdm_relay_wait(int sock, apr_interval_time_t timeout);

/* Why a relay ended. */
typedef enum {
    PSDM_RELAY_CLIENT_CLOSED = 0, /* the client closed its connection (EOF through mod_ssl) */
    PSDM_RELAY_WORKER_CLOSED,     /* the worker closed its end of the socket */
    PSDM_RELAY_CLIENT_ERROR,      /* reading from or writing to the client failed (reset, TLS error...) */
    PSDM_RELAY_WORKER_ERROR,      /* reading from or writing to the worker's socket failed */
    PSDM_RELAY_ERROR              /* the relay itself failed (pollset) */
} psdm_relay_end;

/* How a relay went: why it ended, the error if any, and the bytes it carried. */
typedef struct {
    psdm_relay_end end;
    apr_status_t status;   /* APR_SUCCESS for a close, the error otherwise */
    apr_off_t from_client; /* bytes read from the client (decrypted) and written to the worker */
    apr_off_t from_worker; /* bytes read from the worker and passed to the client (before encryption) */
} psdm_relay_result;

/* "client closed", "worker closed", "client error", "worker error", "relay error". */
const char *psdm_relay_end_text(psdm_relay_end end);

/*
 * Relays bytes between the client connection (through Apache's filters, so TLS is
 * decrypted and encrypted by mod_ssl) and the worker's Unix socket until either side
 * closes or fails; fills *res. Holds the calling thread for the life of the WebSocket.
 * The relayed connection is no longer an HTTP request: mod_reqtimeout's input filter
 * is removed from it first (as httpd's own tunnels do, ap_proxy_tunnel_create), so that
 * nothing times the websocket but its own heartbeat (the worker's job).
 */
void psdm_relay(request_rec *r, int sock, psdm_relay_result *res);

#endif /* PSDM_WORKER_CLIENT_H */

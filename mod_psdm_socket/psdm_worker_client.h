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

/*
 * Offers a connection to the worker listening at `path`, never waiting for it: a
 * non-blocking connect() and one non-blocking sendmsg() of `msg` (an encoded request)
 * with `client_fd` attached (-1 for a relay). *step names the step that failed
 * ("connect", "send").
 *
 * APR_SUCCESS: the whole request was sent. For a handoff the worker owns the client
 * connection now (it answers the client itself: 101 or 503) and *sock is closed and
 * -1; for a relay *sock is the caller's, blocking, to wait on and relay through.
 * Any other status (APR_EAGAIN: the worker's listen backlog is full, or it would not
 * take the request at once; ENOENT/ECONNREFUSED: no worker): the module still owns
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

/*
 * Relays bytes between the client connection (through Apache's filters, so TLS is
 * decrypted and encrypted by mod_ssl) and the worker's Unix socket until either side
 * closes. Holds the calling thread for the life of the WebSocket.
 */
apr_status_t psdm_relay(request_rec *r, int sock);

#endif /* PSDM_WORKER_CLIENT_H */

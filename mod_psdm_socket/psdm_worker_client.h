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

#include <stdint.h>

/* What became of a handoff; see psdm_worker_offer(). */
typedef struct {
    uint8_t status;   /* PSDM_HS_ACCEPTED or a PSDM_HS_REFUSED_* answer */
    const char *step; /* on failure: "connect", "send", "answer", "commit" */
} psdm_offer_result;

/*
 * Offers a connection to the worker listening at `path`: connects, sends `msg` (an
 * encoded request) with `client_fd` attached (or -1 for a relay), waits for the
 * answer and, if it is "accepted", commits. Every step is bounded by `timeout`.
 *
 * On APR_SUCCESS with status accepted, the worker owns the client connection (for a
 * handoff) or waits for relayed bytes on *sock (for a relay; *sock is then the
 * caller's to close). On any other outcome the module still owns the client
 * connection and nothing was written to it; *sock is closed and -1.
 */
apr_status_t psdm_worker_offer(const char *path, apr_interval_time_t timeout, const unsigned char *msg, size_t len,
                               int client_fd, int *sock, psdm_offer_result *result);

/*
 * Relays bytes between the client connection (through Apache's filters, so TLS is
 * decrypted and encrypted by mod_ssl) and the worker's Unix socket until either side
 * closes. Holds the calling thread for the life of the WebSocket.
 */
apr_status_t psdm_relay(request_rec *r, int sock);

#endif /* PSDM_WORKER_CLIENT_H */

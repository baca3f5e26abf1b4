/*
 * handoff_io: the syscall layer of the handoff (spec: handoff_proto.h). Sends a request
 * and the client's fd in one sendmsg, receives them with recvmsg. Used by the module
 * (send) and the worker (rx).
 *
 * Return values, every function: 0 on success; a positive errno value for a failed
 * syscall (EAGAIN/EWOULDBLOCK as EAGAIN, EPIPE, ECONNRESET, ...: hand it to the logger
 * as an errno / apr_status_t); a negative psdm_hs_err for protocol trouble (name it with
 * psdm_handoff_strerror). Nothing here logs, allocates, or sets socket options.
 *
 * Timeouts are the caller's: use a blocking socket with SO_RCVTIMEO / SO_SNDTIMEO (an
 * expired timeout comes back as EAGAIN), or a non-blocking socket as described per
 * function. Every call retries on EINTR. Sends use MSG_NOSIGNAL: a closed peer gives
 * EPIPE, never SIGPIPE.
 *
 * Fd ownership: send never closes the fd it passes (the caller keeps its copy; the
 * worker gets its own). The receiver owns a received fd only once a function says so;
 * on every error path the received fd (and any unexpected extra fd) is closed here.
 * Received fds are close-on-exec (MSG_CMSG_CLOEXEC).
 *
 * Thread-safety: no shared state; one socket must not be used by two threads at once.
 */
#ifndef PSDM_HANDOFF_IO_H
#define PSDM_HANDOFF_IO_H

#include <stddef.h>
#include <stdint.h>

#include "handoff/handoff_proto.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief Sends one encoded request (msg, len as from psdm_handoff_encode) and, for kind
 *        handoff, fd with its first byte, in ONE sendmsg that never waits
 *        (MSG_DONTWAIT): the whole request goes, or the call fails.
 * @param fd the client socket for kind handoff (>= 0); must be -1 for kind relay.
 * @returns 0: all of it was sent (for kind handoff the connection is now the worker's);
 *          invalid_arg/header errors when msg is not exactly one request; no_fd when a
 *          handoff request has fd < 0; bad_fd when a relay request has fd >= 0; or an
 *          errno: EAGAIN when the socket would not take it all at once. After any error
 *          part of the request (and the fd) may have gone: close the connection without
 *          sending more, and the worker drops what it got untouched (spec: ownership).
 */
int psdm_handoff_send(int sock, const unsigned char *msg, size_t len, int fd);

/*
 * Incremental receiver of one request, for a non-blocking socket in an event loop (or a
 * blocking one: see psdm_handoff_recv). Reads exactly the request, never past it: the
 * header first, then exactly the body it announces. The fd must arrive with the first
 * bytes (the first recvmsg that returns data); a handoff request whose header is
 * complete without an fd is no_fd. The caller owns the struct; fields are private.
 */
typedef struct {
    unsigned char *buf;
    size_t cap;
    size_t have; /* bytes in buf */
    size_t need; /* PSDM_HS_HEADER_LEN until the header is read, then the total */
    int fd;      /* received fd, or -1 */
    int err;     /* sticky error once failed, else 0 */
} psdm_handoff_rx;

/**
 * @brief Starts receiving into buf[0..cap). cap < PSDM_HS_MAX_MSG is allowed and lowers
 *        the accepted size (a larger request is too_long); PSDM_HS_MAX_MSG always fits.
 */
void psdm_handoff_rx_init(psdm_handoff_rx *rx, unsigned char *buf, size_t cap);

/**
 * @brief Reads what is available, until the request is complete or the socket would
 *        block.
 * @returns 0: complete, buf[0..psdm_handoff_rx_len()) holds it (decode it with
 *          psdm_handoff_decode) and the fd, if any, waits in psdm_handoff_rx_take_fd;
 *          EAGAIN: incomplete, state kept, call again when readable (on a blocking
 *          socket with SO_RCVTIMEO: the timeout expired);
 *          anything else: failed, the received fd is already closed, and every further
 *          call returns the same code. Protocol errors: closed (EOF before any byte),
 *          truncated (EOF mid-request), header errors (bad_magic, too_long, ... detected
 *          from the 14-byte header, before the body is read), no_fd, bad_fd.
 */
int psdm_handoff_rx_step(psdm_handoff_rx *rx, int sock);

/** @brief Whether part of a request has arrived (rx_step returned EAGAIN after some bytes). */
int psdm_handoff_rx_started(const psdm_handoff_rx *rx);

/** @brief Length of the complete request (valid after rx_step returned 0). */
size_t psdm_handoff_rx_len(const psdm_handoff_rx *rx);

/** @brief Hands the received fd to the caller (who must close it), or -1 if none. */
int psdm_handoff_rx_take_fd(psdm_handoff_rx *rx);

/** @brief Closes a received fd that nobody took. Call when done with rx, in every case. */
void psdm_handoff_rx_release(psdm_handoff_rx *rx);

/**
 * @brief Receives one whole request on a blocking socket (rx_init + rx_step + release).
 * @param len set to the request length on success.
 * @param fd set to the received fd (caller owns it) or -1 for relay, on success;
 *        always -1 on failure.
 * @returns as psdm_handoff_rx_step; EAGAIN (timeout, or a non-blocking socket without
 *          the whole request queued) is final here: the partial request is dropped.
 */
int psdm_handoff_recv(int sock, unsigned char *buf, size_t cap, size_t *len, int *fd);

#ifdef __cplusplus
}
#endif

#endif /* PSDM_HANDOFF_IO_H */

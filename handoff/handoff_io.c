/* handoff_io: sendmsg/recvmsg with SCM_RIGHTS for the handoff. Contract: handoff_io.h. */
#include "handoff/handoff_io.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

/* Room for more fds than we accept, so that extra ones arrive here and get closed
 * (rather than being dropped by the kernel with MSG_CTRUNC, which is also handled). */
enum { kRxMaxFds = 8 };

static int errno_status(int e) { return e == EWOULDBLOCK ? EAGAIN : e; }

/* ---- send ---- */

/* A message header for one buffer and a control buffer (sendmsg/recvmsg). */
static struct msghdr one_iov_msg(struct iovec *iov, void *ctl, size_t ctl_len) {
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl;
    mh.msg_controllen = ctl_len;
    return mh;
}

int psdm_handoff_send(int sock, const unsigned char *msg, size_t len, int fd) {
    if (msg == NULL) return PSDM_HS_E_INVALID_ARG;
    const int total = psdm_handoff_header_total(msg, len);
    if (total < 0) return total;
    if ((size_t)total != len) return PSDM_HS_E_INVALID_ARG;
    if (msg[5] == PSDM_HS_KIND_HANDOFF && fd < 0) return PSDM_HS_E_NO_FD;
    if (msg[5] == PSDM_HS_KIND_RELAY && fd >= 0) return PSDM_HS_E_BAD_FD;

    /* The fd rides on the first byte: message and fd in one sendmsg. */
    union { /* union: cmsghdr alignment for the control buffer */
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct iovec iov = {.iov_base = (void *)(uintptr_t)msg, .iov_len = len};
    struct msghdr mh = one_iov_msg(&iov, fd >= 0 ? ctl.buf : NULL, fd >= 0 ? sizeof ctl.buf : 0);
    if (fd >= 0) {
        struct cmsghdr *cmsg = CMSG_FIRSTHDR(&mh);
        if (!cmsg) return PSDM_HS_E_INVALID_ARG; /* cannot be: the control buffer is sized for one */
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    }

    ssize_t n;
    do {
        n = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return errno_status(errno);
    /* A partial send: the fd and a prefix have gone; the caller closes, the worker drops it. */
    return (size_t)n == len ? 0 : EAGAIN;
}

/* ---- receive ---- */

void psdm_handoff_rx_init(psdm_handoff_rx *rx, unsigned char *buf, size_t cap) {
    rx->buf = buf;
    rx->cap = cap;
    rx->have = 0;
    rx->need = PSDM_HS_HEADER_LEN;
    rx->fd = -1;
    rx->err = 0;
}

static int rx_fail(psdm_handoff_rx *rx, int rc) {
    if (rx->fd >= 0) close(rx->fd);
    rx->fd = -1;
    rx->err = rc;
    return rc;
}

/*
 * Takes the fds of one recvmsg. Exactly one fd, in one SCM_RIGHTS message of exactly
 * CMSG_LEN(sizeof(int)), on the first recvmsg that returned data, is kept in rx->fd;
 * any other fd is closed and makes it bad_fd. Other control messages (SCM_CREDENTIALS
 * with SO_PASSCRED) carry no resources and are ignored.
 */
static int rx_take_fds(psdm_handoff_rx *rx, struct msghdr *mh, bool first_data) {
    bool bad = (mh->msg_flags & MSG_CTRUNC) != 0; /* the kernel dropped fds or more */
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        if (c->cmsg_len < CMSG_LEN(0)) { /* cannot come from the kernel */
            bad = true;
            continue;
        }
        const size_t nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const bool wanted = first_data && rx->fd < 0 && nfds == 1 && c->cmsg_len == CMSG_LEN(sizeof(int));
        for (size_t i = 0; i < nfds; i++) {
            int got;
            memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (wanted && !bad) {
                rx->fd = got;
            } else {
                close(got);
                bad = true;
            }
        }
    }
    return bad ? PSDM_HS_E_BAD_FD : 0;
}

int psdm_handoff_rx_step(psdm_handoff_rx *rx, int sock) {
    if (rx == NULL) return PSDM_HS_E_INVALID_ARG;
    if (rx->err != 0) return rx->err;
    if (rx->buf == NULL || rx->cap < PSDM_HS_HEADER_LEN) return rx_fail(rx, PSDM_HS_E_INVALID_ARG);

    while (rx->have < rx->need) {
        union { /* union: cmsghdr alignment for the control buffer */
            struct cmsghdr h;
            char buf[CMSG_SPACE(sizeof(int) * kRxMaxFds)];
        } ctl;
        struct iovec iov = {.iov_base = rx->buf + rx->have, .iov_len = rx->need - rx->have};
        struct msghdr mh = one_iov_msg(&iov, ctl.buf, sizeof ctl.buf);

        ssize_t n;
        do {
            n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        } while (n < 0 && errno == EINTR);
        if (n < 0) {
            const int e = errno_status(errno);
            return e == EAGAIN ? EAGAIN : rx_fail(rx, e);
        }
        const int rc = rx_take_fds(rx, &mh, n > 0 && rx->have == 0);
        if (rc != 0) return rx_fail(rx, rc);
        if (n == 0) return rx_fail(rx, rx->have == 0 ? PSDM_HS_E_CLOSED : PSDM_HS_E_TRUNCATED);
        rx->have += (size_t)n;

        if (rx->need == PSDM_HS_HEADER_LEN && rx->have == PSDM_HS_HEADER_LEN) {
            /* Header complete: judge it before reading (or sizing anything for) the body. */
            const int total = psdm_handoff_header_total(rx->buf, rx->have);
            if (total < 0) return rx_fail(rx, total);
            if ((size_t)total > rx->cap) return rx_fail(rx, PSDM_HS_E_TOO_LONG);
            /* The fd came with the first bytes or not at all. */
            if (rx->buf[5] == PSDM_HS_KIND_HANDOFF && rx->fd < 0) return rx_fail(rx, PSDM_HS_E_NO_FD);
            if (rx->buf[5] == PSDM_HS_KIND_RELAY && rx->fd >= 0) return rx_fail(rx, PSDM_HS_E_BAD_FD);
            rx->need = (size_t)total;
        }
    }
    return 0;
}

int psdm_handoff_rx_started(const psdm_handoff_rx *rx) { return rx->have > 0; }

size_t psdm_handoff_rx_len(const psdm_handoff_rx *rx) {
    return rx->err == 0 && rx->have == rx->need ? rx->have : 0; /* need >= header length */
}

int psdm_handoff_rx_take_fd(psdm_handoff_rx *rx) {
    const int fd = rx->fd;
    rx->fd = -1;
    return fd;
}

void psdm_handoff_rx_release(psdm_handoff_rx *rx) {
    if (rx->fd >= 0) close(rx->fd);
    rx->fd = -1;
}

int psdm_handoff_recv(int sock, unsigned char *buf, size_t cap, size_t *len, int *fd) {
    if (len == NULL || fd == NULL) return PSDM_HS_E_INVALID_ARG;
    *len = 0;
    *fd = -1;
    psdm_handoff_rx rx;
    psdm_handoff_rx_init(&rx, buf, cap);
    const int rc = psdm_handoff_rx_step(&rx, sock);
    if (rc == 0) {
        *len = psdm_handoff_rx_len(&rx);
        *fd = psdm_handoff_rx_take_fd(&rx);
    }
    psdm_handoff_rx_release(&rx);
    return rc;
}

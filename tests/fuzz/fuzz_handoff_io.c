/* libFuzzer target for the receiving side of the handoff (handoff/handoff_io.h): the
 * incremental receiver psdm_handoff_rx_* that the worker runs on its Unix socket, and the
 * send + blocking receive pair, over a real socketpair with real SCM_RIGHTS fds.
 * Built by CMake with -DPSDM_FUZZ=ON; run with `make fuzz` (README, "Fuzzing").
 *
 * The bytes it judges itself are few (the 14-byte header, through header_total, which
 * fuzz_handoff already covers); what this adds is the state machine around them: partial
 * reads of header and body, the receiver's buffer size, EOF at every point, and the rule
 * that the fd comes with the first bytes, once.
 *
 * Input: byte 0 = how it is sent: bits 0-1 the fds (0 none, 1 one with the first chunk,
 * 2 two with the first chunk, 3 one with the second chunk), bit 2 EOF after the last byte,
 * bits 3-7 the chunk size (kChunks; the receiver steps after each chunk). Byte 1 = the
 * receiver's buffer (0: PSDM_HS_MAX_MSG, 255: too small for a header, else 14 + 128 * n).
 * The rest = the bytes the "module" sends.
 * Checks, beyond the sanitizers: the result is exactly what a model of the contract says
 * (header errors, too_long for the buffer, no_fd, bad_fd, closed, truncated, EAGAIN while
 * incomplete) and stays sticky; a complete request is the input's first header_total bytes,
 * with the fd (close-on-exec, the very pipe sent) exactly for kind handoff; the receiver
 * never reads past the request (the rest is still in the socket); psdm_handoff_send refuses
 * anything but one whole request without sending a byte, and what it sends
 * psdm_handoff_recv gets back whole; no fd leaks, on any path. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_check.h"
#include "handoff/handoff_io.h"
#include "handoff/handoff_proto.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { kMaxChunked = 64, kFdWindow = 24 };
static const size_t kChunks[32] = {0,  1,  2,  3,  4,   5,   7,   8,   13,  14,   15,   16,   17,   20,   31,    32,
                                   33, 50, 64, 99, 100, 127, 128, 255, 256, 1000, 1024, 2048, 4096, 8192, 16384, 32768};

static int pipe_fds[2] = {-1, -1}; /* what travels as SCM_RIGHTS */
static ino_t pipe_ino;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    struct stat st;
    CHECK(pipe(pipe_fds) == 0 && fstat(pipe_fds[0], &st) == 0);
    pipe_ino = st.st_ino;
    return 0;
}

/* Which of the next kFdWindow descriptor numbers are open, as a bit mask. */
static uint32_t open_fds(int from) {
    uint32_t mask = 0;
    for (int i = 0; i < kFdWindow; i++)
        if (fcntl(from + i, F_GETFD) >= 0) mask |= 1u << i;
    return mask;
}

/* Sends all of p[0..n) on a non-blocking socket, the first send carrying nfds fds. */
static void send_chunk(int sock, const uint8_t *p, size_t n, int nfds) {
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(2 * sizeof(int))];
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    while (n > 0) {
        struct iovec iov = {.iov_base = (void *)(uintptr_t)p, .iov_len = n};
        struct msghdr mh;
        memset(&mh, 0, sizeof mh);
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        if (nfds > 0) {
            mh.msg_control = ctl.buf;
            mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
            struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
            memcpy(CMSG_DATA(c), pipe_fds, (size_t)nfds * sizeof(int));
        }
        const ssize_t k = sendmsg(sock, &mh, MSG_NOSIGNAL);
        CHECK(k > 0);
        p += k;
        n -= (size_t)k;
        nfds = 0;
    }
}

/* Reads what is left in the socket (closing any fd that came along) into out[0..cap);
 * returns its length. */
static size_t drain(int sock, uint8_t *out, size_t cap) {
    size_t have = 0;
    for (;;) {
        union {
            struct cmsghdr h;
            char buf[CMSG_SPACE(8 * sizeof(int))];
        } ctl;
        struct iovec iov = {.iov_base = out + have, .iov_len = cap - have};
        struct msghdr mh;
        memset(&mh, 0, sizeof mh);
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof ctl.buf;
        const ssize_t k = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        if (k <= 0) {
            CHECK(k == 0 || errno == EAGAIN);
            return have;
        }
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
            const size_t nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < nfds; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                close(fd);
            }
        }
        have += (size_t)k;
        CHECK(have < cap);
    }
}

/* The fd the receiver handed over: the pipe that was sent, close-on-exec. Closes it. */
static void check_received_fd(int fd) {
    struct stat st;
    CHECK(fd >= 0 && fstat(fd, &st) == 0 && st.st_ino == pipe_ino);
    CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    close(fd);
}

/* What psdm_handoff_rx_step must end with, from handoff_io.h: fds = 0, 1 or 2 with the
 * first bytes; second_at = offset of the byte that carried an fd later (SIZE_MAX if none). */
static int expected(const uint8_t *b, size_t n, size_t cap, int fds, size_t second_at, bool eof) {
    if (cap < PSDM_HS_HEADER_LEN) return PSDM_HS_E_INVALID_ARG;
    if (n == 0) return eof ? PSDM_HS_E_CLOSED : EAGAIN;
    if (fds == 2) return PSDM_HS_E_BAD_FD;
    if (second_at < n && second_at < PSDM_HS_HEADER_LEN) return PSDM_HS_E_BAD_FD;
    if (n < PSDM_HS_HEADER_LEN) return eof ? PSDM_HS_E_TRUNCATED : EAGAIN;
    const int total = psdm_handoff_header_total(b, PSDM_HS_HEADER_LEN);
    if (total < 0) return total;
    if ((size_t)total > cap) return PSDM_HS_E_TOO_LONG;
    if (b[5] == PSDM_HS_KIND_HANDOFF && fds != 1) return PSDM_HS_E_NO_FD;
    if (b[5] == PSDM_HS_KIND_RELAY && fds == 1) return PSDM_HS_E_BAD_FD;
    if (second_at < n && second_at < (size_t)total) return PSDM_HS_E_BAD_FD;
    if (n < (size_t)total) return eof ? PSDM_HS_E_TRUNCATED : EAGAIN;
    return 0;
}

/* psdm_handoff_send of any bytes: one whole request goes out and comes back whole through
 * psdm_handoff_recv; anything else is refused before a byte is sent. */
static void send_and_recv(int tx, int rx, const uint8_t *b, size_t n) {
    static unsigned char got[PSDM_HS_MAX_MSG];
    const int handoff = n > 5 && b[5] == PSDM_HS_KIND_HANDOFF;
    const int total = psdm_handoff_header_total(b, n);
    const int want = total < 0 ? total : (size_t)total != n ? PSDM_HS_E_INVALID_ARG : 0;
    CHECK(psdm_handoff_send(tx, b, n, handoff ? pipe_fds[0] : -1) == want);
    size_t len = 1;
    int fd = 0;
    const int rc = psdm_handoff_recv(rx, got, sizeof got, &len, &fd);
    if (want != 0) {
        CHECK(rc == EAGAIN && len == 0 && fd == -1);
        return;
    }
    CHECK(rc == 0 && len == n && memcmp(got, b, n) == 0);
    if (handoff) {
        check_received_fd(fd);
    } else {
        CHECK(fd == -1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static unsigned char buf[PSDM_HS_MAX_MSG];
    static uint8_t rest[PSDM_HS_MAX_MSG + 1];
    if (size < 2 || size - 2 > PSDM_HS_MAX_MSG) return 0;
    const int fds = data[0] & 3;
    const bool eof = (data[0] & 4) != 0;
    const size_t chunk = kChunks[data[0] >> 3];
    const size_t cap = data[1] == 0 ? PSDM_HS_MAX_MSG : data[1] == 255 ? 10 : PSDM_HS_HEADER_LEN + 128u * data[1];
    const uint8_t *b = data + 2;
    const size_t n = size - 2;
    const int first_fds = fds == 3 ? 0 : fds;
    const size_t second_at = fds == 3 && chunk > 0 && n > chunk ? chunk : SIZE_MAX;

    int probe = dup(pipe_fds[0]); /* the lowest free descriptor */
    CHECK(probe >= 0);
    close(probe);
    const uint32_t fds_before = open_fds(probe);

    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    psdm_handoff_rx rx;
    psdm_handoff_rx_init(&rx, buf, cap);
    int rc = EAGAIN;
    size_t off = 0;
    for (int i = 0; off < n; i++) {
        const bool chunked = chunk > 0 && i < kMaxChunked && rc == EAGAIN;
        const size_t len = chunked && n - off > chunk ? chunk : n - off;
        send_chunk(sv[1], b + off, len, i == 0 ? first_fds : off == second_at ? 1 : 0);
        off += len;
        if (rc == EAGAIN) rc = psdm_handoff_rx_step(&rx, sv[0]);
    }
    if (eof) CHECK(shutdown(sv[1], SHUT_WR) == 0);
    if (rc == EAGAIN) rc = psdm_handoff_rx_step(&rx, sv[0]);

    CHECK(rc == expected(b, n, cap, first_fds, second_at, eof));
    CHECK(psdm_handoff_rx_step(&rx, sv[0]) == rc); /* sticky, and nothing more is read */
    if (rc == 0) {
        const size_t total = psdm_handoff_rx_len(&rx);
        CHECK(total >= PSDM_HS_HEADER_LEN && total <= n && total <= cap && memcmp(buf, b, total) == 0);
        const int fd = psdm_handoff_rx_take_fd(&rx);
        if (b[5] == PSDM_HS_KIND_HANDOFF) {
            check_received_fd(fd);
        } else {
            CHECK(fd == -1);
        }
        CHECK(psdm_handoff_rx_take_fd(&rx) == -1);
        CHECK(drain(sv[0], rest, sizeof rest) == n - total && memcmp(rest, b + total, n - total) == 0);
    } else {
        CHECK(psdm_handoff_rx_len(&rx) == 0);
        if (rc != EAGAIN) CHECK(psdm_handoff_rx_take_fd(&rx) == -1);
        (void)drain(sv[0], rest, sizeof rest);
    }
    psdm_handoff_rx_release(&rx);
    if (!eof) send_and_recv(sv[1], sv[0], b, n);
    close(sv[0]);
    close(sv[1]);
    CHECK(open_fds(probe) == fds_before);
    return 0;
}

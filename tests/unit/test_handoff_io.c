/* Unit tests for handoff/handoff_io over socketpair(AF_UNIX, SOCK_STREAM): the fd really
 * arrives and is the same open file; the receiver never reads the relayed bytes after a
 * request; no fd / an fd too many / an fd too late; truncation and a peer that closes
 * mid-message; oversize lengths refused before the body is read; non-blocking
 * incremental reads; requests back to back on one connection; a send that never waits (all or EAGAIN); EINTR; EPIPE instead of
 * SIGPIPE; timeouts as EAGAIN. Every error path is checked for leaked fds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "handoff/handoff_io.h"

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="

static unsigned char g_msg[PSDM_HS_MAX_MSG];
static unsigned char g_rbuf[PSDM_HS_MAX_MSG];

/* ---- helpers ---- */

/* How many descriptors this process has open: a leaked received fd shows up here. */
static int open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static void pair(int sv[2]) { assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0); }

static void close_pair(int sv[2]) {
    if (sv[0] >= 0) close(sv[0]);
    if (sv[1] >= 0) close(sv[1]);
    sv[0] = sv[1] = -1;
}

static psdm_handoff_req make_req(uint8_t kind) {
    psdm_handoff_req r;
    memset(&r, 0, sizeof r);
    r.kind = kind;
    r.user = (psdm_hs_str){"alice", 5};
    r.uri = (psdm_hs_str){"/elog_socketio/?EIO=4&transport=websocket", 41};
    r.ws_key = (psdm_hs_str){KEY, 24};
    r.ws_version = (psdm_hs_str){"13", 2};
    r.groups[0] = (psdm_hs_str){"ps-data", 7};
    r.ngroups = 1;
    r.early_data = (psdm_hs_str){"\x81\x85", 2};
    return r;
}

/* Encodes a request of `kind` into g_msg; returns its length. */
static size_t make_msg(uint8_t kind) {
    psdm_handoff_req r = make_req(kind);
    const int n = psdm_handoff_encode(&r, g_msg, sizeof g_msg, NULL);
    assert_true(n > 0);
    return (size_t)n;
}

/* sendmsg of len bytes with nfds descriptors attached (0..2), bypassing handoff_io. */
static void raw_send(int sock, const void *data, size_t len, const int *fds, size_t nfds) {
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int) * 2)];
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct iovec iov = {.iov_base = (void *)(uintptr_t)data, .iov_len = len};
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (nfds > 0) {
        mh.msg_control = ctl.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    assert_int_equal(sendmsg(sock, &mh, MSG_NOSIGNAL), (ssize_t)len);
}

static void assert_same_file(int a, int b) {
    struct stat sa, sb;
    assert_int_equal(fstat(a, &sa), 0);
    assert_int_equal(fstat(b, &sb), 0);
    assert_int_equal(sa.st_dev, sb.st_dev);
    assert_int_equal(sa.st_ino, sb.st_ino);
}

static int queued_bytes(int sock) {
    int n = -1;
    assert_int_equal(ioctl(sock, FIONREAD, &n), 0);
    return n;
}

static void set_nonblock(int fd) { assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0); }

static void set_rcvtimeo_ms(int fd, long ms) {
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
}

/* Receives one request and expects the error rc; checks that no fd leaked. */
static void expect_recv_error(int sock, int rc) {
    size_t len = 99;
    int fd = 99;
    const int fds_before = open_fds();
    const int got = psdm_handoff_recv(sock, g_rbuf, sizeof g_rbuf, &len, &fd);
    if (got != rc)
        fail_msg("got %d (%s), want %d (%s)", got, got < 0 ? psdm_handoff_strerror(got) : strerror(got), rc,
                 rc < 0 ? psdm_handoff_strerror(rc) : strerror(rc));
    assert_int_equal(fd, -1);
    assert_int_equal(len, 0);
    assert_int_equal(open_fds(), fds_before); /* received fds were closed */
}

/* ---- the normal case ---- */

static void test_fd_arrives_same_socket(void **state) {
    (void)state;
    const int fds_before = open_fds();
    int sv[2], client[2];
    pair(sv);
    pair(client); /* client[0] stands for the browser's TCP socket */
    const size_t n = make_msg(PSDM_HS_KIND_HANDOFF);

    assert_int_equal(psdm_handoff_send(sv[0], g_msg, n, client[0]), 0);
    size_t len = 0;
    int fd = -1;
    assert_int_equal(psdm_handoff_recv(sv[1], g_rbuf, sizeof g_rbuf, &len, &fd), 0);
    assert_int_equal(len, n);
    assert_memory_equal(g_rbuf, g_msg, n);
    assert_true(fd >= 0);
    assert_int_not_equal(fd, client[0]);
    assert_same_file(fd, client[0]);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    /* the sender's copy stays open and usable */
    assert_true(fcntl(client[0], F_GETFD) >= 0);

    /* it really is the same connection: bytes written on it reach the browser side */
    assert_int_equal(write(fd, "hi", 2), 2);
    char got[2];
    assert_int_equal(read(client[1], got, 2), 2);
    assert_memory_equal(got, "hi", 2);

    psdm_handoff_req req, want = make_req(PSDM_HS_KIND_HANDOFF);
    assert_int_equal(psdm_handoff_decode(g_rbuf, len, &req, NULL), 0);
    assert_int_equal(req.kind, want.kind);
    assert_memory_equal(req.user.ptr, "alice", 5);

    close(fd);
    close_pair(sv);
    close_pair(client);
    assert_int_equal(open_fds(), fds_before);
}

static void test_fd_arrives_same_file(void **state) {
    (void)state;
    char path[] = "/tmp/psdm_handoff_XXXXXX";
    const int file = mkstemp(path);
    assert_true(file >= 0);
    unlink(path);
    int sv[2];
    pair(sv);
    const size_t n = make_msg(PSDM_HS_KIND_HANDOFF);
    assert_int_equal(psdm_handoff_send(sv[0], g_msg, n, file), 0);
    size_t len;
    int fd;
    assert_int_equal(psdm_handoff_recv(sv[1], g_rbuf, sizeof g_rbuf, &len, &fd), 0);
    assert_same_file(fd, file);
    /* same open file description: the offset is shared */
    assert_int_equal(write(file, "abc", 3), 3);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), 3);
    close(fd);
    close(file);
    close_pair(sv);
}

/* Relay: no fd; the receiver reads exactly the request and leaves the relayed bytes
 * that follow it queued (lws reads them once it has adopted the connection). */
static void test_relay_request_then_bytes(void **state) {
    (void)state;
    int sv[2];
    pair(sv);
    const size_t n = make_msg(PSDM_HS_KIND_RELAY);
    assert_int_equal(psdm_handoff_send(sv[0], g_msg, n, -1), 0);
    static const char kFrame[] =
        "\x81\x82"
        "abcd..";
    assert_int_equal(write(sv[0], kFrame, sizeof kFrame - 1), (ssize_t)(sizeof kFrame - 1));
    size_t len;
    int fd = 99;
    assert_int_equal(psdm_handoff_recv(sv[1], g_rbuf, sizeof g_rbuf, &len, &fd), 0);
    assert_int_equal(fd, -1);
    assert_int_equal(len, n);
    assert_int_equal(queued_bytes(sv[1]), (int)(sizeof kFrame - 1));
    close_pair(sv);
}

/* ---- sender refuses misuse, sending nothing ---- */

static void test_send_misuse(void **state) {
    (void)state;
    int sv[2];
    pair(sv);
    size_t n = make_msg(PSDM_HS_KIND_HANDOFF);
    assert_int_equal(psdm_handoff_send(sv[0], g_msg, n, -1), PSDM_HS_E_NO_FD);
    assert_int_equal(psdm_handoff_send(sv[0], g_msg, n - 1, sv[0]), PSDM_HS_E_INVALID_ARG);
    assert_int_equal(psdm_handoff_send(sv[0], g_msg, n + 1, sv[0]), PSDM_HS_E_INVALID_ARG);
    assert_int_equal(psdm_handoff_send(sv[0], g_msg, 10, sv[0]), PSDM_HS_E_TRUNCATED);
    assert_int_equal(psdm_handoff_send(sv[0], NULL, 0, sv[0]), PSDM_HS_E_INVALID_ARG);
    g_msg[0] = 'X';
    assert_int_equal(psdm_handoff_send(sv[0], g_msg, n, sv[0]), PSDM_HS_E_BAD_MAGIC);
    n = make_msg(PSDM_HS_KIND_RELAY);
    assert_int_equal(psdm_handoff_send(sv[0], g_msg, n, sv[0]), PSDM_HS_E_BAD_FD);
    assert_int_equal(queued_bytes(sv[1]), 0);
    close_pair(sv);
}

/* ---- the receiver judges fds ---- */

static void test_handoff_without_fd(void **state) {
    (void)state;
    int sv[2];
    pair(sv);
    const size_t n = make_msg(PSDM_HS_KIND_HANDOFF);
    raw_send(sv[0], g_msg, n, NULL, 0);
    expect_recv_error(sv[1], PSDM_HS_E_NO_FD);
    close_pair(sv);
}

static void test_relay_with_fd(void **state) {
    (void)state;
    int sv[2];
    pair(sv);
    const size_t n = make_msg(PSDM_HS_KIND_RELAY);
    raw_send(sv[0], g_msg, n, &sv[0], 1);
    expect_recv_error(sv[1], PSDM_HS_E_BAD_FD);
    close_pair(sv);
}

static void test_two_fds(void **state) {
    (void)state;
    int sv[2], other[2];
    pair(sv);
    pair(other);
    const size_t n = make_msg(PSDM_HS_KIND_HANDOFF);
    raw_send(sv[0], g_msg, n, other, 2);
    expect_recv_error(sv[1], PSDM_HS_E_BAD_FD);
    close_pair(sv);
    close_pair(other);
}

/* Two separate SCM_RIGHTS sends before the receiver reads: one fd each, both glued into
 * the first read or not, never accepted as "the" fd twice. */
static void test_fd_with_each_chunk(void **state) {
    (void)state;
    int sv[2];
    pair(sv);
    const size_t n = make_msg(PSDM_HS_KIND_HANDOFF);
    raw_send(sv[0], g_msg, 4, &sv[0], 1);
    raw_send(sv[0], g_msg + 4, n - 4, &sv[0], 1);
    expect_recv_error(sv[1], PSDM_HS_E_BAD_FD);
    close_pair(sv);
}

/* The fd must come with the first bytes: once the header is in without one, a handoff
 * request is no_fd, and a relay request that gets an fd later is bad_fd. */
static void test_fd_too_late(void **state) {
    (void)state;
    int sv[2];
    pair(sv);
    size_t n = make_msg(PSDM_HS_KIND_HANDOFF);
    raw_send(sv[0], g_msg, PSDM_HS_HEADER_LEN, NULL, 0);
    raw_send(sv[0], g_msg + PSDM_HS_HEADER_LEN, n - PSDM_HS_HEADER_LEN, &sv[0], 1);
    expect_recv_error(sv[1], PSDM_HS_E_NO_FD);
    close_pair(sv);

    pair(sv);
    n = make_msg(PSDM_HS_KIND_RELAY);
    raw_send(sv[0], g_msg, PSDM_HS_HEADER_LEN, NULL, 0);
    raw_send(sv[0], g_msg + PSDM_HS_HEADER_LEN, n - PSDM_HS_HEADER_LEN, &sv[0], 1);
    expect_recv_error(sv[1], PSDM_HS_E_BAD_FD);
    close_pair(sv);
}

/* ---- truncation, peer gone ---- */

static void test_truncated_and_peer_closes(void **state) {
    (void)state;
    const size_t n = make_msg(PSDM_HS_KIND_HANDOFF);
    const size_t cuts[] = {0, 1, 4, PSDM_HS_HEADER_LEN - 1, PSDM_HS_HEADER_LEN, PSDM_HS_HEADER_LEN + 1, n / 2, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        for (int how = 0; how < 2; how++) { /* shutdown(SHUT_WR), then close() */
            int sv[2], client[2];
            pair(sv);
            pair(client);
            if (cuts[i] > 0) raw_send(sv[0], g_msg, cuts[i], &client[0], 1);
            if (how == 0) {
                shutdown(sv[0], SHUT_WR);
            } else {
                close(sv[0]);
                sv[0] = -1;
            }
            close_pair(client); /* the only copy left is in flight */
            expect_recv_error(sv[1], cuts[i] == 0 ? PSDM_HS_E_CLOSED : PSDM_HS_E_TRUNCATED);
            close_pair(sv);
        }
    }
}

/* ---- sizes: judged from the header, before the body is read ---- */

static void test_oversize_length(void **state) {
    (void)state;
    int sv[2];
    pair(sv);
    size_t n = make_msg(PSDM_HS_KIND_RELAY);
    const uint32_t body = PSDM_HS_MAX_BODY + 1;
    g_msg[8] = (unsigned char)(body >> 24);
    g_msg[9] = (unsigned char)(body >> 16);
    g_msg[10] = (unsigned char)(body >> 8);
    g_msg[11] = (unsigned char)body;
    raw_send(sv[0], g_msg, n, NULL, 0);
    expect_recv_error(sv[1], PSDM_HS_E_TOO_LONG);
    assert_int_equal(queued_bytes(sv[1]), (int)(n - PSDM_HS_HEADER_LEN)); /* body not read */
    close_pair(sv);

    /* a valid request larger than the receiver's buffer */
    pair(sv);
    n = make_msg(PSDM_HS_KIND_HANDOFF);
    raw_send(sv[0], g_msg, n, &sv[0], 1);
    size_t len;
    int fd;
    const int fds_before = open_fds();
    assert_int_equal(psdm_handoff_recv(sv[1], g_rbuf, n - 1, &len, &fd), PSDM_HS_E_TOO_LONG);
    assert_int_equal(open_fds(), fds_before);
    /* a buffer smaller than a header is a caller bug */
    assert_int_equal(psdm_handoff_recv(sv[1], g_rbuf, PSDM_HS_HEADER_LEN - 1, &len, &fd), PSDM_HS_E_INVALID_ARG);
    close_pair(sv);
}

static void test_bad_header_over_wire(void **state) {
    (void)state;
    int sv[2];
    pair(sv);
    const size_t n = make_msg(PSDM_HS_KIND_HANDOFF);
    g_msg[0] = 'G'; /* "GET / HTTP/1.1" from something that is not the module */
    raw_send(sv[0], g_msg, n, &sv[0], 1);
    expect_recv_error(sv[1], PSDM_HS_E_BAD_MAGIC);
    close_pair(sv);
}

/* ---- non-blocking, one byte at a time ---- */

static void test_nonblocking_incremental(void **state) {
    (void)state;
    int sv[2], client[2];
    pair(sv);
    pair(client);
    set_nonblock(sv[1]);
    const size_t n = make_msg(PSDM_HS_KIND_HANDOFF);
    psdm_handoff_rx rx;
    psdm_handoff_rx_init(&rx, g_rbuf, sizeof g_rbuf);
    assert_int_equal(psdm_handoff_rx_step(&rx, sv[1]), EAGAIN);
    raw_send(sv[0], g_msg, 1, &client[0], 1);
    assert_int_equal(psdm_handoff_rx_step(&rx, sv[1]), EAGAIN);
    assert_int_equal(psdm_handoff_rx_len(&rx), 0);
    for (size_t i = 1; i < n - 1; i++) {
        raw_send(sv[0], g_msg + i, 1, NULL, 0);
        assert_int_equal(psdm_handoff_rx_step(&rx, sv[1]), EAGAIN);
    }
    raw_send(sv[0], g_msg + n - 1, 1, NULL, 0);
    assert_int_equal(psdm_handoff_rx_step(&rx, sv[1]), 0);
    assert_int_equal(psdm_handoff_rx_step(&rx, sv[1]), 0); /* complete stays complete */
    assert_int_equal(psdm_handoff_rx_len(&rx), n);
    assert_memory_equal(g_rbuf, g_msg, n);
    const int fd = psdm_handoff_rx_take_fd(&rx);
    assert_true(fd >= 0);
    assert_int_equal(psdm_handoff_rx_take_fd(&rx), -1);
    assert_same_file(fd, client[0]);
    psdm_handoff_rx_release(&rx);
    close(fd);
    close_pair(sv);
    close_pair(client);
}

/* An Apache child's kept connection: requests queued back to back, each with its own fd,
 * are read one at a time, each with its own fd, never a byte of the next. */
static void test_requests_back_to_back(void **state) {
    (void)state;
    const int fds_before = open_fds();
    int sv[2], client[3][2];
    pair(sv);
    set_nonblock(sv[1]);
    const size_t n = make_msg(PSDM_HS_KIND_HANDOFF);
    for (int i = 0; i < 3; i++) {
        pair(client[i]);
        assert_int_equal(psdm_handoff_send(sv[0], g_msg, n, client[i][0]), 0);
    }
    raw_send(sv[0], g_msg, 5, &client[0][0], 1); /* and the start of a fourth */
    assert_int_equal(queued_bytes(sv[1]), (int)(3 * n + 5));
    psdm_handoff_rx rx;
    for (int i = 0; i < 3; i++) {
        psdm_handoff_rx_init(&rx, g_rbuf, sizeof g_rbuf);
        assert_int_equal(psdm_handoff_rx_step(&rx, sv[1]), 0);
        assert_int_equal(psdm_handoff_rx_len(&rx), n);
        assert_int_equal(queued_bytes(sv[1]), (int)((2 - i) * n + 5));
        const int fd = psdm_handoff_rx_take_fd(&rx);
        assert_same_file(fd, client[i][0]);
        close(fd);
        psdm_handoff_rx_release(&rx);
    }
    psdm_handoff_rx_init(&rx, g_rbuf, sizeof g_rbuf);
    assert_false(psdm_handoff_rx_started(&rx));
    assert_int_equal(psdm_handoff_rx_step(&rx, sv[1]), EAGAIN);
    assert_true(psdm_handoff_rx_started(&rx)); /* part of a request: the caller's timeout runs */
    close(sv[0]);
    sv[0] = -1;
    assert_int_equal(psdm_handoff_rx_step(&rx, sv[1]), PSDM_HS_E_TRUNCATED); /* its fd closed */
    psdm_handoff_rx_release(&rx);
    close_pair(sv);
    for (int i = 0; i < 3; i++) close_pair(client[i]);
    assert_int_equal(open_fds(), fds_before);
}

/* After an error, further steps return it without touching the socket. */
static void test_sticky_error(void **state) {
    (void)state;
    int sv[2];
    pair(sv);
    const size_t n = make_msg(PSDM_HS_KIND_HANDOFF);
    raw_send(sv[0], g_msg, n, NULL, 0);
    psdm_handoff_rx rx;
    psdm_handoff_rx_init(&rx, g_rbuf, sizeof g_rbuf);
    assert_int_equal(psdm_handoff_rx_step(&rx, sv[1]), PSDM_HS_E_NO_FD);
    const int queued = queued_bytes(sv[1]);
    assert_int_equal(psdm_handoff_rx_step(&rx, sv[1]), PSDM_HS_E_NO_FD);
    assert_int_equal(queued_bytes(sv[1]), queued);
    assert_int_equal(psdm_handoff_rx_len(&rx), 0);
    assert_int_equal(psdm_handoff_rx_take_fd(&rx), -1);
    psdm_handoff_rx_release(&rx);
    close_pair(sv);
}

/* ---- timeouts are the caller's: SO_RCVTIMEO expires as EAGAIN ---- */

static void test_timeouts(void **state) {
    (void)state;
    int sv[2], client[2];
    pair(sv);
    pair(client);
    set_rcvtimeo_ms(sv[1], 20);
    const int fds_before = open_fds();
    const size_t n = make_msg(PSDM_HS_KIND_HANDOFF);
    raw_send(sv[0], g_msg, n / 2, &client[0], 1); /* half a request, then silence */
    size_t len;
    int fd;
    assert_int_equal(psdm_handoff_recv(sv[1], g_rbuf, sizeof g_rbuf, &len, &fd), EAGAIN);
    assert_int_equal(fd, -1);
    assert_int_equal(open_fds(), fds_before); /* the fd that came with it is closed */
    close_pair(sv);
    close_pair(client);
}

/* ---- EPIPE, not SIGPIPE ---- */

static void test_send_to_closed_peer(void **state) {
    (void)state;
    int sv[2];
    pair(sv);
    close(sv[1]);
    sv[1] = -1;
    const size_t n = make_msg(PSDM_HS_KIND_HANDOFF);
    assert_int_equal(psdm_handoff_send(sv[0], g_msg, n, sv[0]), EPIPE); /* still alive: no SIGPIPE */
    close_pair(sv);
}

/* ---- large request through small buffers; EINTR ---- */

static psdm_handoff_req big_req(void) {
    static char filler[PSDM_HS_MAX_EARLY_DATA];
    memset(filler, 'g', sizeof filler);
    psdm_handoff_req r = make_req(PSDM_HS_KIND_HANDOFF);
    for (unsigned i = 0; i < PSDM_HS_MAX_GROUPS; i++) r.groups[i] = (psdm_hs_str){filler, PSDM_HS_MAX_USER};
    r.ngroups = PSDM_HS_MAX_GROUPS;
    r.early_data = (psdm_hs_str){filler, PSDM_HS_MAX_EARLY_DATA};
    return r;
}

/* Child process: sends msg with fd after delay_ms, exits with the send status. */
static pid_t spawn_sender(int sock, const unsigned char *msg, size_t len, int fd, int sndbuf, int delay_ms) {
    const pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (sndbuf > 0) setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
        if (delay_ms > 0) {
            struct timespec ts = {.tv_sec = 0, .tv_nsec = delay_ms * 1000000L};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
            }
        }
        const int rc = psdm_handoff_send(sock, msg, len, fd);
        _exit(rc == 0 ? 0 : 1);
    }
    return pid;
}

static void wait_ok(pid_t pid) {
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* The largest request goes in one sendmsg when the socket takes it (the default buffers
 * do) and arrives through a small receive buffer in pieces. */
static void test_large_request_small_buffers(void **state) {
    (void)state;
    int sv[2], client[2];
    pair(sv);
    pair(client);
    const int rcvbuf = 4096;
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    psdm_handoff_req r = big_req();
    const int n = psdm_handoff_encode(&r, g_msg, sizeof g_msg, NULL);
    assert_true(n > 4 * 4096); /* many times the receive buffer */
    const pid_t pid = spawn_sender(sv[0], g_msg, (size_t)n, client[0], 0, 20);
    size_t len;
    int fd;
    assert_int_equal(psdm_handoff_recv(sv[1], g_rbuf, sizeof g_rbuf, &len, &fd), 0);
    wait_ok(pid);
    assert_int_equal(len, (size_t)n);
    assert_memory_equal(g_rbuf, g_msg, len);
    assert_same_file(fd, client[0]);
    psdm_handoff_req out;
    assert_int_equal(psdm_handoff_decode(g_rbuf, len, &out, NULL), 0);
    assert_int_equal(out.ngroups, PSDM_HS_MAX_GROUPS);
    close(fd);
    close_pair(sv);
    close_pair(client);
}

/* The send never waits: a socket that cannot take the whole request at once gives
 * EAGAIN (a prefix and the fd may have gone); the receiver, once the sender closes,
 * sees a truncated request and closes the fd it got, untouched. */
static void test_send_never_waits(void **state) {
    (void)state;
    int sv[2], client[2];
    pair(sv);
    pair(client);
    const int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    const int fds_before = open_fds();
    psdm_handoff_req r = big_req();
    const int n = psdm_handoff_encode(&r, g_msg, sizeof g_msg, NULL);
    assert_int_equal(psdm_handoff_send(sv[0], g_msg, (size_t)n, client[0]), EAGAIN);
    close(sv[0]);
    sv[0] = -1;
    size_t len;
    int fd;
    assert_int_equal(psdm_handoff_recv(sv[1], g_rbuf, sizeof g_rbuf, &len, &fd), PSDM_HS_E_TRUNCATED);
    assert_int_equal(fd, -1);
    assert_int_equal(open_fds(), fds_before - 1); /* sv[0] closed, the received fd too */
    close_pair(sv);
    close_pair(client);
}

static volatile sig_atomic_t g_alarms;
static void on_alarm(int sig) {
    (void)sig;
    g_alarms++;
}

/* A blocking recv interrupted by signals (no SA_RESTART) retries and completes. */
static void test_eintr(void **state) {
    (void)state;
    int sv[2], client[2];
    pair(sv);
    pair(client);
    const size_t n = make_msg(PSDM_HS_KIND_HANDOFF);

    struct sigaction sa, old_sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: recvmsg fails with EINTR */
    assert_int_equal(sigaction(SIGALRM, &sa, &old_sa), 0);
    g_alarms = 0;
    const pid_t pid = spawn_sender(sv[0], g_msg, n, client[0], 0, 150);
    struct itimerval it = {.it_interval = {0, 5000}, .it_value = {0, 5000}}, off;
    memset(&off, 0, sizeof off);
    assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);

    size_t len;
    int fd;
    const int rc = psdm_handoff_recv(sv[1], g_rbuf, sizeof g_rbuf, &len, &fd);
    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &old_sa, NULL);
    assert_int_equal(rc, 0);
    wait_ok(pid);
    assert_true(g_alarms > 0);
    assert_int_equal(len, n);
    assert_same_file(fd, client[0]);
    close(fd);
    close_pair(sv);
    close_pair(client);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fd_arrives_same_socket),
        cmocka_unit_test(test_fd_arrives_same_file),
        cmocka_unit_test(test_relay_request_then_bytes),
        cmocka_unit_test(test_send_misuse),
        cmocka_unit_test(test_handoff_without_fd),
        cmocka_unit_test(test_relay_with_fd),
        cmocka_unit_test(test_two_fds),
        cmocka_unit_test(test_fd_with_each_chunk),
        cmocka_unit_test(test_fd_too_late),
        cmocka_unit_test(test_truncated_and_peer_closes),
        cmocka_unit_test(test_oversize_length),
        cmocka_unit_test(test_bad_header_over_wire),
        cmocka_unit_test(test_nonblocking_incremental),
        cmocka_unit_test(test_requests_back_to_back),
        cmocka_unit_test(test_sticky_error),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_send_to_closed_peer),
        cmocka_unit_test(test_large_request_small_buffers),
        cmocka_unit_test(test_send_never_waits),
        cmocka_unit_test(test_eintr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

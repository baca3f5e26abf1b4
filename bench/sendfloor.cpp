// psdm_sendfloor: the send floor of `make bench` (bench/yardsticks.py; see bench/README.md).
//
// What one delivery costs at the least when a server makes one send() per delivery: the
// same WebSocket frame sent to every member of a room, over loopback TCP, with nothing else
// in the sender's loop (no parsing, no rooms, no queues, no epoll). The worker's deliveries
// per CPU-second are compared with this process's sends per CPU-second.
//
//   psdm_sendfloor --connections N [--rooms R] [--rate MSGS/S] [--duration S | --messages M]
//                  [--frame-bytes B] [--modes send,uring] [--batch 256] [--label L]
//
// The process listens on 127.0.0.1 and forks a sink: the clients, one process with one
// epoll loop that connects N sockets from 127.0.0.(1 + i % 50) and reads (and drops)
// everything it receives, as psdm_loadgen's client processes do, so that no socket buffer
// fills. The sender accepts them (non-blocking, TCP_NODELAY, as the worker's accepted
// sockets) and then, per mode, sends message k (k = 0 .. M-1, at --rate messages per
// second, or back to back with --rate 0) to every connection of room k % R (connection i is
// in room i % R):
//
//   send   one send(fd, frame, MSG_NOSIGNAL | MSG_DONTWAIT) per connection, as the worker
//          writes to a client whose queue is empty;
//   uring  the same sends through io_uring (liburing): IORING_OP_SEND, --batch (256) per
//          io_uring_submit_and_wait(), completions reaped after each batch. If the kernel
//          refuses io_uring (ENOSYS, EPERM: seccomp, kernel.io_uring_disabled) the mode
//          reports the reason and the program goes on.
//
// Per mode it prints one JSON line: the sender's CPU time over the sends (getrusage,
// user + system; on loopback that includes the receiver's TCP work that the kernel runs
// in the sender's context, as it does for the worker), sends per CPU-second, and whether
// every byte reached the sink. Progress and errors on stderr. Loopback only.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#ifdef PSDM_HAVE_LIBURING
#include <liburing.h>
#endif

#include "bench_util.h"
#include "ws_client.h"

namespace {

using bench::json_str;
using bench::now_mono_us;
using bench::parse_double;
using bench::parse_uint;

struct Options {
    uint32_t connections = 1000;
    uint32_t rooms = 1;
    double rate = 10;
    double duration = 6;
    uint64_t messages = 0;  // 0: rate x duration
    unsigned frame_bytes = 310;
    std::string modes = "send,uring";
    unsigned batch = 256;
    std::string label;
};

const char kUsage[] =
    "usage: psdm_sendfloor [options]\n"
    "  --connections N   loopback connections to send to (1000)\n"
    "  --rooms R         connection i is in room i % R; message k goes to room k % R (1)\n"
    "  --rate R          messages per second, 0 = back to back (10)\n"
    "  --duration S      seconds of messages at --rate (6)\n"
    "  --messages M      messages per mode (default: rate x duration; required with --rate 0)\n"
    "  --frame-bytes B   size of the frame sent, WebSocket header included (310: the worker's\n"
    "                    psdm_ws_msg frame for psdm_loadgen's records)\n"
    "  --modes LIST      send, uring or both (send,uring)\n"
    "  --batch K         io_uring: sends per submit (256)\n"
    "  --label S         copied into the output\n";

Options parse(int argc, char **argv) {
    Options o;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "-h" || a == "--help") bench::usage_exit(kUsage, nullptr);
        if (i + 1 >= argc) bench::usage_exit(kUsage, ("missing value for " + a).c_str());
        const char *v = argv[++i];
        if (a == "--connections") o.connections = static_cast<uint32_t>(parse_uint(v, "--connections"));
        else if (a == "--rooms") o.rooms = static_cast<uint32_t>(parse_uint(v, "--rooms"));
        else if (a == "--rate") o.rate = parse_double(v, "--rate");
        else if (a == "--duration") o.duration = parse_double(v, "--duration");
        else if (a == "--messages") o.messages = parse_uint(v, "--messages");
        else if (a == "--frame-bytes") o.frame_bytes = static_cast<unsigned>(parse_uint(v, "--frame-bytes"));
        else if (a == "--modes") o.modes = v;
        else if (a == "--batch") o.batch = static_cast<unsigned>(parse_uint(v, "--batch"));
        else if (a == "--label") o.label = v;
        else bench::usage_exit(kUsage, ("unknown option " + a).c_str());
    }
    if (o.messages == 0) o.messages = static_cast<uint64_t>(o.rate * o.duration + 0.5);
    if (o.connections == 0 || o.connections > 19800) bench::usage_exit(kUsage, "--connections must be 1..19800");
    if (o.rooms == 0 || o.rooms > o.connections) bench::usage_exit(kUsage, "--rooms must be 1..connections");
    if (o.messages == 0) bench::usage_exit(kUsage, "no messages: set --rate and --duration, or --messages");
    if (o.frame_bytes < 8 || o.frame_bytes > 65535) bench::usage_exit(kUsage, "--frame-bytes must be 8..65535");
    if (o.batch == 0 || o.batch > 4096) bench::usage_exit(kUsage, "--batch must be 1..4096");
    return o;
}

// A server-to-client WebSocket text frame of `total` bytes (header included) carrying a
// Socket.IO event, padded with 'x': its content does not matter to the kernel, its size does.
std::string make_frame(unsigned total) {
    size_t header = total - 2 <= 125 ? 2 : 4;
    size_t len = total - header;
    std::string f;
    f += static_cast<char>(0x81);
    if (header == 2) {
        f += static_cast<char>(len);
    } else {
        f += static_cast<char>(126);
        f += static_cast<char>((len >> 8) & 0xff);
        f += static_cast<char>(len & 0xff);
    }
    std::string payload = "42/psdm_ws,[\"psdm_ws_msg\",{\"pad\":\"";
    std::string tail = "\"}]";
    if (payload.size() + tail.size() > len) payload.clear(), tail.clear();
    payload.append(len - payload.size() - tail.size(), 'x');
    return f + payload + tail;
}

// What the sink shares with the sender (an anonymous shared mapping made before fork).
struct Shared {
    std::atomic<uint32_t> connected{0};
    std::atomic<uint32_t> failed{0};
    std::atomic<uint64_t> bytes{0};
};

// The sink: connects `n` clients to `dst`, reads everything until `ctl` is closed.
int run_sink(uint32_t n, const sockaddr_in &dst, int ctl, Shared *sh) {
    bench::raise_fd_limit();
    int ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = UINT64_MAX;
    epoll_ctl(ep, EPOLL_CTL_ADD, ctl, &ev);
    std::vector<int> fds(n, -1);
    std::vector<bool> up(n, false);
    uint32_t next = 0, in_flight = 0;
    static char buf[256 * 1024];
    std::vector<epoll_event> evs(1024);
    for (;;) {
        while (next < n && in_flight < 500) {  // at most 500 connects in flight, as psdm_loadgen
            int fd = ws::new_socket();
            if (fd < 0 || !ws::start_connect(ep, fd, next % 50, dst, next)) {
                if (fd >= 0) close(fd);
                sh->failed++;
                next++;
                continue;
            }
            fds[next++] = fd;
            in_flight++;
        }
        int k = epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 100);
        if (k < 0 && errno != EINTR) return 1;
        for (int i = 0; i < k; i++) {
            uint64_t tag = evs[static_cast<size_t>(i)].data.u64;
            uint32_t e = evs[static_cast<size_t>(i)].events;
            if (tag == UINT64_MAX) return 0;  // the sender closed its end: done
            int fd = fds[tag];
            if (fd < 0) continue;
            if (!up[tag]) {
                ws::Connect r = ws::connect_result(fd, e);
                if (r == ws::Connect::pending) continue;
                in_flight--;
                if (r == ws::Connect::failed) {
                    close(fd);
                    fds[tag] = -1;
                    sh->failed++;
                    continue;
                }
                up[tag] = true;
                epoll_event in{};
                in.events = EPOLLIN;
                in.data.u64 = tag;
                epoll_ctl(ep, EPOLL_CTL_MOD, fd, &in);
                sh->connected++;
                continue;
            }
            for (;;) {
                size_t got = 0;
                ws::Rx rx = ws::recv_some(fd, buf, sizeof buf, &got);
                if (rx == ws::Rx::data) {
                    sh->bytes += got;
                    if (got < sizeof buf) break;
                    continue;
                }
                if (rx != ws::Rx::again) {
                    close(fd);
                    fds[tag] = -1;
                }
                break;
            }
        }
    }
}

double cpu_of(const rusage &ru, bool user) {
    const timeval &t = user ? ru.ru_utime : ru.ru_stime;
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
}

struct Result {
    std::string mode, error;
    uint64_t sends = 0, short_sends = 0, errors = 0, submits = 0;
    double user_s = 0, sys_s = 0, wall_s = 0;
};

// Paces message k at start + k / rate (no pacing with rate 0).
void pace(const Options &o, int64_t start, uint64_t k) {
    if (o.rate <= 0) return;
    int64_t at = start + static_cast<int64_t>(static_cast<double>(k) * 1e6 / o.rate);
    int64_t now = now_mono_us();
    if (now >= at) return;
    timespec ts{static_cast<time_t>(at / 1000000), static_cast<long>((at % 1000000) * 1000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
}

// The members of each room, in connection order.
std::vector<std::vector<int>> rooms_of(const Options &o, const std::vector<int> &fds) {
    std::vector<std::vector<int>> rooms(o.rooms);
    for (size_t i = 0; i < fds.size(); i++) rooms[i % o.rooms].push_back(fds[i]);
    return rooms;
}

// A send the kernel did not take whole (EAGAIN, or part of it): the rest is written with
// blocking waits, outside the measured path's logic but inside its CPU time. Rare at the
// scenarios' rates; counted.
void send_rest(int fd, const char *p, size_t n, Result *r) {
    r->short_sends++;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            r->errors++;
            return;
        }
        p += w;
        n -= static_cast<size_t>(w);
    }
}

Result run_send(const Options &o, const std::vector<std::vector<int>> &rooms, const std::string &frame) {
    Result r;
    r.mode = "send";
    int64_t start = now_mono_us();
    for (uint64_t k = 0; k < o.messages; k++) {
        pace(o, start, k);
        for (int fd : rooms[k % o.rooms]) {
            ssize_t w = send(fd, frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            r.sends++;
            if (w == static_cast<ssize_t>(frame.size())) continue;
            if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                r.errors++;
                continue;
            }
            size_t done = w > 0 ? static_cast<size_t>(w) : 0;
            send_rest(fd, frame.data() + done, frame.size() - done, &r);
        }
    }
    return r;
}

#ifdef PSDM_HAVE_LIBURING
Result run_uring(const Options &o, const std::vector<std::vector<int>> &rooms, const std::string &frame) {
    Result r;
    r.mode = "uring";
    io_uring ring;
    int rc = io_uring_queue_init(o.batch, &ring, 0);
    if (rc < 0) {
        r.error = std::string("io_uring refused: ") + strerror(-rc);
        return r;
    }
    int64_t start = now_mono_us();
    for (uint64_t k = 0; k < o.messages; k++) {
        pace(o, start, k);
        const std::vector<int> &members = rooms[k % o.rooms];
        for (size_t at = 0; at < members.size(); at += o.batch) {
            size_t n = std::min<size_t>(o.batch, members.size() - at);
            for (size_t i = 0; i < n; i++) {
                io_uring_sqe *sqe = io_uring_get_sqe(&ring);  // not null: n <= entries, all reaped
                if (!sqe) {
                    r.error = "io_uring_get_sqe: submission queue full";
                    io_uring_queue_exit(&ring);
                    return r;
                }
                // No MSG_DONTWAIT: a socket that cannot take the frame now is retried by the
                // kernel when it can (io_uring's internal poll), so every send is whole.
                io_uring_prep_send(sqe, members[at + i], frame.data(), frame.size(), MSG_NOSIGNAL);
                io_uring_sqe_set_data64(sqe, static_cast<uint64_t>(members[at + i]));
            }
            int s = io_uring_submit_and_wait(&ring, static_cast<unsigned>(n));
            r.submits++;
            if (s < 0) {
                r.error = std::string("io_uring_submit_and_wait: ") + strerror(-s);
                io_uring_queue_exit(&ring);
                return r;
            }
            size_t reaped = 0;
            while (reaped < n) {
                io_uring_cqe *cqe;
                int w = io_uring_wait_cqe(&ring, &cqe);
                if (w < 0) {
                    if (w == -EINTR) continue;
                    r.error = std::string("io_uring_wait_cqe: ") + strerror(-w);
                    io_uring_queue_exit(&ring);
                    return r;
                }
                unsigned head, seen = 0;
                io_uring_for_each_cqe(&ring, head, cqe) {
                    r.sends++;
                    int res = cqe->res;
                    int fd = static_cast<int>(io_uring_cqe_get_data64(cqe));
                    if (res < 0) r.errors++;
                    else if (static_cast<size_t>(res) < frame.size())
                        send_rest(fd, frame.data() + res, frame.size() - static_cast<size_t>(res), &r);
                    seen++;
                }
                io_uring_cq_advance(&ring, seen);
                reaped += seen;
            }
        }
    }
    io_uring_queue_exit(&ring);
    return r;
}
#endif

}  // namespace

int main(int argc, char **argv) {
    Options o = parse(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    bench::raise_fd_limit();
    std::string frame = make_frame(o.frame_bytes);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    bench::loopback_address("127.0.0.1", 0, &addr);
    socklen_t alen = sizeof addr;
    if (lfd < 0 || bind(lfd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 || listen(lfd, 4096) != 0 ||
        getsockname(lfd, reinterpret_cast<sockaddr *>(&addr), &alen) != 0) {
        perror("psdm_sendfloor: listen");
        return 1;
    }
    auto *sh = static_cast<Shared *>(
        mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    if (sh == MAP_FAILED) return 1;
    new (sh) Shared();
    int ctl[2];
    if (pipe2(ctl, O_CLOEXEC) != 0) return 1;
    pid_t sink = fork();
    if (sink < 0) return 1;
    if (sink == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(ctl[1]);
        close(lfd);
        _exit(run_sink(o.connections, addr, ctl[0], sh));
    }
    close(ctl[0]);

    // Accept every client (the sink connects them); the sender's sockets are as the worker's.
    std::vector<int> fds;
    int64_t deadline = now_mono_us() + 120000000;
    while (fds.size() + sh->failed.load() < o.connections && now_mono_us() < deadline) {
        int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR) continue;
            perror("psdm_sendfloor: accept");
            break;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fds.push_back(fd);
    }
    while (sh->connected.load() + sh->failed.load() < o.connections && now_mono_us() < deadline) usleep(1000);
    if (fds.size() != o.connections || sh->connected.load() != o.connections) {
        fprintf(stderr, "psdm_sendfloor: only %zu of %u connections up (%u failed)\n", fds.size(), o.connections,
                sh->failed.load());
        printf("{\"label\":%s,\"error\":\"only %zu of %u connections up\"}\n", json_str(o.label).c_str(), fds.size(),
               o.connections);
        return 1;
    }
    fprintf(stderr, "psdm_sendfloor[%s]: %u connections up, %" PRIu64 " messages of %zu bytes per mode\n",
            o.label.c_str(), o.connections, o.messages, frame.size());
    auto rooms = rooms_of(o, fds);
    uint64_t sends_per_mode = 0;
    for (uint64_t k = 0; k < o.messages; k++) sends_per_mode += rooms[k % o.rooms].size();

    int status = 0;
    uint64_t bytes_before = 0;
    for (const char *mode : {"send", "uring"}) {
        if (("," + o.modes + ",").find(std::string(",") + mode + ",") == std::string::npos) continue;
        rusage ru0, ru1;
        double sink0 = bench::cpu_seconds_of(sink);
        getrusage(RUSAGE_SELF, &ru0);
        int64_t w0 = now_mono_us();
        Result r;
        if (std::string(mode) == "send") {
            r = run_send(o, rooms, frame);
        } else {
#ifdef PSDM_HAVE_LIBURING
            r = run_uring(o, rooms, frame);
#else
            r.mode = "uring";
            r.error = "not built with liburing (install liburing-dev: scripts/deps.sh bench, then re-run cmake)";
#endif
        }
        getrusage(RUSAGE_SELF, &ru1);
        r.wall_s = static_cast<double>(now_mono_us() - w0) / 1e6;
        r.user_s = cpu_of(ru1, true) - cpu_of(ru0, true);
        r.sys_s = cpu_of(ru1, false) - cpu_of(ru0, false);
        if (!r.error.empty()) {
            fprintf(stderr, "psdm_sendfloor[%s]: %s: %s\n", o.label.c_str(), mode, r.error.c_str());
            printf("{\"label\":%s,\"mode\":\"%s\",\"error\":%s}\n", json_str(o.label).c_str(), mode,
                   json_str(r.error).c_str());
            fflush(stdout);
            continue;
        }
        // Every byte at the sink: it kept reading (no buffer filled), and nothing was lost.
        uint64_t want = bytes_before + r.sends * frame.size();
        int64_t until = now_mono_us() + 30000000;
        while (sh->bytes.load() < want && now_mono_us() < until) usleep(1000);
        uint64_t got = sh->bytes.load() - bytes_before;
        double sink_cpu = bench::cpu_seconds_of(sink) - sink0;
        bytes_before = sh->bytes.load();
        double cpu = r.user_s + r.sys_s;
        if (got != r.sends * frame.size() || r.sends != sends_per_mode || r.errors) status = 1;
        printf("{\"label\":%s,\"mode\":\"%s\",\"connections\":%u,\"rooms\":%u,\"rate\":%.3f,\"messages\":%" PRIu64
               ",\"frame_bytes\":%zu,\"batch\":%u,\"sends\":%" PRIu64 ",\"submits\":%" PRIu64
               ",\"short_sends\":%" PRIu64 ",\"errors\":%" PRIu64
               ",\"user_s\":%.4f,\"sys_s\":%.4f,\"cpu_s\":%.4f,\"wall_s\":%.3f,"
               "\"sends_per_cpu_s\":%.1f,\"us_per_send\":%.3f,\"sends_per_s\":%.1f,"
               "\"sink_bytes\":%" PRIu64 ",\"expected_bytes\":%" PRIu64 ",\"sink_cpu_s\":%.2f}\n",
               json_str(o.label).c_str(), mode, o.connections, o.rooms, o.rate, o.messages, frame.size(),
               std::string(mode) == "uring" ? o.batch : 1u, r.sends, r.submits, r.short_sends, r.errors, r.user_s,
               r.sys_s, cpu, r.wall_s, cpu > 0 ? static_cast<double>(r.sends) / cpu : 0.0,
               r.sends ? cpu * 1e6 / static_cast<double>(r.sends) : 0.0,
               r.wall_s > 0 ? static_cast<double>(r.sends) / r.wall_s : 0.0, got, r.sends * frame.size(), sink_cpu);
        fflush(stdout);
        fprintf(stderr, "psdm_sendfloor[%s]: %s: %" PRIu64 " sends in %.3f s of CPU (%.2f us each), %s\n",
                o.label.c_str(), mode, r.sends, cpu, r.sends ? cpu * 1e6 / static_cast<double>(r.sends) : 0.0,
                got == r.sends * frame.size() ? "all received" : "NOT all received");
    }
    close(ctl[1]);  // the sink's signal to stop
    for (int fd : fds) {
        linger lg{1, 0};  // reset: no TIME_WAIT left behind over many runs
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(fd);
    }
    int ws_status;
    waitpid(sink, &ws_status, 0);
    return status;
}

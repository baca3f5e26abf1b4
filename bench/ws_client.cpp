// The WebSocket client core of the load generators: see ws_client.h.
#include "ws_client.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>

#include "bench_util.h"

namespace ws {

// ------------------------------------------------------------------------ connecting

int new_socket() {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

bool start_connect(int ep, int fd, uint32_t src_host, const sockaddr_in &dst, uint64_t tag) {
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl((127u << 24) | (1u + src_host));
    if (bind(fd, reinterpret_cast<sockaddr *>(&src), sizeof src) != 0 ||
        (connect(fd, reinterpret_cast<const sockaddr *>(&dst), sizeof dst) != 0 && errno != EINPROGRESS))
        return false;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.u64 = tag;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    return true;
}

Connect connect_result(int fd, uint32_t events) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return Connect::pending;
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    return err == 0 ? Connect::connected : Connect::failed;
}

void want_writable(int ep, int fd, uint64_t tag, bool want, bool *have) {
    if (fd < 0 || *have == want) return;
    epoll_event ev{};
    ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
    ev.data.u64 = tag;
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
    *have = want;
}

// ------------------------------------------------------------------------ plain I/O

Rx recv_some(int fd, char *buf, size_t cap, size_t *n) {
    ssize_t r = recv(fd, buf, cap, 0);
    if (r > 0) {
        *n = static_cast<size_t>(r);
        return Rx::data;
    }
    *n = 0;
    if (r == 0) return Rx::eof;
    if (errno == EAGAIN || errno == EINTR) return Rx::again;
    return errno == ECONNRESET ? Rx::reset : Rx::error;
}

ssize_t send_some(int fd, const char *p, size_t n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w >= 0) return w;
    return errno == EAGAIN || errno == EINTR ? 0 : -1;
}

// ------------------------------------------------------------------------ the upgrade

std::string new_key(std::mt19937_64 &rng) {
    unsigned char k[16];
    for (auto &b : k) b = static_cast<unsigned char>(rng());
    return bench::base64(k, sizeof k);
}

std::string upgrade_request(const std::string &path, const std::string &host, unsigned port, const std::string &key) {
    return "GET " + path + "?EIO=4&transport=websocket HTTP/1.1\r\nHost: " + host + ":" + std::to_string(port) +
           "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
           "\r\nSec-WebSocket-Version: 13\r\n\r\n";
}

namespace {

// SHA-1 (FIPS 180-4) of msg: only to check the server's Sec-WebSocket-Accept.
std::array<unsigned char, 20> sha1(std::string_view msg) {
    uint32_t h[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
    std::string m(msg);
    uint64_t bits = static_cast<uint64_t>(msg.size()) * 8;
    m += static_cast<char>(0x80);
    while (m.size() % 64 != 56) m += '\0';
    for (int i = 7; i >= 0; i--) m += static_cast<char>((bits >> (8 * i)) & 0xff);
    auto rol = [](uint32_t x, int n) { return (x << n) | (x >> (32 - n)); };
    for (size_t off = 0; off < m.size(); off += 64) {
        uint32_t w[80];
        for (int i = 0; i < 16; i++) {
            const auto *p = reinterpret_cast<const unsigned char *>(m.data() + off + 4 * static_cast<size_t>(i));
            w[i] = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
        }
        for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; i++) {
            uint32_t f, k;
            if (i < 20) f = (b & c) | (~b & d), k = 0x5A827999u;
            else if (i < 40) f = b ^ c ^ d, k = 0x6ED9EBA1u;
            else if (i < 60) f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDCu;
            else f = b ^ c ^ d, k = 0xCA62C1D6u;
            uint32_t t = rol(a, 5) + f + e + k + w[i];
            e = d, d = c, c = rol(b, 30), b = a, a = t;
        }
        h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
    }
    std::array<unsigned char, 20> out;
    for (size_t i = 0; i < 20; i++) out[i] = static_cast<unsigned char>(h[i / 4] >> (24 - 8 * (i % 4)));
    return out;
}

}  // namespace

std::string accept_for(const std::string &key) {
    auto d = sha1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    return bench::base64(d.data(), d.size());
}

Answer read_answer(std::string_view in, const std::string &key) {
    Answer a;
    size_t end = in.find("\r\n\r\n");
    if (end == std::string_view::npos) {
        a.oversized = in.size() > 16384;
        return a;
    }
    a.complete = true;
    a.head_len = end + 4;
    std::string_view head = in.substr(0, end + 2);  // each header line ends with CRLF
    if (head.size() > 12 && head.substr(0, 5) == "HTTP/") {
        size_t i = head.find(' ');
        while (i < head.size() && head[i] == ' ') i++;
        for (; i < head.size() && head[i] >= '0' && head[i] <= '9'; i++)
            a.status = a.status * 10 + static_cast<unsigned>(head[i] - '0');
    }
    std::string_view accept;
    a.accepted = a.status == 101 && bench::header_value(head, "sec-websocket-accept", &accept) &&
                 accept == accept_for(key);
    return a;
}

// ------------------------------------------------------------------------ frames

void append_frame(std::string *out, unsigned opcode, std::string_view payload, uint32_t mask) {
    size_t n = payload.size();
    out->reserve(out->size() + n + 14);
    *out += static_cast<char>(0x80 | opcode);
    if (n < 126) {
        *out += static_cast<char>(0x80 | n);
    } else if (n <= 0xffff) {
        *out += static_cast<char>(0x80 | 126);
        *out += static_cast<char>((n >> 8) & 0xff);
        *out += static_cast<char>(n & 0xff);
    } else {
        *out += static_cast<char>(0x80 | 127);
        for (int i = 7; i >= 0; i--) *out += static_cast<char>((static_cast<uint64_t>(n) >> (8 * i)) & 0xff);
    }
    const char m[4] = {static_cast<char>(mask), static_cast<char>(mask >> 8), static_cast<char>(mask >> 16),
                       static_cast<char>(mask >> 24)};
    out->append(m, 4);
    for (size_t i = 0; i < n; i++) *out += static_cast<char>(payload[i] ^ m[i & 3]);
}

int close_code(std::string_view payload) {
    if (payload.size() < 2) return 0;
    return (static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]);
}

// ------------------------------------------------------------------------ Engine.IO / Socket.IO

std::string pong_for(std::string_view t) {
    std::string pong(t);
    pong[0] = kEioPong;
    return pong;
}

bool sio_packet(std::string_view t, std::string_view prefix, char *type, std::string_view *rest) {
    if (t.size() < 2 || t[0] != kEioMessage) return false;
    std::string_view r = t.substr(2);
    if (r.substr(0, prefix.size()) != prefix) return false;  // another namespace
    *type = t[1];
    *rest = r.substr(prefix.size());
    return true;
}

}  // namespace ws

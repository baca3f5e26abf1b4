// The WebSocket client core both load generators (loadgen.cpp, wsbench.cpp) share: the
// non-blocking connect from a loopback source address, the upgrade request and the check
// of its 101 answer, server frame decoding, masked client frames, and the Engine.IO v4 /
// Socket.IO packets they exchange. Plain sockets only: the callers own their connection
// state machines and epoll loops, and wsbench puts its TLS (OpenSSL) on top of these
// pieces; nothing here needs OpenSSL. Library psdm_bench_ws (bench/CMakeLists.txt).
#pragma once

#include <netinet/in.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>

namespace ws {

// ------------------------------------------------------------------------ connecting

// A non-blocking, close-on-exec TCP socket with TCP_NODELAY and IP_BIND_ADDRESS_NO_PORT
// (a source address without reserving an ephemeral port at bind time); -1 when this
// process is out of file descriptors.
int new_socket();

// Binds fd to 127.0.0.(1 + src_host), starts connect() to dst (bench::loopback_address)
// and adds fd to epoll `ep` for EPOLLIN | EPOLLOUT with data `tag` (writable: the
// connect finished). False when bind or connect failed at once; fd stays open either way
// (the caller closes it).
bool start_connect(int ep, int fd, uint32_t src_host, const sockaddr_in &dst, uint64_t tag);

// Outcome of a connect() in progress, given the epoll events of its socket: not yet
// (no EPOLLOUT/ERR/HUP), connected, or failed (SO_ERROR set).
enum class Connect { pending, connected, failed };
Connect connect_result(int fd, uint32_t events);

// Sets fd's epoll interest to EPOLLIN, plus EPOLLOUT when `want`; does nothing when *have
// already says so (or fd < 0) and records the new state in *have.
void want_writable(int ep, int fd, uint64_t tag, bool want, bool *have);

// ------------------------------------------------------------------------ plain I/O

// What one recv() on a non-blocking socket gave: bytes, nothing now, the end (FIN),
// a reset (RST) or another error.
enum class Rx { data, again, eof, reset, error };
Rx recv_some(int fd, char *buf, size_t cap, size_t *n);

// Sends what the socket takes now of p[0..n): the bytes sent (0 when it would block), or
// -1 when the connection is broken.
ssize_t send_some(int fd, const char *p, size_t n);

// ------------------------------------------------------------------------ the upgrade

// A fresh Sec-WebSocket-Key: 16 random bytes, base64.
std::string new_key(std::mt19937_64 &rng);

// The upgrade request for the Engine.IO v4 websocket transport at `path` (ends with
// '/'): GET path?EIO=4&transport=websocket, Host host:port, the key, version 13.
std::string upgrade_request(const std::string &path, const std::string &host, unsigned port, const std::string &key);

// The Sec-WebSocket-Accept a server must answer `key` with (SHA-1 + base64, RFC 6455).
std::string accept_for(const std::string &key);

// The server's answer to the upgrade request, read from the start of what it sent.
struct Answer {
    bool complete = false;   // its head (up to the blank line) is in; the fields below are set
    bool oversized = false;  // not complete within 16 KiB: a protocol error
    unsigned status = 0;     // the HTTP status; 0 when the first line is not an HTTP status line
    bool accepted = false;   // status 101 with the Sec-WebSocket-Accept that `key` asks for
    size_t head_len = 0;     // bytes of the head, blank line included: the frames start there
};
Answer read_answer(std::string_view in, const std::string &key);

// ------------------------------------------------------------------------ frames

enum : unsigned { kOpContinuation = 0x0, kOpText = 0x1, kOpClose = 0x8, kOpPing = 0x9, kOpPong = 0xA };

// One complete server frame; payload points into the buffer being decoded.
struct Frame {
    unsigned opcode = 0;
    bool fin = false;
    std::string_view payload;
};

// Why decode_frames stopped before the end of the complete frames: none, a masked frame
// (servers never mask) or a payload longer than the caller's limit.
enum class FrameError { none, masked, too_long };

// Decodes the server frames at the start of p[0..n), of any length and split anywhere
// across reads: calls on_frame(const Frame &) for each complete one while it returns true
// (it returns false once the connection is closed: p may be gone then). Returns the bytes
// of the frames handed over; an incomplete frame at the end is left for the next read. A
// bad frame stops the decoding with *err set (the frames before it were handed over).
template <class OnFrame>
size_t decode_frames(const char *p, size_t n, uint64_t max_payload, FrameError *err, OnFrame &&on_frame) {
    size_t off = 0;
    *err = FrameError::none;
    while (n - off >= 2) {
        auto b0 = static_cast<unsigned char>(p[off]), b1 = static_cast<unsigned char>(p[off + 1]);
        if (b1 & 0x80) {
            *err = FrameError::masked;
            return off;
        }
        uint64_t len = b1 & 0x7f;
        size_t hdr = 2;
        if (len == 126) {
            if (n - off < 4) break;
            len = (uint64_t{static_cast<unsigned char>(p[off + 2])} << 8) | static_cast<unsigned char>(p[off + 3]);
            hdr = 4;
        } else if (len == 127) {
            if (n - off < 10) break;
            len = 0;
            for (size_t i = 0; i < 8; i++) len = (len << 8) | static_cast<unsigned char>(p[off + 2 + i]);
            hdr = 10;
        }
        if (len > max_payload) {
            *err = FrameError::too_long;
            return off;
        }
        if (n - off - hdr < len) break;
        Frame f;
        f.opcode = b0 & 0x0f;
        f.fin = (b0 & 0x80) != 0;
        f.payload = std::string_view(p + off + hdr, static_cast<size_t>(len));
        off += hdr + static_cast<size_t>(len);
        if (!on_frame(f)) break;
    }
    return off;
}

// Appends one client frame (FIN set, masked with `mask`, low byte first) to *out.
void append_frame(std::string *out, unsigned opcode, std::string_view payload, uint32_t mask);

// The close code of a close frame's payload; 0 when it carries none.
int close_code(std::string_view payload);

// ------------------------------------------------------------------------ Engine.IO / Socket.IO

// Engine.IO v4 packet types: the first character of a text frame.
constexpr char kEioOpen = '0', kEioClose = '1', kEioPing = '2', kEioPong = '3', kEioMessage = '4';
// Socket.IO packet types: the character after kEioMessage.
constexpr char kSioConnect = '0', kSioDisconnect = '1', kSioEvent = '2', kSioAck = '3', kSioConnectError = '4';

// The Engine.IO open packet: "0{...}" (the handshake's JSON).
inline bool is_open(std::string_view t) { return t.size() >= 2 && t[0] == kEioOpen && t[1] == '{'; }

// The pong that answers Engine.IO ping `t` ("2" + data): "3" + the same data.
std::string pong_for(std::string_view t);

// "NS," for namespace NS: what Socket.IO packets of that namespace carry after their type.
inline std::string ns_prefix(const std::string &ns) { return ns + ","; }

// The Socket.IO connect packet for the namespace of `prefix` (from ns_prefix).
inline std::string connect_packet(const std::string &prefix) { return std::string{kEioMessage, kSioConnect} + prefix; }

// A Socket.IO packet of the namespace of `prefix` in text frame `t`: true with its type
// (kSio*) and what follows the prefix; false for anything else (Engine.IO packets,
// other namespaces).
bool sio_packet(std::string_view t, std::string_view prefix, char *type, std::string_view *rest);

}  // namespace ws

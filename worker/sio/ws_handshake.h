// The WebSocket opening handshake (RFC 6455 section 4) as this server takes it, and the HTTP
// answer it gives instead when it does not: pure functions, bytes in, verdict out; no lws, no
// logging (the caller logs the verdict's reason once).
//
// Both ways a connection arrives take the same path: the direct `listen` port reads each
// request head from the socket (server/direct_acceptor), the handoff rebuilds it from
// Apache's request (server/handoff_server); then parse_request_head, check_upgrade, and
// either the refusal (http_answer_bytes) or the 101 (ws_accept_answer_bytes), written by
// the worker itself: lws never parses HTTP here, it carries the connection as a raw socket
// and sio/ws_reader.h reads its frames.
//
// What is accepted: GET <path ending in /socket.io/ or /socket.io>?EIO=3|4&transport=websocket
// over HTTP/1.1, with Upgrade: websocket, a Connection list holding "upgrade", a Host,
// Sec-WebSocket-Version 13 and a Sec-WebSocket-Key of 16 bytes in base64; a
// Sec-WebSocket-Protocol, if sent, must offer kSocketIoSubprotocol (see check_upgrade).
// Everything else gets one status with a one-line body:
//   404  the path is not a Socket.IO path                    {"code":0,"message":"Not found"}
//   400  the Engine.IO query is wrong (parse_handshake_query) {"code":N,"message":"..."}
//   400  a Socket.IO request that is not a WebSocket upgrade  {"code":3,"message":"Bad request"}
//   400  a WebSocket upgrade that breaks RFC 6455 (method, HTTP version, Connection, Host, key,
//        subprotocol), or a request head that is not HTTP/1.x  text/plain
//   414  a request line longer than kMaxRequestLine            text/plain
//   426  Sec-WebSocket-Version other than 13 (or none), with Sec-WebSocket-Version: 13
//   431  a request head longer than kMaxRequestHead            text/plain
//   503  (the caller's capacity refusal: http_refusal_at_capacity) with Retry-After
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "sio/sio_codec.h"

namespace psdm {

// Longest request line (method, target, version; CRLF excluded) the direct port reads.
constexpr size_t kMaxRequestLine = 2048;
// Longest request head (request line and header lines, final empty line included).
constexpr size_t kMaxRequestHead = 4096;
// The only WebSocket subprotocol served. Names starting with kInternalProtocolPrefix are
// reserved for the worker: a client may not ask for any other of them.
constexpr std::string_view kSocketIoSubprotocol = "psdm-socketio";
constexpr std::string_view kInternalProtocolPrefix = "psdm-";
// Seconds a client is told to wait after a 503 (Retry-After), as handoff_proto.h's refusal.
constexpr unsigned kRetryAfterSecs = 5;

// The parts of a request the rules look at: views into the caller's bytes. An absent header
// is nullopt.
struct UpgradeRequest {
    std::string_view method;
    std::string_view http_version;  // "HTTP/1.1"
    std::string_view path;          // the target up to '?'
    std::string_view query;         // after '?' (without it), "" when none
    std::optional<std::string_view> host, upgrade, connection, key, version, protocol;
};

// A verdict: accepted (status 0; `version` is the Engine.IO version asked for), or the HTTP
// answer to give and why (`reason`, one line for the log).
struct HttpAnswer {
    unsigned status = 0;
    std::string reason;
    EioVersion version = EioVersion::v4;
    std::string headers;       // extra header lines, each with its CRLF
    std::string content_type;  // "application/json" or "text/plain"
    std::string body;          // one line
    bool accepted() const { return status == 0; }
};

// True for a path ending in /socket.io/ or /socket.io (the prefix is the application's).
bool socketio_path_ok(std::string_view path);

// True if `key` is the base64 of 16 bytes: 22 characters of the base64 alphabet then "=="
// (RFC 6455 section 4.1 item 7; as the npm ws server, the 4 unused bits are not checked).
bool ws_key_ok(std::string_view key);

// The rules above, in this order: path (404), Engine.IO query (400 JSON), Upgrade header (400
// JSON code 3), method, HTTP version, Connection, Host (400), version (426), key (400),
// subprotocol (400: every comma-separated entry must be a [A-Za-z0-9._-] token, and the first
// one starting with kInternalProtocolPrefix must be kSocketIoSubprotocol). Capacity is the
// caller's.
HttpAnswer check_upgrade(const UpgradeRequest &r);

// The refusal of a valid upgrade when the worker serves max_connections already.
HttpAnswer http_refusal_at_capacity(size_t connections);

// A request head read from a socket so far.
struct RequestHead {
    enum class State {
        incomplete,  // no empty line yet, and within the limits: read more
        complete,    // `request` and `length` are set
        refused,     // `refusal` is set (400, 414 or 431)
    } state = State::incomplete;
    size_t length = 0;  // bytes of the head, its final empty line included
    UpgradeRequest request;
    HttpAnswer refusal;
};

// Parses the head at the start of `bytes` (HTTP/1.x, RFC 9112): request line
// "METHOD SP origin-form-target SP HTTP/1.x", then "Name: value" lines, each ending in CRLF
// (a bare CR or LF is refused), no folded lines, no control bytes but tab in values, no
// repeated Host, Upgrade, Connection or Sec-WebSocket-* header. Header names are
// case-insensitive. Bytes after the head (early data) are not looked at. The views in the
// result point into `bytes`.
RequestHead parse_request_head(std::string_view bytes);

// Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 section 4.2.2): the base64 of the
// SHA-1 of the key followed by the protocol's GUID.
std::string ws_accept_value(std::string_view key);

// The 101 answer to an upgrade that passed check_upgrade: Upgrade, Connection,
// Sec-WebSocket-Accept, and Sec-WebSocket-Protocol: kSocketIoSubprotocol when the client
// offered subprotocols (check_upgrade accepts a list only when it offers that one).
std::string ws_accept_answer_bytes(const UpgradeRequest &r);

// The bytes of an HTTP/1.1 answer that ends its connection: status line, `headers` (each with
// its CRLF), Content-Type, Content-Length, Connection: close (426: "Upgrade, close", since it
// names Upgrade), then the body unless `head_only` (HEAD: the length is the body's all the
// same). The worker's every non-101 answer, on the WebSocket and the admin ports.
std::string http_response_bytes(unsigned status, std::string_view headers, std::string_view content_type,
                                std::string_view body, bool head_only = false);

// The bytes of a refusal (http_response_bytes of its fields): text bodies end with a
// newline, JSON ones as Engine.IO sends them. `a` must not be accepted.
std::string http_answer_bytes(const HttpAnswer &a);

}  // namespace psdm

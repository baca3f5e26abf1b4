// Engine.IO / Socket.IO wire codec: pure functions, bytes in, result out.
// No sockets, no allocation ownership games, no logging: the caller logs once at its boundary.
//
// Two protocol generations are spoken, selected by the EIO query parameter of the handshake:
//   EioVersion::v3  Engine.IO v3 + Socket.IO protocol v4  (socket.io-client 2.x, Flask-SocketIO 4)
//   EioVersion::v4  Engine.IO v4 + Socket.IO protocol v5  (socket.io-client 3.x / 4.x)
// Only the websocket transport exists here: one websocket text frame = one Engine.IO packet.
//
// Decoders are total: any byte sequence yields a result, never a crash or an out-of-bounds read.
// Returned string_views point into the caller's input and live as long as it does.
//
// JSON is strict JSON as base/json.h defines it (json_valid: RFC 8259, valid UTF-8); this
// header also brings in base/json.h's json_escape_string, used by every encoder below.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/json.h"

namespace psdm {

enum class EioVersion { v3 = 3, v4 = 4 };

// ---- Handshake ----------------------------------------------------------------------------

// Result of parse_handshake_query. When ok, `version` is set and `error` is empty; otherwise
// `error` is the message for the HTTP 400 answer and `code` the Engine.IO error code
// (0 transport unknown, 1 session id unknown, 5 unsupported protocol version), so the caller can
// answer {"code":<code>,"message":"<error>"} like an Engine.IO server does.
struct HandshakeQuery {
    bool ok = false;
    EioVersion version = EioVersion::v4;
    std::string error;
    int code = -1;
};

// Parses the request query string, e.g. "EIO=4&transport=websocket&t=N8x" (a leading '?' is
// tolerated). Checks, in this order:
//   transport missing or != "websocket"  -> "transport unknown"            (code 0)
//   EIO missing or not exactly "3"/"4"   -> "unsupported protocol version" (code 5)
//   a "sid" parameter is present         -> "session id unknown"           (code 1)
//     (a sid on a websocket request means an upgrade from long-polling, which this server never
//      offers, so no such session can exist)
// When a key repeats, its first occurrence counts. Values are compared raw (no %-decoding).
HandshakeQuery parse_handshake_query(std::string_view query);

// ---- Engine.IO packets ----------------------------------------------------------------------

enum class EioType { open = 0, close, ping, pong, message, upgrade, noop };

struct EioPacket {
    EioType type;
    std::string_view data;  // everything after the type character; may be empty
};

// One websocket text frame -> Engine.IO packet. nullopt if the frame is empty or its first
// character is not '0'..'6'.
std::optional<EioPacket> eio_decode(std::string_view frame);

// The open packet the server sends first:
//   v4: 0{"sid":"<sid>","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}
//   v3: 0{"sid":"<sid>","upgrades":[],"pingInterval":25000,"pingTimeout":20000}
// sid is JSON-escaped.
std::string eio_encode_open(EioVersion v, std::string_view sid, unsigned ping_interval_ms, unsigned ping_timeout_ms,
                            size_t max_payload);

// ---- Socket.IO packets ----------------------------------------------------------------------

enum class SioType { connect = 0, disconnect, event, ack, connect_error, binary_event, binary_ack };

// A decoded Socket.IO packet (the data of an Engine.IO message packet):
//   <type digit>[<attachments>-][<nsp>,][<ack id>][<json>]
// The data is parsed once, by sio_decode; the packet owns the tree (move-only). `event` and
// `args` point into `json` and live as long as it does.
struct SioPacket {
    SioType type = SioType::connect;
    std::string nsp = "/";           // "/" when absent; a "?query" suffix (v3 clients) is stripped
    std::optional<uint64_t> ack_id;  // present when the packet carries an ack id
    std::string_view data;           // raw JSON text (points into the payload), may be empty
    JsonPtr json;                    // data parsed (json_parse_strict); null when data is empty
    // event only (empty / null otherwise): the event name, i.e. the array's first element as
    // cJSON decoded it (escapes resolved; cut at a "\u0000"), and the first argument after it,
    // the others following through ->next (null when the event has no argument).
    std::string_view event;
    const cJSON *args = nullptr;
};

// Why sio_decode rejected a payload.
//   empty               the payload is empty
//   bad_type            first character is not '0'..'6'
//   binary_unsupported  binary_event / binary_ack (this server has no binary attachments)
//   bad_namespace       namespace longer than kSioMaxNamespace bytes or containing control bytes
//   bad_ack_id          ack id overflows uint64_t, or an ack packet without an ack id
//   bad_json            data is not one strict JSON value (json_parse_strict fails: trailing
//                       bytes, a BOM, invalid UTF-8, "01", nesting > kJsonMaxDepth levels,
//                       a number cJSON cannot hold, ...) or not the shape the packet type
//                       requires:
//                         connect        absent or an object (v4 auth)
//                         disconnect     absent
//                         event          a non-empty array whose first element is a string
//                         ack            an array
//                         connect_error  an object or a string
enum class SioDecodeError { none, empty, bad_type, binary_unsupported, bad_namespace, bad_ack_id, bad_json };

constexpr size_t kSioMaxNamespace = 256;

// Decodes `payload` into *out (out must not be null). Returns none on success; on any error
// *out is left in an unspecified but valid state. `out->data` points into `payload`; the JSON
// is validated and parsed exactly once, into out->json (and out->event / out->args).
SioDecodeError sio_decode(std::string_view payload, SioPacket *out);

// Stable lower-case name of an error ("none", "empty", "bad_type", ...), for logs and close
// reasons. Never null.
const char *sio_decode_error_name(SioDecodeError e);

// Encoders return the complete websocket text frame INCLUDING the Engine.IO '4' prefix.
// Namespace "/" is written without "<nsp>,"; any other nsp is written verbatim followed by ','.

// Connect acknowledgement.
//   v4: 40/psdm_ws,{"sid":"X"}   ("/": 40{"sid":"X"})
//   v3: 40/psdm_ws,              ("/": 40)
std::string sio_encode_connect_ack(EioVersion v, std::string_view nsp, std::string_view sid);

// Refused namespace connection.
//   v4: 44/nsp,{"message":"Invalid namespace"}
//   v3: 44/nsp,"Invalid namespace"
std::string sio_encode_connect_error(EioVersion v, std::string_view nsp, std::string_view message);

// Event, identical for v3 and v4: 42/psdm_ws,["psdm_ws_msg",{...}]
// `event` is JSON-escaped; `json_arg` must already be JSON and is inserted verbatim. An empty
// json_arg means "no argument": 42/psdm_ws,["psdm_ws_msg"].
std::string sio_encode_event(std::string_view nsp, std::string_view event, std::string_view json_arg);

// Acknowledgement: 43/psdm_ws,12[...]. `json_args_array` must be a JSON array and is inserted
// verbatim; empty means "[]".
std::string sio_encode_ack(std::string_view nsp, uint64_t ack_id, std::string_view json_args_array);

}  // namespace psdm

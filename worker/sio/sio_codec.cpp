// Engine.IO / Socket.IO wire codec. See sio_codec.h for the contracts.
//
// References (read, not copied):
//   Engine.IO protocol v3/v4   https://github.com/socketio/engine.io-protocol
//   Socket.IO protocol v4/v5   https://github.com/socketio/socket.io-protocol
#include "sio/sio_codec.h"

#include <cjson/cJSON.h>

#include <memory>

namespace psdm {

namespace {

struct CjsonDeleter {
  void operator()(cJSON *p) const { cJSON_Delete(p); }
};
using CjsonPtr = std::unique_ptr<cJSON, CjsonDeleter>;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// RFC 8259 forbids raw control bytes inside strings and allows only space, tab, LF and CR
// between tokens; cJSON is laxer on both (it even keeps a raw NUL inside a string, truncating
// it). Returns false if `text` has a control byte where JSON does not allow one.
bool control_bytes_ok(std::string_view text) {
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto u = static_cast<unsigned char>(text[i]);
    if (in_string) {
      if (u < 0x20) return false;
      if (u == '\\') {
        ++i;  // the escaped byte; a control byte there is invalid too
        if (i < text.size() && static_cast<unsigned char>(text[i]) < 0x20) return false;
      } else if (u == '"') {
        in_string = false;
      }
    } else if (u == '"') {
      in_string = true;
    } else if (u < 0x20 && u != '\t' && u != '\n' && u != '\r') {
      return false;
    }
  }
  return true;
}

// Parses `text` as exactly one JSON value (surrounding whitespace allowed). Returns null if it
// is not. The text is copied so cJSON always sees a NUL-terminated buffer: older cJSON releases
// can read one byte past a length-delimited buffer on unterminated strings.
CjsonPtr parse_json_exact(std::string_view text) {
  if (!control_bytes_ok(text)) return nullptr;
  const std::string copy(text);
  const char *end = nullptr;
  CjsonPtr root(cJSON_ParseWithLengthOpts(copy.c_str(), copy.size(), &end, 0));
  if (!root || end == nullptr) return nullptr;
  const char *const limit = copy.c_str() + copy.size();
  while (end < limit && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) ++end;
  if (end != limit) return nullptr;  // trailing bytes (including an embedded NUL)
  return root;
}

// Checks the shape the packet type requires of its data (see SioDecodeError in the header).
bool payload_shape_ok(SioType type, std::string_view data) {
  if (data.empty()) return type == SioType::connect || type == SioType::disconnect;
  if (type == SioType::disconnect) return false;
  const CjsonPtr root = parse_json_exact(data);
  if (!root) return false;
  switch (type) {
    case SioType::connect:
      return cJSON_IsObject(root.get());
    case SioType::event: {
      if (!cJSON_IsArray(root.get())) return false;
      const cJSON *first = root->child;
      return first != nullptr && cJSON_IsString(first);
    }
    case SioType::ack:
      return cJSON_IsArray(root.get());
    case SioType::connect_error:
      return cJSON_IsObject(root.get()) || cJSON_IsString(root.get());
    default:
      return false;
  }
}

bool namespace_ok(std::string_view nsp) {
  if (nsp.empty() || nsp.size() > kSioMaxNamespace || nsp[0] != '/') return false;
  for (char c : nsp) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return false;
  }
  return true;
}

// "42" or "42/nsp," — the common prefix of every Socket.IO frame we send.
void append_prefix(std::string &out, char sio_type, std::string_view nsp) {
  out += '4';
  out += sio_type;
  if (!nsp.empty() && nsp != "/") {
    out.append(nsp);
    out += ',';
  }
}

// Length of the valid UTF-8 sequence starting at s[i], or 0 if the bytes there are not one.
size_t utf8_sequence_length(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return 1;
  size_t len = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    len = 2;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    len = 3;
    if (b0 == 0xe0) lo = 0xa0;   // no overlong forms
    if (b0 == 0xed) hi = 0x9f;   // no UTF-16 surrogates
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    len = 4;
    if (b0 == 0xf0) lo = 0x90;   // no overlong forms
    if (b0 == 0xf4) hi = 0x8f;   // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (s.size() - i < len) return 0;
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf)) return 0;
  }
  return len;
}

}  // namespace

// ---- Handshake ----------------------------------------------------------------------------

HandshakeQuery parse_handshake_query(std::string_view query) {
  if (!query.empty() && query[0] == '?') query.remove_prefix(1);
  std::optional<std::string_view> eio, transport;
  bool has_sid = false;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    const std::string_view key = pair.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    if (key == "EIO") {
      if (!eio) eio = value;
    } else if (key == "transport") {
      if (!transport) transport = value;
    } else if (key == "sid") {
      has_sid = true;
    }
  }
  HandshakeQuery r;
  if (!transport || *transport != "websocket") {
    r.error = "transport unknown";
    r.code = 0;
  } else if (!eio || (*eio != "3" && *eio != "4")) {
    r.error = "unsupported protocol version";
    r.code = 5;
  } else if (has_sid) {
    r.error = "session id unknown";
    r.code = 1;
  } else {
    r.ok = true;
    r.version = *eio == "3" ? EioVersion::v3 : EioVersion::v4;
  }
  return r;
}

// ---- Engine.IO ------------------------------------------------------------------------------

std::optional<EioPacket> eio_decode(std::string_view frame) {
  if (frame.empty() || frame[0] < '0' || frame[0] > '6') return std::nullopt;
  return EioPacket{static_cast<EioType>(frame[0] - '0'), frame.substr(1)};
}

std::string eio_encode_open(EioVersion v, std::string_view sid, unsigned ping_interval_ms,
                            unsigned ping_timeout_ms, size_t max_payload) {
  std::string out = "0{\"sid\":";
  out += json_escape_string(sid);
  out += ",\"upgrades\":[],\"pingInterval\":";
  out += std::to_string(ping_interval_ms);
  out += ",\"pingTimeout\":";
  out += std::to_string(ping_timeout_ms);
  if (v == EioVersion::v4) {
    out += ",\"maxPayload\":";
    out += std::to_string(max_payload);
  }
  out += '}';
  return out;
}

// ---- Socket.IO decoding ---------------------------------------------------------------------

SioDecodeError sio_decode(std::string_view payload, SioPacket *out) {
  if (payload.empty()) return SioDecodeError::empty;
  if (payload[0] < '0' || payload[0] > '6') return SioDecodeError::bad_type;
  out->type = static_cast<SioType>(payload[0] - '0');
  out->nsp = "/";
  out->ack_id.reset();
  out->data = std::string_view();
  if (out->type == SioType::binary_event || out->type == SioType::binary_ack) {
    return SioDecodeError::binary_unsupported;
  }
  size_t pos = 1;

  // Namespace: from '/' up to the first ',' (consumed) or the end of the payload.
  if (pos < payload.size() && payload[pos] == '/') {
    const size_t comma = payload.find(',', pos);
    std::string_view nsp = payload.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    pos = comma == std::string_view::npos ? payload.size() : comma + 1;
    const size_t question = nsp.find('?');
    if (question != std::string_view::npos) nsp = nsp.substr(0, question);
    if (!namespace_ok(nsp)) return SioDecodeError::bad_namespace;
    out->nsp.assign(nsp.data(), nsp.size());
  }

  // Ack id: a run of decimal digits, must fit in uint64_t.
  if (pos < payload.size() && is_digit(payload[pos])) {
    uint64_t id = 0;
    while (pos < payload.size() && is_digit(payload[pos])) {
      const auto digit = static_cast<uint64_t>(payload[pos] - '0');
      if (id > (UINT64_MAX - digit) / 10) return SioDecodeError::bad_ack_id;
      id = id * 10 + digit;
      ++pos;
    }
    out->ack_id = id;
  }
  if (out->type == SioType::ack && !out->ack_id) return SioDecodeError::bad_ack_id;

  out->data = payload.substr(pos);
  if (!payload_shape_ok(out->type, out->data)) return SioDecodeError::bad_json;
  return SioDecodeError::none;
}

const char *sio_decode_error_name(SioDecodeError e) {
  switch (e) {
    case SioDecodeError::none: return "none";
    case SioDecodeError::empty: return "empty";
    case SioDecodeError::bad_type: return "bad_type";
    case SioDecodeError::binary_unsupported: return "binary_unsupported";
    case SioDecodeError::bad_namespace: return "bad_namespace";
    case SioDecodeError::bad_ack_id: return "bad_ack_id";
    case SioDecodeError::bad_json: return "bad_json";
  }
  return "unknown";
}

// ---- Socket.IO encoding ---------------------------------------------------------------------

std::string sio_encode_connect_ack(EioVersion v, std::string_view nsp, std::string_view sid) {
  std::string out;
  append_prefix(out, '0', nsp);
  if (v == EioVersion::v4) {
    out += "{\"sid\":";
    out += json_escape_string(sid);
    out += '}';
  }
  return out;
}

std::string sio_encode_connect_error(EioVersion v, std::string_view nsp, std::string_view message) {
  std::string out;
  append_prefix(out, '4', nsp);
  if (v == EioVersion::v4) {
    out += "{\"message\":";
    out += json_escape_string(message);
    out += '}';
  } else {
    out += json_escape_string(message);
  }
  return out;
}

std::string sio_encode_event(std::string_view nsp, std::string_view event, std::string_view json_arg) {
  std::string out;
  out.reserve(8 + nsp.size() + event.size() + json_arg.size());
  append_prefix(out, '2', nsp);
  out += '[';
  out += json_escape_string(event);
  if (!json_arg.empty()) {
    out += ',';
    out.append(json_arg);
  }
  out += ']';
  return out;
}

std::string sio_encode_ack(std::string_view nsp, uint64_t ack_id, std::string_view json_args_array) {
  std::string out;
  append_prefix(out, '3', nsp);
  out += std::to_string(ack_id);
  if (json_args_array.empty()) {
    out += "[]";
  } else {
    out.append(json_args_array);
  }
  return out;
}

std::string json_escape_string(std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80) {
      const size_t len = utf8_sequence_length(s, i);
      if (len == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(s.substr(i, len));
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (u < 0x20 || u == 0x7f) {
          out += "\\u00";
          out += kHex[u >> 4];
          out += kHex[u & 0xf];
        } else {
          out += c;
        }
    }
    ++i;
  }
  out += '"';
  return out;
}

}  // namespace psdm

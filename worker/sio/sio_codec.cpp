// Engine.IO / Socket.IO wire codec. See sio_codec.h for the contracts.
//
// References (read, not copied):
//   Engine.IO protocol v3/v4   https://github.com/socketio/engine.io-protocol
//   Socket.IO protocol v4/v5   https://github.com/socketio/socket.io-protocol
#include "sio/sio_codec.h"

#include <cjson/cJSON.h>

namespace psdm {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Parses out->data (when there is any) and checks the shape the packet type requires of it
// (see SioDecodeError in the header); for an event, also sets out->event and out->args.
bool parse_payload(SioPacket *out) {
    const SioType type = out->type;
    if (out->data.empty()) return type == SioType::connect || type == SioType::disconnect;
    if (type == SioType::disconnect) return false;
    out->json = json_parse_strict(out->data);
    const cJSON *root = out->json.get();
    if (root == nullptr) return false;
    switch (type) {
    case SioType::connect: return cJSON_IsObject(root);
    case SioType::event: {
        if (!cJSON_IsArray(root)) return false;
        const cJSON *name = root->child;
        if (name == nullptr || !cJSON_IsString(name) || name->valuestring == nullptr) return false;
        out->event = name->valuestring;
        out->args = name->next;
        return true;
    }
    case SioType::ack: return cJSON_IsArray(root);
    case SioType::connect_error: return cJSON_IsObject(root) || cJSON_IsString(root);
    default: return false;
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

// {"<key>":<value as a JSON string>}; `key` must need no escaping.
void append_string_member_object(std::string &out, std::string_view key, std::string_view value) {
    out += "{\"";
    out.append(key);
    out += "\":";
    out += json_escape_string(value);
    out += '}';
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

std::string eio_encode_open(EioVersion v, std::string_view sid, unsigned ping_interval_ms, unsigned ping_timeout_ms,
                            size_t max_payload) {
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
    out->json.reset();
    out->event = std::string_view();
    out->args = nullptr;
    if (out->type == SioType::binary_event || out->type == SioType::binary_ack) {
        return SioDecodeError::binary_unsupported;
    }
    size_t pos = 1;

    // Namespace: from '/' up to the first ',' (consumed) or the end of the payload.
    if (pos < payload.size() && payload[pos] == '/') {
        const size_t comma = payload.find(',', pos);
        std::string_view nsp = payload.substr(pos,
                                              comma == std::string_view::npos ? std::string_view::npos : comma - pos);
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
    if (!parse_payload(out)) return SioDecodeError::bad_json;
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
    if (v == EioVersion::v4) append_string_member_object(out, "sid", sid);
    return out;
}

std::string sio_encode_connect_error(EioVersion v, std::string_view nsp, std::string_view message) {
    std::string out;
    append_prefix(out, '4', nsp);
    if (v == EioVersion::v4) {
        append_string_member_object(out, "message", message);
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

}  // namespace psdm

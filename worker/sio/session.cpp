// Per-connection Engine.IO / Socket.IO state machine. See session.h for the contract.
//
// Heartbeat (Engine.IO protocol, "Heartbeat" section):
//   v4: the server sends "2" every pingInterval, the client answers "3"; no pong within
//       pingTimeout closes the session. A client "2" is an invalid heartbeat direction.
//   v3: the client sends "2" every pingInterval, the server answers "3"; no ping within
//       pingInterval + pingTimeout closes the session. A client "3" is an invalid direction.
// Ping timeout closes with 1000: the session ends by protocol rule, the peer did not send bad
// data (1002) and the server is not going away (1001 is kept for shutdown).
#include "sio/session.h"

#include <memory>

#include <cjson/cJSON.h>

#include <limits>
#include <utility>

namespace psdm {

namespace {

// The arguments of an error acknowledgement: [{"error":"<error>"}].
std::string error_args(std::string_view error) {
    std::string args = "[{\"error\":";
    args += json_escape_string(error);
    args += "}]";
    return args;
}

}  // namespace

bool room_name_ok(std::string_view room) {
    if (room.empty() || room.size() > kMaxRoomBytes || room == "." || room == "..") return false;
    for (size_t i = 0; i < room.size(); ++i) {
        const auto b = static_cast<unsigned char>(room[i]);
        if (b < 0x20 || b == 0x7f || b == '/') return false;
        // U+0080..U+009F are 0xC2 0x80..0x9F in UTF-8.
        if (b == 0xc2 && i + 1 < room.size() && static_cast<unsigned char>(room[i + 1]) <= 0x9f) return false;
    }
    return true;
}

Session::Session(EioVersion v, const SessionLimits &limits, std::string sid, int64_t now_ms)
    : version_(v), limits_(limits), sid_(std::move(sid)) {
    next_ping_at_ms_ = now_ms + limits_.ping_interval_ms;
    ping_deadline_ms_ = now_ms + limits_.ping_interval_ms + limits_.ping_timeout_ms;
}

void Session::send(std::string frame, std::vector<SessionAction> &out) {
    SessionAction a;
    a.kind = SessionAction::Kind::send;
    a.text = std::move(frame);
    out.push_back(std::move(a));
}

void Session::close(int code, std::string reason, std::vector<SessionAction> &out) {
    if (closed_) return;
    closed_ = true;
    SessionAction a;
    a.kind = SessionAction::Kind::close;
    a.close_code = code;
    a.reason = std::move(reason);
    out.push_back(std::move(a));
}

void Session::on_open(std::vector<SessionAction> &out) {
    if (closed_) return;
    send(eio_encode_open(version_, sid_, limits_.ping_interval_ms, limits_.ping_timeout_ms, limits_.max_payload), out);
    if (version_ == EioVersion::v3) {
        // Socket.IO v2 servers connect every client to "/" without being asked.
        root_connected_ = true;
        if (limits_.ns == "/") ns_connected_ = true;
        send(sio_encode_connect_ack(version_, "/", sid_), out);
    }
}

void Session::on_tick(int64_t now_ms, std::vector<SessionAction> &out) {
    if (closed_) return;
    if (version_ == EioVersion::v3) {
        if (now_ms >= ping_deadline_ms_) close(kWsCloseNormal, "ping timeout", out);
        return;
    }
    if (awaiting_pong_) {
        if (now_ms >= pong_deadline_ms_) close(kWsCloseNormal, "ping timeout", out);
    } else if (now_ms >= next_ping_at_ms_) {
        send("2", out);
        awaiting_pong_ = true;
        pong_deadline_ms_ = now_ms + limits_.ping_timeout_ms;
    }
}

int64_t Session::next_deadline_ms() const {
    if (closed_) return std::numeric_limits<int64_t>::max();
    if (version_ == EioVersion::v3) return ping_deadline_ms_;
    return awaiting_pong_ ? pong_deadline_ms_ : next_ping_at_ms_;
}

void Session::on_text(std::string_view frame, int64_t now_ms, std::vector<SessionAction> &out) {
    if (closed_) return;
    if (frame.size() > limits_.max_payload) {
        close(kWsCloseTooBig, "frame too large", out);
        return;
    }
    if (!utf8_valid(frame)) {
        close(kWsCloseInvalidPayload, "text frame is not valid UTF-8", out);
        return;
    }
    const std::optional<EioPacket> packet = eio_decode(frame);
    if (!packet) {
        close(kWsCloseProtocolError, "malformed Engine.IO packet", out);
        return;
    }
    switch (packet->type) {
    case EioType::open: close(kWsCloseProtocolError, "unexpected Engine.IO open packet", out); return;
    case EioType::close: close(kWsCloseNormal, "client closed", out); return;
    case EioType::ping: on_ping(packet->data, now_ms, out); return;
    case EioType::pong: on_pong(now_ms, out); return;
    case EioType::message: on_message(packet->data, out); return;
    case EioType::upgrade:
    case EioType::noop: return;  // "5" completes a probe upgrade, "6" is filler: nothing to do
    }
}

void Session::on_ping(std::string_view data, int64_t now_ms, std::vector<SessionAction> &out) {
    if (version_ != EioVersion::v3) {
        close(kWsCloseProtocolError, "invalid heartbeat direction", out);
        return;
    }
    // Echo only the probe marker: arbitrary ping data is not reflected back.
    send(data == "probe" ? "3probe" : "3", out);
    ping_deadline_ms_ = now_ms + limits_.ping_interval_ms + limits_.ping_timeout_ms;
}

void Session::on_pong(int64_t now_ms, std::vector<SessionAction> &out) {
    if (version_ != EioVersion::v4) {
        close(kWsCloseProtocolError, "invalid heartbeat direction", out);
        return;
    }
    if (!awaiting_pong_) return;  // unsolicited pong: harmless, the schedule stays
    awaiting_pong_ = false;
    next_ping_at_ms_ = now_ms + limits_.ping_interval_ms;
}

void Session::on_message(std::string_view payload, std::vector<SessionAction> &out) {
    SioPacket p;
    const SioDecodeError err = sio_decode(payload, &p);
    if (err == SioDecodeError::binary_unsupported) {
        close(kWsCloseUnsupportedData, "unsupported Socket.IO packet: binary", out);
        return;
    }
    if (err != SioDecodeError::none) {
        close(kWsCloseProtocolError, std::string("malformed Socket.IO packet: ") + sio_decode_error_name(err), out);
        return;
    }
    switch (p.type) {
    case SioType::connect: on_connect(p, out); return;
    case SioType::disconnect: on_disconnect(p, out); return;
    case SioType::event: on_event(p, out); return;
    case SioType::ack:            // the server never asks the client for acks
    case SioType::connect_error:  // only servers send it
    case SioType::binary_event:   // rejected by sio_decode
    case SioType::binary_ack: return;
    }
}

void Session::on_connect(const SioPacket &p, std::vector<SessionAction> &out) {
    if (p.nsp == limits_.ns) {
        ns_connected_ = true;
        if (p.nsp == "/") root_connected_ = true;
    } else if (p.nsp == "/") {
        root_connected_ = true;
    } else {
        send(sio_encode_connect_error(version_, p.nsp, "Invalid namespace"), out);
        return;
    }
    send(sio_encode_connect_ack(version_, p.nsp, sid_), out);
}

void Session::on_disconnect(const SioPacket &p, std::vector<SessionAction> &out) {
    if (p.nsp == "/") root_connected_ = false;
    if (p.nsp != limits_.ns || !ns_connected_) return;
    ns_connected_ = false;
    SessionAction a;
    a.kind = SessionAction::Kind::leave_all;
    out.push_back(std::move(a));
}

void Session::send_ack_error(const SioPacket &p, std::string_view error, std::vector<SessionAction> &out) {
    if (!p.ack_id) return;
    send(sio_encode_ack(p.nsp, *p.ack_id, error_args(error)), out);
}

void Session::on_event(const SioPacket &p, std::vector<SessionAction> &out) {
    const bool on_ns = p.nsp == limits_.ns && ns_connected_;
    const bool on_root = p.nsp == "/" && root_connected_;
    if (!on_ns && !on_root) return;  // not connected there: ignored, like a Socket.IO server does
    if (!on_ns) {
        send_ack_error(p, "unknown event", out);  // "/" carries no events
        return;
    }
    // sio_decode parsed the array once: p.event is its first element, p.args what follows.
    const bool join = p.event == "join";
    const bool leave = p.event == "leave";
    if (!join && !leave) {
        send_ack_error(p, "unknown event", out);
        return;
    }
    const cJSON *arg = p.args;
    const bool valid = arg != nullptr && cJSON_IsString(arg) && arg->valuestring != nullptr &&
                       room_name_ok(std::string_view(arg->valuestring));
    on_room_request(join, p, valid ? std::string_view(arg->valuestring) : std::string_view(), valid, out);
    if (join && valid && arg->next && !out.empty() && out.back().kind == SessionAction::Kind::join) {
        // The positions to resume from: passed on as JSON text (the message was max_payload at most).
        std::unique_ptr<char, void (*)(void *)> text(cJSON_PrintUnformatted(arg->next), cJSON_free);
        if (text) out.back().resume = std::string(text.get());
    }
}

void Session::on_room_request(bool join, const SioPacket &p, std::string_view room, bool room_valid,
                              std::vector<SessionAction> &out) {
    if (!room_valid) {
        send_ack_error(p, "invalid room", out);
        return;
    }
    SessionAction a;
    a.kind = join ? SessionAction::Kind::join : SessionAction::Kind::leave;
    a.text.assign(room.data(), room.size());
    a.ack_id = p.ack_id;
    out.push_back(std::move(a));
}

std::string Session::join_ack(uint64_t ack_id, bool allowed, std::string_view room) const {
    if (allowed) return sio_encode_ack(limits_.ns, ack_id, "[]");
    std::string args = "[{\"error\":\"forbidden\",\"room\":";
    args += json_escape_string(room);
    args += "}]";
    return sio_encode_ack(limits_.ns, ack_id, args);
}

std::string Session::error_ack(uint64_t ack_id, std::string_view error) const {
    return sio_encode_ack(limits_.ns, ack_id, error_args(error));
}

std::string Session::leave_ack(uint64_t ack_id) const { return sio_encode_ack(limits_.ns, ack_id, "[]"); }

std::string Session::ack(uint64_t ack_id, std::string_view json_args_array) const {
    return sio_encode_ack(limits_.ns, ack_id, json_args_array);
}

}  // namespace psdm

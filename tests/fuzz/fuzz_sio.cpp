// libFuzzer target for the Engine.IO / Socket.IO codec, the session state machine and
// WebSocket message reassembly by WsReader (worker/sio/). Built by CMake with -DPSDM_FUZZ=ON; run with
// `make fuzz` (README, "Fuzzing").
//
// Input layout: byte 0 selects the protocol version and how messages are cut into fragments
// for WsReader (the reassembly in front of the Session); the rest is split on '\n' into text
// frames fed to one Session (each frame also goes through the bare decoders). Frames advance a
// fake clock so heartbeat paths run too.
// Checks, beyond the sanitizers: the decoder parses once (tree present exactly with data, an
// event's name and arguments inside it); reassembly gives the frame back or too_big; every
// frame the Session sends is a well-formed Engine.IO / Socket.IO packet, and so are the join
// and error acks; rooms fit kMaxRoomBytes; at most one close, last, with a code a close frame
// may carry and a reason under 123 bytes, after which the Session is inert and has no deadline.
#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <cjson/cJSON.h>

#include "fuzz_check.h"
#include "sio/session.h"
#include "sio/sio_codec.h"
#include "sio/ws_frame.h"
#include "sio/ws_reader.h"

namespace {

// A client frame as a browser sends it: masked, with a fixed key.
std::string masked_frame(unsigned opcode, std::string_view payload, bool fin) {
    std::string f(1, static_cast<char>((fin ? 0x80 : 0) | opcode));
    if (payload.size() < 126) {
        f += static_cast<char>(0x80 | payload.size());
    } else {
        f += static_cast<char>(0x80 | 127);
        for (int i = 7; i >= 0; i--) f += static_cast<char>((uint64_t{payload.size()} >> (8 * i)) & 0xff);
    }
    const char key[4] = {0x11, 0x22, 0x33, 0x44};
    f.append(key, 4);
    for (size_t i = 0; i < payload.size(); i++) f += static_cast<char>(payload[i] ^ key[i & 3]);
    return f;
}

// What the server sends is well-formed: an Engine.IO packet, and a message's Socket.IO
// packet decodes. At most one close, with a code and a reason that fit a close frame; rooms
// asked for are at most kMaxRoomBytes.
void check_action(const psdm::SessionAction &a, int *closes) {
    using Kind = psdm::SessionAction::Kind;
    if (a.kind == Kind::send) {
        const auto eio = psdm::eio_decode(a.text);
        CHECK(eio.has_value());
        psdm::SioPacket p;
        if (eio->type == psdm::EioType::message) CHECK(psdm::sio_decode(eio->data, &p) == psdm::SioDecodeError::none);
    } else if (a.kind == Kind::join || a.kind == Kind::leave) {
        CHECK(a.text.size() <= psdm::kMaxRoomBytes);
    } else if (a.kind == Kind::close) {
        CHECK(++*closes == 1);
        // A code an endpoint may send in a close frame (RFC 6455 7.4.1 and 7.4.2).
        const int c = a.close_code;
        CHECK((c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1011) || (c >= 3000 && c <= 4999));
        CHECK(a.reason.size() < 123);
    }
}

// The caller's answers to a join are Socket.IO acks.
void check_ack(const std::string &frame) {
    const auto eio = psdm::eio_decode(frame);
    psdm::SioPacket p;
    CHECK(eio && eio->type == psdm::EioType::message && psdm::sio_decode(eio->data, &p) == psdm::SioDecodeError::none &&
          p.type == psdm::SioType::ack && p.ack_id.has_value());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    const std::string_view input(reinterpret_cast<const char *>(data), size);
    const psdm::EioVersion version = (data[0] & 1) ? psdm::EioVersion::v3 : psdm::EioVersion::v4;
    psdm::SessionLimits limits;
    limits.max_payload = 2048;
    limits.ping_interval_ms = 100;
    limits.ping_timeout_ms = 50;

    int64_t now = 0;
    psdm::Session session(version, limits, "fuzz-sid", now);
    std::vector<psdm::SessionAction> out;
    session.on_open(out);
    int closes = 0;
    for (const psdm::SessionAction &a : out) check_action(a, &closes);
    out.clear();
    psdm::WsReader rx(limits.max_payload);
    const size_t cut = data[0] >> 1;  // each message arrives as fragments of this many bytes (0: whole)

    std::string_view rest = input.substr(1);
    do {
        const size_t nl = rest.find('\n');
        const std::string_view frame = rest.substr(0, nl);
        rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);

        (void)psdm::parse_handshake_query(frame);
        if (const auto eio = psdm::eio_decode(frame)) {
            psdm::SioPacket p;
            if (psdm::sio_decode(eio->data, &p) == psdm::SioDecodeError::none) {
                // Parsed once, by the decoder: the tree is there exactly when there is data, and an
                // event's name and arguments are its first element and the ones after it.
                CHECK((p.json != nullptr) == !p.data.empty());
                CHECK(p.type != psdm::SioType::event ||
                      (p.event.data() == p.json->child->valuestring && p.args == p.json->child->next));
            }
        }

        // Sent as masked fragments, the message must come out of the reader whole (or too big).
        std::string wire;
        for (size_t at = 0; at == 0 || at < frame.size();) {
            const size_t n = cut == 0 ? frame.size() : std::min(cut, frame.size() - at);
            wire += masked_frame(at == 0 ? psdm::kWsOpText : psdm::kWsOpContinuation, frame.substr(at, n),
                                 at + n >= frame.size());
            at += n;
            if (n == 0) break;
        }
        psdm::WsEvent ev;
        CHECK(rx.read(wire, &ev) == wire.size());
        CHECK(ev.kind != psdm::WsEvent::Kind::text || ev.payload == frame);
        CHECK(ev.kind != psdm::WsEvent::Kind::error ||
              (ev.code == psdm::kWsCloseTooBig && frame.size() > limits.max_payload));
        CHECK(ev.kind == psdm::WsEvent::Kind::text || ev.kind == psdm::WsEvent::Kind::error);
        if (ev.kind == psdm::WsEvent::Kind::error) return 0;  // the connection would close here

        now += 37;
        const bool was_closed = session.closed();
        session.on_text(frame, now, out);
        rx.release();
        session.on_tick(now, out);
        CHECK(!was_closed || out.empty());  // a closed session is inert
        for (const psdm::SessionAction &a : out) {
            check_action(a, &closes);
            if (a.ack_id) check_ack(session.join_ack(*a.ack_id, (a.text.size() & 1) != 0, a.text));
            if (a.ack_id && (a.text.size() & 2) != 0) check_ack(session.error_ack(*a.ack_id, a.text));
        }
        CHECK(session.closed() == (closes == 1));
        if (!was_closed && session.closed()) CHECK(out.back().kind == psdm::SessionAction::Kind::close);
        CHECK(session.closed() == (session.next_deadline_ms() == INT64_MAX));
        out.clear();
    } while (!rest.empty());
    return 0;
}

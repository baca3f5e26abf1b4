// libFuzzer target for the Engine.IO / Socket.IO codec and the session state machine.
// Not part of the CMake build; build and run by hand:
//
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -Iworker \
//       tests/fuzz/fuzz_sio.cpp worker/sio/sio_codec.cpp worker/sio/session.cpp worker/sio/ws_message.cpp worker/base/json.cpp \
//       -lcjson -o /tmp/fuzz_sio
//   /tmp/fuzz_sio -max_len=4096
//
// Input layout: byte 0 selects the protocol version and how frames are cut into pieces for
// WsMessage (the reassembly in front of the Session); the rest is split on '\n' into text
// frames fed to one Session (each frame also goes through the bare decoders). Frames advance a
// fake clock so heartbeat paths run too.
#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cstdlib>
#include <string_view>
#include <vector>

#include <cjson/cJSON.h>

#include "sio/session.h"
#include "sio/sio_codec.h"
#include "sio/ws_message.h"

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
    psdm::WsMessage rx(limits.max_payload);
    const size_t cut = data[0] >> 1;  // each frame arrives as pieces of this many bytes (0: whole)

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
                if ((p.json != nullptr) != !p.data.empty()) std::abort();
                if (p.type == psdm::SioType::event &&
                    (p.event.data() != p.json->child->valuestring || p.args != p.json->child->next)) {
                    std::abort();
                }
            }
        }
        (void)psdm::json_escape_string(frame);

        // Reassembled from pieces, the message must be the frame again (or too big).
        std::string_view msg;
        psdm::WsMessage::Status st = psdm::WsMessage::Status::partial;
        for (size_t at = 0; st == psdm::WsMessage::Status::partial;) {
            const size_t n = cut == 0 ? frame.size() : std::min(cut, frame.size() - at);
            st = rx.feed(frame.substr(at, n), at == 0, at + n == frame.size(), &msg);
            at += n;
        }
        if (st == psdm::WsMessage::Status::complete && msg != frame) std::abort();
        if (st == psdm::WsMessage::Status::too_big && frame.size() <= limits.max_payload) std::abort();

        now += 37;
        session.on_text(frame, now, out);
        rx.release();
        session.on_tick(now, out);
        for (const psdm::SessionAction &a : out) {
            if (a.ack_id) (void)session.join_ack(*a.ack_id, (a.text.size() & 1) != 0, a.text);
            if (a.ack_id && (a.text.size() & 2) != 0) (void)session.error_ack(*a.ack_id, a.text);
        }
        out.clear();
    } while (!rest.empty());
    return 0;
}

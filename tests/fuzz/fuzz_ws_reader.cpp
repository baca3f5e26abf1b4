// libFuzzer target for the WebSocket frame reader (worker/sio/ws_reader): every byte a client
// sends after its upgrade, early data included. Built by CMake (PSDM_FUZZ=ON); `make fuzz`.
//
// Input: byte 0 is the size of the pieces the rest arrives in (0: all at once), as reads from
// a socket would cut it. Properties beyond the sanitizers: read() takes at least one byte of a
// non-empty input and never more than it is given; messages never exceed max_payload and
// control payloads 125 bytes; an error carries 1002, 1007 or 1009 and a reason, a close a code
// an endpoint may send; after either, nothing more is reported; and the events are the same
// whatever the cut (the reader's state does not depend on how the bytes arrive).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "sio/ws_frame.h"
#include "sio/ws_reader.h"

namespace {

constexpr size_t kMax = 300;

struct Seen {
    psdm::WsEvent::Kind kind;
    std::string payload;
    int code;
    bool operator==(const Seen &o) const { return kind == o.kind && payload == o.payload && code == o.code; }
};

std::vector<Seen> run(std::string_view in, size_t piece) {
    psdm::WsReader rx(kMax);
    std::vector<Seen> out;
    bool ended = false;
    while (!in.empty()) {
        std::string_view chunk = piece ? in.substr(0, piece) : in;
        in.remove_prefix(chunk.size());
        while (!chunk.empty()) {
            psdm::WsEvent ev;
            const size_t n = rx.read(chunk, &ev);
            CHECK(n > 0 && n <= chunk.size());
            chunk.remove_prefix(n);
            using K = psdm::WsEvent::Kind;
            if (ev.kind == K::none) continue;
            CHECK(!ended);
            switch (ev.kind) {
            case K::text:
            case K::binary: CHECK(ev.payload.size() <= kMax); break;
            case K::ping:
            case K::pong: CHECK(ev.payload.size() <= psdm::kWsMaxControlPayload); break;
            case K::close:
                CHECK(ev.code == psdm::kWsCloseNoStatus || (ev.code >= 1000 && ev.code < 5000));
                CHECK(ev.payload.size() <= psdm::kWsMaxCloseReason);
                ended = true;
                break;
            case K::error:
                CHECK(ev.code == 1002 || ev.code == 1007 || ev.code == 1009);
                CHECK(!ev.reason.empty());
                ended = true;
                break;
            case K::none: break;
            }
            CHECK(rx.done() == ended);
            out.push_back({ev.kind, std::string(ev.payload), ev.code});
            if (ev.kind == K::text || ev.kind == K::binary) rx.release();
        }
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    const std::string_view in(reinterpret_cast<const char *>(data) + 1, size - 1);
    const std::vector<Seen> cut = run(in, data[0]);
    CHECK(cut == run(in, 0));
    return 0;
}

// libFuzzer target for the direct port's request-head parser and upgrade rules
// (worker/sio/ws_handshake): what a client sends before the WebSocket handshake.
// Built by CMake (PSDM_FUZZ=ON, tests/fuzz/CMakeLists.txt); `make fuzz` runs it.
//
// Input: the bytes a client sends first. Properties beyond the sanitizers: the parser reads
// only the input and never past kMaxRequestHead to decide; a complete head ends at its
// empty line, inside the input, and every view of the request points into the head; a
// refusal is 400, 414 or 431 and renders as one HTTP response with Connection: close; an
// accepted upgrade gets one 101 head carrying its key's accept value.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "sio/ws_handshake.h"

namespace {

bool inside(std::string_view view, std::string_view whole) {
    return view.empty() || (view.data() >= whole.data() && view.data() + view.size() <= whole.data() + whole.size());
}

void check_answer(const psdm::HttpAnswer &a) {
    const std::string bytes = psdm::http_answer_bytes(a);
    CHECK(bytes.rfind("HTTP/1.1 " + std::to_string(a.status) + " ", 0) == 0);
    CHECK(bytes.find("\r\n\r\n") != std::string::npos);
    CHECK(bytes.find("Connection: ") != std::string::npos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const std::string_view in(reinterpret_cast<const char *>(data), size);
    const psdm::RequestHead head = psdm::parse_request_head(in);
    switch (head.state) {
    case psdm::RequestHead::State::incomplete: CHECK(size <= psdm::kMaxRequestHead); return 0;
    case psdm::RequestHead::State::refused:
        CHECK(head.refusal.status == 400 || head.refusal.status == 414 || head.refusal.status == 431);
        check_answer(head.refusal);
        return 0;
    case psdm::RequestHead::State::complete: break;
    }
    CHECK(head.length <= size && head.length <= psdm::kMaxRequestHead);
    const std::string_view whole = in.substr(0, head.length);
    CHECK(whole.size() >= 4 && whole.substr(whole.size() - 4) == "\r\n\r\n");
    const psdm::UpgradeRequest &r = head.request;
    for (std::string_view v : {r.method, r.http_version, r.path, r.query}) CHECK(inside(v, whole));
    for (const auto &h : {r.host, r.upgrade, r.connection, r.key, r.version, r.protocol})
        if (h) CHECK(inside(*h, whole));

    const psdm::HttpAnswer verdict = psdm::check_upgrade(r);
    if (!verdict.accepted()) {
        check_answer(verdict);
        return 0;
    }
    // The 101: one response head, with the accept value of the key and nothing of the client's
    // but the subprotocol the worker serves.
    const std::string answer = psdm::ws_accept_answer_bytes(r);
    CHECK(answer.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0) == 0);
    CHECK(answer.find("\r\n\r\n") == answer.size() - 4);
    CHECK(answer.find("Sec-WebSocket-Accept: " + psdm::ws_accept_value(*r.key) + "\r\n") != std::string::npos);
    CHECK(psdm::ws_accept_value(*r.key).size() == 28);
    return 0;
}

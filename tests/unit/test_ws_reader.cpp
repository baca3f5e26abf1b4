// Unit tests for worker/sio/ws_reader: the client frames a server reads (RFC 6455 section 5),
// fed whole and byte by byte, and every refusal with its close code.
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <setjmp.h>
#include <string>
#include <string_view>
#include <vector>

extern "C" {
#include <cmocka.h>
}

#include "sio/ws_frame.h"
#include "sio/ws_reader.h"

namespace {

using psdm::WsEvent;
using psdm::WsReader;
using Kind = WsEvent::Kind;

// A client frame: masked (unless mask is false) with a fixed key, as a browser sends it.
std::string client_frame(unsigned opcode, std::string_view payload, bool fin = true, bool mask = true,
                         unsigned rsv = 0) {
    std::string f;
    f += static_cast<char>((fin ? 0x80 : 0) | rsv | opcode);
    const unsigned m = mask ? 0x80 : 0;
    if (payload.size() < 126) {
        f += static_cast<char>(m | payload.size());
    } else if (payload.size() <= 0xffff) {
        f += static_cast<char>(m | 126);
        f += static_cast<char>(payload.size() >> 8);
        f += static_cast<char>(payload.size() & 0xff);
    } else {
        f += static_cast<char>(m | 127);
        for (int i = 7; i >= 0; i--) f += static_cast<char>((uint64_t{payload.size()} >> (8 * i)) & 0xff);
    }
    const unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};
    if (mask) f.append(reinterpret_cast<const char *>(key), 4);
    for (size_t i = 0; i < payload.size(); i++)
        f += static_cast<char>(mask ? payload[i] ^ static_cast<char>(key[i & 3]) : payload[i]);
    return f;
}

struct Seen {
    Kind kind;
    std::string payload;
    int code;
    std::string reason;
};

// Feeds `bytes` in pieces of `piece` bytes (0: all at once); returns every event, in order.
std::vector<Seen> feed(WsReader &rx, std::string_view bytes, size_t piece = 0) {
    std::vector<Seen> out;
    while (!bytes.empty()) {
        std::string_view chunk = piece ? bytes.substr(0, piece) : bytes;
        bytes.remove_prefix(chunk.size());
        while (!chunk.empty()) {
            WsEvent ev;
            const size_t n = rx.read(chunk, &ev);
            assert_true(n > 0 && n <= chunk.size());
            chunk.remove_prefix(n);
            if (ev.kind != Kind::none) out.push_back({ev.kind, std::string(ev.payload), ev.code, ev.reason});
            if (ev.kind == Kind::text || ev.kind == Kind::binary) rx.release();
        }
    }
    return out;
}

void test_one_text_message_whole_and_byte_by_byte(void **) {
    const std::string f = client_frame(psdm::kWsOpText, "42/psdm_ws,[\"join\",\"x\"]");
    for (size_t piece : {size_t{0}, size_t{1}, size_t{3}}) {
        WsReader rx(1000);
        auto ev = feed(rx, f, piece);
        assert_int_equal(ev.size(), 1);
        assert_true(ev[0].kind == Kind::text);
        assert_string_equal(ev[0].payload.c_str(), "42/psdm_ws,[\"join\",\"x\"]");
        assert_false(rx.done());
    }
}

void test_length_encodings(void **) {
    for (size_t len : {size_t{0}, size_t{125}, size_t{126}, size_t{65535}, size_t{65536}}) {
        WsReader rx(1 << 20);
        const std::string payload(len, 'a');
        auto ev = feed(rx, client_frame(psdm::kWsOpText, payload) + client_frame(psdm::kWsOpBinary, "b"), 7);
        assert_int_equal(ev.size(), 2);
        assert_true(ev[0].kind == Kind::text);
        assert_true(ev[0].payload == payload);
        assert_true(ev[1].kind == Kind::binary);
    }
}

void test_fragments_with_a_ping_between(void **) {
    WsReader rx(100);
    const std::string bytes = client_frame(psdm::kWsOpText, "ab", false) + client_frame(psdm::kWsOpPing, "hi") +
                              client_frame(psdm::kWsOpContinuation, "cd", false) +
                              client_frame(psdm::kWsOpContinuation, "e") + client_frame(psdm::kWsOpPong, "");
    for (size_t piece : {size_t{0}, size_t{1}}) {
        WsReader r(100);
        auto ev = feed(r, bytes, piece);
        assert_int_equal(ev.size(), 3);
        assert_true(ev[0].kind == Kind::ping);
        assert_string_equal(ev[0].payload.c_str(), "hi");
        assert_true(ev[1].kind == Kind::text);
        assert_string_equal(ev[1].payload.c_str(), "abcde");
        assert_true(ev[2].kind == Kind::pong);
    }
}

void test_close_frames(void **) {
    {
        WsReader rx(100);
        auto ev = feed(rx, client_frame(psdm::kWsOpClose, std::string("\x03\xe8", 2) + "bye") +
                               client_frame(psdm::kWsOpText, "ignored"));
        assert_int_equal(ev.size(), 1);
        assert_true(ev[0].kind == Kind::close);
        assert_int_equal(ev[0].code, 1000);
        assert_string_equal(ev[0].payload.c_str(), "bye");
        assert_true(rx.done());
    }
    {
        WsReader rx(100);
        auto ev = feed(rx, client_frame(psdm::kWsOpClose, ""));
        assert_int_equal(ev.size(), 1);
        assert_int_equal(ev[0].code, psdm::kWsCloseNoStatus);
    }
    {
        WsReader rx(100);  // 4000-4999: the application's own codes
        auto ev = feed(rx, client_frame(psdm::kWsOpClose, std::string("\x0f\xa0", 2)));
        assert_int_equal(ev[0].code, 4000);
    }
}

struct Refusal {
    const char *name;
    std::string bytes;
    int code;
    const char *reason;
};

void test_refusals(void **) {
    const std::string big(101, 'x');
    const std::vector<Refusal> cases = {
        {"unmasked", client_frame(psdm::kWsOpText, "40", true, false), 1002, "unmasked client frame"},
        {"rsv1", client_frame(psdm::kWsOpText, "40", true, true, 0x40), 1002, "reserved bits set in a frame header"},
        {"opcode 3", client_frame(3, "x"), 1002, "unknown opcode 3"},
        {"opcode 11", client_frame(11, "x"), 1002, "unknown opcode 11"},
        {"fragmented ping", client_frame(psdm::kWsOpPing, "x", false), 1002, "fragmented control frame"},
        {"long ping", client_frame(psdm::kWsOpPing, std::string(126, 'p')), 1002,
         "control frame longer than 125 bytes"},
        {"lone continuation", client_frame(psdm::kWsOpContinuation, "x"), 1002,
         "continuation frame without a message to continue"},
        {"text inside text", client_frame(psdm::kWsOpText, "a", false) + client_frame(psdm::kWsOpText, "b"), 1002,
         "new message before the previous one ended"},
        {"close with 1 byte", client_frame(psdm::kWsOpClose, "\x03"), 1002, "close frame with a 1-byte payload"},
        {"close 1005", client_frame(psdm::kWsOpClose, std::string("\x03\xed", 2)), 1002, "close frame with code 1005"},
        {"close 999", client_frame(psdm::kWsOpClose, std::string("\x03\xe7", 2)), 1002, "close frame with code 999"},
        {"close 5000", client_frame(psdm::kWsOpClose, std::string("\x13\x88", 2)), 1002, "close frame with code 5000"},
        {"close reason not UTF-8", client_frame(psdm::kWsOpClose, std::string("\x03\xe8\xff", 3)), 1007,
         "close reason is not valid UTF-8"},
        {"too big", client_frame(psdm::kWsOpText, big), 1009, "message longer than max_payload (100 bytes)"},
        {"too big in fragments",
         client_frame(psdm::kWsOpText, std::string(60, 'a'), false) +
             client_frame(psdm::kWsOpContinuation, std::string(41, 'b')),
         1009, "message longer than max_payload (100 bytes)"},
        {"64-bit length top bit", std::string("\x81\xff\x80\x00\x00\x00\x00\x00\x00\x01", 10), 1002,
         "frame length with its most significant bit set"},
    };
    for (const Refusal &c : cases) {
        for (size_t piece : {size_t{0}, size_t{1}}) {
            WsReader rx(100);
            auto ev = feed(rx, c.bytes + client_frame(psdm::kWsOpText, "after"), piece);
            if (ev.size() != 1 || ev[0].kind != Kind::error) fail_msg("%s: no error event", c.name);
            if (ev[0].code != c.code || ev[0].reason != c.reason)
                fail_msg("%s: got %d '%s'", c.name, ev[0].code, ev[0].reason.c_str());
            assert_true(rx.done());
        }
    }
}

// An unmasked frame is refused from its first two bytes, before any length or payload.
void test_unmasked_refused_at_once(void **) {
    WsReader rx(100);
    WsEvent ev;
    assert_int_equal(rx.read(std::string_view("\x81", 1), &ev), 1);
    assert_true(ev.kind == Kind::none);
    assert_int_equal(rx.read(std::string_view("\x7f", 1), &ev), 1);
    assert_true(ev.kind == Kind::error);
    assert_int_equal(ev.code, 1002);
}

// A message reported and not released is dropped by the next one (no growth).
void test_buffer_reused_without_release(void **) {
    WsReader rx(10);
    WsEvent ev;
    for (int i = 0; i < 100; i++) {
        const std::string f = client_frame(psdm::kWsOpText, "0123456789");
        assert_int_equal(rx.read(f, &ev), f.size());
        assert_true(ev.kind == Kind::text);
        assert_int_equal(ev.payload.size(), 10);
    }
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_text_message_whole_and_byte_by_byte),
        cmocka_unit_test(test_length_encodings),
        cmocka_unit_test(test_fragments_with_a_ping_between),
        cmocka_unit_test(test_close_frames),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_unmasked_refused_at_once),
        cmocka_unit_test(test_buffer_reused_without_release),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}

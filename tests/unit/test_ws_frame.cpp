// Unit tests for worker/sio/ws_frame.h: server text frame headers, RFC 6455 section 5.2.
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <setjmp.h>
#include <string>

extern "C" {
#include <cmocka.h>
}

#include "sio/ws_frame.h"

namespace {

struct Case {
    uint64_t len;
    const char *header_hex;  // expected header bytes
};

// Boundaries of the three length encodings (7-bit, 16-bit, 64-bit).
const Case kCases[] = {
    {0, "8100"},
    {1, "8101"},
    {125, "817d"},
    {126, "817e007e"},
    {65535, "817effff"},
    {65536, "817f0000000000010000"},
    {1048576, "817f0000000000100000"},
};

std::string hex(const unsigned char *p, size_t n) {
    static const char d[] = "0123456789abcdef";
    std::string s;
    for (size_t i = 0; i < n; i++) {
        s += d[p[i] >> 4];
        s += d[p[i] & 15];
    }
    return s;
}

void test_header_lengths(void **) {
    for (const Case &c : kCases) {
        unsigned char h[psdm::kWsMaxHeader];
        size_t n = psdm::ws_text_frame_header(c.len, h);
        assert_string_equal(hex(h, n).c_str(), c.header_hex);
    }
}

void test_frame_is_header_then_payload(void **) {
    std::string f = psdm::ws_text_frame("2");
    assert_int_equal(f.size(), 3);
    assert_memory_equal(f.data(),
                        "\x81\x01"
                        "2",
                        3);
    std::string big(300, 'x');
    f = psdm::ws_text_frame(big);
    assert_int_equal(f.size(), 304);
    assert_string_equal(hex(reinterpret_cast<const unsigned char *>(f.data()), 4).c_str(), "817e012c");
    assert_true(f.compare(4, std::string::npos, big) == 0);
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_lengths),
        cmocka_unit_test(test_frame_is_header_then_payload),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}

// Unit tests for worker/sio/ws_message: reassembly of a WebSocket message from the pieces
// libwebsockets delivers (fragments, partial reads), its size bound, and no copy and no
// buffer for a message that comes in one piece.
#include <cstdarg>
#include <cstddef>
#include <csetjmp>
#include <cstdint>
extern "C" {  // this cmocka.h has no C++ linkage guard
#include <cmocka.h>
}

#include <string>

#include "sio/ws_message.h"

using namespace psdm;
using Status = WsMessage::Status;

namespace {

void test_one_piece_is_not_copied(void **) {
    WsMessage rx(10);
    std::string_view msg;
    const std::string piece = "42[\"join\"]";
    assert_true(rx.feed(piece, true, true, &msg) == Status::complete);
    assert_ptr_equal(msg.data(), piece.data());
    assert_int_equal(msg.size(), 10);
}

void test_pieces_are_gathered(void **) {
    WsMessage rx(100);
    std::string_view msg = "untouched";
    assert_true(rx.feed("42[", true, false, &msg) == Status::partial);
    assert_true(rx.feed("\"join\",", false, false, &msg) == Status::partial);
    assert_string_equal(std::string(msg).c_str(), "untouched");
    assert_true(rx.feed("\"a\"]", false, true, &msg) == Status::complete);
    assert_string_equal(std::string(msg).c_str(), "42[\"join\",\"a\"]");
    rx.release();
    // The next message starts afresh.
    assert_true(rx.feed("3", true, true, &msg) == Status::complete);
    assert_string_equal(std::string(msg).c_str(), "3");
}

// The bound holds for a single piece and for the sum of pieces, exactly at max_bytes.
void test_size_bound(void **) {
    std::string_view msg;
    WsMessage one(4);
    assert_true(one.feed("1234", true, true, &msg) == Status::complete);
    assert_true(one.feed("12345", true, true, &msg) == Status::too_big);
    WsMessage many(4);
    assert_true(many.feed("12", true, false, &msg) == Status::partial);
    assert_true(many.feed("34", false, true, &msg) == Status::complete);
    many.release();
    assert_true(many.feed("12", true, false, &msg) == Status::partial);
    assert_true(many.feed("345", false, true, &msg) == Status::too_big);
    // After too_big nothing is kept: a new message fits again.
    assert_true(many.feed("abcd", true, true, &msg) == Status::complete);
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_piece_is_not_copied),
        cmocka_unit_test(test_pieces_are_gathered),
        cmocka_unit_test(test_size_bound),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}

// Unit tests for worker/fanout/replay_window: what a returning client can be sent from memory,
// and when the window can say it is complete.
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <setjmp.h>
#include <string>
#include <vector>

extern "C" {
#include <cmocka.h>
}

#include "fanout/replay_window.h"

namespace {

using psdm::FrameRef;
using psdm::ReplayWindow;
using Coverage = ReplayWindow::Coverage;

FrameRef frame(const std::string &text) { return psdm::Frame::make(text, 0); }

std::vector<std::string> texts(const std::vector<FrameRef> &frames) {
    std::vector<std::string> out;
    for (const FrameRef &f : frames) out.emplace_back(f->view());
    return out;
}

void test_collects_a_rooms_records_after_a_position(void **) {
    ReplayWindow w(60000, 1 << 20);
    assert_true(w.add(0, 10, "A", false, frame("a10"), 0));
    assert_true(w.add(0, 11, "B", false, frame("b11"), 0));
    assert_true(w.add(0, 14, "A", false, frame("a14"), 0));  // offsets may skip
    assert_true(w.add(1, 3, "A", false, frame("a3@1"), 0));
    std::vector<FrameRef> out;
    assert_true(w.collect(0, 11, "A", "G", &out) == Coverage::complete);
    assert_true(texts(out) == std::vector<std::string>({"a14"}));
    out.clear();
    assert_true(w.collect(0, 10, "A", "G", &out) == Coverage::complete);
    assert_true(texts(out) == std::vector<std::string>({"a10", "a14"}));
    out.clear();
    assert_true(w.collect(0, 9, "A", "G", &out) == Coverage::partial);  // before the window
    assert_int_equal(out.size(), 2);
    out.clear();
    assert_true(w.collect(0, 15, "A", "G", &out) == Coverage::complete);  // nothing missed
    assert_true(out.empty());
    assert_true(w.collect(7, 0, "A", "G", &out) == Coverage::none);
    assert_int_equal(w.next_offset(0), 15);
    assert_int_equal(w.next_offset(1), 4);
    assert_int_equal(w.next_offset(2), -1);
    // A step back is refused.
    assert_false(w.add(0, 14, "A", false, frame("again"), 0));
    assert_int_equal(w.records(), 4);
}

void test_global_topics_count_for_the_global_room(void **) {
    ReplayWindow w(60000, 1 << 20);
    w.add(0, 1, "A", true, frame("a-and-global"), 0);
    w.add(0, 2, "", true, frame("global-only"), 0);
    w.add(0, 3, "B", false, frame("b"), 0);
    std::vector<FrameRef> out;
    w.collect(0, 0, "G", "G", &out);
    assert_true(texts(out) == std::vector<std::string>({"a-and-global", "global-only"}));
}

void test_bytes_bound_evicts_oldest_across_partitions(void **) {
    const std::string big(1000, 'x');
    ReplayWindow w(60000, 3 * 1100);  // about three records
    for (int64_t i = 0; i < 4; i++) w.add(static_cast<size_t>(i % 2), i, "A", false, frame(big), 0);
    assert_true(w.bytes() <= 3 * 1100);
    assert_int_equal(w.records(), 3);
    std::vector<FrameRef> out;
    // Partition 0 held 0 and 2; 0 went first: complete from 1 on, partial before.
    assert_true(w.collect(0, 0, "A", "G", &out) == Coverage::partial);
    assert_true(w.collect(0, 1, "A", "G", &out) == Coverage::complete);
    assert_true(w.collect(1, 1, "A", "G", &out) == Coverage::complete);
}

void test_age_bound(void **) {
    ReplayWindow w(1000, 1 << 20);
    w.add(0, 0, "A", false, frame("old"), 0);
    w.add(0, 1, "A", false, frame("new"), 900);
    w.expire(1500);
    assert_int_equal(w.records(), 1);
    std::vector<FrameRef> out;
    assert_true(w.collect(0, 0, "A", "G", &out) == Coverage::partial);
    assert_true(texts(out) == std::vector<std::string>({"new"}));
    w.expire(5000);
    assert_int_equal(w.records(), 0);
    assert_int_equal(w.bytes(), 0);
    out.clear();
    assert_true(w.collect(0, 2, "A", "G", &out) == Coverage::complete);  // nothing since: complete
}

// A record larger than the whole bound is not held, and the window is complete only after it,
// also once the records before it are evicted.
void test_a_record_too_big_to_hold(void **) {
    ReplayWindow w(60000, 2000);
    w.add(0, 0, "A", false, frame(std::string(500, 'a')), 0);
    w.add(0, 1, "A", false, frame(std::string(5000, 'b')), 0);
    std::vector<FrameRef> out;
    assert_true(w.collect(0, 1, "A", "G", &out) == Coverage::partial);
    assert_true(w.collect(0, 2, "A", "G", &out) == Coverage::complete);
    for (int64_t i = 2; i < 10; i++) w.add(0, i, "A", false, frame(std::string(500, 'c')), 0);
    assert_true(w.collect(0, 1, "A", "G", &out) == Coverage::partial);
}

// Frames are shared with the outboxes, not copied.
void test_frames_are_shared(void **) {
    ReplayWindow w(60000, 1 << 20);
    FrameRef f = frame("shared");
    w.add(0, 0, "A", false, f, 0);
    assert_int_equal(f.use_count(), 2);
    std::vector<FrameRef> out;
    w.collect(0, 0, "A", "G", &out);
    assert_true(out[0].get() == f.get());
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_collects_a_rooms_records_after_a_position),
        cmocka_unit_test(test_global_topics_count_for_the_global_room),
        cmocka_unit_test(test_bytes_bound_evicts_oldest_across_partitions),
        cmocka_unit_test(test_age_bound),
        cmocka_unit_test(test_a_record_too_big_to_hold),
        cmocka_unit_test(test_frames_are_shared),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}

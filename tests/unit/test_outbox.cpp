// Unit tests for worker/outbox: Frame (shared, headroom), Outbox (FIFO order, byte
// accounting, exact backlog boundary, no memory held when empty) and the slow-consumer policy.
#include <cstdarg>
#include <cstddef>
#include <csetjmp>
#include <cstdint>
#include <cstdlib>
#include <new>

extern "C" {  // cmocka 1.1.5 has no C++ linkage guards
#include <cmocka.h>
}

#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "fanout/outbox.h"

// ---- allocation counter: a keeping-up client must cost no allocation per message ----
#include "alloc_counter.h"

using psdm::EnqueueResult;
using psdm::Frame;
using psdm::FrameRef;
using psdm::Outbox;

namespace {

constexpr size_t kPre = 16;  // stands in for LWS_PRE

FrameRef frame_of(const std::string &s) { return Frame::make(s, kPre); }

void test_frame(void **) {
    const std::string text = "42[\"message\",{\"a\":1}]";
    FrameRef f = Frame::make(text, kPre);
    assert_int_equal(f->size(), text.size());
    assert_int_equal(f->headroom(), kPre);
    assert_true(f->view() == text);
    assert_ptr_equal(reinterpret_cast<const char *>(f->writable_payload()), f->view().data());
    // The headroom is writable scratch (ASan checks the bounds) and leaves the payload alone.
    std::memset(f->writable_payload() - kPre, 0xAB, kPre);
    assert_true(f->view() == text);

    // The source is copied, not referenced.
    std::string src = "hello";
    FrameRef g = Frame::make(src, 0);
    src[0] = 'j';
    assert_true(g->view() == "hello");
    assert_int_equal(g->headroom(), 0);

    FrameRef e = Frame::make("", kPre);
    assert_int_equal(e->size(), 0);
    assert_true(e->view().empty());
    std::memset(e->writable_payload() - kPre, 0, kPre);

    // Binary payloads keep their NULs.
    FrameRef b = Frame::make(std::string_view("a\0b", 3), 4);
    assert_int_equal(b->size(), 3);
    assert_memory_equal(b->view().data(), "a\0b", 3);
}

void test_fifo_and_accounting(void **) {
    Outbox box(1 << 20);
    assert_true(box.empty());
    assert_null(box.front());
    assert_int_equal(box.queued_bytes(), 0);
    assert_int_equal(box.queued_frames(), 0);

    assert_true(box.push(frame_of("one")) == EnqueueResult::queued);
    assert_true(box.push(frame_of("two!")) == EnqueueResult::queued);
    assert_true(box.push(frame_of("three")) == EnqueueResult::queued);
    assert_false(box.empty());
    assert_int_equal(box.queued_frames(), 3);
    assert_int_equal(box.queued_bytes(), 3 + 4 + 5);
    assert_true(box.front()->view() == "one");
    assert_true(box.front_ref()->view() == "one");
    box.pop();
    assert_true(box.front()->view() == "two!");
    assert_int_equal(box.queued_bytes(), 4 + 5);
    box.pop();
    box.pop();
    assert_true(box.empty());
    assert_null(box.front());
    assert_int_equal(box.queued_bytes(), 0);
}

// Random pushes and pops against a std::deque model: order, counts, bytes, wrap-around and
// growth of the ring, and no heap ring left once drained.
void test_order_against_model(void **) {
    Outbox box(SIZE_MAX);
    std::deque<std::string> model;
    size_t model_bytes = 0;
    std::mt19937 rng(1);
    int serial = 0;
    for (int step = 0; step < 20000; ++step) {
        const bool push = model.empty() || rng() % 100 < (step % 3000 < 1500 ? 60u : 40u);
        if (push) {
            std::string s = "m" + std::to_string(serial++) + std::string(rng() % 8, '.');
            assert_true(box.push(frame_of(s)) == EnqueueResult::queued);
            model_bytes += s.size();
            model.push_back(std::move(s));
        } else {
            assert_true(box.front()->view() == model.front());
            model_bytes -= model.front().size();
            model.pop_front();
            box.pop();
        }
        assert_int_equal(box.queued_frames(), model.size());
        assert_int_equal(box.queued_bytes(), model_bytes);
        if (model.empty()) assert_int_equal(box.heap_slots(), 0);
    }
    while (!model.empty()) {
        assert_true(box.front()->view() == model.front());
        model.pop_front();
        box.pop();
    }
    assert_true(box.empty());
    assert_int_equal(box.heap_slots(), 0);
}

void test_backlog_boundary(void **) {
    Outbox box(100);
    assert_int_equal(box.backlog_limit(), 100);
    assert_true(box.push(frame_of(std::string(60, 'a'))) == EnqueueResult::queued);
    // 60 + 41 > 100: refused, nothing changes.
    assert_true(box.push(frame_of(std::string(41, 'b'))) == EnqueueResult::over_backlog);
    assert_int_equal(box.queued_bytes(), 60);
    assert_int_equal(box.queued_frames(), 1);
    // 60 + 40 == 100: exactly at the limit is allowed.
    assert_true(box.push(frame_of(std::string(40, 'c'))) == EnqueueResult::queued);
    assert_int_equal(box.queued_bytes(), 100);
    // Full: even one byte more is refused; an empty frame still fits.
    assert_true(box.push(frame_of("x")) == EnqueueResult::over_backlog);
    assert_true(box.push(frame_of("")) == EnqueueResult::queued);
    assert_int_equal(box.queued_frames(), 3);
    box.pop();
    assert_true(box.push(frame_of(std::string(60, 'd'))) == EnqueueResult::queued);
    assert_int_equal(box.queued_bytes(), 100);
    assert_true(box.front()->view() == std::string(40, 'c'));

    // A frame larger than the limit never fits, even into an empty outbox.
    Outbox small(10);
    assert_true(small.push(frame_of(std::string(11, 'e'))) == EnqueueResult::over_backlog);
    assert_true(small.empty());
    assert_true(small.push(frame_of(std::string(10, 'e'))) == EnqueueResult::queued);

    // A zero limit accepts only empty frames.
    Outbox zero(0);
    assert_true(zero.push(frame_of("a")) == EnqueueResult::over_backlog);
    assert_true(zero.push(frame_of("")) == EnqueueResult::queued);
}

void test_shared_frame_refcount(void **) {
    constexpr size_t kClients = 1000;
    FrameRef f = frame_of("{\"psdm_ws_msg_type\":\"runs\"}");
    std::vector<Outbox> boxes;
    boxes.reserve(kClients);
    for (size_t i = 0; i < kClients; ++i) boxes.emplace_back(1 << 20);
    for (Outbox &b : boxes) assert_true(b.push(f) == EnqueueResult::queued);
    assert_int_equal(f.use_count(), kClients + 1);
    for (Outbox &b : boxes) assert_ptr_equal(b.front(), f.get());  // one Frame, not copies

    // A refused push takes no reference.
    Outbox tiny(1);
    assert_true(tiny.push(f) == EnqueueResult::over_backlog);
    assert_int_equal(f.use_count(), kClients + 1);

    for (size_t i = 0; i < kClients / 2; ++i) boxes[i].pop();
    assert_int_equal(f.use_count(), kClients / 2 + 1);
    for (size_t i = kClients / 2; i < kClients; ++i) boxes[i].clear();
    assert_int_equal(f.use_count(), 1);

    // Destroying an outbox drops its references too.
    {
        Outbox b(1 << 20);
        for (int i = 0; i < 20; ++i) b.push(f);
        assert_int_equal(f.use_count(), 21);
    }
    assert_int_equal(f.use_count(), 1);
}

void test_empty_outbox_holds_nothing(void **) {
    // A few words, no heap, whatever happened before.
    static_assert(sizeof(Outbox) <= 64, "an idle connection's outbox must stay small");
    Outbox box(1 << 20);
    assert_int_equal(box.heap_slots(), 0);

    FrameRef f = frame_of("payload");
    // A client that keeps up (0 or 1 frame queued) costs no allocation per message.
    const size_t before = g_allocations;
    for (int i = 0; i < 1000; ++i) {
        assert_true(box.push(f) == EnqueueResult::queued);
        box.pop();
    }
    assert_int_equal(g_allocations, before);
    assert_int_equal(box.heap_slots(), 0);

    // A backlog spills to the heap ring, which is freed as soon as the queue drains.
    for (int i = 0; i < 100; ++i) box.push(f);
    assert_true(g_allocations > before);
    assert_true(box.heap_slots() >= 100);
    while (!box.empty()) box.pop();
    assert_int_equal(box.heap_slots(), 0);
    assert_int_equal(f.use_count(), 1);

    for (int i = 0; i < 100; ++i) box.push(f);
    box.clear();
    assert_true(box.empty());
    assert_int_equal(box.queued_bytes(), 0);
    assert_int_equal(box.heap_slots(), 0);
    assert_int_equal(f.use_count(), 1);
}

void test_move(void **) {
    FrameRef f = frame_of("abc");
    Outbox a(100);
    a.push(f);  // inline slot only
    Outbox b(std::move(a));
    assert_int_equal(b.queued_frames(), 1);
    assert_int_equal(b.queued_bytes(), 3);
    assert_ptr_equal(b.front(), f.get());
    assert_int_equal(f.use_count(), 2);

    for (int i = 0; i < 9; ++i) b.push(f);  // heap ring
    Outbox c(5);
    c.push(frame_of("zz"));
    c = std::move(b);  // c's own frame is dropped
    assert_int_equal(c.queued_frames(), 10);
    assert_int_equal(c.queued_bytes(), 30);
    assert_int_equal(c.backlog_limit(), 100);
    assert_int_equal(f.use_count(), 11);
    while (!c.empty()) c.pop();
    assert_int_equal(f.use_count(), 1);
    assert_int_equal(c.heap_slots(), 0);
}

// Write coalescing: whole frames, oldest first, while they fit; none if the oldest alone
// does not; the frames stay queued; works across the ring's wrap-around.
void test_coalesce(void **) {
    Outbox box(1 << 20);
    unsigned char buf[16];
    size_t frames = 99;
    assert_int_equal(box.coalesce(buf, sizeof buf, &frames), 0);  // empty
    assert_int_equal(frames, 0);
    for (const char *s : {"x", "abc", "defgh", "ij"}) box.push(frame_of(s));
    box.pop();  // head moves: the ring wraps below
    box.push(frame_of("klmnopq"));
    assert_int_equal(box.coalesce(buf, 10, &frames), 10);  // abc defgh ij: 10 bytes
    assert_int_equal(frames, 3);
    assert_memory_equal(buf, "abcdefghij", 10);
    assert_int_equal(box.coalesce(buf, 9, &frames), 8);  // ij would make 10
    assert_int_equal(frames, 2);
    assert_int_equal(box.coalesce(buf, 2, &frames), 0);  // abc alone is too big
    assert_int_equal(frames, 0);
    assert_int_equal(box.queued_frames(), 4);  // nothing popped
    assert_int_equal(box.coalesce(buf, sizeof buf, &frames), 10);
    assert_int_equal(frames, 3);  // abcdefghij + klmnopq = 17 > 16
}

void test_slow_consumer_policy(void **) {
    Outbox box(4194304);
    FrameRef big = frame_of(std::string(4190000 - 36 * 1000, 'x'));
    FrameRef small = frame_of(std::string(1000, 'y'));
    assert_true(box.push(big) == EnqueueResult::queued);
    for (int i = 0; i < 36; ++i) assert_true(box.push(small) == EnqueueResult::queued);
    assert_int_equal(box.queued_bytes(), 4190000);
    assert_int_equal(box.queued_frames(), 37);
    FrameRef incoming = frame_of(std::string(5000, 'z'));
    assert_true(box.push(incoming) == EnqueueResult::over_backlog);

    const psdm::SlowConsumerDecision d = psdm::slow_consumer_policy(box, incoming->size());
    assert_true(d.verdict == psdm::SlowConsumerVerdict::close_client);
    assert_int_equal(d.close_code, 1013);
    assert_int_equal(d.close_code, psdm::kCloseTryAgainLater);
    assert_string_equal(d.reason.c_str(), "client backlog 4194304 bytes exceeded (queued 4190000 bytes in 37 frames)");
    // The policy changes nothing.
    assert_int_equal(box.queued_frames(), 37);

    // The reason fits a close frame even with the largest numbers.
    Outbox huge(SIZE_MAX - 1);
    const psdm::SlowConsumerDecision h = psdm::slow_consumer_policy(huge, SIZE_MAX);
    assert_true(h.reason.size() <= psdm::kMaxCloseReason);
    assert_string_equal(h.reason.c_str(),
                        "client backlog 18446744073709551614 bytes exceeded (queued 0 bytes in 0 frames)");
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame),
        cmocka_unit_test(test_fifo_and_accounting),
        cmocka_unit_test(test_order_against_model),
        cmocka_unit_test(test_backlog_boundary),
        cmocka_unit_test(test_shared_frame_refcount),
        cmocka_unit_test(test_empty_outbox_holds_nothing),
        cmocka_unit_test(test_move),
        cmocka_unit_test(test_coalesce),
        cmocka_unit_test(test_slow_consumer_policy),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}

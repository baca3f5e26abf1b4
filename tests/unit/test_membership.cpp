// Unit tests for worker/fanout/membership: joins only after the authorizer's yes, the cap on
// rooms per member, revocation on reload, re-checks on expiry, members that leave or go away
// while a question is pending, and what an allocation failure in a join or a publish leaves
// behind when the C boundary (base/c_boundary.h) catches it.
//
// A fake authorizer keeps every question until the test answers it (or answers at once);
// a fake clock is a plain variable.
#include <cstdarg>
#include <cstddef>
#include <csetjmp>
#include <cstdint>
extern "C" {  // this cmocka.h has no C++ linkage guard
#include <cmocka.h>
}

#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "alloc_counter.h"
#include "stderr_capture.h"
#include "base/c_boundary.h"
#include "fanout/membership.h"
#include "fanout/outbox.h"
#include "sio/sio_codec.h"
#include "sio/ws_frame.h"

using namespace psdm;

namespace {

// Questions wait in `pending` until answer() (or answer at once when `sync` is set).
class FakeAuthorizer : public Authorizer {
 public:
    struct Question {
        std::string user, room;
        Done done;
    };
    const char *name() const override { return "fake"; }
    int64_t revalidate_after_ms() const override { return ttl_ms; }

    // Answers the oldest question.
    void answer(bool allowed, bool failed = false) {
        assert_false(pending.empty());
        Question q = std::move(pending.front());
        pending.pop_front();
        q.done(AuthzDecision{allowed, allowed ? "ok" : "no", failed});
    }

    std::deque<Question> pending;
    bool sync = false;
    bool sync_allowed = true;
    int64_t ttl_ms = 0;

 protected:
    void do_check(const Identity &who, const std::string &room, Done done) override {
        if (sync) {
            done(AuthzDecision{sync_allowed, "sync", false});
            return;
        }
        pending.push_back(Question{who.user, room, std::move(done)});
    }
};

// Records events as text lines: "answered 1 R ack=7 yes", "revoked 1 R", "kept 1 R".
struct Recorder : Membership::Events {
    void answered(MemberId m, const std::string &room, std::optional<uint64_t> ack_id,
                  const AuthzDecision &d) override {
        log.push_back("answered " + std::to_string(m) + " " + room +
                      " ack=" + (ack_id ? std::to_string(*ack_id) : "-") + (d.allowed ? " yes" : " no"));
        if (on_answer) on_answer(m);
    }
    void revoked(MemberId m, const std::string &room, const AuthzDecision &) override {
        log.push_back("revoked " + std::to_string(m) + " " + room);
    }
    void kept(MemberId m, const std::string &room, const AuthzDecision &) override {
        log.push_back("kept " + std::to_string(m) + " " + room);
    }
    std::string last() const { return log.empty() ? "" : log.back(); }
    std::vector<std::string> log;
    std::function<void(MemberId)> on_answer;
};

struct Fixture {
    explicit Fixture(size_t max_rooms = 3)
        : m(
              authz, max_rooms, [this] { return now; }, events) {
        alice.user = "alice";
        bob.user = "bob";
    }
    FakeAuthorizer authz;
    Recorder events;
    int64_t now = 1000;
    Identity alice, bob;
    Membership m;
};

void test_join_after_yes(void **) {
    Fixture f;
    f.m.add(1, f.alice);
    assert_true(f.m.join(1, "R", 7) == Membership::JoinStart::asked);
    assert_int_equal(f.authz.pending.size(), 1);
    assert_string_equal(f.authz.pending.front().user.c_str(), "alice");
    assert_false(f.m.is_member(1, "R"));  // pending: no delivery yet
    assert_int_equal(f.m.for_each_member("R", [](MemberId) {}), 0);
    f.authz.answer(true);
    assert_true(f.m.is_member(1, "R"));
    assert_string_equal(f.events.last().c_str(), "answered 1 R ack=7 yes");
    assert_true(f.m.check_invariants());
}

void test_join_refused(void **) {
    Fixture f;
    f.m.add(1, f.alice);
    f.m.join(1, "R", std::nullopt);
    f.authz.answer(false);
    assert_false(f.m.is_member(1, "R"));
    assert_int_equal(f.m.wanted_count(1), 0);  // a refused room does not count against the cap
    assert_string_equal(f.events.last().c_str(), "answered 1 R ack=- no");
    assert_true(f.m.check_invariants());
}

void test_synchronous_answer(void **) {
    Fixture f;
    f.authz.sync = true;
    f.m.add(1, f.alice);
    f.m.join(1, "R", 1);
    assert_true(f.m.is_member(1, "R"));
    f.authz.sync_allowed = false;
    f.m.join(1, "S", 2);
    assert_false(f.m.is_member(1, "S"));
    // A repeated join that the rules now refuse takes the member out.
    f.m.join(1, "R", 3);
    assert_false(f.m.is_member(1, "R"));
    assert_int_equal(f.m.wanted_count(1), 0);
    assert_true(f.m.check_invariants());
}

// max 3 rooms: pending joins count; a room already wanted does not count again; leaving
// and refusals free a slot.
void test_room_cap(void **) {
    Fixture f(3);
    f.m.add(1, f.alice);
    f.m.join(1, "a", 1);
    f.m.join(1, "b", 2);
    f.m.join(1, "c", 3);
    assert_true(f.m.join(1, "d", 4) == Membership::JoinStart::too_many_rooms);
    assert_true(f.m.join(1, "a", 5) == Membership::JoinStart::asked);  // already wanted: asked again
    assert_int_equal(f.authz.pending.size(), 4);
    f.authz.answer(true);   // a
    f.authz.answer(false);  // b: refused, frees its slot
    assert_true(f.m.join(1, "d", 6) == Membership::JoinStart::asked);
    assert_true(f.m.join(1, "e", 7) == Membership::JoinStart::too_many_rooms);
    assert_true(f.m.leave(1, "c"));
    assert_false(f.m.leave(1, "zz"));
    assert_true(f.m.join(1, "e", 8) == Membership::JoinStart::asked);
    assert_int_equal(f.m.wanted_count(1), 3);
    assert_true(f.m.check_invariants());
}

// A leave while the question is pending wins: the yes that comes later changes nothing,
// but the ack is still answered.
void test_leave_while_pending(void **) {
    Fixture f;
    f.m.add(1, f.alice);
    f.m.join(1, "R", 9);
    assert_true(f.m.leave(1, "R"));
    f.authz.answer(true);
    assert_false(f.m.is_member(1, "R"));
    assert_string_equal(f.events.last().c_str(), "answered 1 R ack=9 yes");
    // The same after leave_all (namespace disconnect, closing).
    f.m.join(1, "S", 10);
    f.m.leave_all(1);
    f.authz.answer(true);
    assert_false(f.m.is_member(1, "S"));
    assert_true(f.m.check_invariants());
}

// A member that goes away while its question is pending gets no event, and a new member
// under the same id does not inherit the old answer.
void test_gone_while_pending(void **) {
    Fixture f;
    f.m.add(1, f.alice);
    f.m.join(1, "R", 1);
    f.m.remove(1);
    f.m.add(1, f.bob);  // the id (a Client pointer) is reused
    f.m.join(1, "S", 2);
    f.authz.answer(true);  // alice's question about R
    assert_false(f.m.is_member(1, "R"));
    assert_true(f.events.log.empty());
    f.authz.answer(true);  // bob's about S
    assert_true(f.m.is_member(1, "S"));
    assert_string_equal(f.events.last().c_str(), "answered 1 S ack=2 yes");
    f.m.remove(1);
    assert_int_equal(f.m.registered(), 0);
    assert_int_equal(f.m.rooms().room_count(), 0);
}

// Reload: every membership is asked again; the refused ones are removed.
void test_revocation_on_reload(void **) {
    Fixture f;
    f.authz.sync = true;
    f.m.add(1, f.alice);
    f.m.add(2, f.bob);
    f.m.join(1, "R", std::nullopt);
    f.m.join(2, "R", std::nullopt);
    f.m.join(2, "S", std::nullopt);
    f.authz.sync = false;
    assert_int_equal(f.m.recheck_all(), 3);
    assert_int_equal(f.authz.pending.size(), 3);
    while (!f.authz.pending.empty()) {
        bool bob_r = f.authz.pending.front().user == "bob" && f.authz.pending.front().room == "R";
        f.authz.answer(!bob_r);
    }
    assert_true(f.m.is_member(1, "R"));
    assert_false(f.m.is_member(2, "R"));
    assert_true(f.m.is_member(2, "S"));
    assert_string_equal(f.events.last().c_str(), "revoked 2 R");
    assert_int_equal(f.m.revoked_total(), 1);
    assert_int_equal(f.m.for_each_member("R", [](MemberId id) { assert_int_equal(id, 1); }), 1);
    assert_true(f.m.check_invariants());
}

// Expiry (TTL 1000 ms): asked again once the last yes is a TTL old; a yes renews it; a
// failed answer keeps it until 2 x TTL, then removes it; a no removes it at once.
void test_expiry(void **) {
    Fixture f;
    f.authz.ttl_ms = 1000;
    f.m.add(1, f.alice);
    f.m.join(1, "R", std::nullopt);
    f.authz.answer(true);  // allowed at 1000
    f.now = 1999;
    assert_int_equal(f.m.recheck_expired(), 0);
    f.now = 2000;
    assert_int_equal(f.m.recheck_expired(), 1);
    f.authz.answer(true);  // renewed at 2000
    f.now = 3000;
    assert_int_equal(f.m.recheck_expired(), 1);
    f.authz.answer(false, true);  // no answer: 1000 ms since the last yes < 2 x TTL
    assert_true(f.m.is_member(1, "R"));
    assert_string_equal(f.events.last().c_str(), "kept 1 R");
    f.now = 4000;
    assert_int_equal(f.m.recheck_expired(), 1);
    f.authz.answer(false, true);  // 2000 ms: too long without a yes
    assert_false(f.m.is_member(1, "R"));
    assert_string_equal(f.events.last().c_str(), "revoked 1 R");
    // A plain no removes at once.
    f.m.join(1, "S", std::nullopt);
    f.authz.answer(true);
    f.now = 5000;
    f.m.recheck_expired();
    f.authz.answer(false);
    assert_false(f.m.is_member(1, "S"));
    assert_true(f.m.check_invariants());
}

// With TTL 0 (file, allow-all), nothing expires.
void test_no_expiry_without_ttl(void **) {
    Fixture f;
    f.authz.sync = true;
    f.m.add(1, f.alice);
    f.m.join(1, "R", std::nullopt);
    f.now += 1000000000;
    assert_int_equal(f.m.recheck_expired(), 0);
}

// An event handler may change Membership: here it removes the member it is told about.
void test_event_handler_may_remove(void **) {
    Fixture f;
    f.events.on_answer = [&f](MemberId id) { f.m.remove(id); };
    f.m.add(1, f.alice);
    f.m.join(1, "R", 1);
    f.authz.answer(true);
    assert_int_equal(f.m.registered(), 0);
    assert_int_equal(f.m.rooms().room_count(), 0);
    assert_true(f.m.check_invariants());
}

// ---- allocation failure at the C boundary --------------------------------------------------

// Every allocation of a join (the want, the question, the answer's room entry, the event)
// fails in turn; each time the boundary reports failure with one log line, the member is
// either fully in the room or not at all, and it can join once memory is back.
void test_join_allocation_failure(void **) {
    for (bool sync : {true, false}) {
        size_t rolled_back = 0;
        for (size_t nth = 1;; ++nth) {
            Fixture f;
            f.authz.sync = sync;
            f.m.add(1, f.alice);
            bool ok = false, failed = false;
            std::string err = capture_stderr([&] {
                g_fail_allocation = g_allocations + nth;
                ok = guarded("join", [&] {
                    f.m.join(1, "a-room-name-longer-than-sso", 1);
                    if (!sync) f.authz.answer(true);
                });
                failed = g_fail_allocation == 0;  // the nth allocation happened and threw
                g_fail_allocation = 0;
            });
            assert_true(f.m.check_invariants());
            if (!failed) {
                assert_true(ok);
                assert_true(f.m.is_member(1, "a-room-name-longer-than-sso"));
                assert_true(rolled_back > 0);
                break;  // past the last allocation of a join
            }
            assert_false(ok);
            assert_int_equal(count_lines(err), 1);
            assert_non_null(strstr(err.c_str(), "join"));
            // Fully in (the failure came after, in the event handler) or not at all: never a
            // pending entry that no answer will settle.
            const bool in = f.m.is_member(1, "a-room-name-longer-than-sso");
            assert_int_equal(f.m.wanted_count(1), in ? 1 : 0);
            rolled_back += !in;
            f.authz.pending.clear();
            f.authz.sync = true;
            f.m.join(1, "again", 2);
            assert_true(f.m.is_member(1, "again"));
        }
    }
}

// The publish path (encode once, queue a reference for each member of the room) with each
// of its allocations failing in turn: the boundary reports it, every outbox holds the frame
// or not (nothing half-queued), and the next publish reaches everybody.
void test_publish_allocation_failure(void **) {
    for (size_t nth = 1;; ++nth) {
        Fixture f;
        f.authz.sync = true;
        std::map<MemberId, Outbox> outboxes;
        for (MemberId id = 1; id <= 4; ++id) {
            f.m.add(id, f.alice);
            f.m.join(id, "R", std::nullopt);
            outboxes.emplace(id, Outbox(1 << 20));
            // Two members already have a frame queued, so the next push grows their ring.
            if (id % 2 == 0) outboxes.at(id).push(Frame::make("x", 16));
        }
        auto publish = [&](std::string_view record) {
            FrameRef frame = Frame::make(ws_text_frame(sio_encode_event("/psdm_ws", "psdm_ws_msg", record)), 16);
            f.m.for_each_member("R", [&](MemberId id) { outboxes.at(id).push(frame); });
        };
        bool ok = false, failed = false;
        std::string err = capture_stderr([&] {
            g_fail_allocation = g_allocations + nth;
            ok = guarded("publish", [&] { publish("{\"experiment_name\":\"R\"}"); });
            failed = g_fail_allocation == 0;
            g_fail_allocation = 0;
        });
        size_t got = 0;
        for (auto &[id, ob] : outboxes) got += ob.queued_frames() - (id % 2 == 0 ? 1 : 0);
        if (!failed) {
            assert_true(ok);
            assert_int_equal(got, 4);
            break;
        }
        assert_false(ok);
        assert_int_equal(count_lines(err), 1);
        assert_true(got <= 4);
        assert_true(f.m.check_invariants());
        publish("{\"experiment_name\":\"R\",\"n\":2}");  // memory is back: all four get it
        for (auto &[id, ob] : outboxes) assert_true(ob.queued_frames() >= (id % 2 == 0 ? 2u : 1u));
    }
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join_after_yes),          cmocka_unit_test(test_join_refused),
        cmocka_unit_test(test_synchronous_answer),      cmocka_unit_test(test_room_cap),
        cmocka_unit_test(test_leave_while_pending),     cmocka_unit_test(test_gone_while_pending),
        cmocka_unit_test(test_revocation_on_reload),    cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_no_expiry_without_ttl),   cmocka_unit_test(test_event_handler_may_remove),
        cmocka_unit_test(test_join_allocation_failure), cmocka_unit_test(test_publish_allocation_failure),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}

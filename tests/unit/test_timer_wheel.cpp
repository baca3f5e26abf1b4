// Unit tests for worker/timer_wheel: order, same slot, beyond the horizon, re-arm
// earlier/later with stale entries ignored by the caller, overdue deadlines, schedule
// from inside due(), long gaps between advances, a large N against a model.
#include <cstdarg>
#include <cstddef>
#include <csetjmp>
#include <cstdint>

extern "C" {  // cmocka 1.1.5 has no C++ linkage guards
#include <cmocka.h>
}

#include <algorithm>
#include <map>
#include <random>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/timer_wheel.h"

using psdm::TimerWheel;

namespace {

using Fired = std::vector<std::pair<uint64_t, int64_t>>;  // (id, deadline)

// Advances to `now`, checks that nothing fired early and returns what fired.
Fired advance(TimerWheel &w, int64_t now) {
    Fired out;
    w.advance(now, [&](uint64_t id, int64_t deadline) {
        assert_true(deadline <= now);
        out.emplace_back(id, deadline);
    });
    return out;
}

void test_order_across_ticks(void **) {
    TimerWheel w(100, 16, 0);
    w.schedule(3, 750);
    w.schedule(1, 120);
    w.schedule(2, 450);
    assert_int_equal(w.size(), 3);
    assert_true(advance(w, 119).empty());
    Fired f = advance(w, 120);
    assert_int_equal(f.size(), 1);
    assert_int_equal(f[0].first, 1);
    assert_int_equal(f[0].second, 120);
    // One long advance: reported tick by tick, in deadline order.
    f = advance(w, 1000);
    assert_int_equal(f.size(), 2);
    assert_int_equal(f[0].first, 2);
    assert_int_equal(f[1].first, 3);
    assert_int_equal(w.size(), 0);
}

void test_same_slot_within_tick(void **) {
    TimerWheel w(100, 8, 0);
    w.schedule(1, 210);
    w.schedule(2, 250);
    w.schedule(3, 299);
    // Mid-tick: only what is due.
    Fired f = advance(w, 250);
    std::sort(f.begin(), f.end());
    assert_int_equal(f.size(), 2);
    assert_int_equal(f[0].first, 1);
    assert_int_equal(f[1].first, 2);
    assert_int_equal(w.size(), 1);
    // Same tick again: the rest when due, not before.
    assert_true(advance(w, 298).empty());
    f = advance(w, 299);
    assert_int_equal(f.size(), 1);
    assert_int_equal(f[0].first, 3);
}

void test_beyond_horizon(void **) {
    TimerWheel w(100, 8, 0);  // horizon 800 ms
    assert_int_equal(w.horizon_ms(), 800);
    w.schedule(1, 150);    // slot 1, this turn
    w.schedule(2, 950);    // slot 1, next turn
    w.schedule(3, 2550);   // slot 1, three turns on
    w.schedule(4, 10000);  // far away
    for (int64_t now = 0; now <= 12000; now += 100) {
        Fired f = advance(w, now);
        for (auto &e : f) {
            // Every entry fires in the tick of its deadline, not a turn early or late.
            assert_true(now >= e.second);
            assert_true(now - e.second < 100);
        }
    }
    assert_int_equal(w.size(), 0);
}

void test_long_gap_between_advances(void **) {
    TimerWheel w(10, 4, 0);  // horizon 40 ms
    w.schedule(1, 15);
    w.schedule(2, 33);
    w.schedule(3, 500);
    w.schedule(4, 1000);
    Fired f = advance(w, 600);  // many turns at once: one pass over the slots
    std::sort(f.begin(), f.end());
    assert_int_equal(f.size(), 3);
    assert_int_equal(f[0].first, 1);
    assert_int_equal(f[1].first, 2);
    assert_int_equal(f[2].first, 3);
    assert_true(advance(w, 999).empty());
    f = advance(w, 1000);
    assert_int_equal(f.size(), 1);
    assert_int_equal(f[0].first, 4);
}

void test_overdue_and_negative_times(void **) {
    TimerWheel w(100, 8, -1000);
    assert_true(advance(w, -500).empty());
    w.schedule(1, -2000);  // long past: the next advance reports it
    w.schedule(2, -450);
    Fired f = advance(w, -500);
    assert_int_equal(f.size(), 1);
    assert_int_equal(f[0].first, 1);
    f = advance(w, -450);
    assert_int_equal(f.size(), 1);
    assert_int_equal(f[0].first, 2);
}

// The server's contract: it keeps the deadline it armed last per id and ignores
// entries that do not match (re-armed earlier or later, or the id is gone).
void test_rearm_and_stale_entries(void **) {
    TimerWheel w(100, 16, 0);
    std::unordered_map<uint64_t, int64_t> armed;
    auto arm = [&](uint64_t id, int64_t deadline) {
        armed[id] = deadline;
        w.schedule(id, deadline);
    };
    Fired live;
    auto run = [&](int64_t now) {
        w.advance(now, [&](uint64_t id, int64_t deadline) {
            auto it = armed.find(id);
            if (it == armed.end() || it->second != deadline) return;  // stale
            armed.erase(it);
            live.emplace_back(id, deadline);
        });
    };
    arm(1, 1000);
    arm(1, 500);  // earlier
    arm(2, 500);
    arm(2, 3000);  // later, beyond the horizon (1600)
    arm(3, 700);
    armed.erase(3);  // gone
    run(600);
    assert_int_equal(live.size(), 1);
    assert_int_equal(live[0].first, 1);
    assert_int_equal(live[0].second, 500);
    run(1200);  // client 1's stale 1000 and client 3's 700 fire and are ignored
    assert_int_equal(live.size(), 1);
    run(2999);
    assert_int_equal(live.size(), 1);
    run(3000);
    assert_int_equal(live.size(), 2);
    assert_int_equal(live[1].first, 2);
    assert_int_equal(live[1].second, 3000);
    assert_int_equal(w.size(), 0);
}

// due() re-arming its id (what the server does after each tick of a client).
void test_schedule_from_due(void **) {
    TimerWheel w(100, 8, 0);
    int fired = 0;
    w.schedule(7, 100);
    for (int64_t now = 0; now <= 2000; now += 50) {
        w.advance(now, [&](uint64_t id, int64_t deadline) {
            assert_int_equal(id, 7);
            assert_true(deadline <= now);
            fired++;
            w.schedule(id, deadline + 300);  // periodic, 300 ms
        });
    }
    // 100, 400, ..., 1900: 7 times, and one armed.
    assert_int_equal(fired, 7);
    assert_int_equal(w.size(), 1);
    // An overdue schedule from due() is reported once, by this advance or the next: not lost.
    int eights = 0;
    auto count = [&](uint64_t id, int64_t deadline) {
        if (deadline == 2200) w.schedule(8, 10);
        if (id == 8) eights++;
    };
    w.advance(5000, count);
    w.advance(5000, count);
    assert_int_equal(eights, 1);
    assert_int_equal(w.size(), 0);
}

// Many ids, random deadlines and re-arms, advanced at irregular steps: every live
// deadline fires exactly once, in its tick or the advance right after, never early.
void test_large_n_against_model(void **) {
    std::mt19937_64 rng(42);
    const int64_t tick = 100;
    TimerWheel w(tick, 256, 0);  // horizon 25.6 s
    std::unordered_map<uint64_t, int64_t> armed;
    const uint64_t n = 50000;
    int64_t now = 0;
    std::uniform_int_distribution<int64_t> delay(0, 60000);  // up to 2+ turns
    for (uint64_t id = 1; id <= n; id++) {
        int64_t d = now + 1 + delay(rng);
        armed[id] = d;
        w.schedule(id, d);
    }
    uint64_t fired = 0, stale = 0;
    int64_t prev = now;
    std::uniform_int_distribution<int64_t> step(1, 250);
    std::uniform_int_distribution<uint64_t> pick(1, n);
    while (!armed.empty()) {
        now += step(rng);
        w.advance(now, [&](uint64_t id, int64_t deadline) {
            assert_true(deadline <= now);
            auto it = armed.find(id);
            if (it == armed.end() || it->second != deadline) {
                stale++;
                return;
            }
            assert_true(deadline > prev);  // not reported by an earlier advance that was already past it
            armed.erase(it);
            fired++;
        });
        prev = now;
        // Re-arm a few live ids, earlier or later.
        for (int i = 0; i < 20 && now < 120000; i++) {
            uint64_t id = pick(rng);
            auto it = armed.find(id);
            if (it == armed.end()) continue;
            int64_t d = now + 1 + delay(rng) / 2;  // after this advance: see the check above
            it->second = d;
            w.schedule(id, d);
        }
    }
    assert_int_equal(fired, n);
    assert_true(stale > 0);
    // Stale entries expire too: nothing is left once the last deadline has passed.
    w.advance(now + 100000, [](uint64_t, int64_t) {});
    assert_int_equal(w.size(), 0);
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_across_ticks),
        cmocka_unit_test(test_same_slot_within_tick),
        cmocka_unit_test(test_beyond_horizon),
        cmocka_unit_test(test_long_gap_between_advances),
        cmocka_unit_test(test_overdue_and_negative_times),
        cmocka_unit_test(test_rearm_and_stale_entries),
        cmocka_unit_test(test_schedule_from_due),
        cmocka_unit_test(test_large_n_against_model),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}

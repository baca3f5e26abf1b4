// Unit tests for worker/rooms: join/leave/leave_all, both indexes in step, empty rooms
// erased, the per-member cap, iteration after many removals, no allocation on lookups.
#include <cstdarg>
#include <cstddef>
#include <csetjmp>
#include <cstdint>
#include <cstdlib>
#include <new>

extern "C" {  // cmocka 1.1.5 has no C++ linkage guards
#include <cmocka.h>
}

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "fanout/rooms.h"

// ---- allocation counter: the lookups must not allocate ----
#include "alloc_counter.h"

using psdm::MemberId;
using psdm::Rooms;
using JR = psdm::Rooms::JoinResult;

namespace {

std::set<MemberId> members_of(const Rooms &r, std::string_view room) {
    std::set<MemberId> out;
    const size_t n = r.for_each_member(room, [&](MemberId m) {
        const bool fresh = out.insert(m).second;
        assert_true(fresh);  // each member exactly once
    });
    assert_int_equal(n, out.size());
    return out;
}

void test_join_leave(void **) {
    Rooms r;
    assert_int_equal(r.room_count(), 0);
    assert_true(r.join(1, "xpp", 8) == JR::joined);
    assert_true(r.join(1, "xpp", 8) == JR::already_member);
    assert_true(r.join(2, "xpp", 8) == JR::joined);
    assert_true(r.join(2, "cxi", 8) == JR::joined);
    assert_true(r.check_invariants());
    assert_int_equal(r.room_count(), 2);
    assert_int_equal(r.member_count("xpp"), 2);
    assert_int_equal(r.member_count("cxi"), 1);
    assert_int_equal(r.member_count("nope"), 0);
    assert_int_equal(r.rooms_of_count(1), 1);
    assert_int_equal(r.rooms_of_count(2), 2);
    assert_int_equal(r.rooms_of_count(3), 0);
    assert_true(r.is_member(1, "xpp"));
    assert_false(r.is_member(1, "cxi"));
    assert_false(r.is_member(3, "xpp"));
    assert_false(r.is_member(1, "nope"));

    assert_false(r.leave(1, "cxi"));   // not a member of an existing room
    assert_false(r.leave(1, "nope"));  // no such room
    assert_false(r.leave(3, "xpp"));   // unknown member
    assert_true(r.check_invariants());
    assert_int_equal(r.room_count(), 2);

    assert_true(r.leave(1, "xpp"));
    assert_false(r.leave(1, "xpp"));
    assert_false(r.is_member(1, "xpp"));
    assert_int_equal(r.member_count("xpp"), 1);
    assert_int_equal(r.member_index_size(), 1);  // member 1 is in no room: no entry left
    assert_true(r.check_invariants());

    assert_true(r.leave(2, "xpp"));
    assert_int_equal(r.room_count(), 1);  // the empty room is erased at once
    assert_int_equal(r.member_count("xpp"), 0);
    assert_true(r.leave(2, "cxi"));
    assert_int_equal(r.room_count(), 0);
    assert_int_equal(r.member_index_size(), 0);
    assert_true(r.check_invariants());

    // A room can be created again after being erased.
    assert_true(r.join(5, "xpp", 8) == JR::joined);
    assert_int_equal(r.member_count("xpp"), 1);
    assert_true(r.check_invariants());
}

void test_cap(void **) {
    Rooms r;
    assert_true(r.join(1, "a", 0) == JR::too_many_rooms);
    assert_int_equal(r.member_index_size(), 0);
    assert_int_equal(r.room_count(), 0);

    assert_true(r.join(1, "a", 2) == JR::joined);
    assert_true(r.join(1, "b", 2) == JR::joined);
    assert_true(r.join(1, "c", 2) == JR::too_many_rooms);
    assert_int_equal(r.room_count(), 2);  // "c" was not created
    assert_int_equal(r.rooms_of_count(1), 2);
    // Already being a member is reported as such even at the cap.
    assert_true(r.join(1, "a", 2) == JR::already_member);
    assert_true(r.leave(1, "a"));
    assert_true(r.join(1, "c", 2) == JR::joined);
    assert_true(r.check_invariants());
}

void test_leave_all(void **) {
    Rooms r;
    for (MemberId m = 1; m <= 5; ++m) {
        assert_true(r.join(m, "shared", 16) == JR::joined);
        assert_true(r.join(m, "own" + std::to_string(m), 16) == JR::joined);
    }
    assert_true(r.join(3, "extra", 16) == JR::joined);
    assert_int_equal(r.room_count(), 7);

    assert_int_equal(r.leave_all(3), 3);
    assert_int_equal(r.leave_all(3), 0);
    assert_int_equal(r.leave_all(99), 0);
    assert_int_equal(r.room_count(), 5);  // own3 and extra erased
    assert_int_equal(r.member_count("extra"), 0);
    assert_int_equal(r.member_count("shared"), 4);
    assert_true(members_of(r, "shared") == (std::set<MemberId>{1, 2, 4, 5}));
    assert_int_equal(r.member_index_size(), 4);
    assert_true(r.check_invariants());

    for (MemberId m : {1, 2, 4, 5}) assert_int_equal(r.leave_all(m), 2);
    assert_int_equal(r.room_count(), 0);
    assert_int_equal(r.member_index_size(), 0);
    assert_true(r.check_invariants());
}

void test_rooms_of(void **) {
    Rooms r;
    assert_true(r.rooms_of(1).empty());
    r.join(1, "b", 8);
    r.join(1, "a", 8);
    r.join(1, "c", 8);
    r.leave(1, "a");
    std::vector<std::string> v = r.rooms_of(1);
    std::sort(v.begin(), v.end());
    assert_true(v == (std::vector<std::string>{"b", "c"}));
}

void test_string_view_keys(void **) {
    // Names longer than the small-string buffer, given as views into a larger buffer that is
    // not NUL-terminated at the name's end.
    const std::string buf = "experiment-xpptut15-run-0042|experiment-xpptut15-run-0043";
    const std::string_view a = std::string_view(buf).substr(0, 28);
    const std::string_view b = std::string_view(buf).substr(29);
    Rooms r;
    assert_true(r.join(1, a, 8) == JR::joined);
    assert_true(r.join(2, b, 8) == JR::joined);
    assert_true(r.is_member(1, "experiment-xpptut15-run-0042"));
    assert_false(r.is_member(1, "experiment-xpptut15-run-0043"));
    assert_false(r.is_member(1, "experiment-xpptut15-run-004"));
    assert_int_equal(r.member_count(b), 1);
    // The key must be a copy, not the caller's bytes.
    std::string tmp(a);
    Rooms r2;
    r2.join(7, tmp, 8);
    tmp.assign(tmp.size(), 'x');
    assert_true(r2.is_member(7, a));
    assert_true(r2.check_invariants());
}

void test_lookups_do_not_allocate(void **) {
    Rooms r;
    const std::string name(40, 'r');  // beyond any small-string buffer
    const size_t start = g_allocations;
    for (MemberId m = 0; m < 100; ++m) r.join(m, name, 4);
    assert_true(g_allocations > start);  // the counter does count
    const size_t before = g_allocations;
    uint64_t sum = 0;
    const std::string_view v(name);
    assert_int_equal(r.for_each_member(v, [&](MemberId m) { sum += m; }), 100);
    assert_int_equal(r.for_each_member("absent room name that is rather long", [&](MemberId) {}), 0);
    assert_true(r.is_member(5, v));
    assert_int_equal(r.member_count(v), 100);
    assert_int_equal(r.rooms_of_count(5), 1);
    assert_int_equal(g_allocations, before);
    assert_int_equal(sum, 99 * 100 / 2);
}

// Joins into one room cost O(1) amortised: the room's member vector grows geometrically
// (reserving exactly one more slot per join would reallocate, and copy the room, every time).
void test_joins_into_one_big_room_allocate_logarithmically(void **) {
    constexpr MemberId kN = 200000;
    Rooms r;
    for (MemberId m = 0; m < kN; ++m) assert_true(r.join(m, "first", 4) == JR::joined);
    // Each member now has its entry list, with room for a second room: joining "second"
    // allocates only the room itself and its vector's growth.
    const size_t before = g_allocations;
    for (MemberId m = 0; m < kN; ++m) assert_true(r.join(m, "second", 4) == JR::joined);
    const size_t allocations = g_allocations - before;
    assert_true(allocations <= 40);  // log2(200 000) = 18 doublings, plus the room
    assert_int_equal(r.member_count("second"), kN);
    assert_true(r.check_invariants());
}

void test_many_members_many_removals(void **) {
    constexpr MemberId kN = 10000;
    Rooms r;
    std::set<MemberId> expect;
    for (MemberId m = 0; m < kN; ++m) {
        assert_true(r.join(m, "big", 4) == JR::joined);
        if (m % 10 == 0) r.join(m, "tenth", 4);
        expect.insert(m);
    }
    // Remove every third member, then a pseudo-random half of the rest.
    for (MemberId m = 0; m < kN; m += 3) {
        assert_true(r.leave(m, "big"));
        expect.erase(m);
    }
    std::mt19937_64 rng(42);
    std::vector<MemberId> rest(expect.begin(), expect.end());
    std::shuffle(rest.begin(), rest.end(), rng);
    for (size_t i = 0; i < rest.size() / 2; ++i) {
        assert_true(r.leave_all(rest[i]) >= 1);
        expect.erase(rest[i]);
    }
    assert_true(r.check_invariants());
    assert_int_equal(r.member_count("big"), expect.size());
    assert_true(members_of(r, "big") == expect);

    // Then empty it completely: the room goes away.
    for (MemberId m : expect) assert_true(r.leave(m, "big"));
    assert_int_equal(r.member_count("big"), 0);
    assert_true(r.check_invariants());
    r.join(1, "big", 4);
    assert_true(members_of(r, "big") == (std::set<MemberId>{1}));
}

void test_nested_const_iteration(void **) {
    Rooms r;
    for (MemberId m = 0; m < 10; ++m) {
        r.join(m, "a", 4);
        if (m % 2 == 0) r.join(m, "b", 4);
    }
    size_t both = 0;
    r.for_each_member("a", [&](MemberId m) {
        if (r.is_member(m, "b")) ++both;
        r.for_each_member("b", [](MemberId) {});
    });
    assert_int_equal(both, 5);
    // After a walk, mutation is allowed again.
    assert_true(r.leave(0, "a"));
}

// Random operations against a simple model; both indexes checked all along.
void test_random_against_model(void **) {
    constexpr size_t kCap = 5;
    Rooms r;
    std::map<std::string, std::set<MemberId>> model;  // room -> members
    std::map<MemberId, std::set<std::string>> by_member;
    std::mt19937_64 rng(7);
    for (int step = 0; step < 20000; ++step) {
        const MemberId m = rng() % 60;
        const std::string room = "room-" + std::to_string(rng() % 12);
        const unsigned op = rng() % 10;
        if (op < 6) {
            JR want = JR::joined;
            if (by_member[m].count(room)) {
                want = JR::already_member;
            } else if (by_member[m].size() >= kCap) {
                want = JR::too_many_rooms;
            }
            assert_true(r.join(m, room, kCap) == want);
            if (want == JR::joined) {
                model[room].insert(m);
                by_member[m].insert(room);
            }
        } else if (op < 9) {
            const bool was = by_member[m].count(room) != 0;
            assert_int_equal(r.leave(m, room), was);
            if (was) {
                model[room].erase(m);
                if (model[room].empty()) model.erase(room);
                by_member[m].erase(room);
            }
        } else {
            assert_int_equal(r.leave_all(m), by_member[m].size());
            for (const std::string &x : by_member[m]) {
                model[x].erase(m);
                if (model[x].empty()) model.erase(x);
            }
            by_member[m].clear();
        }
        if (by_member[m].empty()) by_member.erase(m);
        if (step % 500 == 0) {
            assert_true(r.check_invariants());
            assert_int_equal(r.room_count(), model.size());
            assert_int_equal(r.member_index_size(), by_member.size());
            for (const auto &kv : model) assert_true(members_of(r, kv.first) == kv.second);
            for (const auto &kv : by_member) {
                assert_int_equal(r.rooms_of_count(kv.first), kv.second.size());
                std::vector<std::string> got = r.rooms_of(kv.first);
                assert_true(std::set<std::string>(got.begin(), got.end()) == kv.second);
            }
        }
    }
    assert_true(r.check_invariants());
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join_leave),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_leave_all),
        cmocka_unit_test(test_rooms_of),
        cmocka_unit_test(test_string_view_keys),
        cmocka_unit_test(test_lookups_do_not_allocate),
        cmocka_unit_test(test_joins_into_one_big_room_allocate_logarithmically),
        cmocka_unit_test(test_many_members_many_removals),
        cmocka_unit_test(test_nested_const_iteration),
        cmocka_unit_test(test_random_against_model),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}

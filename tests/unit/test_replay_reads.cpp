// Unit tests for worker/kafka/replay_reads: which fetched record belongs to which resume's
// read, when a read is complete, and when the shared reader must start a new pass.
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <setjmp.h>
#include <vector>

extern "C" {
#include <cmocka.h>
}

#include "kafka/replay_reads.h"

namespace {

using psdm::PartitionKey;
using psdm::Positions;
using psdm::ReplayReads;

const PartitionKey kElog{"elog", 0};

struct Step {
    std::vector<uint64_t> wanted;
    std::vector<ReplayReads::Ended> ended;
};

Step record(ReplayReads &r, int64_t offset, const PartitionKey &p = kElog) {
    Step s;
    r.on_record(p, offset, &s.wanted, &s.ended);
    return s;
}

void test_a_read_gets_its_range_and_ends_at_until(void **) {
    ReplayReads r;
    const uint64_t a = r.add(kElog, 10, 13);
    Positions assign;
    assert_true(r.take_assignment(&assign));
    assert_true(assign == Positions({{kElog, 10}}));
    assert_false(r.take_assignment(&assign));  // nothing changed
    assert_true(record(r, 10).wanted == std::vector<uint64_t>{a});
    assert_true(record(r, 11).wanted == std::vector<uint64_t>{a});
    Step last = record(r, 12);
    assert_true(last.wanted == std::vector<uint64_t>{a});
    assert_int_equal(last.ended.size(), 1);
    assert_true(last.ended[0].ok);
    assert_int_equal(last.ended[0].end, 13);
    assert_int_equal(r.active(), 0);
    assert_true(r.take_assignment(&assign));  // nobody reads elog/0 any more
    assert_true(assign.empty());
}

void test_gaps_and_the_partition_end_complete_a_read(void **) {
    ReplayReads r;
    const uint64_t a = r.add(kElog, 5, 9), b = r.add(kElog, 5, 20);
    Positions assign;
    assert_true(r.take_assignment(&assign));
    assert_true(record(r, 6).wanted == (std::vector<uint64_t>{a, b}));  // 5 compacted away
    Step past = record(r, 10);                                          // 7..9: markers
    assert_true(past.wanted == std::vector<uint64_t>{b});
    assert_int_equal(past.ended.size(), 1);
    assert_int_equal(past.ended[0].id, a);
    assert_int_equal(past.ended[0].end, 9);
    std::vector<ReplayReads::Ended> ended;
    r.on_end(kElog, 15, &ended);  // b wants up to 20: not yet
    assert_true(ended.empty());
    r.on_end(kElog, 20, &ended);
    assert_int_equal(ended.size(), 1);
    assert_int_equal(ended[0].id, b);
    assert_true(ended[0].ok);
}

void test_an_open_read_ends_at_the_first_end_of_log(void **) {
    ReplayReads r;
    const uint64_t a = r.add(kElog, 3, ReplayReads::kOpenEnd);
    Positions assign;
    r.take_assignment(&assign);
    assert_true(record(r, 3).wanted == std::vector<uint64_t>{a});
    std::vector<ReplayReads::Ended> ended;
    r.on_end(kElog, 7, &ended);
    assert_int_equal(ended.size(), 1);
    assert_int_equal(ended[0].end, 7);
}

void test_a_read_behind_the_pass_starts_a_new_pass(void **) {
    ReplayReads r;
    const uint64_t a = r.add(kElog, 100, 200);
    Positions assign;
    r.take_assignment(&assign);
    record(r, 100);
    record(r, 101);
    // Ahead of the pass: served by it, no new pass.
    const uint64_t ahead = r.add(kElog, 150, 160);
    assert_false(r.take_assignment(&assign));
    // Behind it: records 50..101 are needed again.
    const uint64_t behind = r.add(kElog, 50, 120);
    assert_true(record(r, 102).wanted == std::vector<uint64_t>{a});  // the old pass: not for `behind`
    assert_true(r.take_assignment(&assign));
    assert_true(assign == Positions({{kElog, 50}}));
    // The new pass: `a` has 100..102 already, `behind` takes everything.
    assert_true(record(r, 50).wanted == std::vector<uint64_t>{behind});
    assert_true(record(r, 103).wanted == (std::vector<uint64_t>{a, behind}));
    assert_true(record(r, 150).wanted == (std::vector<uint64_t>{a, ahead}));
    assert_true(record(r, 99).wanted.empty());  // behind the pass: stale
}

void test_an_error_fails_every_read_of_the_partition_only(void **) {
    ReplayReads r;
    const PartitionKey other{"experiments", 0};
    const uint64_t a = r.add(kElog, 0, 10), b = r.add(kElog, 5, 10), c = r.add(other, 0, 10);
    Positions assign;
    r.take_assignment(&assign);
    assert_int_equal(assign.size(), 2);
    std::vector<ReplayReads::Ended> ended;
    r.on_error(kElog, &ended);
    assert_int_equal(ended.size(), 2);
    assert_int_equal(ended[0].id, a);
    assert_int_equal(ended[1].id, b);
    assert_false(ended[0].ok);
    assert_int_equal(r.active(), 1);
    assert_true(r.take_assignment(&assign));
    assert_true(assign == Positions({{other, 0}}));
    r.cancel(c);
    r.cancel(c);  // twice: ignored
    assert_int_equal(r.active(), 0);
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_read_gets_its_range_and_ends_at_until),
        cmocka_unit_test(test_gaps_and_the_partition_end_complete_a_read),
        cmocka_unit_test(test_an_open_read_ends_at_the_first_end_of_log),
        cmocka_unit_test(test_a_read_behind_the_pass_starts_a_new_pass),
        cmocka_unit_test(test_an_error_fails_every_read_of_the_partition_only),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}

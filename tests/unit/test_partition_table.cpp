// Unit tests for worker/kafka/partition_table: dense indexes per Kafka partition and the
// position the worker stands at on each.
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <setjmp.h>

extern "C" {
#include <cmocka.h>
}

#include "kafka/partition_table.h"

namespace {

using psdm::PartitionKey;
using psdm::PartitionTable;

void test_indexes_are_dense_and_stable(void **) {
    PartitionTable t;
    assert_int_equal(t.find("elog", 0), PartitionTable::kNone);
    assert_int_equal(t.index("elog", 3), 0);
    assert_int_equal(t.index("experiments", 0), 1);
    assert_int_equal(t.index("elog", 0), 2);
    assert_int_equal(t.index("elog", 3), 0);  // the same partition, the same index
    assert_int_equal(t.size(), 3);
    assert_int_equal(t.find(PartitionKey{"elog", 0}), 2);
    assert_int_equal(t.find("elog", 1), PartitionTable::kNone);  // a gap in the numbers
    assert_int_equal(t.find("elog", -1), PartitionTable::kNone);
    assert_int_equal(t.find("other", 0), PartitionTable::kNone);
    assert_true(t.key(1) == (PartitionKey{"experiments", 0}));
}

void test_the_next_offset_follows_what_was_served(void **) {
    PartitionTable t;
    const size_t i = t.index("elog", 0);
    assert_int_equal(t.next(i), -1);
    t.served(i, 41);
    assert_int_equal(t.next(i), 42);
    t.served(i, 99);  // offsets may skip (compaction, transaction markers)
    assert_int_equal(t.next(i), 100);
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_indexes_are_dense_and_stable),
        cmocka_unit_test(test_the_next_offset_follows_what_was_served),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}

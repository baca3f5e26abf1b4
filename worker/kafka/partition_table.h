// PartitionTable: the Kafka partitions the worker has served records of, each with a dense
// index (0, 1, 2... in order of first record) and where the worker stands on it: the next
// offset after the last record served. One table, kept by the live consumer
// (kafka_consumer.h) as it serves records, read by everything that needs a position: the
// consumer itself on a new assignment, the server's resume acks, and the replay window, which
// files records by the dense index (fanout/replay_window.h). Pure; no Kafka.
//
// Cost: index() is one lookup by topic (a map, no allocation once the topic is known) and a
// vector access by partition number. Thread: one (the event loop's).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "kafka/position.h"

namespace psdm {

class PartitionTable {
 public:
    static constexpr size_t kNone = SIZE_MAX;

    // The index of (topic, partition), added if new (partition >= 0).
    size_t index(std::string_view topic, int32_t partition);
    // The index of `key`, kNone if it never had a record.
    size_t find(std::string_view topic, int32_t partition) const;
    size_t find(const PartitionKey &key) const { return find(key.topic, key.partition); }

    // A record at `offset` was served: the next is offset + 1.
    void served(size_t index, int64_t offset) { next_[index] = offset + 1; }
    int64_t next(size_t index) const { return next_[index]; }  // -1: none served yet
    const PartitionKey &key(size_t index) const { return keys_[index]; }
    size_t size() const { return keys_.size(); }

 private:
    std::map<std::string, std::vector<size_t>, std::less<>> by_topic_;  // [partition] -> index
    std::vector<PartitionKey> keys_;
    std::vector<int64_t> next_;
};

}  // namespace psdm

// ReplayReader: reads Kafka from given offsets for resumes (issue 12), beside the worker's live
// consumer (kafka_consumer.h), on the same event loop.
//
// One librdkafka consumer, shared by every resume in progress: it never joins a group nor
// commits; it is assigned (rd_kafka_assign) exactly the partitions some resume needs, each
// from the lowest offset still needed, and ReplayReads (replay_reads.h) tells which read
// each fetched record belongs to and when a read is complete. Its properties are the worker's
// kafka.* ones, with auto.offset.reset=error (an offset Kafka no longer holds fails its reads
// rather than jumping) and enable.partition.eof=true (a read that ends at the log's end learns
// it). What a read may cost is the caller's to bound (recovery_max_records, a deadline).
//
// Thread: event loop only, like KafkaConsumer; librdkafka's threads only write to event_fd().
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kafka/kafka_consumer.h"
#include "kafka/position.h"
#include "kafka/replay_reads.h"

namespace psdm {

class ReplayReader {
 public:
    // `properties`: the worker's kafka.* (bootstrap.servers, security, ...). Returns nullptr
    // and sets *err (naming the property librdkafka refused).
    static std::unique_ptr<ReplayReader> create(const std::map<std::string, std::string> &properties, std::string *err);
    ~ReplayReader();
    ReplayReader(const ReplayReader &) = delete;
    ReplayReader &operator=(const ReplayReader &) = delete;

    // Readable when fetched records or events wait: drain_event_fd(), then poll().
    int event_fd() const { return h_.wake_read.get(); }
    void drain_event_fd() { h_.drain_wake(); }

    // Starts reading `p` from `from` to `until` (exclusive; ReplayReads::kOpenEnd: to the end
    // of the log); from < until. Returns the read's id.
    uint64_t read(const PartitionKey &p, int64_t from, int64_t until);
    void cancel(uint64_t id);

    // Serves at most `max_records` fetched records without waiting: `on_record` for each one
    // some read wants (with their ids), and `on_ended` for each read that completed or failed
    // (`why` says why it failed). Returns the number of records served.
    size_t poll(size_t max_records,
                const std::function<void(const KafkaRecord &, const std::vector<uint64_t> &)> &on_record,
                const std::function<void(const ReplayReads::Ended &, const std::string &why)> &on_ended);

    size_t active_reads() const { return reads_.active(); }

 private:
    ReplayReader() = default;
    void assign();  // applies ReplayReads' assignment if it changed

    KafkaConsumerHandle h_;
    ReplayReads reads_;
    int64_t last_error_log_ms_ = 0;
};

}  // namespace psdm

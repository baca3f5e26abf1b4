// KafkaConsumer: the worker's librdkafka consumer, as a small RAII class.
//
// Every worker instance must receive every message (each web host runs its own
// worker), so each instance joins a consumer group of its own
// ("psdm_socketd-<host>-<pid>-<random>") unless `group.id` is configured, starts at
// the latest offsets (auto.offset.reset=latest) and never commits.
//
// Thread: all methods must be called from one thread (the worker's event loop).
// librdkafka's own threads only write to the wake-up fd (see event_fd()).
#pragma once

#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/unique_fd.h"
#include "kafka/partition_table.h"

namespace psdm {

// One consumed record; views are valid only during the callback.
struct KafkaRecord {
    std::string_view topic;
    int32_t partition;
    int64_t offset;
    std::string_view value;
    int64_t timestamp_ms = -1;             // the record's timestamp (create or log-append time), -1 if none
    size_t index = PartitionTable::kNone;  // its partition in KafkaConsumer::partitions()
};

// The record of a message librdkafka delivered (no error): views into `m`.
KafkaRecord kafka_record_of(const rd_kafka_message_t *m);

// Where the consumer stands on one assigned partition, for the lag metric.
struct KafkaPartitionState {
    std::string topic;
    int32_t partition;
    int64_t position;    // the next offset the worker will serve, -1 before the first fetch
    int64_t high_water;  // the broker's end of the partition as last seen, -1 unknown
    // Where the worker stands before it served a record: the first offset it will serve, by
    // auto.offset.reset (for earliest the partition's start as last seen, 0 if not known;
    // for latest its end); -1 unknown. Resume acks give it for a partition that had no record yet.
    int64_t start = -1;
};

struct KafkaConfDeleter {
    void operator()(rd_kafka_conf_t *conf) const { rd_kafka_conf_destroy(conf); }
};
using KafkaConfPtr = std::unique_ptr<rd_kafka_conf_t, KafkaConfDeleter>;

// The properties a KafkaConsumer is created with: the worker's defaults above
// (auto.offset.reset=latest, enable.auto.commit=false, enable.auto.offset.store=false,
// fetch.wait.max.ms=100), `configured` over them, and group.id made unique to this process
// unless configured.
std::map<std::string, std::string> kafka_consumer_properties(const std::map<std::string, std::string> &configured);

// A property librdkafka refused: its name (without "kafka.") and librdkafka's reason.
struct KafkaPropertyError {
    std::string name;
    std::string reason;  // e.g. No such configuration property: "bootstrap.server"
};

// Builds a librdkafka configuration: rd_kafka_conf_set for each of `properties`, in name
// order. Returns it, or nullptr with one entry in *refused for each property librdkafka
// refused (every property is tried). What KafkaConsumer::create builds its handle from, and
// what the worker's startup checks (--check-config) run. refused must not be null.
KafkaConfPtr kafka_conf_build(const std::map<std::string, std::string> &properties,
                              std::vector<KafkaPropertyError> *refused);

struct KafkaHandleDeleter {
    void operator()(rd_kafka_t *rk) const { rd_kafka_destroy(rk); }
};
struct KafkaQueueDeleter {
    void operator()(rd_kafka_queue_t *q) const { rd_kafka_queue_destroy(q); }
};
struct KafkaMessageDeleter {
    void operator()(rd_kafka_message_t *m) const { rd_kafka_message_destroy(m); }
};
struct KafkaPartitionListDeleter {
    void operator()(rd_kafka_topic_partition_list_t *l) const { rd_kafka_topic_partition_list_destroy(l); }
};
using KafkaMessagePtr = std::unique_ptr<rd_kafka_message_t, KafkaMessageDeleter>;
using KafkaPartitionListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, KafkaPartitionListDeleter>;
using KafkaHandlePtr = std::unique_ptr<rd_kafka_t, KafkaHandleDeleter>;
using KafkaQueuePtr = std::unique_ptr<rd_kafka_queue_t, KafkaQueueDeleter>;

// What every librdkafka consumer of the worker shares (KafkaConsumer, ReplayReader): a handle
// made from `conf` (taken) that logs through base/log and serves errors, logs and rebalances
// from its consumer queue, and a pipe that librdkafka writes to when that queue turns
// non-empty, for the event loop to watch. Returns false and sets *err.
struct KafkaConsumerHandle {
    KafkaHandlePtr rk;
    KafkaQueuePtr queue;
    UniqueFd wake_read, wake_write;
    bool create(KafkaConfPtr conf, std::string *err);
    void drain_wake();  // reads what the pipe holds (non-blocking)
};

class KafkaConsumer {
 public:
    // Creates the consumer and subscribes to `topics`. `properties` go to librdkafka
    // unchanged (bootstrap.servers, security.protocol, sasl.*, ...); the defaults
    // above apply only to keys not given (kafka_consumer_properties, kafka_conf_build). Returns nullptr and sets *err (naming the
    // property) on failure. The broker need not be reachable: librdkafka retries.
    static std::unique_ptr<KafkaConsumer> create(const std::map<std::string, std::string> &properties,
                                                 const std::vector<std::string> &topics, std::string *err);

    // Leaves the consumer group (rd_kafka_consumer_close), then destroys the handle.
    ~KafkaConsumer();
    KafkaConsumer(const KafkaConsumer &) = delete;
    KafkaConsumer &operator=(const KafkaConsumer &) = delete;

    // A descriptor that becomes readable when records or events are waiting.
    // The caller must drain it (drain_event_fd) and then call poll(0, ...).
    int event_fd() const { return h_.wake_read.get(); }
    void drain_event_fd();

    // Serves at most `max_records` records, waiting at most `timeout_ms` for the
    // first one; calls `on_record` for each. Consumer errors are logged
    // (rate-limited) and counted; librdkafka recovers from them by itself.
    // Returns the number of records served.
    size_t poll(int timeout_ms, size_t max_records, const std::function<void(const KafkaRecord &)> &on_record);

    // Partitions currently assigned by the group (0 until the first rebalance).
    int assigned_partitions() const { return assigned_partitions_; }
    // Each assigned partition's position and high watermark, from librdkafka's local state
    // (rd_kafka_position, rd_kafka_get_watermark_offsets: no broker round trip).
    std::vector<KafkaPartitionState> partition_states() const;
    uint64_t error_count() const { return errors_; }
    // Every partition served a record of, and where the worker stands on it (each record's
    // `index` names its entry). Updated before on_record is called.
    const PartitionTable &partitions() const { return partitions_; }
    const std::string &group_id() const { return group_id_; }

 private:
    KafkaConsumer() = default;
    static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                             void *opaque) noexcept;

    KafkaConsumerHandle h_;
    std::string group_id_;
    bool from_earliest_ = false;  // auto.offset.reset is earliest (smallest, beginning)
    int assigned_partitions_ = 0;
    // Where the worker stands on each partition it served a record of. An assignment starts
    // there, not at auto.offset.reset: after the group took the partitions away (a session
    // timeout during a broker outage, a rebalance), no record is skipped nor served twice.
    PartitionTable partitions_;
    uint64_t errors_ = 0;
    int64_t last_error_log_ms_ = 0;
};

}  // namespace psdm

// KafkaBridge: from the Kafka consumer to the rooms, on the event loop.
//
// librdkafka signals new records by writing to a pipe (KafkaConsumer::event_fd());
// the bridge has lws watch that pipe as a raw file, so Kafka work never blocks the
// loop and needs no thread of ours. Each record is routed (routing.h) and published
// (Server::publish); records that cannot be routed are counted and logged, rate-limited.
//
// Thread: event loop only.
#pragma once

#include <libwebsockets.h>

#include <array>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kafka/kafka_consumer.h"
#include "kafka/replay_reader.h"
#include "kafka/position.h"
#include "kafka/routing.h"
#include "server/server.h"

namespace psdm {

class KafkaBridge : private Server::ReplaySource {
 public:
    KafkaBridge(const Config &cfg, Server &server);
    ~KafkaBridge();

    // Creates the consumer (and, unless recovery_max_records is 0, the reader of past records
    // for resumes: the server's ReplaySource) and has lws watch their wake-up fds on `vh`
    // under the protocol named kKafkaProtocolName. Returns false and sets *err on failure.
    bool start(struct lws_context *context, struct lws_vhost *vh, std::string *err);

    // A wake-up fd is readable, or a continuation is due: serve a batch of records (live ones,
    // then those resumes read).
    // May throw (out of memory while publishing): the caller is at the C boundary
    // (base/c_boundary.h), and the batch resumes at the next loop turn.
    void on_readable();

    // What each topic brought so far (for the metrics): records consumed, routed, and skipped
    // by RouteStatus.
    struct TopicCounters {
        uint64_t consumed = 0, routed = 0;
        std::array<uint64_t, kRouteStatusCount> skipped{};
    };
    const std::map<std::string, TopicCounters, std::less<>> &topic_counters() const { return topics_; }
    // The consumer's assigned partitions and where it stands on each (empty before start).
    int assigned_partitions() const;
    std::vector<KafkaPartitionState> partition_states() const;

    static constexpr const char *kKafkaProtocolName = "psdm-kafka";

 private:
    size_t on_record(const KafkaRecord &rec);  // returns the payload bytes published
    Route route_of(const KafkaRecord &rec) const;
    bool watch(struct lws_vhost *vh, int fd, std::string *err);
    // Server::ReplaySource
    uint64_t read(const PartitionKey &p, int64_t from, int64_t until) override;
    void cancel(uint64_t id) override;
    size_t serve_replay(size_t budget_records);
    static void on_continue(lws_sorted_usec_list_t *sul);

    const Config &cfg_;
    Server &server_;
    RoutingConfig routing_;
    std::unique_ptr<KafkaConsumer> consumer_;
    std::unique_ptr<ReplayReader> replay_;
    struct lws_context *context_ = nullptr;
    // lws timers hand back only the sul pointer: it is the first member of a struct
    // that also points back at us.
    struct ContinueTimer {
        lws_sorted_usec_list_t sul;
        KafkaBridge *self;
    } continue_{};
    std::map<std::string, TopicCounters, std::less<>> topics_;
    int64_t last_skip_log_ms_ = 0;
    uint64_t skipped_since_log_ = 0;
    int last_assigned_ = -1;
};

}  // namespace psdm

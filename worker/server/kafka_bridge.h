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
#include <memory>
#include <string>

#include "kafka/kafka_consumer.h"
#include "kafka/routing.h"
#include "server/server.h"

namespace psdm {

class KafkaBridge {
 public:
    KafkaBridge(const Config &cfg, Server &server);
    ~KafkaBridge();

    // Creates the consumer and has lws watch its wake-up fd on `vh` under the
    // protocol named kKafkaProtocolName. Returns false and sets *err on failure.
    bool start(struct lws_context *context, struct lws_vhost *vh, std::string *err);

    // The wake-up fd is readable, or a continuation is due: serve a batch of records.
    // May throw (out of memory while publishing): the caller is at the C boundary
    // (base/c_boundary.h), and the batch resumes at the next loop turn.
    void on_readable();

    uint64_t records() const { return records_; }
    uint64_t skipped(RouteStatus s) const { return skipped_[static_cast<size_t>(s)]; }

    static constexpr const char *kKafkaProtocolName = "psdm-kafka";

 private:
    size_t on_record(const KafkaRecord &rec);  // returns the payload bytes published
    static void on_continue(lws_sorted_usec_list_t *sul);

    const Config &cfg_;
    Server &server_;
    RoutingConfig routing_;
    std::unique_ptr<KafkaConsumer> consumer_;
    struct lws_context *context_ = nullptr;
    // lws timers hand back only the sul pointer: it is the first member of a struct
    // that also points back at us.
    struct ContinueTimer {
        lws_sorted_usec_list_t sul;
        KafkaBridge *self;
    } continue_{};
    uint64_t records_ = 0;
    std::array<uint64_t, 8> skipped_{};
    int64_t last_skip_log_ms_ = 0;
    uint64_t skipped_since_log_ = 0;
    int last_assigned_ = -1;
};

}  // namespace psdm

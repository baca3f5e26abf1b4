#include "kafka/replay_reader.h"

#include "base/clock.h"
#include "base/log.h"

namespace psdm {

namespace {
constexpr const char *kTag = "PSDM-KAFKA";
}  // namespace

std::unique_ptr<ReplayReader> ReplayReader::create(const std::map<std::string, std::string> &properties,
                                                   std::string *err) {
    std::unique_ptr<ReplayReader> self(new ReplayReader());
    std::map<std::string, std::string> props = kafka_consumer_properties(properties);
    // librdkafka wants a group for rd_kafka_assign; this one is never joined nor committed to.
    props["group.id"] += "-replay";
    props["auto.offset.reset"] = "error";
    props["enable.partition.eof"] = "true";
    props["enable.auto.commit"] = "false";
    std::vector<KafkaPropertyError> refused;
    KafkaConfPtr conf = kafka_conf_build(props, &refused);
    if (!conf) {
        *err = "kafka." + refused.front().name + ": " + refused.front().reason;
        return nullptr;
    }
    if (!self->h_.create(std::move(conf), err)) return nullptr;
    return self;
}

ReplayReader::~ReplayReader() {
    if (h_.rk) rd_kafka_consumer_close(h_.rk.get());
    h_.queue.reset();
    h_.rk.reset();
}

uint64_t ReplayReader::read(const PartitionKey &p, int64_t from, int64_t until) {
    const uint64_t id = reads_.add(p, from, until);
    assign();
    return id;
}

void ReplayReader::cancel(uint64_t id) {
    reads_.cancel(id);
    assign();
}

void ReplayReader::assign() {
    Positions want;
    if (!reads_.take_assignment(&want)) return;
    KafkaPartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(want.size())));
    for (const auto &kv : want)
        rd_kafka_topic_partition_list_add(list.get(), kv.first.topic.c_str(), kv.first.partition)->offset = kv.second;
    const rd_kafka_resp_err_t e = rd_kafka_assign(h_.rk.get(), list.get());
    if (e) PSDM_LOG_ERROR(kTag, "replay reader: cannot assign %zu partition(s): %s", want.size(), rd_kafka_err2str(e));
}

size_t ReplayReader::poll(size_t max_records,
                          const std::function<void(const KafkaRecord &, const std::vector<uint64_t> &)> &on_record,
                          const std::function<void(const ReplayReads::Ended &, const std::string &why)> &on_ended) {
    size_t served = 0;
    std::vector<uint64_t> wanted;
    std::vector<ReplayReads::Ended> ended;
    while (served < max_records) {
        KafkaMessagePtr m(rd_kafka_consumer_poll(h_.rk.get(), 0));
        if (!m) break;
        served++;
        if (reads_.active() == 0) continue;  // left over from reads that ended: nobody's
        wanted.clear();
        ended.clear();
        std::string why;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            const KafkaRecord rec = kafka_record_of(m.get());
            reads_.on_record(PartitionKey{std::string(rec.topic), rec.partition}, rec.offset, &wanted, &ended);
            if (!wanted.empty()) on_record(rec, wanted);
        } else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF && m->rkt) {
            reads_.on_end(PartitionKey{rd_kafka_topic_name(m->rkt), m->partition}, m->offset, &ended);
        } else if (m->rkt && m->partition >= 0) {
            // Offset out of range (auto.offset.reset=error), unknown partition: its reads cannot
            // be served.
            why = std::string("Kafka: ") + rd_kafka_message_errstr(m.get());
            reads_.on_error(PartitionKey{rd_kafka_topic_name(m->rkt), m->partition}, &ended);
        } else {  // the cluster as a whole (broker down...): librdkafka retries; reads time out
            const int64_t now = monotonic_ms();
            if (now - last_error_log_ms_ >= 5000) {
                last_error_log_ms_ = now;
                PSDM_LOG_WARN(kTag, "replay reader: %s", rd_kafka_message_errstr(m.get()));
            }
        }
        for (const ReplayReads::Ended &e : ended) on_ended(e, e.ok ? std::string() : why);
        if (!ended.empty()) assign();
    }
    return served;
}

}  // namespace psdm

#include "kafka/kafka_consumer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "base/c_boundary.h"
#include "base/clock.h"
#include "base/log.h"

namespace psdm {

namespace {

constexpr const char *kTag = "PSDM-KAFKA";

// A group id no other worker uses, so that every worker gets every message.
std::string unique_group_id() {
    char host[256] = "unknown";
    gethostname(host, sizeof host - 1);
    std::random_device rd;
    char buf[400];
    snprintf(buf, sizeof buf, "psdm_socketd-%s-%ld-%08x", host, static_cast<long>(getpid()), rd());
    return buf;
}

// librdkafka's log lines, on its own threads; our logger is thread-safe (and does not
// throw: no boundary needed here).
void on_kafka_log(const rd_kafka_t *, int level, const char *fac, const char *buf) noexcept {
    LogLevel lvl = level <= 3   ? LogLevel::error
                   : level == 4 ? LogLevel::warn
                   : level <= 6 ? LogLevel::info
                                : LogLevel::debug;
    logf(lvl, kTag, "librdkafka %s: %s", fac, buf);
}

}  // namespace

std::map<std::string, std::string> kafka_consumer_properties(const std::map<std::string, std::string> &configured) {
    std::map<std::string, std::string> props = {
        {"auto.offset.reset", "latest"},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"fetch.wait.max.ms", "100"},
    };
    for (const auto &kv : configured) props[kv.first] = kv.second;
    if (!props.count("group.id")) props["group.id"] = unique_group_id();
    return props;
}

KafkaConfPtr kafka_conf_build(const std::map<std::string, std::string> &properties,
                              std::vector<KafkaPropertyError> *refused) {
    char errstr[512]; /* librdkafka API error reporting buffer */
    KafkaConfPtr conf(rd_kafka_conf_new());
    const size_t before = refused->size();
    for (const auto &kv : properties) {
        if (rd_kafka_conf_set(conf.get(), kv.first.c_str(), kv.second.c_str(), errstr, sizeof errstr) !=
            RD_KAFKA_CONF_OK)
            refused->push_back({kv.first, errstr});
    }
    if (refused->size() != before) return nullptr;
    return conf;
}

KafkaRecord kafka_record_of(const rd_kafka_message_t *m) {
    return {rd_kafka_topic_name(m->rkt), m->partition, m->offset,
            std::string_view(static_cast<const char *>(m->payload), m->payload ? m->len : 0),
            rd_kafka_message_timestamp(m, nullptr)};
}

bool KafkaConsumerHandle::create(KafkaConfPtr conf, std::string *err) {
    char errstr[512]; /* librdkafka API error reporting buffer */
    rd_kafka_conf_set_log_cb(conf.get(), on_kafka_log);
    rd_kafka_t *handle = rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), errstr, sizeof errstr);
    if (!handle) {
        *err = std::string("cannot create the Kafka consumer: ") + errstr;
        return false;
    }
    conf.release(); /* now owned, and freed, by handle */
    rk.reset(handle);
    // Serve errors, logs and rebalances from the consumer queue, so one poll sees all.
    rd_kafka_poll_set_consumer(handle);
    queue.reset(rd_kafka_queue_get_consumer(handle));
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        *err = std::string("pipe2: ") + strerror(errno);
        return false;
    }
    wake_read.reset(fds[0]);
    wake_write.reset(fds[1]);
    static const char kWake = 'k';
    rd_kafka_queue_io_event_enable(queue.get(), wake_write.get(), &kWake, 1);
    return true;
}

void KafkaConsumerHandle::drain_wake() {
    char buf[256];
    while (read(wake_read.get(), buf, sizeof buf) > 0) {
    }
}

KafkaConsumer::~KafkaConsumer() {
    // Order matters: close while every member the rebalance callback uses is alive,
    // drop our queue reference, and only then destroy the handle.
    if (h_.rk) rd_kafka_consumer_close(h_.rk.get());
    h_.queue.reset();
    h_.rk.reset();
}

std::unique_ptr<KafkaConsumer> KafkaConsumer::create(const std::map<std::string, std::string> &properties,
                                                     const std::vector<std::string> &topics, std::string *err) {
    std::unique_ptr<KafkaConsumer> self(new KafkaConsumer());
    std::map<std::string, std::string> props = kafka_consumer_properties(properties);
    self->group_id_ = props["group.id"];
    const std::string &reset = props["auto.offset.reset"];
    self->from_earliest_ = reset == "earliest" || reset == "smallest" || reset == "beginning";
    std::vector<KafkaPropertyError> refused;
    KafkaConfPtr conf = kafka_conf_build(props, &refused);
    if (!conf) {
        *err = "kafka." + refused.front().name + ": " + refused.front().reason;
        return nullptr;
    }
    rd_kafka_conf_set_rebalance_cb(conf.get(), on_rebalance);
    rd_kafka_conf_set_opaque(conf.get(), self.get());
    if (!self->h_.create(std::move(conf), err)) return nullptr;

    KafkaPartitionListPtr subs(rd_kafka_topic_partition_list_new(static_cast<int>(topics.size())));
    for (const auto &t : topics) rd_kafka_topic_partition_list_add(subs.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(self->h_.rk.get(), subs.get());
    if (e) {
        *err = std::string("cannot subscribe: ") + rd_kafka_err2str(e);
        return nullptr;
    }
    return self;
}

void KafkaConsumer::drain_event_fd() { h_.drain_wake(); }

size_t KafkaConsumer::poll(int timeout_ms, size_t max_records,
                           const std::function<void(const KafkaRecord &)> &on_record) {
    size_t served = 0;
    while (served < max_records) {
        KafkaMessagePtr rkm(rd_kafka_consumer_poll(h_.rk.get(), served == 0 ? timeout_ms : 0));
        if (!rkm) break;
        if (rkm->err) {
            // Informational: librdkafka recovers by itself (broker down, topic missing...).
            errors_++;
            int64_t now = monotonic_ms();
            if (now - last_error_log_ms_ >= 5000) {
                last_error_log_ms_ = now;
                PSDM_LOG_WARN(kTag, "consumer error (%llu so far): %s%s%s", static_cast<unsigned long long>(errors_),
                              rd_kafka_message_errstr(rkm.get()), rkm->rkt ? " topic=" : "",
                              rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "");
            }
            continue;
        }
        KafkaRecord rec = kafka_record_of(rkm.get());
        if (rec.partition >= 0) {
            rec.index = partitions_.index(rec.topic, rec.partition);
            partitions_.served(rec.index, rec.offset);
        }
        on_record(rec);
        served++;
    }
    return served;
}

// Called by librdkafka (C) from within rd_kafka_consumer_poll: at the C boundary.
void KafkaConsumer::on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                                 void *opaque) noexcept {
    guarded("Kafka rebalance callback", [&] {
        auto *self = static_cast<KafkaConsumer *>(opaque);
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
            int resumed = 0;
            for (int i = 0; i < parts->cnt; i++) {  // where the worker stands, if it served there before
                rd_kafka_topic_partition_t &p = parts->elems[i];
                const size_t at = self->partitions_.find(p.topic, p.partition);
                if (at == PartitionTable::kNone || self->partitions_.next(at) < 0) continue;
                p.offset = self->partitions_.next(at);
                resumed++;
            }
            if (resumed > 0)
                PSDM_LOG_INFO(kTag, "group %s: %d partition(s) resume where the worker stood", self->group_id_.c_str(),
                              resumed);
            rd_kafka_assign(rk, parts);
            self->assigned_partitions_ = parts->cnt;
            PSDM_LOG_INFO(kTag, "group %s: assigned %d partition(s)", self->group_id_.c_str(), parts->cnt);
        } else {
            rd_kafka_assign(rk, nullptr);
            self->assigned_partitions_ = 0;
            PSDM_LOG_INFO(kTag, "group %s: partitions revoked (%s)", self->group_id_.c_str(), rd_kafka_err2str(err));
        }
    });
}

std::vector<KafkaPartitionState> KafkaConsumer::partition_states() const {
    std::vector<KafkaPartitionState> out;
    rd_kafka_topic_partition_list_t *parts = nullptr;
    if (rd_kafka_assignment(h_.rk.get(), &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || !parts) return out;
    rd_kafka_position(h_.rk.get(), parts);  // sets each offset: the last served + 1, or a logical one
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t &p = parts->elems[i];
        int64_t low = -1, high = -1;
        if (rd_kafka_get_watermark_offsets(h_.rk.get(), p.topic, p.partition, &low, &high) !=
            RD_KAFKA_RESP_ERR_NO_ERROR)
            low = high = -1;
        // librdkafka learns the low watermark only from statistics: unknown, 0 is never too far
        // on (a position too low costs a client a resync at most; too high, records it drops).
        const int64_t start = from_earliest_ ? std::max<int64_t>(low, 0) : high;
        out.push_back({p.topic, p.partition, p.offset >= 0 ? p.offset : -1, high, start});
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return out;
}

}  // namespace psdm

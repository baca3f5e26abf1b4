#include "server/kafka_bridge.h"

#include <cinttypes>

#include "base/c_boundary.h"
#include "base/log.h"

namespace psdm {

namespace {
constexpr const char *kTag = "PSDM-KAFKA";
// Records served per turn of the event loop at most; the bytes published per turn
// are bounded too (Server::publish_budget_per_turn), so that clients' writes
// interleave with a burst of Kafka traffic.
constexpr size_t kBatch = 2000;
}  // namespace

// Kafka's own topic names and offsets: always within position.h's forms.
static bool positioned(const KafkaRecord &rec) {
    return rec.offset >= 0 && rec.offset <= kMaxPositionOffset && rec.partition >= 0 && kafka_topic_name_ok(rec.topic);
}

// A record, live or read for a resume, routed the same way, with its position spliced in.
Route KafkaBridge::route_of(const KafkaRecord &rec) const {
    return route_kafka_record(rec.topic, rec.value, routing_,
                              positioned(rec) ? record_position(rec.topic, rec.partition, rec.offset) : std::string());
}

KafkaBridge::KafkaBridge(const Config &cfg, Server &server) : cfg_(cfg), server_(server) {
    continue_.self = this;
    routing_.room_field = cfg.room_field;
    routing_.global_room_topics = cfg.global_room_topics;
    routing_.max_payload = cfg.max_payload;
}

KafkaBridge::~KafkaBridge() {
    lws_sul_cancel(&continue_.sul);
    server_.set_partitions(nullptr, nullptr);
    server_.set_replay_source(nullptr);
}

bool KafkaBridge::watch(struct lws_vhost *vh, int fd, std::string *err) {
    lws_sock_file_fd_type desc;
    desc.filefd = fd;
    if (lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, desc, kKafkaProtocolName, nullptr)) return true;
    *err = "cannot watch a Kafka wake-up fd";
    return false;
}

uint64_t KafkaBridge::read(const PartitionKey &p, int64_t from, int64_t until) {
    const uint64_t id = replay_->read(p, from, until);
    lws_sul_schedule(context_, 0, &continue_.sul, on_continue, 1);  // it may have answers queued
    return id;
}

void KafkaBridge::cancel(uint64_t id) { replay_->cancel(id); }

// What resumes read: each record routed as live ones are, and handed to the server with the
// reads that want it.
size_t KafkaBridge::serve_replay(size_t budget_records) {
    if (!replay_) return 0;
    replay_->drain_event_fd();
    return replay_->poll(
        budget_records,
        [this](const KafkaRecord &rec, const std::vector<uint64_t> &reads) {
            server_.on_replay_record(reads, route_of(rec), rec.timestamp_ms);
        },
        [this](const ReplayReads::Ended &e, const std::string &why) { server_.on_replay_ended(e.id, e.ok, why); });
}

bool KafkaBridge::start(struct lws_context *context, struct lws_vhost *vh, std::string *err) {
    consumer_ = KafkaConsumer::create(cfg_.kafka, cfg_.topics, err);
    if (!consumer_) return false;
    server_.set_partitions(&consumer_->partitions(), [this] { return consumer_->partition_states(); });
    context_ = context;
    if (!watch(vh, consumer_->event_fd(), err)) return false;
    if (cfg_.recovery_max_records > 0) {
        replay_ = ReplayReader::create(cfg_.kafka, err);
        if (!replay_ || !watch(vh, replay_->event_fd(), err)) return false;
        server_.set_replay_source(this);
    }
    std::string topics;
    for (const auto &t : cfg_.topics) topics += (topics.empty() ? "" : ",") + t;
    PSDM_LOG_INFO(kTag, "consuming %s from %s as group %s (every worker gets every message)", topics.c_str(),
                  cfg_.kafka.count("bootstrap.servers") ? cfg_.kafka.at("bootstrap.servers").c_str() : "(default)",
                  consumer_->group_id().c_str());
    // Serve anything already queued (the pipe only signals empty -> non-empty).
    lws_sul_schedule(context_, 0, &continue_.sul, on_continue, 1);
    return true;
}

// An lws timer (C): an exception is logged; the continuation armed first still runs.
void KafkaBridge::on_continue(lws_sorted_usec_list_t *sul) {
    KafkaBridge *self = reinterpret_cast<ContinueTimer *>(sul)->self;
    guarded("Kafka continuation timer", [self] { self->on_readable(); });
}

void KafkaBridge::on_readable() {
    // Come back at once unless this batch ends normally (rescheduled below): a batch cut
    // short by an exception (out of memory while publishing) resumes next loop turn,
    // and the pipe, which signals only when the queue turns non-empty, is not needed.
    lws_sul_schedule(context_, 0, &continue_.sul, on_continue, 1);
    consumer_->drain_event_fd();
    const size_t budget = server_.publish_budget_per_turn();
    size_t records = 0, published_bytes = 0;
    while (records < kBatch && published_bytes < budget) {
        if (consumer_->poll(0, 1, [&](const KafkaRecord &rec) { published_bytes += on_record(rec); }) == 0) break;
        records++;
    }
    if (consumer_->assigned_partitions() != last_assigned_) {
        last_assigned_ = consumer_->assigned_partitions();
        PSDM_LOG_INFO(kTag, "ready: %d partition(s) assigned", last_assigned_);
    }
    // Stopped early: more may be waiting, and the pipe will not signal again for
    // them, so come back right after the clients' writes of this loop turn.
    // Otherwise poll now and then anyway, so that rebalances and errors are served
    // even when no record arrives.
    // Then what resumes read, as much again at most.
    const size_t replayed = serve_replay(kBatch);
    bool stopped_early = records == kBatch || published_bytes >= budget || replayed == kBatch;
    lws_sul_schedule(context_, 0, &continue_.sul, on_continue, stopped_early ? 1 : 500 * LWS_US_PER_MS);
}

int KafkaBridge::assigned_partitions() const { return consumer_ ? consumer_->assigned_partitions() : 0; }

std::vector<KafkaPartitionState> KafkaBridge::partition_states() const {
    return consumer_ ? consumer_->partition_states() : std::vector<KafkaPartitionState>{};
}

size_t KafkaBridge::on_record(const KafkaRecord &rec) {
    auto it = topics_.find(rec.topic);
    if (it == topics_.end()) it = topics_.emplace(std::string(rec.topic), TopicCounters{}).first;
    TopicCounters &t = it->second;
    t.consumed++;
    const size_t partition = positioned(rec) ? rec.index : Server::kNoPartition;
    Route route = route_of(rec);
    if (route.status == RouteStatus::ok) {
        t.routed++;
        server_.publish(route, rec.timestamp_ms, partition, rec.offset);
        return route.payload.size();
    }
    t.skipped[static_cast<size_t>(route.status)]++;
    skipped_since_log_++;
    int64_t now = monotonic_ms();
    if (now - last_skip_log_ms_ >= 1000) {  // one line a second at most
        PSDM_LOG_WARN(kTag,
                      "skipped record %.*s/%" PRId32 "@%" PRId64 ": %s (%" PRIu64
                      " record(s) skipped since the last such line)",
                      static_cast<int>(rec.topic.size()), rec.topic.data(), rec.partition, rec.offset,
                      route_status_name(route.status), skipped_since_log_);
        last_skip_log_ms_ = now;
        skipped_since_log_ = 0;
    }
    return 0;
}

}  // namespace psdm

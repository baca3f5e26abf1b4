// The worker's metrics and health. See metrics_report.h.
#include "server/metrics_report.h"

#include <time.h>

#include <cassert>
#include <cstdint>

#include "authz/authz.h"
#include "base/log.h"
#include "metrics/prometheus.h"
#include "server/direct_acceptor.h"
#include "server/handoff_server.h"
#include "server/kafka_bridge.h"
#include "server/server.h"

namespace psdm {

namespace {

constexpr const char *kTag = "PSDM-ADMIN";

// When the process started, seconds since the epoch: taken during static initialization,
// before main() runs (what process_start_time_seconds means, to the second).
double wall_seconds() {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}
const double g_start_time = wall_seconds();

void report_process(MetricsWriter &m) {
    m.gauge("psdm_socketd_build_info", "The worker's version (the value is always 1).", 1, {{"version", PSDM_VERSION}});
    m.gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", g_start_time);
}

void report_server(MetricsWriter &m, const Server &server) {
    const ServerStats s = server.stats();
    m.family("psdm_socketd_connections", MetricType::gauge,
             "WebSocket connections open now, by how they came (handoff: from Apache; direct: the listen port) "
             "and Engine.IO version.");
    for (Via via : {Via::handoff, Via::direct})
        for (int eio : {3, 4})
            m.sample(static_cast<double>(s.open[static_cast<size_t>(via)][eio == 3 ? 0 : 1]),
                     {{"via", via_name(via)}, {"eio", eio == 3 ? "3" : "4"}});
    m.counter("psdm_socketd_connections_opened_total", "WebSocket connections opened (101 written).",
              s.connections_total);
    m.family(
        "psdm_socketd_connections_closed_total", MetricType::counter,
        "WebSocket connections closed, by why (client_gone: EOF without a close frame; server_stopping: SIGTERM).");
    for (size_t k = 0; k < s.closed.size(); k++)
        m.sample(s.closed[k], {{"reason", close_kind_name(static_cast<CloseKind>(k))}});
    m.gauge("psdm_socketd_rooms", "Rooms with at least one member.", static_cast<double>(server.rooms().room_count()));
    m.gauge("psdm_socketd_room_members", "Room memberships: (connection, room) pairs.",
            static_cast<double>(server.rooms().membership_count()));
    m.counter("psdm_socketd_deliveries_total", "Messages queued for a client (one per record and recipient).",
              s.deliveries);
    m.counter("psdm_socketd_sent_bytes_total", "Bytes written to clients (WebSocket frames).", s.bytes_written);
    m.family("psdm_socketd_immediate_writes_total", MetricType::counter,
             "Frames written to a client at once because nothing was queued for it, by how: io_uring (a record's "
             "fan-out, in batches; fanout_sends) or send().");
    m.sample(s.writes_uring, {{"via", "io_uring"}});
    m.sample(s.writes_send, {{"via", "send"}});
    m.counter("psdm_socketd_io_uring_submits_total",
              "io_uring submissions of fan-out writes (one system call each, up to 256 writes).", s.uring_submits);
    m.counter("psdm_socketd_received_bytes_total", "Bytes read from clients after their upgrade.", s.bytes_read);
    m.gauge("psdm_socketd_client_backlog_bytes", "Bytes queued for clients and not yet written, all clients.",
            static_cast<double>(s.backlog_bytes));
    m.counter("psdm_socketd_slow_consumers_closed_total",
              "Clients closed with 1013 for falling more than client_backlog behind.", s.slow_consumers_closed);
    m.counter("psdm_socketd_memberships_revoked_total",
              "Room memberships removed by a re-check of the authorizer (reload, expiry).", s.memberships_revoked);
    const Server::ResumeStats &r = server.resume_stats();
    m.family("psdm_socketd_resumes_total", MetricType::counter,
             "Joins that gave positions to resume from, by outcome (refused: positions malformed or foreign).");
    m.sample(r.recovered, {{"outcome", "recovered"}});
    m.sample(r.not_recovered, {{"outcome", "not_recovered"}});
    m.sample(r.refused, {{"outcome", "refused"}});
    m.counter("psdm_socketd_replayed_records_total", "Records sent again to clients that resumed.", r.records_replayed);
    m.gauge("psdm_socketd_resumes_in_progress", "Resumes waiting for Kafka (or for the worker's positions).",
            static_cast<double>(server.resumes_in_progress()));
    m.counter("psdm_socketd_replay_kafka_reads_total",
              "Reads of a partition from Kafka for a resume (beyond the replay window).", r.kafka_reads);
    m.counter("psdm_socketd_replay_kafka_records_total", "Records those reads fetched (for any room).", r.records_read);
    m.gauge("psdm_socketd_replay_window_bytes", "Bytes held for resumes (recovery_max_bytes at most).",
            static_cast<double>(server.replay_window().bytes()));
    m.gauge("psdm_socketd_replay_window_records", "Records held for resumes.",
            static_cast<double>(server.replay_window().records()));
    m.family("psdm_socketd_delivery_latency_seconds", MetricType::histogram,
             "From a Kafka record's timestamp to the first write of its message to a client (clocks of two hosts).");
    m.histogram(server.delivery_latency());
}

void report_authz(MetricsWriter &m, const Authorizer &authz) {
    const AuthzCounters &c = authz.counters();
    const char *provider = authz.name();
    m.family("psdm_socketd_authz_checks_total", MetricType::counter,
             "Join checks answered, by provider and result (failed: no answer could be had).");
    m.sample(c.allowed, {{"provider", provider}, {"result", "allowed"}});
    m.sample(c.denied, {{"provider", provider}, {"result", "denied"}});
    m.sample(c.failed, {{"provider", provider}, {"result", "failed"}});
    m.counter("psdm_socketd_authz_cache_hits_total", "Join checks answered from the provider's cache.", c.cache_hits,
              {{"provider", provider}});
    m.counter("psdm_socketd_authz_requests_total", "Requests the provider sent to the application (http).", c.requests,
              {{"provider", provider}});
}

void report_handoff(MetricsWriter &m, const HandoffServer &handoff) {
    const HandoffServer::Stats &s = handoff.stats();
    m.family("psdm_socketd_handoffs_total", MetricType::counter,
             "Connections handed over by Apache, by outcome (withdrawn: the module kept it).");
    m.sample(s.adopted, {{"outcome", "adopted"}});
    m.sample(s.refused, {{"outcome", "refused"}});
    m.sample(s.withdrawn, {{"outcome", "withdrawn"}});
    m.family("psdm_socketd_handoffs_refused_total", MetricType::counter,
             "Handoffs the worker refused, by reason (its answer to the client: 503, or the rules' 4xx).");
    for (const char *reason : {"unusable_request", "replay_limit", "upgrade_rules", "over_capacity", "stopping"}) {
        auto it = s.refused_by.find(reason);
        m.sample(it == s.refused_by.end() ? uint64_t{0} : it->second, {{"reason", reason}});
    }
}

void report_direct(MetricsWriter &m, const DirectAcceptor &direct) {
    m.family("psdm_socketd_direct_upgrades_refused_total", MetricType::counter,
             "Requests the listen port answered with an HTTP error, by status.");
    for (const auto &kv : direct.refused_by_status()) {
        const std::string status = std::to_string(kv.first);
        m.sample(kv.second, {{"status", status}});
    }
}

void report_kafka(MetricsWriter &m, const KafkaBridge &bridge) {
    m.gauge("psdm_socketd_kafka_partitions_assigned", "Kafka partitions assigned to the worker's consumer.",
            bridge.assigned_partitions());
    const auto &topics = bridge.topic_counters();
    m.family("psdm_socketd_kafka_records_consumed_total", MetricType::counter, "Kafka records consumed, by topic.");
    for (const auto &kv : topics) m.sample(kv.second.consumed, {{"topic", kv.first}});
    m.family("psdm_socketd_kafka_records_routed_total", MetricType::counter,
             "Kafka records routed to a room (and published), by topic.");
    for (const auto &kv : topics) m.sample(kv.second.routed, {{"topic", kv.first}});
    m.family("psdm_socketd_kafka_records_skipped_total", MetricType::counter,
             "Kafka records dropped, by topic and reason (too_large, not_json, not_object, no_room_field).");
    for (const auto &kv : topics)
        for (size_t r = 1; r < kRouteStatusCount; r++)
            m.sample(kv.second.skipped[r],
                     {{"topic", kv.first}, {"reason", route_status_name(static_cast<RouteStatus>(r))}});
    m.family("psdm_socketd_kafka_consumer_lag", MetricType::gauge,
             "Records of an assigned partition not yet consumed (the broker's high watermark as last seen, minus the "
             "worker's position), by topic and partition.");
    for (const KafkaPartitionState &p : bridge.partition_states()) {
        if (p.position < 0 || p.high_water < 0) continue;  // nothing fetched yet
        const std::string partition = std::to_string(p.partition);
        m.sample(static_cast<double>(p.high_water > p.position ? p.high_water - p.position : 0),
                 {{"topic", p.topic}, {"partition", partition}});
    }
}

}  // namespace

std::string render_metrics(const WorkerContext &w) {
    MetricsWriter m;
    report_process(m);
    if (w.server) {
        report_server(m, *w.server);
        report_authz(m, w.server->authorizer());
    }
    if (w.handoff) report_handoff(m, *w.handoff);
    if (w.direct) report_direct(m, *w.direct);
    if (w.bridge) report_kafka(m, *w.bridge);
    if (!m.ok()) {  // a bug here: a name or label that breaks the format's rules
        PSDM_LOG_ERROR(kTag, "metrics left out of /metrics: %s", m.first_error().c_str());
        assert(!"a metric breaks the Prometheus format's rules");
    }
    return m.take();
}

Health health_of(const WorkerContext &w) {
    if (w.server && w.server->draining()) return {false, "stopping: draining the connections"};
    if (w.server && !w.server->config().handoff_socket.empty() && !w.handoff)
        return {false, "handoff: not listening on " + w.server->config().handoff_socket};
    if (!w.bridge) return {false, "kafka: not started"};
    if (w.bridge->assigned_partitions() <= 0) return {false, "kafka: no partitions assigned"};
    return {true, ""};
}

}  // namespace psdm

// What the admin listener (admin_server.h) answers: the worker's metrics in the Prometheus
// text format (metrics/prometheus.h) and its health, read from the running parts
// (WorkerContext: Server, KafkaBridge, HandoffServer).
//
// Metrics are counted where they happen (ServerStats, HandoffServer::Stats, AuthzCounters,
// ...) and only read here; a new metric gets its family in render_metrics. Names follow
// Prometheus conventions: prefix psdm_socketd_, counters end in _total, units in the name
// (_seconds, _bytes).
//
// Thread: event loop only (the state read here is the loop's; a scrape sees one consistent
// moment because nothing else runs while it is rendered).
#pragma once

#include <string>

#include "server/ws_protocol.h"

namespace psdm {

// The exposition of every metric; a family that breaks the format's rules is left out and
// logged (a bug: debug builds assert).
std::string render_metrics(const WorkerContext &w);

// ok: the worker does its job: the handoff listener (when configured) listens, Kafka has
// partitions assigned, and the worker is not stopping. Else `reason`, one line naming the
// first part at fault ("kafka: no partitions assigned").
struct Health {
    bool ok = false;
    std::string reason;
};
Health health_of(const WorkerContext &w);

}  // namespace psdm

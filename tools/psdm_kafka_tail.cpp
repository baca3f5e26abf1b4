// psdm_kafka_tail: prints the records of Kafka topics, one per line, read with the
// worker's own consumer code (worker/kafka/kafka_consumer.h). For tests and for ops
// checking what a worker would see.
//
//   psdm_kafka_tail -b BOOTSTRAP -t TOPIC[,TOPIC...] [--from-beginning] [--count N]
//                   [--timeout-ms MS] [-X property=value]...
//
// Output on stdout: "TOPIC<TAB>PARTITION<TAB>OFFSET<TAB>VALUE" per record.
// Once the consumer group has assigned partitions it prints "ready" on stderr.
// Exit: 0 when --count records were read (or on SIGINT/SIGTERM), 1 on --timeout-ms,
// 2 on bad arguments or a consumer that cannot be created.
#include <poll.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "base/clock.h"
#include "kafka/kafka_consumer.h"
#include "base/log.h"

namespace {

volatile sig_atomic_t g_run = 1;
void on_signal(int) { g_run = 0; }

std::vector<std::string> split_commas(const std::string &s) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= s.size()) {
        size_t comma = s.find(',', start);
        if (comma == std::string::npos) comma = s.size();
        if (comma > start) out.push_back(s.substr(start, comma - start));
        start = comma + 1;
    }
    return out;
}

int usage(const char *msg) {
    if (msg) fprintf(stderr, "psdm_kafka_tail: %s\n", msg);
    fprintf(stderr,
            "usage: psdm_kafka_tail -b BOOTSTRAP -t TOPIC[,TOPIC...] [--from-beginning] [--count N]\n"
            "                       [--timeout-ms MS] [-X property=value]...\n");
    return 2;
}

}  // namespace

int main(int argc, char **argv) {
    std::map<std::string, std::string> props;
    std::vector<std::string> topics;
    long count = -1, timeout_ms = -1;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : nullptr;
        if (a == "--from-beginning") {
            props["auto.offset.reset"] = "earliest";
        } else if (a == "-b" && v) {
            props["bootstrap.servers"] = v, i++;
        } else if (a == "-t" && v) {
            topics = split_commas(v), i++;
        } else if (a == "--count" && v) {
            count = strtol(v, nullptr, 10), i++;
        } else if (a == "--timeout-ms" && v) {
            timeout_ms = strtol(v, nullptr, 10), i++;
        } else if (a == "-X" && v) {
            std::string kv = v;
            size_t eq = kv.find('=');
            if (eq == std::string::npos || eq == 0) return usage("-X expects property=value");
            props[kv.substr(0, eq)] = kv.substr(eq + 1), i++;
        } else {
            return usage(("unknown or incomplete argument '" + a + "'").c_str());
        }
    }
    if (!props.count("bootstrap.servers") || topics.empty()) return usage("-b and -t are required");

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    std::string err;
    auto consumer = psdm::KafkaConsumer::create(props, topics, &err);
    if (!consumer) {
        fprintf(stderr, "psdm_kafka_tail: %s\n", err.c_str());
        return 2;
    }

    const int64_t deadline = timeout_ms >= 0 ? psdm::monotonic_ms() + timeout_ms : INT64_MAX;
    bool said_ready = false;
    long seen = 0;
    while (g_run && (count < 0 || seen < count)) {
        if (psdm::monotonic_ms() >= deadline) {
            fprintf(stderr, "psdm_kafka_tail: timeout after %ld ms with %ld record(s)\n", timeout_ms, seen);
            return 1;
        }
        // Wait on the same wake-up fd the worker's event loop uses.
        struct pollfd pfd = {consumer->event_fd(), POLLIN, 0};
        ::poll(&pfd, 1, 100);
        consumer->drain_event_fd();
        consumer->poll(0, 1000, [&](const psdm::KafkaRecord &r) {
            printf("%.*s\t%d\t%lld\t%.*s\n", static_cast<int>(r.topic.size()), r.topic.data(), r.partition,
                   static_cast<long long>(r.offset), static_cast<int>(r.value.size()), r.value.data());
            seen++;
        });
        fflush(stdout);
        if (!said_ready && consumer->assigned_partitions() > 0) {
            fprintf(stderr, "ready\n");
            said_ready = true;
        }
    }
    return 0;
}

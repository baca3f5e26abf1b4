// Positions: where a record stands in Kafka, as the browser sees it (issue 12's resume).
//
// Kafka gives every record a position, (topic, partition, offset), that means the same on every
// worker of every host reading the same cluster. The worker hands positions to the client and
// takes them back on a resume, as text; this file is that text's one definition. Pure: no
// librdkafka, no I/O, no logging; fuzzed (tests/fuzz/fuzz_position).
//
// THE FORMS (the contract with js/websocket_client.js and any page that keeps positions):
//
//   record position   "TOPIC/PARTITION/OFFSET"   e.g. "elog/0/1234"
//       The field "psdm_ws_msg_position" of each psdm_ws_msg event's object (routing.h): the
//       record's own position.
//   partition key     "TOPIC/PARTITION"          e.g. "elog/0"
//   positions         {"elog/0": 1235, "experiments/0": 88}
//       For each partition key, the NEXT offset: one past the last record the client has
//       (or, from a join's acknowledgement, one past the last record the worker delivered
//       before the client joined). A client that got "elog/0/1234" holds {"elog/0": 1235}.
//
//   TOPIC      a Kafka topic name (kafka_topic_name_ok, base/config.h: 1 to 249 of
//              [A-Za-z0-9._-], not "." or "..": never a '/')
//   PARTITION  decimal, 0 .. 2147483647, no sign, no leading zero (but "0")
//   OFFSET     decimal, 0 .. 2^53 - 1 (exact in a JavaScript number), same spelling
//
// A positions object given by a client (the second argument of `join`) is checked strictly:
// a JSON object of at most kMaxResumePartitions members, each key a partition key of a topic
// the worker consumes, each value an integer OFFSET (no fraction, no exponent, no sign), no
// key twice. Anything else is refused with a reason (never partly used): the worker then
// answers the join with recovered: false and the reason, and delivers live records only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct cJSON;

namespace psdm {

// A Kafka partition: (topic, partition).
struct PartitionKey {
    std::string topic;
    int32_t partition = 0;
    bool operator<(const PartitionKey &o) const { return topic != o.topic ? topic < o.topic : partition < o.partition; }
    bool operator==(const PartitionKey &o) const { return topic == o.topic && partition == o.partition; }
};

// Next offset by partition.
using Positions = std::map<PartitionKey, int64_t>;

inline constexpr int64_t kMaxPositionOffset = (int64_t{1} << 53) - 1;
inline constexpr size_t kMaxResumePartitions = 1024;

// "elog/0/1234". topic must satisfy kafka_topic_name_ok, partition >= 0, 0 <= offset <=
// kMaxPositionOffset (asserted).
std::string record_position(std::string_view topic, int32_t partition, int64_t offset);

// "elog/0"
std::string partition_key_text(const PartitionKey &k);

// Parses "TOPIC/PARTITION/OFFSET"; nullopt unless it is exactly that form.
struct RecordPosition {
    PartitionKey key;
    int64_t offset = 0;
};
std::optional<RecordPosition> parse_record_position(std::string_view text);

// Parses "TOPIC/PARTITION"; nullopt unless it is exactly that form.
std::optional<PartitionKey> parse_partition_key(std::string_view text);

// The JSON text of `p`: {"elog/0":1235,...}, keys in PartitionKey order.
std::string positions_json(const Positions &p);

// Reads a client's positions object (see above). `topics`: the topics the worker consumes.
// On success returns true and sets *out; else false and *why (one line, no client bytes
// beyond a short quoted prefix).
bool parse_resume_positions(const cJSON *json, const std::vector<std::string> &topics, Positions *out,
                            std::string *why);

}  // namespace psdm

// Positions: see position.h.
#include "kafka/position.h"

#include <cjson/cJSON.h>

#include <cassert>
#include <cmath>

#include "base/config.h"
#include "base/json.h"

namespace psdm {

namespace {

// A decimal of at most `max`: digits only, no sign, no leading zero but "0".
std::optional<int64_t> parse_decimal(std::string_view s, int64_t max) {
    if (s.empty() || s.size() > 16 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
    int64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + (c - '0');
    }
    if (v > max) return std::nullopt;
    return v;
}

constexpr int64_t kMaxPartition = 2147483647;

// "'abc...'": at most 40 bytes of what a client sent, for a reason line; bytes outside
// printable ASCII as '?'.
std::string quoted(std::string_view s) {
    std::string out = "'";
    for (size_t i = 0; i < s.size() && i < 40; i++) out += (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    return out + (s.size() > 40 ? "...'" : "'");
}

}  // namespace

std::string partition_key_text(const PartitionKey &k) { return k.topic + "/" + std::to_string(k.partition); }

std::string record_position(std::string_view topic, int32_t partition, int64_t offset) {
    assert(kafka_topic_name_ok(topic) && partition >= 0 && offset >= 0 && offset <= kMaxPositionOffset);
    std::string out(topic);
    out += '/';
    out += std::to_string(partition);
    out += '/';
    out += std::to_string(offset);
    return out;
}

std::optional<PartitionKey> parse_partition_key(std::string_view text) {
    const size_t slash = text.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    const std::string_view topic = text.substr(0, slash);
    const std::optional<int64_t> partition = parse_decimal(text.substr(slash + 1), kMaxPartition);
    if (!kafka_topic_name_ok(topic) || !partition) return std::nullopt;
    return PartitionKey{std::string(topic), static_cast<int32_t>(*partition)};
}

std::optional<RecordPosition> parse_record_position(std::string_view text) {
    const size_t slash = text.rfind('/');
    if (slash == std::string_view::npos) return std::nullopt;
    std::optional<PartitionKey> key = parse_partition_key(text.substr(0, slash));
    const std::optional<int64_t> offset = parse_decimal(text.substr(slash + 1), kMaxPositionOffset);
    if (!key || !offset) return std::nullopt;
    return RecordPosition{std::move(*key), *offset};
}

std::string positions_json(const Positions &p) {
    std::string out = "{";
    for (const auto &kv : p) {
        if (out.size() > 1) out += ',';
        out += json_escape_string(partition_key_text(kv.first));  // plain ASCII: quoted as it is
        out += ':';
        out += std::to_string(kv.second);
    }
    return out + "}";
}

bool parse_resume_positions(const cJSON *json, const std::vector<std::string> &topics, Positions *out,
                            std::string *why) {
    if (!cJSON_IsObject(json)) {
        *why = "positions are not a JSON object";
        return false;
    }
    Positions got;
    size_t n = 0;
    for (const cJSON *m = json->child; m; m = m->next) {
        if (++n > kMaxResumePartitions) {
            *why = "more than " + std::to_string(kMaxResumePartitions) + " positions";
            return false;
        }
        const std::string_view name = m->string ? std::string_view(m->string) : std::string_view();
        std::optional<PartitionKey> key = parse_partition_key(name);
        if (!key) {
            *why = "position key " + quoted(name) + " is not TOPIC/PARTITION";
            return false;
        }
        bool consumed = false;
        for (const std::string &t : topics) consumed = consumed || t == key->topic;
        if (!consumed) {
            *why = "position of topic " + quoted(key->topic) + ", which this worker does not consume";
            return false;
        }
        // cJSON keeps numbers as double: an integer up to 2^53 - 1 is exact there.
        const double v = cJSON_IsNumber(m) ? m->valuedouble : -1;
        if (!(v >= 0 && v <= static_cast<double>(kMaxPositionOffset)) || std::floor(v) != v) {
            *why = "position of " + quoted(name) + " is not an offset (an integer 0 .. 2^53 - 1)";
            return false;
        }
        if (!got.emplace(std::move(*key), static_cast<int64_t>(v)).second) {
            *why = "position of " + quoted(name) + " given twice";
            return false;
        }
    }
    *out = std::move(got);
    return true;
}

}  // namespace psdm

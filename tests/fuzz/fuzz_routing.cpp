// libFuzzer target for worker/kafka/routing: a Kafka record (topic, value) to its room and
// payload. Built by CMake with -DPSDM_FUZZ=ON; run with `make fuzz` (README, "Fuzzing").
//
// Input: byte 0 = topic length (mod 32), then the topic, then the record value; the last
// byte of a long enough input also picks a small max_payload now and then.
// Checks, beyond the sanitizers: an ok payload is the trimmed value with the type field
// spliced in before its last byte, is strict JSON (json_parse_strict), an object whose last
// psdm_ws_msg_type is the topic (as its JSON string literal decodes: invalid UTF-8 replaced,
// cut at a NUL), and its room is the last room field; anything else leaves room and payload
// empty.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include <cjson/cJSON.h>

#include "fuzz_check.h"
#include "base/json.h"
#include "kafka/routing.h"

namespace {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    const size_t topic_len = std::min<size_t>(data[0] % 32, size - 1);
    const std::string_view topic(reinterpret_cast<const char *>(data + 1), topic_len);
    const std::string_view value(reinterpret_cast<const char *>(data + 1 + topic_len), size - 1 - topic_len);

    psdm::RoutingConfig cfg;
    if (size > 8 && data[size - 1] == 0xFF) cfg.max_payload = data[size - 2];
    cfg.global_room_topics = {"experiments", "g"};

    // Half the inputs with a position (what the worker passes: always plain ASCII).
    const std::string position = (data[0] & 0x80) ? "elog/" + std::to_string(size) + "/" + std::to_string(topic_len)
                                                  : "";
    const psdm::Route r = psdm::route_kafka_record(topic, value, cfg, position);
    CHECK(std::strcmp(psdm::route_status_name(r.status), "unknown") != 0);
    const bool global = topic == "experiments" || topic == "g";
    CHECK(r.to_global_room == global);

    if (r.status != psdm::RouteStatus::ok) {
        CHECK(r.room.empty() && r.payload.empty());
        if (value.size() > cfg.max_payload) CHECK(r.status == psdm::RouteStatus::too_large);
        return 0;
    }
    CHECK(value.size() <= cfg.max_payload);
    CHECK(!r.room.empty() || global);

    // The payload is the trimmed value, cut before its closing brace, plus our field.
    size_t b = 0, e = value.size();
    while (b < e && is_ws(value[b])) ++b;
    while (e > b && is_ws(value[e - 1])) --e;
    const std::string_view text = value.substr(b, e - b);
    CHECK(text.size() >= 2 && text.front() == '{' && text.back() == '}');
    CHECK(r.payload.compare(0, text.size() - 1, text.substr(0, text.size() - 1)) == 0);
    CHECK(r.payload.back() == '}');

    const psdm::JsonPtr root = psdm::json_parse_strict(r.payload);
    CHECK(root != nullptr && cJSON_IsObject(root.get()));
    const cJSON *type = nullptr;
    const cJSON *room = nullptr;
    const cJSON *pos = nullptr;
    for (const cJSON *i = root->child; i != nullptr; i = i->next) {
        if (std::strcmp(i->string, "psdm_ws_msg_type") == 0) type = i;
        if (std::strcmp(i->string, "psdm_ws_msg_position") == 0) pos = i;
        if (cfg.room_field == i->string) room = i;
    }
    // The last psdm_ws_msg_position is ours (the one a browser keeps).
    if (!position.empty()) CHECK(pos != nullptr && cJSON_IsString(pos) && position == pos->valuestring);
    CHECK(type != nullptr && cJSON_IsString(type));
    const psdm::JsonPtr topic_json = psdm::json_parse_strict(psdm::json_escape_string(topic));
    CHECK(topic_json != nullptr && std::strcmp(type->valuestring, topic_json->valuestring) == 0);
    if (topic.find('\0') == std::string_view::npos && psdm::utf8_valid(topic)) CHECK(topic == type->valuestring);
    if (!r.room.empty()) {
        CHECK(room != nullptr && cJSON_IsString(room) && r.room == room->valuestring);
    }
    return 0;
}

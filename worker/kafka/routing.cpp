// Routing: see routing.h.
//
// One strict parse of the record's text (base/json.h's json_parse_strict: the allocation-free
// RFC 8259 + UTF-8 check, then cJSON), to tell an object from other values and to decode the
// room's string value. The strict check matters because the text is forwarded to browsers as
// it is: one record that JSON.parse or the browser's UTF-8 check rejects, published to a room
// of 10 000 clients, would disconnect all of them at once.
#include "kafka/routing.h"

#include "base/json.h"

#include <cassert>

#include <cjson/cJSON.h>

namespace psdm {

namespace {

bool topic_is_global(std::string_view topic, const RoutingConfig &cfg) {
    for (const std::string &t : cfg.global_room_topics) {
        if (t == topic) return true;
    }
    return false;
}

}  // namespace

Route route_kafka_record(std::string_view topic, std::string_view value, const RoutingConfig &cfg,
                         std::string_view position) {
    Route r;
    r.to_global_room = topic_is_global(topic, cfg);

    if (value.size() > cfg.max_payload) {
        r.status = RouteStatus::too_large;
        return r;
    }
    // Not strict JSON, or strict JSON that cJSON still refuses (an unpaired UTF-16 surrogate
    // escape, an allocation failure, ...): see json_parse_strict.
    const JsonPtr root = json_parse_strict(value);
    if (!root) {
        r.status = RouteStatus::not_json;
        return r;
    }
    const std::string_view text = json_trim_ws(value);
    if (!cJSON_IsObject(root.get())) {
        r.status = RouteStatus::not_object;
        return r;
    }
    assert(text.front() == '{' && text.back() == '}');

    // The last member named room_field, as JSON.parse would keep it.
    const cJSON *room_item = nullptr;
    for (const cJSON *c = root->child; c != nullptr; c = c->next) {
        if (c->string != nullptr && cfg.room_field == c->string) room_item = c;
    }
    if (room_item != nullptr && cJSON_IsString(room_item) && room_item->valuestring != nullptr &&
        room_item->valuestring[0] != '\0') {
        r.room = room_item->valuestring;
    } else if (!r.to_global_room) {
        r.status = RouteStatus::no_room_field;
        return r;
    }

    // Splice ,"psdm_ws_msg_type":"<topic>"[,"psdm_ws_msg_position":"<position>"] in before the
    // closing brace.
    const bool empty_object = root->child == nullptr;
    r.payload.reserve(text.size() + kMsgTypeField.size() + 6 * topic.size() + kMsgPositionField.size() +
                      6 * position.size() + 12);
    r.payload.append(text.data(), text.size() - 1);
    if (!empty_object) r.payload += ',';
    r.payload += json_escape_string(kMsgTypeField);
    r.payload += ':';
    r.payload += json_escape_string(topic);  // a topic is any bytes: escaped, invalid UTF-8 replaced
    if (!position.empty()) {
        r.payload += ',';
        r.payload += json_escape_string(kMsgPositionField);
        r.payload += ':';
        r.payload += json_escape_string(position);
    }
    r.payload += '}';
    r.status = RouteStatus::ok;
    return r;
}

const char *route_status_name(RouteStatus status) {
    switch (status) {
    case RouteStatus::ok: return "ok";
    case RouteStatus::too_large: return "too_large";
    case RouteStatus::not_json: return "not_json";
    case RouteStatus::not_object: return "not_object";
    case RouteStatus::no_room_field: return "no_room_field";
    }
    return "unknown";
}

}  // namespace psdm

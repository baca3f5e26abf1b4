// Routing: which room(s) a Kafka record goes to, and the JSON text the clients receive.
//
// A record's value is a JSON object. Its room is the string value of cfg.room_field (by
// default "experiment_name"); records of the topics in cfg.global_room_topics also go to
// kGlobalRoom, and may lack the room field. The clients receive the object itself with
// "psdm_ws_msg_type":"<topic>" added, so they can tell the record kinds apart, and
// "psdm_ws_msg_position":"<topic>/<partition>/<offset>" (kafka/position.h), so that they can
// resume after it. Fields, not extra event arguments: a python-socketio handler written for one
// argument fails on every event that has two.
//
// The payload is spliced into the record's own text, never re-serialised: cJSON stores
// numbers as double, so re-serialising would corrupt 64-bit integer ids (and cost time).
// The text is parsed once, by base/json.h's json_parse_strict (strict RFC 8259 with valid
// UTF-8, then cJSON), only to check it and read the room.
//
// Thread: any; route_kafka_record is pure (no global state, no logging).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "base/config.h"  // defaults::

namespace psdm {

struct RoutingConfig {
    std::string room_field = defaults::kRoomField;
    std::vector<std::string> global_room_topics{defaults::kGlobalRoomTopic};
    size_t max_payload = defaults::kMaxPayload;  // bytes of record value, whitespace included
};

inline constexpr std::string_view kGlobalRoom = "the_global_room";
inline constexpr std::string_view kMsgTypeField = "psdm_ws_msg_type";
inline constexpr std::string_view kMsgPositionField = "psdm_ws_msg_position";

enum class RouteStatus {
    ok,
    too_large,      // value.size() > cfg.max_payload (not parsed)
    not_json,       // not one JSON value with only whitespace around it
    not_object,     // valid JSON, but not an object
    no_room_field,  // room_field absent, not a string, or "" (and the topic is not global)
};
inline constexpr size_t kRouteStatusCount = 5;

struct Route {
    RouteStatus status = RouteStatus::not_json;
    // The decoded value of room_field (escapes resolved). Empty unless status is ok; may be
    // empty with ok only for a global topic whose record has no usable room field.
    std::string room;
    // The topic is in cfg.global_room_topics. Set whatever the status, for the caller's log.
    bool to_global_room = false;
    // status ok only: the object's text, leading/trailing whitespace trimmed, with
    // ,"psdm_ws_msg_type":<topic as a JSON string> (and, given a position,
    // ,"psdm_ws_msg_position":<position as a JSON string>) inserted before its closing brace
    // (no first comma for an empty object). JSON parsers keep the last of duplicate keys, so
    // these win over fields of the same names the record may already have.
    std::string payload;
};

// Routes one record. On ok the caller delivers payload to room (if not empty) and to
// kGlobalRoom (if to_global_room); on anything else it drops the record and logs once,
// using route_status_name(status).
//
// Rules, in order:
//   1. value.size() > cfg.max_payload  -> too_large (checked before parsing)
//   2. value, trimmed of JSON whitespace (space, tab, LF, CR), must be exactly one JSON
//      value: else not_json (trailing garbage, a BOM, a NUL, other control bytes, invalid
//      UTF-8 included; json_parse_strict in base/json.h is the exact rule)
//   3. the value must be an object -> else not_object
//   4. room_field must be a non-empty string -> else no_room_field, except for a global
//      topic: ok, with an empty room
// If the object has room_field more than once, the last one counts (as in the browser).
// Known limit: cJSON resolves "\u0000" to a NUL and keeps the string only up to it, so a
// room value containing \u0000 is truncated there.
//
// Complexity: O(value.size()) plus cJSON's allocations for the parse tree; the payload is
// built with one allocation. value need not be NUL-terminated; it is never read past its end.
// `position`: the record's position (kafka/position.h's record_position), or empty for none.
Route route_kafka_record(std::string_view topic, std::string_view value, const RoutingConfig &cfg,
                         std::string_view position = {});

// "ok", "too_large", "not_json", "not_object", "no_room_field". Never null.
const char *route_status_name(RouteStatus status);

}  // namespace psdm

// Unit tests for worker/routing: Kafka record -> room(s) + payload, table-driven.
#include <cstdarg>
#include <cstddef>
#include <csetjmp>
#include <cstdint>

extern "C" {  // cmocka 1.1.5 has no C++ linkage guards
#include <cmocka.h>
}

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include <cjson/cJSON.h>

#include "base/json.h"
#include "kafka/routing.h"

using namespace std::string_view_literals;
using psdm::Route;
using psdm::RouteStatus;
using psdm::RoutingConfig;

namespace {

struct Case {
    const char *name;
    std::string_view topic;
    std::string_view value;
    RouteStatus status;
    std::string_view room;     // expected room (ok only)
    bool global;               // expected to_global_room
    std::string_view payload;  // expected payload (ok only)
};

// Routes a copy of value held in a buffer of exactly its size, so ASan catches a read past
// the end (the value of a Kafka record is not NUL-terminated).
Route route_exact(std::string_view topic, std::string_view value, const RoutingConfig &cfg) {
    std::unique_ptr<char[]> buf(new char[value.size() == 0 ? 1 : value.size()]);
    if (!value.empty()) std::memcpy(buf.get(), value.data(), value.size());
    return psdm::route_kafka_record(topic, std::string_view(buf.get(), value.size()), cfg);
}

// For an ok route: the payload is a strict JSON object whose last psdm_ws_msg_type is the topic.
void check_payload_semantics(const Case &c, const Route &r) {
    const psdm::JsonPtr root = psdm::json_parse_strict(r.payload);
    assert_non_null(root.get());
    assert_true(cJSON_IsObject(root.get()));
    const cJSON *last = nullptr;
    for (const cJSON *i = root->child; i != nullptr; i = i->next) {
        if (std::strcmp(i->string, "psdm_ws_msg_type") == 0) last = i;
    }
    assert_non_null(last);
    assert_true(cJSON_IsString(last));
    assert_true(std::string_view(last->valuestring) == c.topic);
}

const Case kCases[] = {
    {"ok object", "runs", R"({"experiment_name":"xpptut15","run":7})", RouteStatus::ok, "xpptut15", false,
     R"({"experiment_name":"xpptut15","run":7,"psdm_ws_msg_type":"runs"})"},
    {"big integers byte-exact", "runs",
     R"({"experiment_name":"e","id":18446744073709551615,"n":9007199254740993,"f":1.10e-3})", RouteStatus::ok, "e",
     false,
     R"({"experiment_name":"e","id":18446744073709551615,"n":9007199254740993,"f":1.10e-3,"psdm_ws_msg_type":"runs"})"},
    {"nested objects, braces in strings", "files",
     R"({"a":{"b":"}}{","c":[1,{"d":"\"}"}]},"experiment_name":"e","z":"}"})", RouteStatus::ok, "e", false,
     R"({"a":{"b":"}}{","c":[1,{"d":"\"}"}]},"experiment_name":"e","z":"}","psdm_ws_msg_type":"files"})"},
    {"escaped topic name", "we\"ird\\top\nic\x01", R"({"experiment_name":"e"})", RouteStatus::ok, "e", false,
     R"({"experiment_name":"e","psdm_ws_msg_type":"we\"ird\\top\nic\u0001"})"},
    {"existing psdm_ws_msg_type overridden", "runs", R"({"psdm_ws_msg_type":"old","experiment_name":"e"})",
     RouteStatus::ok, "e", false, R"({"psdm_ws_msg_type":"old","experiment_name":"e","psdm_ws_msg_type":"runs"})"},
    {"empty object, global topic", "experiments", "{}", RouteStatus::ok, "", true,
     R"({"psdm_ws_msg_type":"experiments"})"},
    {"empty object with space, global topic", "experiments", "{ \n }", RouteStatus::ok, "", true,
     "{ \n \"psdm_ws_msg_type\":\"experiments\"}"},
    {"empty object, other topic", "runs", "{}", RouteStatus::no_room_field, "", false, ""},
    {"global topic without room", "experiments", R"({"name":"xpptut15","id":3})", RouteStatus::ok, "", true,
     R"({"name":"xpptut15","id":3,"psdm_ws_msg_type":"experiments"})"},
    {"global topic with room", "experiments", R"({"experiment_name":"xpptut15"})", RouteStatus::ok, "xpptut15", true,
     R"({"experiment_name":"xpptut15","psdm_ws_msg_type":"experiments"})"},
    {"global topic, non-string room", "experiments", R"({"experiment_name":5})", RouteStatus::ok, "", true,
     R"({"experiment_name":5,"psdm_ws_msg_type":"experiments"})"},
    {"whitespace around", "runs", " \t\r\n{ \"experiment_name\" : \"e\" }\n\r\t ", RouteStatus::ok, "e", false,
     R"({ "experiment_name" : "e" ,"psdm_ws_msg_type":"runs"})"},
    {"room escapes decoded", "runs", R"({"experiment_name":"a\u00e9\"b\/c"})", RouteStatus::ok, "a\xc3\xa9\"b/c", false,
     R"({"experiment_name":"a\u00e9\"b\/c","psdm_ws_msg_type":"runs"})"},
    {"raw UTF-8 room", "runs", "{\"experiment_name\":\"\xe6\x97\xa5\xf0\x9f\x98\x80\"}", RouteStatus::ok,
     "\xe6\x97\xa5\xf0\x9f\x98\x80", false,
     "{\"experiment_name\":\"\xe6\x97\xa5\xf0\x9f\x98\x80\",\"psdm_ws_msg_type\":\"runs\"}"},
    {"duplicate room field: last wins", "runs", R"({"experiment_name":"a","experiment_name":"b"})", RouteStatus::ok,
     "b", false, R"({"experiment_name":"a","experiment_name":"b","psdm_ws_msg_type":"runs"})"},
    {"room field only nested", "runs", R"({"a":{"experiment_name":"e"}})", RouteStatus::no_room_field, "", false, ""},
    {"missing room field", "runs", R"({"run":7})", RouteStatus::no_room_field, "", false, ""},
    {"room field number", "runs", R"({"experiment_name":7})", RouteStatus::no_room_field, "", false, ""},
    {"room field null", "runs", R"({"experiment_name":null})", RouteStatus::no_room_field, "", false, ""},
    {"room field object", "runs", R"({"experiment_name":{"x":"e"}})", RouteStatus::no_room_field, "", false, ""},
    {"room field empty", "runs", R"({"experiment_name":""})", RouteStatus::no_room_field, "", false, ""},
    {"room field case differs", "runs", R"({"Experiment_Name":"e"})", RouteStatus::no_room_field, "", false, ""},
    {"array", "runs", R"([{"experiment_name":"e"}])", RouteStatus::not_object, "", false, ""},
    {"string", "runs", R"("experiment_name")", RouteStatus::not_object, "", false, ""},
    {"number", "runs", "42", RouteStatus::not_object, "", false, ""},
    {"null", "runs", "null", RouteStatus::not_object, "", false, ""},
    {"true, global topic", "experiments", " true ", RouteStatus::not_object, "", true, ""},
    {"empty value", "runs", "", RouteStatus::not_json, "", false, ""},
    {"whitespace only", "runs", " \n\t ", RouteStatus::not_json, "", false, ""},
    {"not JSON", "runs", "hello", RouteStatus::not_json, "", false, ""},
    {"truncated", "runs", R"({"experiment_name":"e")", RouteStatus::not_json, "", false, ""},
    {"unterminated string", "runs", R"({"experiment_name":"e)", RouteStatus::not_json, "", false, ""},
    {"trailing garbage", "runs", R"({"experiment_name":"e"} x)", RouteStatus::not_json, "", false, ""},
    {"trailing brace", "runs", R"({"experiment_name":"e"}})", RouteStatus::not_json, "", false, ""},
    {"two objects", "runs", R"({"experiment_name":"e"}{"experiment_name":"f"})", RouteStatus::not_json, "", false, ""},
    {"trailing NUL", "runs", "{\"experiment_name\":\"e\"}\0"sv, RouteStatus::not_json, "", false, ""},
    {"NUL inside", "runs", "{\"experiment_name\":\"e\"\0}"sv, RouteStatus::not_json, "", false, ""},
    {"trailing comma", "runs", R"({"experiment_name":"e",})", RouteStatus::not_json, "", false, ""},
    {"single quotes", "runs", R"({'experiment_name':'e'})", RouteStatus::not_json, "", false, ""},
    {"leading BOM", "runs", "\xef\xbb\xbf{\"experiment_name\":\"e\"}", RouteStatus::not_json, "", false, ""},
    {"leading control byte", "runs", "\x01{\"experiment_name\":\"e\"}", RouteStatus::not_json, "", false, ""},
    {"control byte as whitespace", "runs", "{\"experiment_name\":\"e\",\x0b\"a\":1}", RouteStatus::not_json, "", false,
     ""},
    {"raw control byte in string", "runs", "{\"experiment_name\":\"e\",\"a\":\"x\ty\"}", RouteStatus::not_json, "",
     false, ""},
    {"invalid UTF-8 in string", "runs", "{\"experiment_name\":\"e\xff\"}", RouteStatus::not_json, "", false, ""},
    {"overlong UTF-8", "runs", "{\"experiment_name\":\"e\xc0\xaf\"}", RouteStatus::not_json, "", false, ""},
    {"UTF-8 surrogate", "runs", "{\"experiment_name\":\"e\xed\xa0\x80\"}", RouteStatus::not_json, "", false, ""},
    {"bad escape", "runs", R"({"experiment_name":"\x41"})", RouteStatus::not_json, "", false, ""},
    {"leading zero", "runs", R"({"experiment_name":"e","n":01})", RouteStatus::not_json, "", false, ""},
    {"bare fraction dot", "runs", R"({"experiment_name":"e","n":1.})", RouteStatus::not_json, "", false, ""},
    {"plus sign", "runs", R"({"experiment_name":"e","n":+1})", RouteStatus::not_json, "", false, ""},
    {"NaN", "runs", R"({"experiment_name":"e","n":NaN})", RouteStatus::not_json, "", false, ""},
    {"missing colon", "runs", R"({"experiment_name" "e"})", RouteStatus::not_json, "", false, ""},
    {"non-string key", "runs", R"({1:"e"})", RouteStatus::not_json, "", false, ""},
};

void test_table(void **) {
    const RoutingConfig cfg;
    int failures = 0;
    for (const Case &c : kCases) {
        const Route r = route_exact(c.topic, c.value, cfg);
        bool good = r.status == c.status && r.to_global_room == c.global;
        if (c.status == RouteStatus::ok) {
            good = good && r.room == c.room && r.payload == c.payload;
        } else {
            good = good && r.room.empty() && r.payload.empty();
        }
        if (!good) {
            ++failures;
            std::printf("FAIL %s: status %s (want %s) global %d room [%s] payload [%s]\n", c.name,
                        psdm::route_status_name(r.status), psdm::route_status_name(c.status), r.to_global_room,
                        r.room.c_str(), r.payload.c_str());
        } else if (c.status == RouteStatus::ok) {
            check_payload_semantics(c, r);
        }
    }
    assert_int_equal(failures, 0);
}

void test_too_large_boundary(void **) {
    const std::string value = R"({"experiment_name":"e"})";
    RoutingConfig cfg;
    cfg.max_payload = value.size();
    Route r = route_exact("runs", value, cfg);
    assert_true(r.status == RouteStatus::ok);
    assert_string_equal(r.payload.c_str(), R"({"experiment_name":"e","psdm_ws_msg_type":"runs"})");

    cfg.max_payload = value.size() - 1;
    r = route_exact("runs", value, cfg);
    assert_true(r.status == RouteStatus::too_large);
    assert_true(r.payload.empty() && r.room.empty());

    // Whitespace counts: the check is on the record as received, before parsing.
    r = route_exact("runs", value + " ", RoutingConfig{"experiment_name", {}, value.size()});
    assert_true(r.status == RouteStatus::too_large);

    // Too large wins over not JSON (not parsed at all).
    cfg.max_payload = 3;
    r = route_exact("experiments", "garbage", cfg);
    assert_true(r.status == RouteStatus::too_large);
    assert_true(r.to_global_room);

    // The default limit is 1 MiB.
    assert_int_equal(RoutingConfig{}.max_payload, 1048576);
    std::string big = R"({"experiment_name":"e","pad":")";
    big += std::string(1048576 - big.size() - 2, 'x');
    big += "\"}";
    assert_int_equal(big.size(), 1048576);
    assert_true(route_exact("runs", big, RoutingConfig{}).status == RouteStatus::ok);
    big.insert(big.size() - 2, "x");
    assert_true(route_exact("runs", big, RoutingConfig{}).status == RouteStatus::too_large);
}

void test_custom_config(void **) {
    RoutingConfig cfg;
    cfg.room_field = "instrument";
    cfg.global_room_topics = {"a", "b"};
    Route r = route_exact("runs", R"({"experiment_name":"e","instrument":"XPP"})", cfg);
    assert_true(r.status == RouteStatus::ok);
    assert_string_equal(r.room.c_str(), "XPP");
    assert_false(r.to_global_room);
    r = route_exact("b", R"({"experiment_name":"e"})", cfg);
    assert_true(r.status == RouteStatus::ok);
    assert_true(r.room.empty());
    assert_true(r.to_global_room);
    r = route_exact("experiments", R"({"experiment_name":"e"})", cfg);
    assert_true(r.status == RouteStatus::no_room_field);
    assert_false(r.to_global_room);

    cfg.global_room_topics.clear();
    r = route_exact("experiments", "{}", cfg);
    assert_true(r.status == RouteStatus::no_room_field);
}

void test_nesting_depth(void **) {
    // cJSON refuses more than 1000 levels; the strict pass agrees.
    auto nested = [](size_t levels) {
        std::string s = "{\"experiment_name\":\"e\",\"x\":";
        for (size_t i = 1; i < levels; ++i) s += '[';
        for (size_t i = 1; i < levels; ++i) s += ']';
        if (levels == 1) s += "0";
        s += '}';
        return s;
    };
    const RoutingConfig cfg;
    assert_true(route_exact("runs", nested(1000), cfg).status == RouteStatus::ok);
    assert_true(route_exact("runs", nested(1001), cfg).status == RouteStatus::not_json);
    assert_true(route_exact("runs", std::string(100000, '['), cfg).status == RouteStatus::not_json);
}

// With a position, it follows the type field; a record's own psdm_ws_msg_position loses.
void test_position_field(void **) {
    RoutingConfig cfg;
    Route r = psdm::route_kafka_record("elog", R"({"experiment_name":"x","psdm_ws_msg_position":"forged"})", cfg,
                                       "elog/3/1234");
    assert_true(r.status == RouteStatus::ok);
    assert_string_equal(r.payload.c_str(),
                        R"({"experiment_name":"x","psdm_ws_msg_position":"forged","psdm_ws_msg_type":"elog",)"
                        R"("psdm_ws_msg_position":"elog/3/1234"})");
    r = psdm::route_kafka_record("experiments", "{}", cfg, "experiments/0/0");
    assert_string_equal(r.payload.c_str(),
                        R"({"psdm_ws_msg_type":"experiments","psdm_ws_msg_position":"experiments/0/0"})");
}

void test_status_names(void **) {
    assert_string_equal(psdm::route_status_name(RouteStatus::ok), "ok");
    assert_string_equal(psdm::route_status_name(RouteStatus::too_large), "too_large");
    assert_string_equal(psdm::route_status_name(RouteStatus::not_json), "not_json");
    assert_string_equal(psdm::route_status_name(RouteStatus::not_object), "not_object");
    assert_string_equal(psdm::route_status_name(RouteStatus::no_room_field), "no_room_field");
    assert_true(psdm::kGlobalRoom == "the_global_room");
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),         cmocka_unit_test(test_too_large_boundary),
        cmocka_unit_test(test_custom_config), cmocka_unit_test(test_nesting_depth),
        cmocka_unit_test(test_status_names),  cmocka_unit_test(test_position_field),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}

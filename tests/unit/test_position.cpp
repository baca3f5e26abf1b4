// Unit tests for worker/kafka/position: the text forms of Kafka positions that clients keep
// and send back (record positions, partition keys, positions objects).
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <setjmp.h>
#include <string>
#include <vector>

extern "C" {
#include <cmocka.h>
}

#include <cjson/cJSON.h>

#include "base/json.h"
#include "kafka/position.h"

namespace {

using psdm::PartitionKey;
using psdm::Positions;

void test_record_position_round_trip(void **) {
    assert_string_equal(psdm::record_position("elog", 0, 1234).c_str(), "elog/0/1234");
    const std::string max = psdm::record_position("a.b_c-D", 2147483647, psdm::kMaxPositionOffset);
    assert_string_equal(max.c_str(), "a.b_c-D/2147483647/9007199254740991");
    auto p = psdm::parse_record_position(max);
    assert_true(p.has_value());
    assert_string_equal(p->key.topic.c_str(), "a.b_c-D");
    assert_int_equal(p->key.partition, 2147483647);
    assert_true(p->offset == psdm::kMaxPositionOffset);
}

void test_malformed_record_positions(void **) {
    for (const char *bad : {"",          "elog",      "elog/0",     "elog/0/",           "/0/1",
                            "elog//1",   "elog/-1/1", "elog/0/-1",  "elog/01/1",         "elog/0/01",
                            "elog/0/1 ", " elog/0/1", "elog/0/1/2", "elog/2147483648/1", "elog/0/9007199254740992",
                            "./0/1",     "../0/1",    "el og/0/1",  "elog/0/1e3",        "elog/0/0x10",
                            "elog/+1/1"}) {
        if (psdm::parse_record_position(bad)) fail_msg("'%s' parsed", bad);
    }
    assert_true(psdm::parse_record_position("elog/0/0").has_value());
}

void test_partition_keys(void **) {
    auto k = psdm::parse_partition_key("experiments/12");
    assert_true(k && k->topic == "experiments" && k->partition == 12);
    assert_string_equal(psdm::partition_key_text(*k).c_str(), "experiments/12");
    assert_false(psdm::parse_partition_key("experiments/12/3").has_value());
    assert_false(psdm::parse_partition_key(std::string(250, 'a') + "/0").has_value());
    assert_true(psdm::parse_partition_key(std::string(249, 'a') + "/0").has_value());
}

void test_positions_json(void **) {
    Positions p{{PartitionKey{"elog", 1}, 7}, {PartitionKey{"elog", 0}, 1235}, {PartitionKey{"experiments", 0}, 0}};
    assert_string_equal(psdm::positions_json(p).c_str(), "{\"elog/0\":1235,\"elog/1\":7,\"experiments/0\":0}");
    assert_string_equal(psdm::positions_json({}).c_str(), "{}");
    // What it writes, it reads back.
    psdm::JsonPtr j(cJSON_Parse(psdm::positions_json(p).c_str()));
    Positions back;
    std::string why;
    assert_true(psdm::parse_resume_positions(j.get(), {"elog", "experiments"}, &back, &why));
    assert_true(back == p);
}

struct Bad {
    const char *json;
    const char *why;
};

void test_resume_refusals(void **) {
    const std::vector<std::string> topics{"elog", "experiments"};
    const Bad cases[] = {
        {"[]", "positions are not a JSON object"},
        {"\"elog/0\"", "positions are not a JSON object"},
        {"{\"elog\":1}", "position key 'elog' is not TOPIC/PARTITION"},
        {"{\"secret/0\":1}", "position of topic 'secret', which this worker does not consume"},
        {"{\"elog/0\":-1}", "position of 'elog/0' is not an offset (an integer 0 .. 2^53 - 1)"},
        {"{\"elog/0\":1.5}", "position of 'elog/0' is not an offset (an integer 0 .. 2^53 - 1)"},
        {"{\"elog/0\":\"5\"}", "position of 'elog/0' is not an offset (an integer 0 .. 2^53 - 1)"},
        {"{\"elog/0\":9007199254740992}", "position of 'elog/0' is not an offset (an integer 0 .. 2^53 - 1)"},
        {"{\"elog/0\":1,\"elog/0\":2}", "position of 'elog/0' given twice"},
    };
    for (const Bad &c : cases) {
        psdm::JsonPtr j(cJSON_Parse(c.json));
        assert_non_null(j.get());
        Positions out{{PartitionKey{"untouched", 0}, 1}};
        std::string why;
        if (psdm::parse_resume_positions(j.get(), topics, &out, &why)) fail_msg("%s accepted", c.json);
        if (why != c.why) fail_msg("%s: '%s'", c.json, why.c_str());
        assert_int_equal(out.size(), 1);  // untouched on refusal
    }
    // At most kMaxResumePartitions members.
    std::string many = "{";
    for (size_t i = 0; i <= psdm::kMaxResumePartitions; i++)
        many += (i ? ",\"elog/" : "\"elog/") + std::to_string(i) + "\":0";
    psdm::JsonPtr j(cJSON_Parse((many + "}").c_str()));
    Positions out;
    std::string why;
    assert_false(psdm::parse_resume_positions(j.get(), topics, &out, &why));
    assert_string_equal(why.c_str(), "more than 1024 positions");
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_position_round_trip),
        cmocka_unit_test(test_malformed_record_positions),
        cmocka_unit_test(test_partition_keys),
        cmocka_unit_test(test_positions_json),
        cmocka_unit_test(test_resume_refusals),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}

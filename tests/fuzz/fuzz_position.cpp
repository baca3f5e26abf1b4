// libFuzzer target for the text forms of Kafka positions (worker/kafka/position): what a
// client sends back on a resume. Built by CMake (PSDM_FUZZ=ON); `make fuzz` runs it.
//
// Input: any bytes, read as a record position, a partition key, and (when it is JSON) a
// positions object. Properties beyond the sanitizers: what parses prints back to the same
// text (one spelling per position); an accepted positions object has at most
// kMaxResumePartitions entries, only the worker's topics, offsets within 0 .. 2^53 - 1, and
// its JSON reads back to the same positions.
#include <cjson/cJSON.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/json.h"
#include "fuzz_check.h"
#include "kafka/position.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const std::string_view in(reinterpret_cast<const char *>(data), size);
    if (auto p = psdm::parse_record_position(in))
        CHECK(psdm::record_position(p->key.topic, p->key.partition, p->offset) == in);
    if (auto k = psdm::parse_partition_key(in)) CHECK(psdm::partition_key_text(*k) == in);

    if (!psdm::json_valid(in)) return 0;
    psdm::JsonPtr j = psdm::json_parse_strict(in);
    if (!j) return 0;
    const std::vector<std::string> topics{"elog", "experiments"};
    psdm::Positions got;
    std::string why;
    if (!psdm::parse_resume_positions(j.get(), topics, &got, &why)) {
        CHECK(!why.empty() && got.empty());
        return 0;
    }
    CHECK(got.size() <= psdm::kMaxResumePartitions);
    for (const auto &kv : got) {
        CHECK(kv.first.topic == "elog" || kv.first.topic == "experiments");
        CHECK(kv.second >= 0 && kv.second <= psdm::kMaxPositionOffset);
    }
    psdm::JsonPtr again(cJSON_Parse(psdm::positions_json(got).c_str()));
    psdm::Positions back;
    CHECK(psdm::parse_resume_positions(again.get(), topics, &back, &why) && back == got);
    return 0;
}

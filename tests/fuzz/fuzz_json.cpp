// libFuzzer target for worker/base/json: the strict validator and parser every JSON byte
// from a client or from Kafka goes through. Built by CMake with -DPSDM_FUZZ=ON; run with
// `make fuzz` (README, "Fuzzing").
//
// Input: the bytes themselves, as JSON text and as a string to escape.
// Checks, beyond the sanitizers (libFuzzer's buffer is exactly the input, so a read past the
// end is caught):
//   - json_valid text is valid UTF-8, and stays valid trimmed of its whitespace;
//   - json_parse_strict gives a tree only for json_valid text, and always one for valid text
//     without a \u escape (the only thing cJSON refuses that json_valid takes is a lone
//     surrogate escape; numbers depend on the cJSON build, see json.h, and are short here);
//   - cJSON's printout of such a tree is json_valid again;
//   - json_escape_string of any bytes is valid UTF-8 and json_valid, and of valid UTF-8
//     without NUL parses back to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <cjson/cJSON.h>

#include "fuzz_check.h"
#include "base/json.h"

namespace {

// The longest number token in s (cJSON builds without the CVE-2023-26819 fix stop at 63).
size_t longest_digit_run(std::string_view s) {
    size_t longest = 0, run = 0;
    for (const char c : s) {
        const bool part = (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '-' || c == '+';
        run = part ? run + 1 : 0;
        if (run > longest) longest = run;
    }
    return longest;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const std::string_view input(reinterpret_cast<const char *>(data), size);

    const bool valid = psdm::json_valid(input);
    const bool utf8 = psdm::utf8_valid(input);
    if (valid) {
        CHECK(utf8);
        CHECK(psdm::json_valid(psdm::json_trim_ws(input)));
    }

    const psdm::JsonPtr tree = psdm::json_parse_strict(input);
    if (tree) CHECK(valid);
    if (valid && input.find("\\u") == std::string_view::npos && longest_digit_run(input) < 64) {
        CHECK(tree != nullptr);
    }
    if (tree) {
        char *printed = cJSON_PrintUnformatted(tree.get());
        if (printed != nullptr) {
            CHECK(psdm::json_valid(printed));
            cJSON_free(printed);
        }
    }

    const std::string escaped = psdm::json_escape_string(input);
    CHECK(psdm::utf8_valid(escaped));
    CHECK(psdm::json_valid(escaped));
    if (utf8 && input.find('\0') == std::string_view::npos) {
        const psdm::JsonPtr back = psdm::json_parse_strict(escaped);
        CHECK(back != nullptr && cJSON_IsString(back.get()) && input == back->valuestring);
    }
    return 0;
}

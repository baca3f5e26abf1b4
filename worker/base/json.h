// Strict JSON and UTF-8: the one validator, the one string escaper and the one owner of cJSON
// trees in the worker.
//
// Why a validator of our own in front of cJSON: text that passes here goes on to browsers
// (Kafka records are forwarded as they are, Socket.IO packets are answered), and cJSON accepts
// what JSON.parse rejects: control bytes as whitespace or inside strings, "01", "1.", a leading
// BOM, and it does not check UTF-8 (a WebSocket text frame with invalid UTF-8 is closed by the
// browser with 1007, so one bad record in a room of 10 000 clients would disconnect them all).
//
// Standards: RFC 8259 (JSON) and RFC 3629 (UTF-8: no overlong forms, no UTF-16 surrogates
// U+D800..U+DFFF, nothing above U+10FFFF).
//
// Thread: any; every function is pure (no global state, no logging). Inputs are string_views
// that need not be NUL-terminated and are never read past their end.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

struct cJSON;  // <cjson/cJSON.h>; include it to walk a tree

namespace psdm {

// Deepest nesting of arrays and objects accepted: cJSON's CJSON_NESTING_LIMIT, so the
// validator and the parser agree on deep input ("[[1]]" is 2 levels, "1" is 0).
inline constexpr size_t kJsonMaxDepth = 1000;

// True if `s` is entirely well-formed UTF-8 (RFC 3629). The empty string is. NUL and other
// control bytes are valid UTF-8. O(s.size()), no allocation.
bool utf8_valid(std::string_view s);

// True if c is JSON whitespace: space, tab, LF or CR (nothing else, not even VT, FF or NBSP).
constexpr bool json_is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// `s` without its leading and trailing JSON whitespace (a view into s).
std::string_view json_trim_ws(std::string_view s);

// True if `text` is exactly one JSON value (RFC 8259) with only JSON whitespace around it:
//   - no trailing bytes (a second value, a NUL, garbage), no leading BOM;
//   - strings: no raw byte < 0x20, only the escapes \" \\ \/ \b \f \n \r \t \uXXXX, valid
//     UTF-8 (RFC 3629). A \uXXXX escape is checked for its 4 hex digits only: an unpaired
//     surrogate escape such as "\ud800" is valid JSON (RFC 8259 section 8.2; JSON.parse takes
//     it) but json_parse_strict refuses it, because cJSON does;
//   - numbers: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, of any length and magnitude;
//   - literals true, false, null exactly (lower case);
//   - at most kJsonMaxDepth nested arrays/objects.
// Empty or whitespace-only text is false. Non-recursive, allocates nothing (the container
// stack is a fixed bitset on the stack), O(text.size()).
bool json_valid(std::string_view text);

// Frees a cJSON tree (cJSON_Delete); null is fine.
struct JsonDeleter {
    void operator()(cJSON *json) const noexcept;
};

// The owner of a cJSON tree: the only way the worker holds one.
using JsonPtr = std::unique_ptr<cJSON, JsonDeleter>;

// Parses `text` once it passed json_valid. Returns the tree, or null when:
//   - json_valid(text) is false;
//   - the linked cJSON refuses valid text: an unpaired UTF-16 surrogate escape ("\ud800",
//     "\udc00", "\ud800x"), a failed allocation, or, in cJSON builds without the fix for
//     CVE-2023-26819 (Debian 12's 1.7.15-1+deb12u3 and later have it), a number token longer
//     than 63 bytes.
// What cJSON makes of valid text, callers must know: numbers are doubles (integers above 2^53
// lose precision, 1e400 is inf; keep the text when a number must survive), and a "\u0000"
// escape ends a valuestring (the string is cut there); duplicate keys are all kept, in order.
// Allocates (cJSON's malloc) only after the validation succeeded; never reads past text's end.
JsonPtr json_parse_strict(std::string_view text);

// Returns `s` as a JSON string literal, quotes included. Escapes '"', '\\' and control bytes
// (< 0x20 and 0x7f; \b \f \n \r \t by name, others as \u00XX); invalid UTF-8 (per utf8_valid)
// is replaced by one \ufffd per byte that starts no valid sequence, so the result is always
// valid UTF-8 and json_valid. Valid UTF-8 is kept as it is (not \u-escaped).
std::string json_escape_string(std::string_view s);

}  // namespace psdm

// Unit tests for worker/base/json: the strict UTF-8 and JSON validator, json_parse_strict and
// its owner type, json_escape_string, json_trim_ws.
//
// Spec references:
//   [RFC8259]  JSON grammar, sections 2-7
//   [RFC3629]  UTF-8, section 4 (syntax of UTF-8 byte sequences)
//   [U-T37]    Unicode 15, Table 3-7 "Well-Formed UTF-8 Byte Sequences"
#include <cstdarg>
#include <cstddef>
#include <csetjmp>
#include <cstdint>
extern "C" {  // this cmocka.h has no C++ linkage guard
#include <cmocka.h>
}

#include <cjson/cJSON.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "alloc_counter.h"
#include "base/json.h"

using namespace std::string_view_literals;
using namespace psdm;

namespace {

// A copy of `s` in a heap buffer of exactly its size, so ASan catches a read past the end
// (none of the functions may rely on a NUL terminator).
class Exact {
 public:
    explicit Exact(std::string_view s) : buf_(new char[s.empty() ? 1 : s.size()]), size_(s.size()) {
        if (!s.empty()) std::memcpy(buf_.get(), s.data(), s.size());
    }
    std::string_view view() const { return std::string_view(buf_.get(), size_); }

 private:
    std::unique_ptr<char[]> buf_;
    size_t size_;
};

bool valid_utf8(std::string_view s) { return utf8_valid(Exact(s).view()); }
bool valid_json(std::string_view s) { return json_valid(Exact(s).view()); }
JsonPtr parse(std::string_view s) { return json_parse_strict(Exact(s).view()); }

void print_case(const char *what, std::string_view s) {
    std::printf("%s: ", what);
    for (const char c : s.substr(0, 48)) {
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u < 0x7f) {
            std::putchar(c);
        } else {
            std::printf("\\x%02x", u);
        }
    }
    std::printf("\n");
}

// ---- UTF-8 ------------------------------------------------------------------------------------

// [U-T37]: every boundary of every row of the table, valid and just outside.
const std::string_view kUtf8Valid[] = {
    ""sv,
    "plain ASCII ~"sv,
    "\0"sv,                // NUL is a character
    "\x01\x1f\x7f"sv,      // so are control bytes
    "\xc2\x80"sv,          // U+0080, first 2-byte
    "\xdf\xbf"sv,          // U+07FF, last 2-byte
    "\xe0\xa0\x80"sv,      // U+0800, first 3-byte (E0 row: A0..BF)
    "\xe1\x80\x80"sv,      // U+1000 (E1..EC row)
    "\xec\xbf\xbf"sv,      // U+CFFF
    "\xed\x80\x80"sv,      // U+D000 (ED row: 80..9F)
    "\xed\x9f\xbf"sv,      // U+D7FF, last before the surrogates
    "\xee\x80\x80"sv,      // U+E000, first after the surrogates
    "\xef\xbf\xbf"sv,      // U+FFFF
    "\xef\xbb\xbf"sv,      // U+FEFF (a BOM is valid UTF-8; JSON text may not start with it)
    "\xf0\x90\x80\x80"sv,  // U+10000, first 4-byte (F0 row: 90..BF)
    "\xf1\x80\x80\x80"sv,  // U+40000 (F1..F3 row)
    "\xf3\xbf\xbf\xbf"sv,  // U+FFFFF
    "\xf4\x80\x80\x80"sv,  // U+100000 (F4 row: 80..8F)
    "\xf4\x8f\xbf\xbf"sv,  // U+10FFFF, the last code point
    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe6\x97\xa5"sv,
};

const std::string_view kUtf8Invalid[] = {
    "\x80"sv,  // lone continuation bytes
    "\xbf"sv,
    "a\x80z"sv,
    "\xc0\x80"sv,                  // overlong U+0000 (modified UTF-8)
    "\xc0\xaf"sv,                  // overlong '/'
    "\xc1\xbf"sv,                  // overlong U+007F
    "\xe0\x80\x80"sv,              // overlong 3-byte
    "\xe0\x9f\xbf"sv,              // overlong U+07FF
    "\xf0\x80\x80\x80"sv,          // overlong 4-byte
    "\xf0\x8f\xbf\xbf"sv,          // overlong U+FFFF
    "\xed\xa0\x80"sv,              // U+D800, first high surrogate
    "\xed\xaf\xbf"sv,              // U+DBFF
    "\xed\xb0\x80"sv,              // U+DC00, first low surrogate
    "\xed\xbf\xbf"sv,              // U+DFFF
    "\xed\xa0\xbd\xed\xb8\x80"sv,  // a surrogate pair as two 3-byte sequences (CESU-8)
    "\xf4\x90\x80\x80"sv,          // U+110000
    "\xf4\xbf\xbf\xbf"sv,
    "\xf5\x80\x80\x80"sv,  // lead bytes that can never appear
    "\xf7\xbf\xbf\xbf"sv,
    "\xf8\x88\x80\x80\x80"sv,      // old 5-byte form
    "\xfc\x84\x80\x80\x80\x80"sv,  // old 6-byte form
    "\xfe"sv,
    "\xff"sv,
    "\xc3"sv,  // truncated at the end of the input
    "\xe2\x82"sv,
    "\xf0\x9f\x98"sv,
    "ok\xf4\x8f\xbf"sv,
    "\xc3"
    "a"sv,  // continuation missing
    "\xe2\x28\xa1"sv,
    "\xe2\x82\x28"sv,
    "\xf0\x9f\x28\x80"sv,
    "\xf0\x9f\x98\x28"sv,
    "\xc2\x80\x80"sv,  // one continuation too many
};

// Every row of `good` passes `valid`, every row of `bad` fails it.
template <size_t NG, size_t NB>
void check_tables(const char *what, bool (*valid)(std::string_view), const std::string_view (&good)[NG],
                  const std::string_view (&bad)[NB]) {
    for (const std::string_view s : good) {
        print_case(what, s);
        assert_true(valid(s));
    }
    for (const std::string_view s : bad) {
        print_case(what, s);
        assert_false(valid(s));
    }
}

void test_utf8_valid_table(void **) { check_tables("utf8", valid_utf8, kUtf8Valid, kUtf8Invalid); }

// Inside a JSON string the same table decides (control bytes aside, which JSON forbids raw).
void test_utf8_in_json_strings(void **) {
    for (const std::string_view s : kUtf8Valid) {
        bool has_control = false;
        for (const char c : s) has_control = has_control || static_cast<unsigned char>(c) < 0x20;
        const std::string text = "[\"" + std::string(s) + "\"]";
        const std::string key = "{\"" + std::string(s) + "\":1}";
        assert_int_equal(valid_json(text), !has_control);
        assert_int_equal(valid_json(key), !has_control);
    }
    for (const std::string_view s : kUtf8Invalid) {
        assert_false(valid_json("[\"" + std::string(s) + "\"]"));
        assert_false(valid_json("{\"" + std::string(s) + "\":1}"));
    }
}

// ---- JSON validity ----------------------------------------------------------------------------

const std::string_view kJsonValid[] = {
    "0"sv,
    "-0"sv,
    "7"sv,
    "-12"sv,
    "1.5"sv,
    "0.25e10"sv,
    "-1E-2"sv,
    "1e+2"sv,
    "1E0"sv,
    "123456789012345678901234567890123456789012345678901234567890123456789"sv,  // any length
    "1e400"sv,
    "-1e-400"sv,  // any magnitude
    "true"sv,
    "false"sv,
    "null"sv,
    "\"\""sv,
    "\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\""sv,
    "\"\\u0041\\u00e9\\uD83D\\uDE00\""sv,
    "\"\\u0000\""sv,  // an escaped NUL is JSON (cJSON cuts the string there)
    "\"\\ud800\""sv,  // an unpaired surrogate escape is syntactically JSON
    "\"\x7f\""sv,     // DEL need not be escaped
    "\"caf\xc3\xa9 \xf0\x9f\x98\x80\""sv,
    "[]"sv,
    "{}"sv,
    "[ ]"sv,
    "{ }"sv,
    "[[]]"sv,
    "[{}]"sv,
    "{\"a\":[]}"sv,
    "[1,\"a\",true,false,null,{},[]]"sv,
    "{\"a\":1,\"a\":2}"sv,  // duplicate keys are allowed
    "{\"\":0}"sv,
    " \t\r\n[ 1 , { \"a\" : [ ] } ] \n\t\r "sv,
    "\n{\"experiment_name\":\"xpptut15\",\"run\":7}\n"sv,
};

const std::string_view kJsonInvalid[] = {
    ""sv,
    " "sv,
    "\t\r\n"sv,          // no value
    "\xef\xbb\xbf{}"sv,  // leading BOM
    "{}\xef\xbb\xbf"sv,
    "{}\0"sv,
    "\0{}"sv,
    "[\"a\0\"]"sv,
    "[1\0]"sv,  // NUL anywhere
    "\"\t\""sv,
    "\"\n\""sv,
    "\"\x01\""sv,
    "\"\x1f\""sv,  // raw control bytes in strings
    "\v1"sv,
    "1\f"sv,
    "[1,\v2]"sv,
    "\x01[]"sv,  // control bytes as whitespace
    "\xc2\xa0"
    "1"sv,  // NBSP is not JSON whitespace
    "1 2"sv,
    "{} {}"sv,
    "[]x"sv,
    "{}}"sv,
    "[]]"sv,
    "null,"sv,  // trailing garbage
    "[1,]"sv,
    "[,1]"sv,
    "[1 2]"sv,
    "[1,,2]"sv,
    "{\"a\":1,}"sv,
    "{,}"sv,
    "{\"a\"}"sv,
    "{\"a\":}"sv,
    "{\"a\" 1}"sv,
    "{a:1}"sv,
    "{'a':1}"sv,
    "{1:1}"sv,
    "{null:1}"sv,
    "["sv,
    "]"sv,
    "{"sv,
    "}"sv,
    "[1"sv,
    "{\"a\":1"sv,
    "[{]}"sv,
    "{[]}"sv,
    "[}"sv,
    "{]"sv,
    "01"sv,
    "-01"sv,
    "00"sv,
    "-"sv,
    "--1"sv,
    "+1"sv,
    "1."sv,
    ".5"sv,
    "1.e2"sv,
    "1e"sv,
    "1e+"sv,
    "1E-"sv,
    "0x10"sv,
    "1_000"sv,
    "NaN"sv,
    "Infinity"sv,
    "-Infinity"sv,
    "True"sv,
    "NULL"sv,
    "nul"sv,
    "tru"sv,
    "fals"sv,
    "truex"sv,
    "nullnull"sv,
    "\"abc"sv,
    "\""sv,
    "\"\\"sv,
    "\"\\\""sv,  // unterminated
    "\"\\x41\""sv,
    "\"\\a\""sv,
    "\"\\U0041\""sv,
    "\"\\'\""sv,
    "\"\\0\""sv,  // bad escapes
    "\"\\u12\""sv,
    "\"\\u12G4\""sv,
    "\"\\u\""sv,
    "\"\\u123"sv,
    "'a'"sv,
    "\xc3\xa9"sv,  // not a JSON token
    "[\"\xff\"]"sv,
    "{\"\xc0\xaf\":1}"sv,
    "\"\xed\xa0\x80\""sv,  // invalid UTF-8 in strings
};

void test_json_valid_table(void **) { check_tables("json", valid_json, kJsonValid, kJsonInvalid); }

// Every prefix of a valid text that is not itself a value is refused, and no prefix reads past
// its end (the Exact buffer is cut there).
void test_json_valid_prefixes(void **) {
    const std::string_view text = "{\"a\":[1,-2.5e+3,\"x\\u00e9\xc3\xa9\",true,false,null],\"b\":{}}"sv;
    assert_true(valid_json(text));
    for (size_t cut = 0; cut < text.size(); ++cut) assert_false(valid_json(text.substr(0, cut)));
    // Numbers are the exception: "12" is a prefix of "123" and a value itself.
    assert_true(valid_json("12"));
}

std::string nested_arrays(size_t levels) { return std::string(levels, '[') + std::string(levels, ']'); }

std::string nested_objects(size_t levels) {
    std::string s;
    for (size_t i = 0; i < levels; ++i) s += "{\"a\":";
    s += "0";
    s += std::string(levels, '}');
    return s;
}

std::string nested_mixed(size_t levels) {
    std::string open, close;
    for (size_t i = 0; i < levels; ++i) {
        open += (i % 2 == 0) ? "[1," : "{\"k\":";
        close.insert(0, (i % 2 == 0) ? "]" : "}");
    }
    return open + "null" + close;
}

void test_json_depth(void **) {
    assert_int_equal(kJsonMaxDepth, 1000);
    assert_int_equal(kJsonMaxDepth, CJSON_NESTING_LIMIT);
    for (auto make : {nested_arrays, nested_objects, nested_mixed}) {
        assert_true(valid_json(make(1)));
        assert_true(valid_json(make(kJsonMaxDepth)));
        assert_false(valid_json(make(kJsonMaxDepth + 1)));
        // The validator and cJSON agree on both sides of the limit.
        assert_non_null(parse(make(kJsonMaxDepth)).get());
        assert_null(parse(make(kJsonMaxDepth + 1)).get());
    }
    // Depth goes back down: many shallow containers in a row are fine.
    std::string wide = "[";
    for (int i = 0; i < 5000; ++i) wide += (i ? ",[[]]" : "[[]]");
    wide += "]";
    assert_true(valid_json(wide));
    // A long run of openers is refused at the limit, without recursion.
    assert_false(valid_json(std::string(1000000, '[')));
    assert_false(valid_json(std::string(1000000, '{')));
}

// Neither validator allocates, whatever the input.
void test_validators_do_not_allocate(void **) {
    const std::string deep = nested_mixed(kJsonMaxDepth);
    const std::string too_deep = nested_arrays(kJsonMaxDepth + 1);
    const size_t before = g_allocations;
    for (const std::string_view s : kJsonValid) assert_true(json_valid(s));
    for (const std::string_view s : kJsonInvalid) assert_false(json_valid(s));
    for (const std::string_view s : kUtf8Valid) assert_true(utf8_valid(s));
    for (const std::string_view s : kUtf8Invalid) assert_false(utf8_valid(s));
    assert_true(json_valid(deep));
    assert_false(json_valid(too_deep));
    assert_int_equal(g_allocations, before);
}

// ---- json_parse_strict and JsonPtr -----------------------------------------------------------

// cJSON allocations, counted through its hooks, to see that the owner frees every tree and that
// refused text never reaches cJSON.
size_t g_cjson_live = 0;
size_t g_cjson_mallocs = 0;
void *counting_malloc(size_t n) {
    ++g_cjson_live;
    ++g_cjson_mallocs;
    return std::malloc(n);
}
void counting_free(void *p) {
    if (p != nullptr) --g_cjson_live;
    std::free(p);
}

void test_parse_strict_values(void **) {
    JsonPtr root = parse(" {\"experiment_name\":\"xpptut15\",\"run\":7,\"ok\":true,\"l\":[1,2]} \n");
    assert_non_null(root.get());
    assert_true(cJSON_IsObject(root.get()));
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(root.get(), "experiment_name");
    assert_true(cJSON_IsString(name));
    assert_string_equal(name->valuestring, "xpptut15");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(root.get(), "run")->valueint, 7);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root.get(), "l")), 2);

    // Escapes are resolved, a surrogate pair becomes one 4-byte sequence.
    root = parse("\"a\\u00e9\\\"\\/\\ud83d\\ude00\"");
    assert_true(cJSON_IsString(root.get()));
    assert_string_equal(root->valuestring, "a\xc3\xa9\"/\xf0\x9f\x98\x80");

    // Known cJSON limit: "\u0000" ends the valuestring.
    root = parse("\"ab\\u0000cd\"");
    assert_true(cJSON_IsString(root.get()));
    assert_string_equal(root->valuestring, "ab");

    // Every scalar at the top level.
    assert_true(cJSON_IsNull(parse("null").get()));
    assert_true(cJSON_IsTrue(parse(" true").get()));
    assert_true(cJSON_IsFalse(parse("false ").get()));
    assert_true(cJSON_IsNumber(parse("-0.5e1").get()));
    assert_true(parse("-0.5e1")->valuedouble == -5.0);
}

void test_parse_strict_refuses(void **) {
    for (const std::string_view s : kJsonInvalid) {
        print_case("parse invalid", s);
        assert_null(parse(s).get());
    }
    // Strict JSON that cJSON refuses: unpaired surrogate escapes.
    for (const std::string_view s :
         {"\"\\ud800\""sv, "\"\\udc00\""sv, "[\"\\ud800x\"]"sv, "\"\\ud800\\u0041\""sv, "{\"\\udbff\":1}"sv}) {
        print_case("parse lone surrogate", s);
        assert_true(valid_json(s));
        assert_null(parse(s).get());
    }
    // What cJSON accepts and strict JSON does not.
    for (const std::string_view s :
         {"01"sv, "1."sv, "\xef\xbb\xbf[]"sv, "[\"\t\"]"sv, "[1]\0"sv, "[\"\xff\"]"sv, "\x01[]"sv}) {
        assert_null(parse(s).get());
    }
}

// Numbers of any length and magnitude are valid JSON; the tree holds doubles.
void test_parse_strict_big_numbers(void **) {
    const std::string digits(1000, '9');
    assert_true(valid_json(digits));
    assert_true(valid_json("[" + digits + "," + digits + "." + digits + "e" + digits + "]"));
    assert_true(valid_json("-0." + std::string(500, '0') + "1"));

    JsonPtr n = parse("18446744073709551615");  // UINT64_MAX: a double, not exact
    assert_true(cJSON_IsNumber(n.get()));
    assert_true(n->valuedouble == 18446744073709551616.0);
    n = parse("1e400");
    assert_true(cJSON_IsNumber(n.get()) && std::isinf(n->valuedouble) && n->valuedouble > 0);
    n = parse("-1e400");
    assert_true(cJSON_IsNumber(n.get()) && std::isinf(n->valuedouble) && n->valuedouble < 0);
    n = parse("1e-400");
    assert_true(cJSON_IsNumber(n.get()) && n->valuedouble == 0.0);
    n = parse(std::string(63, '1'));
    assert_true(cJSON_IsNumber(n.get()));
    // Longer tokens depend on the cJSON build (see json.h): a number, or refused; never a tree
    // that stops inside the token.
    n = parse(std::string(64, '1'));
    assert_true(!n || cJSON_IsNumber(n.get()));
    n = parse(digits);
    assert_true(!n || cJSON_IsNumber(n.get()));
    n = parse("[" + digits + ",1]");
    assert_true(!n || cJSON_GetArraySize(n.get()) == 2);
}

// The text need not be NUL-terminated: a view that ends before more JSON is parsed alone.
void test_parse_strict_views(void **) {
    const std::string buffer = "[1,2]garbage";
    JsonPtr root = json_parse_strict(std::string_view(buffer).substr(0, 5));
    assert_non_null(root.get());
    assert_int_equal(cJSON_GetArraySize(root.get()), 2);
    const std::string two = "\"ab\"\"cd\"";
    root = json_parse_strict(std::string_view(two).substr(4));
    assert_string_equal(root->valuestring, "cd");
    assert_null(json_parse_strict(std::string_view(two).substr(0, 3)).get());
    assert_null(json_parse_strict(std::string_view()).get());
}

void test_owner(void **) {
    cJSON_Hooks hooks = {counting_malloc, counting_free};
    cJSON_InitHooks(&hooks);
    g_cjson_live = 0;
    g_cjson_mallocs = 0;
    {
        JsonPtr a = parse("{\"a\":[1,\"two\",{\"three\":null}],\"b\":\"x\"}");
        assert_non_null(a.get());
        assert_true(g_cjson_live > 0);
        JsonPtr b = std::move(a);  // ownership moves, nothing is freed or copied
        assert_null(a.get());
        assert_non_null(b.get());
        JsonPtr c;
        c = std::move(b);
        assert_true(cJSON_IsObject(c.get()));
        c.reset();
        assert_int_equal(g_cjson_live, 0);
        c = parse("[[[]]]");
        assert_true(g_cjson_live > 0);
    }  // destroyed at the end of scope
    assert_int_equal(g_cjson_live, 0);
    JsonDeleter()(nullptr);  // deleting null is fine

    // Refused text never reaches cJSON: nothing is allocated at all.
    g_cjson_mallocs = 0;
    const size_t before = g_allocations;
    for (const std::string_view s : kJsonInvalid) assert_null(json_parse_strict(s).get());
    assert_int_equal(g_cjson_mallocs, 0);
    assert_int_equal(g_allocations, before);

    // Refused after validation (a lone surrogate): cJSON frees its partial tree.
    assert_null(parse("[1,{\"a\":\"\\ud800\"}]").get());
    assert_int_equal(g_cjson_live, 0);
    cJSON_InitHooks(nullptr);
}

// ---- Whitespace -------------------------------------------------------------------------------

void test_trim_ws(void **) {
    assert_true(json_is_ws(' ') && json_is_ws('\t') && json_is_ws('\n') && json_is_ws('\r'));
    assert_false(json_is_ws('\v') || json_is_ws('\f') || json_is_ws('\0') || json_is_ws('x'));
    assert_true(json_trim_ws(" \t\r\n{} \n") == "{}");
    assert_true(json_trim_ws("\v{}\f") == "\v{}\f");
    assert_true(json_trim_ws(" \n ").empty());
    assert_true(json_trim_ws("").empty());
    assert_true(json_trim_ws("a b") == "a b");
    const std::string_view s = "  x  ";
    assert_true(json_trim_ws(s).data() == s.data() + 2);  // a view into the input
}

// ---- json_escape_string ------------------------------------------------------------------------

void test_json_escape_string(void **) {
    const std::pair<std::string, const char *> cases[] = {
        // input, literal
        {"", "\"\""},
        {"plain room-1/ok", "\"plain room-1/ok\""},
        {"q\"b\\", "\"q\\\"b\\\\\""},
        {"\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\""},
        {std::string("\x00\x01\x1f\x7f", 4), "\"\\u0000\\u0001\\u001f\\u007f\""},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
         "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},  // valid UTF-8 kept
        {"a\xff"
         "b",
         "\"a\\ufffdb\""},                                         // invalid byte
        {"\xc3", "\"\\ufffd\""},                                   // truncated sequence
        {"\xc0\xaf", "\"\\ufffd\\ufffd\""},                        // overlong '/'
        {"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""},             // UTF-16 surrogate
        {"\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},  // above U+10FFFF
        {"\xe2\x82"
         "a",
         "\"\\ufffd\\ufffda\""},  // cut sequence, then ASCII
    };
    for (const auto &[in, literal] : cases) assert_string_equal(json_escape_string(Exact(in).view()).c_str(), literal);
    // Every valid UTF-8 row is kept as it is; every invalid one gives valid JSON.
    for (const std::string_view s : kUtf8Valid) {
        const std::string e = json_escape_string(Exact(s).view());
        assert_true(json_valid(e));
    }
    for (const std::string_view s : kUtf8Invalid) {
        const std::string e = json_escape_string(Exact(s).view());
        assert_true(json_valid(e));
        assert_true(utf8_valid(e));
    }
}

// Any bytes: the literal is valid JSON and valid UTF-8; valid UTF-8 without NUL comes back
// unchanged through json_parse_strict. Every string of up to 3 bytes over an alphabet of
// escapes, control bytes, lead and continuation bytes (20 440 strings).
void test_json_escape_roundtrip(void **) {
    const std::string alphabet =
        "a\"\\/\b\f\n\r\t\x01\x7f\xc3\xa9\x80\xbf\xe2\x82\xac\xed\xa0\xf0\x9f\x98\xf4\x90\xff ";
    const size_t n = alphabet.size();
    int roundtrips = 0;
    size_t strings = 0;
    for (size_t len = 0, count = 1; len <= 3; ++len, count *= n) {
        for (size_t i = 0; i < count; ++i) {
            std::string s;
            for (size_t k = 0, rest = i; k < len; ++k, rest /= n) s += alphabet[rest % n];
            const std::string e = json_escape_string(Exact(s).view());
            assert_true(utf8_valid(e));
            assert_true(json_valid(e));
            if (utf8_valid(s)) {
                const JsonPtr back = json_parse_strict(e);
                assert_non_null(back.get());
                assert_true(cJSON_IsString(back.get()));
                assert_true(std::string_view(back->valuestring) == s);
                ++roundtrips;
            }
            ++strings;
        }
    }
    assert_int_equal(strings, 20440);
    assert_true(roundtrips > 1000);
}

}  // namespace

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_valid_table),
        cmocka_unit_test(test_utf8_in_json_strings),
        cmocka_unit_test(test_json_valid_table),
        cmocka_unit_test(test_json_valid_prefixes),
        cmocka_unit_test(test_json_depth),
        cmocka_unit_test(test_validators_do_not_allocate),
        cmocka_unit_test(test_parse_strict_values),
        cmocka_unit_test(test_parse_strict_refuses),
        cmocka_unit_test(test_parse_strict_big_numbers),
        cmocka_unit_test(test_parse_strict_views),
        cmocka_unit_test(test_owner),
        cmocka_unit_test(test_trim_ws),
        cmocka_unit_test(test_json_escape_string),
        cmocka_unit_test(test_json_escape_roundtrip),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}

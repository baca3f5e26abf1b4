// Strict JSON and UTF-8. See json.h for the contracts.
//
// References (read, not copied): RFC 8259 section 2-7 (grammar), RFC 3629 section 4 (UTF-8
// byte sequences), Unicode 15 Table 3-7 (well-formed UTF-8 byte sequences).
#include "base/json.h"

#include <cjson/cJSON.h>

#include <cstdint>

namespace psdm {

namespace {

bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool is_hex(unsigned char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

static_assert(kJsonMaxDepth == CJSON_NESTING_LIMIT, "the validator and cJSON must agree on depth");

// Length of the well-formed UTF-8 sequence starting at p (p < end), or 0 if the bytes there
// are not one: a continuation or invalid lead byte, an overlong form, a UTF-16 surrogate,
// a code point above U+10FFFF, or a sequence cut by `end`.
size_t utf8_sequence_length(const unsigned char *p, const unsigned char *end) {
    const unsigned char b0 = *p;
    if (b0 < 0x80) return 1;
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // bounds of the second byte
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        len = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        len = 3;
        if (b0 == 0xE0) lo = 0xA0;  // overlong
        if (b0 == 0xED) hi = 0x9F;  // UTF-16 surrogates
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        len = 4;
        if (b0 == 0xF0) lo = 0x90;  // overlong
        if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
        return 0;  // 0x80..0xC1 (continuation, overlong 2-byte lead), 0xF5..0xFF
    }
    if (static_cast<size_t>(end - p) < len) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < len; ++i) {
        if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    }
    return len;
}

// The validator behind json_valid: one pass, a loop instead of recursion, and the container
// stack as one bit per level (1 = object, 0 = array).
class StrictJson {
 public:
    explicit StrictJson(std::string_view s)
        : p_(reinterpret_cast<const unsigned char *>(s.data())), end_(p_ + s.size()) {}

    bool run() {
        bool want_value = true;  // false: a value just ended
        for (;;) {
            skip_ws();
            if (want_value) {
                if (p_ == end_) return false;
                const unsigned char c = *p_;
                if (c == '{' || c == '[') {
                    if (depth_ == kJsonMaxDepth) return false;
                    set_top(depth_++, c == '{');
                    ++p_;
                    skip_ws();
                    if (p_ != end_ && *p_ == (c == '{' ? '}' : ']')) {  // empty container
                        ++p_;
                        --depth_;
                        want_value = false;
                        continue;
                    }
                    if (c == '{' && !key()) return false;
                    continue;  // want_value stays true
                }
                if (!scalar()) return false;
                want_value = false;
                continue;
            }
            // A value ended: close containers, or go on to the next element.
            if (depth_ == 0) return p_ == end_;
            if (p_ == end_) return false;
            const bool in_object = top_is_object();
            if (*p_ == ',') {
                ++p_;
                if (in_object && !key()) return false;
                want_value = true;
            } else if (*p_ == (in_object ? '}' : ']')) {
                ++p_;
                --depth_;
            } else {
                return false;
            }
        }
    }

 private:
    void skip_ws() {
        while (p_ != end_ && json_is_ws(static_cast<char>(*p_))) ++p_;
    }
    bool eat(unsigned char c) {
        if (p_ == end_ || *p_ != c) return false;
        ++p_;
        return true;
    }

    // `"key" :` with whitespace around.
    bool key() {
        skip_ws();
        if (!string()) return false;
        skip_ws();
        return eat(':');
    }

    bool scalar() {
        switch (*p_) {
        case '"': return string();
        case 't': return literal("true");
        case 'f': return literal("false");
        case 'n': return literal("null");
        default: return number();
        }
    }

    bool literal(std::string_view word) {
        if (static_cast<size_t>(end_ - p_) < word.size()) return false;
        if (std::string_view(reinterpret_cast<const char *>(p_), word.size()) != word) return false;
        p_ += word.size();
        return true;
    }

    // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    bool number() {
        eat('-');
        if (p_ == end_) return false;
        if (*p_ == '0') {
            ++p_;
        } else if (is_digit(*p_)) {
            while (p_ != end_ && is_digit(*p_)) ++p_;
        } else {
            return false;
        }
        if (eat('.') && !digits()) return false;
        if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
            ++p_;
            if (!eat('+')) eat('-');
            if (!digits()) return false;
        }
        return true;
    }
    bool digits() {
        const unsigned char *start = p_;
        while (p_ != end_ && is_digit(*p_)) ++p_;
        return p_ != start;
    }

    // A string, quotes included: no raw control bytes, valid escapes, valid UTF-8.
    bool string() {
        if (!eat('"')) return false;
        while (p_ != end_) {
            const unsigned char c = *p_;
            if (c == '"') {
                ++p_;
                return true;
            }
            if (c < 0x20) return false;
            if (c == '\\') {
                if (++p_ == end_) return false;
                switch (*p_++) {
                case '"':
                case '\\':
                case '/':
                case 'b':
                case 'f':
                case 'n':
                case 'r':
                case 't': break;
                case 'u':
                    for (int i = 0; i < 4; ++i) {
                        if (p_ == end_ || !is_hex(*p_)) return false;
                        ++p_;
                    }
                    break;
                default: return false;
                }
                continue;
            }
            const size_t len = utf8_sequence_length(p_, end_);
            if (len == 0) return false;
            p_ += len;
        }
        return false;  // unterminated
    }

    void set_top(size_t level, bool object) {
        const uint64_t bit = uint64_t{1} << (level % 64);
        if (object) {
            stack_[level / 64] |= bit;
        } else {
            stack_[level / 64] &= ~bit;
        }
    }
    bool top_is_object() const {
        const size_t level = depth_ - 1;
        return (stack_[level / 64] >> (level % 64)) & 1U;
    }

    const unsigned char *p_;
    const unsigned char *const end_;
    size_t depth_ = 0;
    uint64_t stack_[(kJsonMaxDepth + 63) / 64] = {};
};

}  // namespace

bool utf8_valid(std::string_view s) {
    const auto *p = reinterpret_cast<const unsigned char *>(s.data());
    const auto *const end = p + s.size();
    while (p != end) {
        const size_t len = utf8_sequence_length(p, end);
        if (len == 0) return false;
        p += len;
    }
    return true;
}

std::string_view json_trim_ws(std::string_view s) {
    size_t b = 0, e = s.size();
    while (b < e && json_is_ws(s[b])) ++b;
    while (e > b && json_is_ws(s[e - 1])) --e;
    return s.substr(b, e - b);
}

bool json_valid(std::string_view text) { return StrictJson(text).run(); }

void JsonDeleter::operator()(cJSON *json) const noexcept { cJSON_Delete(json); }

JsonPtr json_parse_strict(std::string_view text) {
    if (!json_valid(text)) return nullptr;
    // Valid text has no unterminated string or token, so cJSON, bounded by the length, stays
    // inside it; the text needs no NUL terminator and is not copied.
    const std::string_view value = json_trim_ws(text);
    const char *parse_end = nullptr;
    JsonPtr root(cJSON_ParseWithLengthOpts(value.data(), value.size(), &parse_end,
                                           /*require_null_terminated=*/0));
    // cJSON stops early (and then fails or leaves bytes over) on a number token longer than
    // it buffers and on an unpaired surrogate escape.
    if (!root || parse_end != value.data() + value.size()) return nullptr;
    return root;
}

std::string json_escape_string(std::string_view s) {
    static const char kHex[] = "0123456789abcdef";
    const auto *const bytes = reinterpret_cast<const unsigned char *>(s.data());
    std::string out;
    out.reserve(s.size() + 2);
    out += '"';
    size_t i = 0;
    while (i < s.size()) {
        const unsigned char u = bytes[i];
        if (u >= 0x80) {
            const size_t len = utf8_sequence_length(bytes + i, bytes + s.size());
            if (len == 0) {
                out += "\\ufffd";
                ++i;
            } else {
                out.append(s.substr(i, len));
                i += len;
            }
            continue;
        }
        switch (u) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (u < 0x20 || u == 0x7f) {
                out += "\\u00";
                out += kHex[u >> 4];
                out += kHex[u & 0xf];
            } else {
                out += static_cast<char>(u);
            }
        }
        ++i;
    }
    out += '"';
    return out;
}

}  // namespace psdm

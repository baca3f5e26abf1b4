// Routing: see routing.h.
//
// Two passes over the record's text:
//   1. strict_json_value: an RFC 8259 check that allocates nothing. cJSON alone is not
//      enough, because the text is forwarded to browsers as it is, and cJSON accepts what
//      JSON.parse rejects (control bytes as whitespace or inside strings, "01", "1.", a
//      leading BOM) and does not check UTF-8 (a WebSocket text frame with invalid UTF-8 is
//      closed by the browser with 1007). One bad record published to a room of 10 000
//      clients would then disconnect all of them at once.
//   2. cJSON, to tell an object from other values and to decode the room's string value.
#include "kafka/routing.h"

#include "sio/sio_codec.h"

#include <cassert>
#include <cstdint>
#include <memory>

#include <cjson/cJSON.h>

namespace psdm {

namespace {

bool is_json_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool is_hex(unsigned char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

std::string_view trim_json_ws(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && is_json_ws(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && is_json_ws(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// The same limit as cJSON's CJSON_NESTING_LIMIT, so both passes agree on deep input.
constexpr size_t kMaxDepth = 1000;

// A strict, non-recursive, non-allocating RFC 8259 validator for one JSON value.
class StrictJson {
 public:
  explicit StrictJson(std::string_view s)
      : p_(reinterpret_cast<const unsigned char *>(s.data())), end_(p_ + s.size()) {}

  // Returns true if the whole input is exactly one JSON value with optional whitespace
  // around it, and every string is valid UTF-8.
  bool run() {
    bool want_value = true;  // false: a value just ended
    for (;;) {
      skip_ws();
      if (want_value) {
        if (p_ == end_) return false;
        const unsigned char c = *p_;
        if (c == '{' || c == '[') {
          if (depth_ == kMaxDepth) return false;
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
    while (p_ != end_ && is_json_ws(*p_)) ++p_;
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
          case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            break;
          case 'u':
            for (int i = 0; i < 4; ++i) {
              if (p_ == end_ || !is_hex(*p_)) return false;
              ++p_;
            }
            break;
          default:
            return false;
        }
      } else if (c < 0x80) {
        ++p_;
      } else if (!utf8_sequence()) {
        return false;
      }
    }
    return false;  // unterminated
  }

  // One multi-byte UTF-8 sequence (RFC 3629): no overlong forms, no surrogates, <= U+10FFFF.
  bool utf8_sequence() {
    const unsigned char c = *p_;
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;  // bounds of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // UTF-16 surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // > U+10FFFF
    } else {
      return false;
    }
    if (static_cast<size_t>(end_ - p_) < len) return false;
    if (p_[1] < lo || p_[1] > hi) return false;
    for (size_t i = 2; i < len; ++i) {
      if (p_[i] < 0x80 || p_[i] > 0xBF) return false;
    }
    p_ += len;
    return true;
  }

  // The container stack, one bit per level: 1 = object, 0 = array.
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
  uint64_t stack_[(kMaxDepth + 63) / 64] = {};
};

struct CJsonDeleter {
  void operator()(cJSON *j) const { cJSON_Delete(j); }
};

bool topic_is_global(std::string_view topic, const RoutingConfig &cfg) {
  for (const std::string &t : cfg.global_room_topics) {
    if (t == topic) return true;
  }
  return false;
}

}  // namespace


Route route_kafka_record(std::string_view topic, std::string_view value, const RoutingConfig &cfg) {
  Route r;
  r.to_global_room = topic_is_global(topic, cfg);

  if (value.size() > cfg.max_payload) {
    r.status = RouteStatus::too_large;
    return r;
  }
  const std::string_view text = trim_json_ws(value);
  if (text.empty() || !StrictJson(text).run()) {
    r.status = RouteStatus::not_json;
    return r;
  }
  const char *parse_end = nullptr;
  std::unique_ptr<cJSON, CJsonDeleter> root(
      cJSON_ParseWithLengthOpts(text.data(), text.size(), &parse_end, /*require_null_terminated=*/0));
  if (!root || parse_end != text.data() + text.size()) {
    // Strict JSON that cJSON still refuses: a number over 63 characters, an unpaired UTF-16
    // surrogate escape, or an allocation failure.
    r.status = RouteStatus::not_json;
    return r;
  }
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

  // Splice ,"psdm_ws_msg_type":"<topic>" in before the closing brace.
  const bool empty_object = root->child == nullptr;
  r.payload.reserve(text.size() + kMsgTypeField.size() + 6 * topic.size() + 8);
  r.payload.append(text.data(), text.size() - 1);
  if (!empty_object) r.payload += ',';
  r.payload += json_escape_string(kMsgTypeField);
  r.payload += ':';
  r.payload += json_escape_string(topic);  // a topic is any bytes: escaped, invalid UTF-8 replaced
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

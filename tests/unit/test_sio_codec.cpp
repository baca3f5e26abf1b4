// Unit tests for worker/sio_codec: handshake query, Engine.IO and Socket.IO decode/encode.
// (json_escape_string and the strict JSON rules themselves: test_json.cpp.)
//
// Spec references:
//   [EIO4]  engine.io-protocol v4: https://github.com/socketio/engine.io-protocol (README, "Protocol")
//   [EIO3]  engine.io-protocol v3: same repository, branch/tag v3
//   [SIO5]  socket.io-protocol v5: https://github.com/socketio/socket.io-protocol (README, "Packet format")
//   [SIO4]  socket.io-protocol v4: same repository, tag v4 (socket.io-parser 3.x / socket.io-client 2.x)
#include <cstdarg>
#include <cstddef>
#include <csetjmp>
#include <cstdint>
extern "C" {  // this cmocka.h has no C++ linkage guard
#include <cmocka.h>
}

#include <cjson/cJSON.h>

#include <cstdio>
#include <string>
#include <string_view>
#include <utility>

#include "sio/sio_codec.h"

using namespace psdm;

namespace {

// ---- Handshake ------------------------------------------------------------------------------

struct HandshakeCase {
    const char *query;
    bool ok;
    EioVersion version;
    const char *error;
};

// [EIO4] "Handshake": the client opens /socket.io/?EIO=4&transport=websocket; errors as in the
// reference server (Transport unknown = 0, Session ID unknown = 1, Unsupported protocol version = 5).
const HandshakeCase kHandshakeCases[] = {
    {"EIO=4&transport=websocket&t=N8x", true, EioVersion::v4, ""},
    {"EIO=3&transport=websocket", true, EioVersion::v3, ""},
    {"?EIO=4&transport=websocket", true, EioVersion::v4, ""},
    {"transport=websocket&EIO=3&b64=1", true, EioVersion::v3, ""},
    {"t=1&&EIO=4&transport=websocket&", true, EioVersion::v4, ""},
    {"EIO=4&transport=websocket&EIO=2", true, EioVersion::v4, ""},  // first occurrence counts
    {"transport=websocket", false, EioVersion::v4, "unsupported protocol version"},
    {"EIO=2&transport=websocket", false, EioVersion::v4, "unsupported protocol version"},
    {"EIO=5&transport=websocket", false, EioVersion::v4, "unsupported protocol version"},
    {"EIO=44&transport=websocket", false, EioVersion::v4, "unsupported protocol version"},
    {"EIO&transport=websocket", false, EioVersion::v4, "unsupported protocol version"},
    {"EIO=&transport=websocket", false, EioVersion::v4, "unsupported protocol version"},
    {"EIO=4", false, EioVersion::v4, "transport unknown"},
    {"EIO=4&transport=polling", false, EioVersion::v4, "transport unknown"},
    {"EIO=4&transport=websocketX", false, EioVersion::v4, "transport unknown"},
    {"EIO=4&Transport=websocket", false, EioVersion::v4, "transport unknown"},
    {"", false, EioVersion::v4, "transport unknown"},
    {"EIO=4&transport=websocket&sid=abc", false, EioVersion::v4, "session id unknown"},
};

void test_handshake_query(void **) {
    for (const HandshakeCase &c : kHandshakeCases) {
        const HandshakeQuery r = parse_handshake_query(c.query);
        printf("handshake: %s\n", c.query);
        assert_int_equal(r.ok, c.ok);
        assert_string_equal(r.error.c_str(), c.error);
        if (c.ok) {
            assert_int_equal(static_cast<int>(r.version), static_cast<int>(c.version));
        } else {
            assert_true(r.code == 0 || r.code == 1 || r.code == 5);
        }
    }
    assert_int_equal(parse_handshake_query("EIO=4").code, 0);
    assert_int_equal(parse_handshake_query("EIO=9&transport=websocket").code, 5);
    assert_int_equal(parse_handshake_query("EIO=3&transport=websocket&sid=x").code, 1);
}

// ---- Engine.IO ------------------------------------------------------------------------------

// [EIO4] "Packet encoding": <packet type digit><data>, types 0 open .. 6 noop.
void test_eio_decode(void **) {
    struct Case {
        std::string_view frame;
        bool ok;
        EioType type;
        std::string_view data;
    };
    const Case cases[] = {
        {"0", true, EioType::open, ""},
        {"1", true, EioType::close, ""},
        {"2", true, EioType::ping, ""},
        {"2probe", true, EioType::ping, "probe"},
        {"3", true, EioType::pong, ""},
        {"3probe", true, EioType::pong, "probe"},
        {"42[\"a\"]", true, EioType::message, "2[\"a\"]"},
        {"5", true, EioType::upgrade, ""},
        {"6", true, EioType::noop, ""},
        {"", false, EioType::open, ""},
        {"7", false, EioType::open, ""},
        {"x4", false, EioType::open, ""},
        {"b4AAEC", false, EioType::open, ""},  // base64 binary is a polling-only encoding
        {std::string_view("\0"
                          "4",
                          2),
         false, EioType::open, ""},
        {"/4", false, EioType::open, ""},
    };
    for (const Case &c : cases) {
        const auto r = eio_decode(c.frame);
        assert_int_equal(r.has_value(), c.ok);
        if (!c.ok) continue;
        assert_int_equal(static_cast<int>(r->type), static_cast<int>(c.type));
        assert_true(r->data == c.data);
    }
}

// [EIO4] "Handshake" open packet carries maxPayload; [EIO3] has no maxPayload.
void test_eio_encode_open(void **) {
    assert_string_equal(
        eio_encode_open(EioVersion::v4, "AbC-12_x", 25000, 20000, 1000000).c_str(),
        "0{\"sid\":\"AbC-12_x\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}");
    assert_string_equal(eio_encode_open(EioVersion::v3, "AbC-12_x", 25000, 20000, 1000000).c_str(),
                        "0{\"sid\":\"AbC-12_x\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000}");
    assert_string_equal(eio_encode_open(EioVersion::v4, "a\"b", 1, 2, 3).c_str(),
                        "0{\"sid\":\"a\\\"b\",\"upgrades\":[],\"pingInterval\":1,\"pingTimeout\":2,\"maxPayload\":3}");
}

// ---- Socket.IO decoding ---------------------------------------------------------------------

struct SioOkCase {
    std::string_view payload;
    SioType type;
    const char *nsp;
    bool has_ack;
    uint64_t ack;
    std::string_view data;
};

// [SIO5] "Packet format" examples and [SIO4] "Encoding format" examples (v2 clients put the
// query string into the namespace: 0/admin?token=1234,).
const SioOkCase kSioOk[] = {
    {"0", SioType::connect, "/", false, 0, ""},
    {"0/psdm_ws,", SioType::connect, "/psdm_ws", false, 0, ""},
    {"0/psdm_ws", SioType::connect, "/psdm_ws", false, 0, ""},
    {"0/psdm_ws,{\"token\":\"123\"}", SioType::connect, "/psdm_ws", false, 0, "{\"token\":\"123\"}"},
    {"0{\"token\":\"123\"}", SioType::connect, "/", false, 0, "{\"token\":\"123\"}"},
    {"0/psdm_ws?token=1&x=2,", SioType::connect, "/psdm_ws", false, 0, ""},
    {"0/?a=b,", SioType::connect, "/", false, 0, ""},
    {"1/psdm_ws,", SioType::disconnect, "/psdm_ws", false, 0, ""},
    {"1", SioType::disconnect, "/", false, 0, ""},
    {"2[\"hello\",1]", SioType::event, "/", false, 0, "[\"hello\",1]"},
    {"2/psdm_ws,[\"join\",\"r1\"]", SioType::event, "/psdm_ws", false, 0, "[\"join\",\"r1\"]"},
    {"2/psdm_ws,12[\"join\",\"r1\"]", SioType::event, "/psdm_ws", true, 12, "[\"join\",\"r1\"]"},
    {"20[\"a\"]", SioType::event, "/", true, 0, "[\"a\"]"},
    {"218446744073709551615[\"a\"]", SioType::event, "/", true, UINT64_MAX, "[\"a\"]"},
    {"2007[\"a\"]", SioType::event, "/", true, 7, "[\"a\"]"},
    {"2 [\"a\"] ", SioType::event, "/", false, 0, " [\"a\"] "},
    {"2[\"a\",\r\n\t1]\n", SioType::event, "/", false, 0, "[\"a\",\r\n\t1]\n"},
    {"2[\"a\\\"\\\\\",\"\\u0001\"]", SioType::event, "/", false, 0, "[\"a\\\"\\\\\",\"\\u0001\"]"},
    {"3/psdm_ws,13[]", SioType::ack, "/psdm_ws", true, 13, "[]"},
    {"313[\"x\",{}]", SioType::ack, "/", true, 13, "[\"x\",{}]"},
    {"4/psdm_ws,{\"message\":\"no\"}", SioType::connect_error, "/psdm_ws", false, 0, "{\"message\":\"no\"}"},
    {"4\"Invalid namespace\"", SioType::connect_error, "/", false, 0, "\"Invalid namespace\""},
};

void test_sio_decode_ok(void **) {
    for (const SioOkCase &c : kSioOk) {
        SioPacket p;
        printf("sio ok: %.*s\n", static_cast<int>(c.payload.size()), c.payload.data());
        assert_int_equal(static_cast<int>(sio_decode(c.payload, &p)), static_cast<int>(SioDecodeError::none));
        assert_int_equal(static_cast<int>(p.type), static_cast<int>(c.type));
        assert_string_equal(p.nsp.c_str(), c.nsp);
        assert_int_equal(p.ack_id.has_value(), c.has_ack);
        if (c.has_ack) assert_true(*p.ack_id == c.ack);
        assert_true(p.data == c.data);
        // data points into the payload
        if (!p.data.empty())
            assert_true(p.data.data() >= c.payload.data() &&
                        p.data.data() + p.data.size() <= c.payload.data() + c.payload.size());
    }
}

struct SioBadCase {
    std::string payload;
    SioDecodeError error;
};

std::string nested(size_t depth) { return "2[\"e\"," + std::string(depth, '[') + std::string(depth, ']') + "]"; }

// Every row must be rejected with exactly this error.
const SioBadCase kSioBad[] = {
    {"", SioDecodeError::empty},
    {"x", SioDecodeError::bad_type},
    {"7[\"a\"]", SioDecodeError::bad_type},
    {"/psdm_ws,[\"a\"]", SioDecodeError::bad_type},
    {"5-[\"a\",{\"_placeholder\":true,\"num\":0}]", SioDecodeError::binary_unsupported},  // [SIO5] BINARY_EVENT
    {"51-/psdm_ws,[\"a\",{\"_placeholder\":true,\"num\":0}]", SioDecodeError::binary_unsupported},
    {"61-/psdm_ws,1[{\"_placeholder\":true,\"num\":0}]", SioDecodeError::binary_unsupported},
    {"2", SioDecodeError::bad_json},  // event needs an array
    {"2/psdm_ws", SioDecodeError::bad_json},
    {"2/psdm_ws,", SioDecodeError::bad_json},
    {"2/psdm_ws,12", SioDecodeError::bad_json},
    {"2[", SioDecodeError::bad_json},
    {"2[]", SioDecodeError::bad_json},     // empty array: no event name
    {"2[1,2]", SioDecodeError::bad_json},  // event name must be a string
    {"2[null]", SioDecodeError::bad_json},
    {"2{\"a\":1}", SioDecodeError::bad_json},  // not an array
    {"2\"join\"", SioDecodeError::bad_json},
    {"2[\"a\"]x", SioDecodeError::bad_json},  // trailing bytes
    {"2[\"a\"][\"b\"]", SioDecodeError::bad_json},
    {std::string("2[\"a\"]\0", 7), SioDecodeError::bad_json},  // embedded NUL after the value
    {std::string("2[\"a\0\"]", 7), SioDecodeError::bad_json},  // NUL inside a string
    {"2[\"a\nb\"]", SioDecodeError::bad_json},                 // raw control byte inside a string
    {"2[\"a\",\x0b"
     "1]",
     SioDecodeError::bad_json},  // control byte that is not JSON whitespace
    {"2[\"unterminated", SioDecodeError::bad_json},
    {"2[\"a\",tru]", SioDecodeError::bad_json},
    {"2/psdm_ws[\"a\"]", SioDecodeError::bad_json},         // no comma: all of it is the namespace
    {"2psdm_ws,[\"a\"]", SioDecodeError::bad_json},         // namespace without '/'
    {nested(2000), SioDecodeError::bad_json},               // deeper than cJSON's nesting limit
    {nested(kJsonMaxDepth), SioDecodeError::bad_json},      // the array around it is one level more
    {"2[\"a\",01]", SioDecodeError::bad_json},              // strict JSON (json_valid), which cJSON
    {"2[\"a\",1.]", SioDecodeError::bad_json},              // alone would accept
    {"2\xef\xbb\xbf[\"a\"]", SioDecodeError::bad_json},     // leading BOM
    {"2[\"a\xff\"]", SioDecodeError::bad_json},             // invalid UTF-8
    {"2[\"\xed\xa0\x80\"]", SioDecodeError::bad_json},      // UTF-8 encoded surrogate
    {"2[\"join\",\"\\ud800\"]", SioDecodeError::bad_json},  // lone surrogate escape (cJSON refuses)
    {"1/psdm_ws,{}", SioDecodeError::bad_json},             // disconnect carries no data
    {"0[]", SioDecodeError::bad_json},                      // connect data must be an object
    {"0/psdm_ws,\"tok\"", SioDecodeError::bad_json},
    {"3/psdm_ws,1{}", SioDecodeError::bad_json},  // ack data must be an array
    {"3/psdm_ws,1", SioDecodeError::bad_json},
    {"4[]", SioDecodeError::bad_json},
    {"299999999999999999999[\"a\"]", SioDecodeError::bad_ack_id},  // > UINT64_MAX
    {"218446744073709551616[\"a\"]", SioDecodeError::bad_ack_id},  // UINT64_MAX + 1
    {"2/psdm_ws,99999999999999999999999999999[\"a\"]", SioDecodeError::bad_ack_id},
    {"3/psdm_ws,[]", SioDecodeError::bad_ack_id},  // ack without id
    {"2/ps\x01"
     "dm,[\"a\"]",
     SioDecodeError::bad_namespace},
    {"2/" + std::string(kSioMaxNamespace, 'n') + ",[\"a\"]", SioDecodeError::bad_namespace},
};

void test_sio_decode_errors(void **) {
    for (const SioBadCase &c : kSioBad) {
        SioPacket p;
        const SioDecodeError e = sio_decode(c.payload, &p);
        printf("sio bad: %.40s -> %s\n", c.payload.c_str(), sio_decode_error_name(e));
        assert_string_equal(sio_decode_error_name(e), sio_decode_error_name(c.error));
    }
    // The namespace length limit is inclusive.
    SioPacket p;
    const std::string longest = "2/" + std::string(kSioMaxNamespace - 1, 'n') + ",[\"a\"]";
    assert_int_equal(static_cast<int>(sio_decode(longest, &p)), static_cast<int>(SioDecodeError::none));
    assert_int_equal(p.nsp.size(), kSioMaxNamespace);
    // Nesting below the limit is fine.
    assert_int_equal(static_cast<int>(sio_decode(nested(500), &p)), static_cast<int>(SioDecodeError::none));
    assert_int_equal(static_cast<int>(sio_decode(nested(kJsonMaxDepth - 1), &p)),
                     static_cast<int>(SioDecodeError::none));
}

// The data is parsed once, by sio_decode: the packet owns the tree, and an event carries its
// name and the arguments after it.
void test_sio_decode_parsed(void **) {
    SioPacket p;
    assert_int_equal(static_cast<int>(sio_decode("2/psdm_ws,7[\"join\",\"r\\u00e9\",{\"a\":1}]", &p)),
                     static_cast<int>(SioDecodeError::none));
    assert_non_null(p.json.get());
    assert_true(cJSON_IsArray(p.json.get()));
    assert_true(p.event == "join");
    assert_non_null(p.args);
    assert_true(cJSON_IsString(p.args));
    assert_string_equal(p.args->valuestring, "r\xc3\xa9");
    assert_true(cJSON_IsObject(p.args->next));
    assert_null(p.args->next->next);
    assert_true(p.event.data() == p.json->child->valuestring);  // points into the tree

    // An event without arguments; escapes in the name are resolved.
    assert_int_equal(static_cast<int>(sio_decode("2[\"le\\u0061ve\"]", &p)), static_cast<int>(SioDecodeError::none));
    assert_true(p.event == "leave");
    assert_null(p.args);
    // A name with an escaped NUL is cut there, as cJSON keeps it.
    assert_int_equal(static_cast<int>(sio_decode("2[\"join\\u0000x\",\"r\"]", &p)),
                     static_cast<int>(SioDecodeError::none));
    assert_true(p.event == "join");

    // Other packet types keep the tree but no event; no data, no tree.
    assert_int_equal(static_cast<int>(sio_decode("0/psdm_ws,{\"token\":\"t\"}", &p)),
                     static_cast<int>(SioDecodeError::none));
    assert_true(cJSON_IsObject(p.json.get()));
    assert_true(p.event.empty());
    assert_null(p.args);
    assert_int_equal(static_cast<int>(sio_decode("313[\"x\"]", &p)), static_cast<int>(SioDecodeError::none));
    assert_true(cJSON_IsArray(p.json.get()));
    assert_true(p.event.empty());
    assert_int_equal(static_cast<int>(sio_decode("0/psdm_ws,", &p)), static_cast<int>(SioDecodeError::none));
    assert_null(p.json.get());
    assert_true(p.event.empty());
    assert_null(p.args);

    // The packet is move-only and the tree moves with it.
    assert_int_equal(static_cast<int>(sio_decode("2[\"a\",1]", &p)), static_cast<int>(SioDecodeError::none));
    const SioPacket moved = std::move(p);
    assert_true(moved.event == "a");
    assert_true(cJSON_IsNumber(moved.args));
}

void test_sio_decode_error_names(void **) {
    assert_string_equal(sio_decode_error_name(SioDecodeError::none), "none");
    assert_string_equal(sio_decode_error_name(SioDecodeError::empty), "empty");
    assert_string_equal(sio_decode_error_name(SioDecodeError::bad_type), "bad_type");
    assert_string_equal(sio_decode_error_name(SioDecodeError::binary_unsupported), "binary_unsupported");
    assert_string_equal(sio_decode_error_name(SioDecodeError::bad_namespace), "bad_namespace");
    assert_string_equal(sio_decode_error_name(SioDecodeError::bad_ack_id), "bad_ack_id");
    assert_string_equal(sio_decode_error_name(SioDecodeError::bad_json), "bad_json");
    assert_string_equal(sio_decode_error_name(static_cast<SioDecodeError>(99)), "unknown");
}

// Totality: pseudo-random and truncated frames never crash (ASan/UBSan watch the reads).
void test_sio_decode_random(void **) {
    uint64_t state = 0x9e3779b97f4a7c15ULL;
    auto next = [&state]() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        return state;
    };
    const std::string alphabet = "0123456789/,[]{}\"\\:-?tnul ae\x01\xff";
    const std::string seeds[] = {"2/psdm_ws,12[\"join\",\"r\"]", "0/psdm_ws?x=1,{\"a\":[1,2,{\"b\":null}]}",
                                 "51-/n,1[{\"_placeholder\":true,\"num\":0}]", "3/n,4[\"\\u00e9\\ud83d\\ude00\"]"};
    for (const std::string &seed : seeds) {
        for (size_t cut = 0; cut <= seed.size(); ++cut) {
            SioPacket p;
            (void)sio_decode(std::string_view(seed.data(), cut), &p);  // every prefix, not NUL-terminated
            (void)eio_decode(std::string_view(seed.data(), cut));
        }
    }
    for (int i = 0; i < 20000; ++i) {
        std::string s;
        const size_t len = next() % 40;
        for (size_t k = 0; k < len; ++k) s += alphabet[next() % alphabet.size()];
        SioPacket p;
        const SioDecodeError e = sio_decode(s, &p);
        if (e == SioDecodeError::none) {
            assert_true(p.nsp.size() >= 1 && p.nsp[0] == '/');
            assert_true(p.data.data() >= s.data() && p.data.data() + p.data.size() <= s.data() + s.size());
        }
    }
}

// ---- Socket.IO encoding ---------------------------------------------------------------------

// [SIO5] CONNECT answer carries {"sid"}; [SIO4] CONNECT answer has no data.
void test_encode_connect_ack(void **) {
    assert_string_equal(sio_encode_connect_ack(EioVersion::v4, "/psdm_ws", "X").c_str(), "40/psdm_ws,{\"sid\":\"X\"}");
    assert_string_equal(sio_encode_connect_ack(EioVersion::v4, "/", "X").c_str(), "40{\"sid\":\"X\"}");
    assert_string_equal(sio_encode_connect_ack(EioVersion::v3, "/psdm_ws", "X").c_str(), "40/psdm_ws,");
    assert_string_equal(sio_encode_connect_ack(EioVersion::v3, "/", "X").c_str(), "40");
}

// [SIO5] CONNECT_ERROR carries {"message"}; [SIO4] ERROR carries a string.
void test_encode_connect_error(void **) {
    assert_string_equal(sio_encode_connect_error(EioVersion::v4, "/admin", "Invalid namespace").c_str(),
                        "44/admin,{\"message\":\"Invalid namespace\"}");
    assert_string_equal(sio_encode_connect_error(EioVersion::v3, "/admin", "Invalid namespace").c_str(),
                        "44/admin,\"Invalid namespace\"");
    assert_string_equal(sio_encode_connect_error(EioVersion::v4, "/", "no \"way\"").c_str(),
                        "44{\"message\":\"no \\\"way\\\"\"}");
}

void test_encode_event(void **) {
    assert_string_equal(sio_encode_event("/psdm_ws", "psdm_ws_msg", "{\"a\":1}").c_str(),
                        "42/psdm_ws,[\"psdm_ws_msg\",{\"a\":1}]");
    assert_string_equal(sio_encode_event("/", "psdm_ws_msg", "[1,2]").c_str(), "42[\"psdm_ws_msg\",[1,2]]");
    assert_string_equal(sio_encode_event("/psdm_ws", "ev\"\n", "1").c_str(), "42/psdm_ws,[\"ev\\\"\\n\",1]");
    assert_string_equal(sio_encode_event("/psdm_ws", "ping", "").c_str(), "42/psdm_ws,[\"ping\"]");
    // What we encode, we decode.
    const std::string frame = sio_encode_event("/psdm_ws", "psdm_ws_msg", "{\"k\":[1,\"x\"]}");
    SioPacket p;
    assert_int_equal(static_cast<int>(sio_decode(std::string_view(frame).substr(1), &p)),
                     static_cast<int>(SioDecodeError::none));
    assert_string_equal(p.nsp.c_str(), "/psdm_ws");
    assert_false(p.ack_id.has_value());
}

void test_encode_ack(void **) {
    assert_string_equal(sio_encode_ack("/psdm_ws", 12, "[]").c_str(), "43/psdm_ws,12[]");
    assert_string_equal(sio_encode_ack("/psdm_ws", 0, "[{\"error\":\"x\"}]").c_str(),
                        "43/psdm_ws,0[{\"error\":\"x\"}]");
    assert_string_equal(sio_encode_ack("/", 7, "").c_str(), "437[]");
    assert_string_equal(sio_encode_ack("/n", UINT64_MAX, "[1]").c_str(), "43/n,18446744073709551615[1]");
}

}  // namespace

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_query),        cmocka_unit_test(test_eio_decode),
        cmocka_unit_test(test_eio_encode_open),        cmocka_unit_test(test_sio_decode_ok),
        cmocka_unit_test(test_sio_decode_errors),      cmocka_unit_test(test_sio_decode_parsed),
        cmocka_unit_test(test_sio_decode_error_names), cmocka_unit_test(test_sio_decode_random),
        cmocka_unit_test(test_encode_connect_ack),     cmocka_unit_test(test_encode_connect_error),
        cmocka_unit_test(test_encode_event),           cmocka_unit_test(test_encode_ack),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}

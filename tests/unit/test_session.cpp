// Unit tests for worker/session: the per-connection Engine.IO / Socket.IO state machine,
// driven with a fake millisecond clock.
//
// Spec references:
//   [EIO4]  engine.io-protocol v4 README, "Heartbeat": server pings, client pongs
//   [EIO3]  engine.io-protocol v3 README, "Heartbeat": client pings, server pongs; "2probe"/"3probe"
//   [SIO5]  socket.io-protocol v5 README, "Connection to a namespace", "Acknowledgement",
//           "Disconnection from a namespace"
//   [SIO4]  socket.io-protocol v4 (Socket.IO 2.x): the server connects every client to "/"
#include <cstdarg>
#include <cstddef>
#include <csetjmp>
#include <cstdint>
extern "C" {  // this cmocka.h has no C++ linkage guard
#include <cmocka.h>
}

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "sio/session.h"

using namespace psdm;

namespace {

using Kind = SessionAction::Kind;
using Actions = std::vector<SessionAction>;

constexpr int64_t kT0 = 1000000;  // arbitrary clock origin

SessionLimits test_limits() {
    SessionLimits l;
    l.ns = "/psdm_ws";
    l.ping_interval_ms = 25000;
    l.ping_timeout_ms = 20000;
    l.max_payload = 1000;
    return l;
}

const char *kind_name(Kind k) {
    switch (k) {
    case Kind::send: return "send";
    case Kind::join: return "join";
    case Kind::leave: return "leave";
    case Kind::leave_all: return "leave_all";
    case Kind::close: return "close";
    }
    return "?";
}

// Renders actions as one line each, so tests compare whole outcomes as text:
//   send <frame> | join <room> [ack N] | leave <room> [ack N] | leave_all | close <code> <reason>
std::string render(const Actions &actions) {
    std::string s;
    for (const SessionAction &a : actions) {
        s += kind_name(a.kind);
        if (a.kind == Kind::send || a.kind == Kind::join || a.kind == Kind::leave) s += " " + a.text;
        if (a.ack_id) s += " ack " + std::to_string(*a.ack_id);
        if (a.kind == Kind::close) s += " " + std::to_string(a.close_code) + " " + a.reason;
        s += "\n";
    }
    return s;
}

// A session already opened (open packet sent, actions discarded).
struct Harness {
    Session s;
    Actions out;
    explicit Harness(EioVersion v, SessionLimits l = test_limits()) : s(v, l, "SID1", kT0) {
        s.on_open(out);
        out.clear();
    }
    // Feeds one frame at `now` and returns the rendered actions it produced.
    std::string text(std::string_view frame, int64_t now = kT0) {
        out.clear();
        s.on_text(frame, now, out);
        return render(out);
    }
    std::string tick(int64_t now) {
        out.clear();
        s.on_tick(now, out);
        return render(out);
    }
};

#define EXPECT_TEXT(actual, expected) assert_string_equal((actual).c_str(), (expected))

// ---- Open ---------------------------------------------------------------------------------

// [EIO4] open packet with maxPayload; the v4 client then connects namespaces itself.
void test_open_v4(void **) {
    Session s(EioVersion::v4, test_limits(), "SID1", kT0);
    Actions out;
    s.on_open(out);
    EXPECT_TEXT(
        render(out),
        "send 0{\"sid\":\"SID1\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000}\n");
    assert_false(s.in_namespace());
    assert_int_equal(static_cast<int>(s.version()), 4);
    assert_false(s.closed());
    assert_string_equal(s.sid().c_str(), "SID1");
}

// [EIO3] open packet without maxPayload; [SIO4] the server connects the client to "/" at once.
void test_open_v3(void **) {
    Session s(EioVersion::v3, test_limits(), "SID1", kT0);
    Actions out;
    s.on_open(out);
    EXPECT_TEXT(render(out),
                "send 0{\"sid\":\"SID1\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000}\n"
                "send 40\n");
    assert_false(s.in_namespace());
    assert_int_equal(static_cast<int>(s.version()), 3);
}

// ---- Heartbeat ----------------------------------------------------------------------------

// [EIO4] server sends "2" every pingInterval, client answers "3" within pingTimeout.
void test_heartbeat_v4(void **) {
    Harness h(EioVersion::v4);
    assert_int_equal(h.s.next_deadline_ms(), kT0 + 25000);
    EXPECT_TEXT(h.tick(kT0 + 24999), "");
    EXPECT_TEXT(h.tick(kT0 + 25000), "send 2\n");
    assert_int_equal(h.s.next_deadline_ms(), kT0 + 45000);
    EXPECT_TEXT(h.tick(kT0 + 30000), "");  // waiting for the pong: no second ping
    EXPECT_TEXT(h.text("3", kT0 + 30000), "");
    assert_int_equal(h.s.next_deadline_ms(), kT0 + 55000);  // next ping one interval after the pong
    EXPECT_TEXT(h.tick(kT0 + 54999), "");
    EXPECT_TEXT(h.tick(kT0 + 55000), "send 2\n");
    EXPECT_TEXT(h.text("3", kT0 + 55001), "");
    EXPECT_TEXT(h.text("3", kT0 + 55002), "");  // unsolicited pong: harmless, no change
    assert_int_equal(h.s.next_deadline_ms(), kT0 + 80001);
}

void test_heartbeat_v4_timeout(void **) {
    Harness h(EioVersion::v4);
    EXPECT_TEXT(h.tick(kT0 + 25000), "send 2\n");
    EXPECT_TEXT(h.tick(kT0 + 44999), "");
    EXPECT_TEXT(h.tick(kT0 + 45000), "close 1000 ping timeout\n");
    assert_true(h.s.closed());
    assert_true(h.s.next_deadline_ms() == INT64_MAX);
    // Inert once closed.
    EXPECT_TEXT(h.tick(kT0 + 90000), "");
    EXPECT_TEXT(h.text("3", kT0 + 90000), "");
    EXPECT_TEXT(h.text("40/psdm_ws,", kT0 + 90000), "");
}

// A late tick still pings, and the timeout runs from when the ping was actually sent.
void test_heartbeat_v4_late_tick(void **) {
    Harness h(EioVersion::v4);
    EXPECT_TEXT(h.tick(kT0 + 30000), "send 2\n");
    EXPECT_TEXT(h.tick(kT0 + 49999), "");
    EXPECT_TEXT(h.tick(kT0 + 50000), "close 1000 ping timeout\n");
}

// [EIO4] a client ping is the wrong heartbeat direction.
void test_heartbeat_v4_client_ping(void **) {
    Harness h(EioVersion::v4);
    EXPECT_TEXT(h.text("2"), "close 1002 invalid heartbeat direction\n");
}

// [EIO3] client sends "2" (or "2probe"), server answers "3" (or "3probe").
void test_heartbeat_v3(void **) {
    Harness h(EioVersion::v3);
    assert_int_equal(h.s.next_deadline_ms(), kT0 + 45000);
    EXPECT_TEXT(h.tick(kT0 + 25000), "");  // the v3 server never pings
    EXPECT_TEXT(h.text("2", kT0 + 25000), "send 3\n");
    assert_int_equal(h.s.next_deadline_ms(), kT0 + 70000);
    EXPECT_TEXT(h.text("2probe", kT0 + 26000), "send 3probe\n");
    assert_int_equal(h.s.next_deadline_ms(), kT0 + 71000);
    EXPECT_TEXT(h.text("2whatever", kT0 + 27000), "send 3\n");  // other ping data is not echoed
    EXPECT_TEXT(h.text("5", kT0 + 27000), "");                  // upgrade after a probe: ignored
    EXPECT_TEXT(h.text("6", kT0 + 27000), "");                  // noop: ignored
    EXPECT_TEXT(h.tick(kT0 + 71999), "");
    EXPECT_TEXT(h.tick(kT0 + 72000), "close 1000 ping timeout\n");
}

void test_heartbeat_v3_timeout_without_any_ping(void **) {
    Harness h(EioVersion::v3);
    EXPECT_TEXT(h.tick(kT0 + 44999), "");
    EXPECT_TEXT(h.tick(kT0 + 45000), "close 1000 ping timeout\n");
}

// [EIO3] a client pong is the wrong heartbeat direction.
void test_heartbeat_v3_client_pong(void **) {
    Harness h(EioVersion::v3);
    EXPECT_TEXT(h.text("3"), "close 1002 invalid heartbeat direction\n");
}

// ---- Namespaces ---------------------------------------------------------------------------

struct NsCase {
    EioVersion v;
    const char *frame;
    const char *expected;
    bool in_ns_after;
};

// [SIO5] "Connection to a namespace" (v4 clients send "40/nsp," optionally with an auth object);
// [SIO4] v2 clients may add "?query" to the namespace.
const NsCase kNsCases[] = {
    {EioVersion::v4, "40/psdm_ws,", "send 40/psdm_ws,{\"sid\":\"SID1\"}\n", true},
    {EioVersion::v4, "40/psdm_ws", "send 40/psdm_ws,{\"sid\":\"SID1\"}\n", true},
    {EioVersion::v4, "40/psdm_ws,{\"token\":\"abc\"}", "send 40/psdm_ws,{\"sid\":\"SID1\"}\n", true},
    {EioVersion::v4, "40", "send 40{\"sid\":\"SID1\"}\n", false},
    {EioVersion::v4, "40{\"token\":1}", "send 40{\"sid\":\"SID1\"}\n", false},
    {EioVersion::v4, "40/admin,", "send 44/admin,{\"message\":\"Invalid namespace\"}\n", false},
    {EioVersion::v4, "40/psdm_ws2,", "send 44/psdm_ws2,{\"message\":\"Invalid namespace\"}\n", false},
    {EioVersion::v3, "40/psdm_ws,", "send 40/psdm_ws,\n", true},
    {EioVersion::v3, "40/psdm_ws?token=abc&EIO=3,", "send 40/psdm_ws,\n", true},
    {EioVersion::v3, "40", "send 40\n", false},
    {EioVersion::v3, "40/admin,", "send 44/admin,\"Invalid namespace\"\n", false},
    {EioVersion::v3, "40/admin?x=1,", "send 44/admin,\"Invalid namespace\"\n", false},
};

void test_namespace_connect(void **) {
    for (const NsCase &c : kNsCases) {
        printf("connect v%d: %s\n", static_cast<int>(c.v), c.frame);
        Harness h(c.v);
        EXPECT_TEXT(h.text(c.frame), c.expected);
        assert_int_equal(h.s.in_namespace(), c.in_ns_after);
        assert_false(h.s.closed());
    }
}

// [SIO5] "Disconnection from a namespace": 41/nsp, -> the socket leaves all its rooms.
void test_namespace_disconnect(void **) {
    for (EioVersion v : {EioVersion::v3, EioVersion::v4}) {
        Harness h(v);
        h.text("40/psdm_ws,");
        EXPECT_TEXT(h.text("42/psdm_ws,[\"join\",\"a\"]"), "join a\n");
        EXPECT_TEXT(h.text("41/psdm_ws,"), "leave_all\n");
        assert_false(h.s.in_namespace());
        EXPECT_TEXT(h.text("41/psdm_ws,"), "");                   // not connected: nothing to leave
        EXPECT_TEXT(h.text("42/psdm_ws,5[\"join\",\"a\"]"), "");  // events after disconnect: ignored
        EXPECT_TEXT(h.text("41/admin,"), "");
        EXPECT_TEXT(h.text("41"), "");
        // Reconnect works.
        EXPECT_TEXT(h.text("40/psdm_ws"),
                    v == EioVersion::v4 ? "send 40/psdm_ws,{\"sid\":\"SID1\"}\n" : "send 40/psdm_ws,\n");
        assert_true(h.s.in_namespace());
    }
}

// ---- Events -------------------------------------------------------------------------------

struct EventCase {
    const char *frame;
    const char *expected;
};

// On a v4 session connected to /psdm_ws. [SIO5] "Acknowledgement": an
// event carrying an id is answered with 43<nsp>,<id>[...].
const EventCase kEventCases[] = {
    {"42/psdm_ws,[\"join\",\"room-1\"]", "join room-1\n"},
    {"42/psdm_ws,7[\"join\",\"room-1\"]", "join room-1 ack 7\n"},
    {"42/psdm_ws,8[\"leave\",\"room-1\"]", "leave room-1 ack 8\n"},
    {"42/psdm_ws,[\"leave\",\"room-1\"]", "leave room-1\n"},
    {"42/psdm_ws,[\"join\",\"room-1\",{\"extra\":true}]", "join room-1\n"},  // extra args ignored
    {"42/psdm_ws,9[\"join\",\"caf\\u00e9\"]", "join caf\xc3\xa9 ack 9\n"},   // JSON escapes decoded
    {"42/psdm_ws,3[\"join\",\"\"]", "send 43/psdm_ws,3[{\"error\":\"invalid room\"}]\n"},
    {"42/psdm_ws,3[\"join\"]", "send 43/psdm_ws,3[{\"error\":\"invalid room\"}]\n"},
    {"42/psdm_ws,3[\"join\",42]", "send 43/psdm_ws,3[{\"error\":\"invalid room\"}]\n"},
    {"42/psdm_ws,3[\"join\",[\"a\"]]", "send 43/psdm_ws,3[{\"error\":\"invalid room\"}]\n"},
    {"42/psdm_ws,3[\"join\",null]", "send 43/psdm_ws,3[{\"error\":\"invalid room\"}]\n"},
    {"42/psdm_ws,3[\"join\",\"a\\nb\"]", "send 43/psdm_ws,3[{\"error\":\"invalid room\"}]\n"},
    {"42/psdm_ws,3[\"leave\",7]", "send 43/psdm_ws,3[{\"error\":\"invalid room\"}]\n"},
    // The room-name rule (room_name_ok): no '/', no dot segment, no control character.
    {"42/psdm_ws,3[\"join\",\"..\"]", "send 43/psdm_ws,3[{\"error\":\"invalid room\"}]\n"},
    {"42/psdm_ws,3[\"join\",\".\"]", "send 43/psdm_ws,3[{\"error\":\"invalid room\"}]\n"},
    {"42/psdm_ws,3[\"join\",\"a/b\"]", "send 43/psdm_ws,3[{\"error\":\"invalid room\"}]\n"},
    {"42/psdm_ws,3[\"join\",\"\\/\"]", "send 43/psdm_ws,3[{\"error\":\"invalid room\"}]\n"},
    {"42/psdm_ws,3[\"leave\",\"..\"]", "send 43/psdm_ws,3[{\"error\":\"invalid room\"}]\n"},
    {"42/psdm_ws,3[\"join\",\"a\\u007fb\"]", "send 43/psdm_ws,3[{\"error\":\"invalid room\"}]\n"},
    {"42/psdm_ws,3[\"join\",\"a\\u0085b\"]", "send 43/psdm_ws,3[{\"error\":\"invalid room\"}]\n"},
    {"42/psdm_ws,3[\"join\",\"a\\tb\"]", "send 43/psdm_ws,3[{\"error\":\"invalid room\"}]\n"},
    {"42/psdm_ws,3[\"join\",\"...\"]", "join ... ack 3\n"},
    {"42/psdm_ws,3[\"join\",\".a\"]", "join .a ack 3\n"},
    {"42/psdm_ws,3[\"join\",\"%2e%2e\"]", "join %2e%2e ack 3\n"},
    {"42/psdm_ws,3[\"join\",\"a?b#c\\\\d\"]", "join a?b#c\\d ack 3\n"},
    {"42/psdm_ws,3[\"join\",\"a\\u00a0b\"]",
     "join a\xc2\xa0"
     "b ack 3\n"},                       // U+00A0: not a control
    {"42/psdm_ws,[\"join\",\"\"]", ""},  // invalid, no ack requested: silently dropped
    {"42/psdm_ws,4[\"subscribe\",\"a\"]", "send 43/psdm_ws,4[{\"error\":\"unknown event\"}]\n"},
    {"42/psdm_ws,4[\"JOIN\",\"a\"]", "send 43/psdm_ws,4[{\"error\":\"unknown event\"}]\n"},
    {"42/psdm_ws,[\"subscribe\",\"a\"]", ""},
    {"42/other,5[\"join\",\"a\"]", ""},  // namespace the client is not connected to
    {"42/other,[\"join\",\"a\"]", ""},
    {"42[\"join\",\"a\"]", ""},  // v4 client did not connect to "/"
    {"43/psdm_ws,1[]", ""},      // client acks: the server never asks, ignored
    {"44/psdm_ws,{\"message\":\"x\"}", ""},
};

void test_events(void **) {
    for (const EventCase &c : kEventCases) {
        printf("event: %s\n", c.frame);
        Harness h(EioVersion::v4);
        h.text("40/psdm_ws,");
        EXPECT_TEXT(h.text(c.frame), c.expected);
        assert_false(h.s.closed());
    }
}

void test_events_on_root(void **) {
    // v3: auto-connected to "/", which carries no events.
    Harness h3(EioVersion::v3);
    EXPECT_TEXT(h3.text("426[\"join\",\"a\"]"), "send 436[{\"error\":\"unknown event\"}]\n");
    EXPECT_TEXT(h3.text("42[\"join\",\"a\"]"), "");
    EXPECT_TEXT(h3.text("42/psdm_ws,6[\"join\",\"a\"]"), "");  // not yet connected to /psdm_ws
    // v4: only after an explicit "40".
    Harness h4(EioVersion::v4);
    EXPECT_TEXT(h4.text("426[\"join\",\"a\"]"), "");
    h4.text("40");
    EXPECT_TEXT(h4.text("426[\"join\",\"a\"]"), "send 436[{\"error\":\"unknown event\"}]\n");
    EXPECT_TEXT(h4.text("41"), "");
    EXPECT_TEXT(h4.text("426[\"join\",\"a\"]"), "");
}

void test_room_name_rule(void **) {
    for (const char *ok : {"a", "xpptut15", "the_global_room", "...", ".a", "a.", "a..b", "%2e%2e", "a?b", "a#b", "a b",
                           "a\\b", "caf\xc3\xa9", "\xc2\xa0", "\xe2\x80\xae"})
        if (!room_name_ok(ok)) fail_msg("'%s' refused", ok);
    for (const char *bad : {"", ".", "..", "/", "a/b", "/a", "a/", "a\nb", "\x1f", "a\x7f", "\xc2\x80",
                            "a\xc2\x9f"
                            "b"})
        if (room_name_ok(bad)) fail_msg("'%s' allowed", bad);
    assert_false(room_name_ok(std::string_view("a\0b", 3)));
    assert_true(room_name_ok(std::string(kMaxRoomBytes, '.')));
    assert_false(room_name_ok(std::string(kMaxRoomBytes + 1, 'r')));
}

void test_room_name_limit(void **) {
    Harness h(EioVersion::v4);
    h.text("40/psdm_ws,");
    const std::string longest(kMaxRoomBytes, 'r');
    EXPECT_TEXT(h.text("42/psdm_ws,1[\"join\",\"" + longest + "\"]"), ("join " + longest + " ack 1\n").c_str());
    EXPECT_TEXT(h.text("42/psdm_ws,2[\"join\",\"" + longest + "r\"]"),
                "send 43/psdm_ws,2[{\"error\":\"invalid room\"}]\n");
}

// Session keeps no room list: every valid join and leave is passed on, repeated or not (the
// cap on rooms per client and repeated joins are fanout/membership's, see test_membership).
void test_joins_passed_on(void **) {
    Harness h(EioVersion::v4);
    h.text("40/psdm_ws,");
    EXPECT_TEXT(h.text("42/psdm_ws,1[\"join\",\"a\"]"), "join a ack 1\n");
    EXPECT_TEXT(h.text("42/psdm_ws,2[\"join\",\"a\"]"), "join a ack 2\n");
    EXPECT_TEXT(h.text("42/psdm_ws,3[\"leave\",\"zz\"]"), "leave zz ack 3\n");
}

void test_join_leave_acks(void **) {
    for (EioVersion v : {EioVersion::v3, EioVersion::v4}) {
        Session s(v, test_limits(), "SID1", kT0);
        assert_string_equal(s.join_ack(12, true, "r1").c_str(), "43/psdm_ws,12[]");
        assert_string_equal(s.join_ack(12, false, "r\"1").c_str(),
                            "43/psdm_ws,12[{\"error\":\"forbidden\",\"room\":\"r\\\"1\"}]");
        assert_string_equal(s.leave_ack(0).c_str(), "43/psdm_ws,0[]");
        assert_string_equal(s.error_ack(3, "too many rooms").c_str(), "43/psdm_ws,3[{\"error\":\"too many rooms\"}]");
    }
    SessionLimits root = test_limits();
    root.ns = "/";
    Session s(EioVersion::v4, root, "SID1", kT0);
    assert_string_equal(s.join_ack(5, true, "r").c_str(), "435[]");
}

// With ns = "/", the root namespace carries the rooms (v3: from the automatic connect on).
void test_root_as_room_namespace(void **) {
    SessionLimits l = test_limits();
    l.ns = "/";
    Harness h3(EioVersion::v3, l);
    assert_true(h3.s.in_namespace());
    EXPECT_TEXT(h3.text("421[\"join\",\"a\"]"), "join a ack 1\n");
    EXPECT_TEXT(h3.text("41"), "leave_all\n");
    Harness h4(EioVersion::v4, l);
    assert_false(h4.s.in_namespace());
    EXPECT_TEXT(h4.text("40"), "send 40{\"sid\":\"SID1\"}\n");
    EXPECT_TEXT(h4.text("42[\"join\",\"a\"]"), "join a\n");
}

// ---- Engine.IO close, malformed input ------------------------------------------------------

void test_client_close(void **) {
    Harness h(EioVersion::v4);
    EXPECT_TEXT(h.text("1"), "close 1000 client closed\n");
    EXPECT_TEXT(h.text("40/psdm_ws,"), "");
}

struct BadCase {
    std::string frame;
    const char *expected;
};

std::string deep_event(size_t depth) {
    return "42/psdm_ws,[\"join\"," + std::string(depth, '[') + std::string(depth, ']') + "]";
}

// Every row closes the connection; session connected to /psdm_ws (v4), max_payload = 1000.
const BadCase kBadCases[] = {
    {"", "close 1002 malformed Engine.IO packet\n"},
    {"x", "close 1002 malformed Engine.IO packet\n"},
    {"7", "close 1002 malformed Engine.IO packet\n"},
    {"4x", "close 1002 malformed Socket.IO packet: bad_type\n"},
    {"0{\"sid\":\"x\"}", "close 1002 unexpected Engine.IO open packet\n"},
    {"4", "close 1002 malformed Socket.IO packet: empty\n"},
    {"42", "close 1002 malformed Socket.IO packet: bad_json\n"},
    {"42/psdm_ws", "close 1002 malformed Socket.IO packet: bad_json\n"},
    {"42/psdm_ws,", "close 1002 malformed Socket.IO packet: bad_json\n"},
    {"42[", "close 1002 malformed Socket.IO packet: bad_json\n"},
    {"42/psdm_ws,[", "close 1002 malformed Socket.IO packet: bad_json\n"},
    {"42/psdm_ws,{\"join\":\"a\"}", "close 1002 malformed Socket.IO packet: bad_json\n"},
    {"42/psdm_ws,\"join\"", "close 1002 malformed Socket.IO packet: bad_json\n"},
    {"42/psdm_ws,[]", "close 1002 malformed Socket.IO packet: bad_json\n"},
    {"42/psdm_ws,[1,\"a\"]", "close 1002 malformed Socket.IO packet: bad_json\n"},
    {"42/psdm_ws,[\"join\",\"a\"]trailing", "close 1002 malformed Socket.IO packet: bad_json\n"},
    {"4299999999999999999999[\"join\",\"a\"]", "close 1002 malformed Socket.IO packet: bad_ack_id\n"},
    {"42/psdm_ws,99999999999999999999999[\"join\",\"a\"]", "close 1002 malformed Socket.IO packet: bad_ack_id\n"},
    {"42/psd\x7fm,[\"join\",\"a\"]", "close 1002 malformed Socket.IO packet: bad_namespace\n"},
    {"45-[\"a\",{\"_placeholder\":true,\"num\":0}]", "close 1003 unsupported Socket.IO packet: binary\n"},
    {"451-/psdm_ws,[\"join\",{\"_placeholder\":true,\"num\":0}]", "close 1003 unsupported Socket.IO packet: binary\n"},
    {"461-/psdm_ws,3[{\"_placeholder\":true,\"num\":0}]", "close 1003 unsupported Socket.IO packet: binary\n"},
    {"48", "close 1002 malformed Socket.IO packet: bad_type\n"},
    {"42/psdm_ws,[\"join\",\"" + std::string(1000, 'a') + "\"]", "close 1009 frame too large\n"},
    // RFC 6455 section 8.1: a text message that is not UTF-8 closes with 1007, whatever it holds.
    {"42/psdm_ws,[\"join\",\"\xff\"]", "close 1007 text frame is not valid UTF-8\n"},
    {"4\xc3", "close 1007 text frame is not valid UTF-8\n"},
    {"2\xed\xa0\x80", "close 1007 text frame is not valid UTF-8\n"},  // a UTF-16 surrogate
    {"\xc0\xaf", "close 1007 text frame is not valid UTF-8\n"},       // overlong
};

void test_malformed(void **) {
    for (const BadCase &c : kBadCases) {
        printf("bad: %.60s\n", c.frame.c_str());
        Harness h(EioVersion::v4);
        h.text("40/psdm_ws,");
        EXPECT_TEXT(h.text(c.frame), c.expected);
        assert_true(h.s.closed());
        assert_true(h.s.next_deadline_ms() == INT64_MAX);
    }
}

// Deep nesting beyond the cJSON limit uses a payload bigger than the test max_payload.
void test_malformed_deep_nesting(void **) {
    SessionLimits l = test_limits();
    l.max_payload = 1000000;
    Harness h(EioVersion::v4, l);
    h.text("40/psdm_ws,");
    EXPECT_TEXT(h.text(deep_event(5000)), "close 1002 malformed Socket.IO packet: bad_json\n");
}

void test_frame_size_limit(void **) {
    SessionLimits l = test_limits();
    l.max_payload = 30;
    Harness h(EioVersion::v4, l);
    const std::string exact = "42/psdm_ws,[\"join\",\"abcdefgh\"]";  // 30 bytes
    assert_int_equal(exact.size(), 30);
    h.text("40/psdm_ws,");
    EXPECT_TEXT(h.text(exact), "join abcdefgh\n");
    EXPECT_TEXT(h.text(exact + " "), "close 1009 frame too large\n");
}

}  // namespace

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_v4),
        cmocka_unit_test(test_open_v3),
        cmocka_unit_test(test_heartbeat_v4),
        cmocka_unit_test(test_heartbeat_v4_timeout),
        cmocka_unit_test(test_heartbeat_v4_late_tick),
        cmocka_unit_test(test_heartbeat_v4_client_ping),
        cmocka_unit_test(test_heartbeat_v3),
        cmocka_unit_test(test_heartbeat_v3_timeout_without_any_ping),
        cmocka_unit_test(test_heartbeat_v3_client_pong),
        cmocka_unit_test(test_namespace_connect),
        cmocka_unit_test(test_namespace_disconnect),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_events_on_root),
        cmocka_unit_test(test_room_name_rule),
        cmocka_unit_test(test_room_name_limit),
        cmocka_unit_test(test_joins_passed_on),
        cmocka_unit_test(test_join_leave_acks),
        cmocka_unit_test(test_root_as_room_namespace),
        cmocka_unit_test(test_client_close),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_malformed_deep_nesting),
        cmocka_unit_test(test_frame_size_limit),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}

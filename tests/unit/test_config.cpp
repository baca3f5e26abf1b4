// Unit tests of worker/base/config.{h,cpp} and config_check: file syntax, every key's valid and
// invalid values, overrides, cross-field checks, config_load and config_dump, where keys were
// set, the system checks, and the example file's documented defaults.
// Table cases run twice: as the last line of a file, and as a -o override.
#include "base/config.h"
#include "base/config_check.h"

#include <cstdarg>
#include <cstddef>
#include <csetjmp>
#include <cstdint>
// cmocka 1.1.5 declares print_error()/print_message() (used by fail_msg) outside its own
// extern "C" block: wrap the whole header so they link.
extern "C" {
#include <cmocka.h>
}

#include <cstdio>
#include <cstdlib>
#include <unistd.h>
#include <string>
#include <vector>

using psdm::Config;
using psdm::ConfigError;

namespace {

// A minimal valid file; table cases replace or add one key.
const char *const kBase[] = {"# minimal", "authz = allow-all", "listen = 127.0.0.1:0", "topics = t1"};
const char *const kSrc = "test.conf";

std::string key_of(const std::string &line) {
    size_t eq = line.find('=');
    if (eq == std::string::npos) return "";
    std::string k = line.substr(0, eq);
    while (!k.empty() && k.back() == ' ') k.pop_back();
    return k;
}

// kBase without `key` (nor the key of `extra`), then `extra`; *lines = number of lines.
std::string base_without(const std::string &key, const std::string &extra, int *lines) {
    std::string text;
    *lines = 0;
    for (const char *l : kBase) {
        std::string k = key_of(l);
        if (k == key || (!extra.empty() && k == key_of(extra))) continue;
        text.append(l).append("\n");
        ++*lines;
    }
    if (!extra.empty()) {
        text.append(extra).append("\n");
        ++*lines;
    }
    return text;
}

bool parse(const std::string &text, const std::vector<std::string> &overrides, Config *c, std::string *msg) {
    ConfigError err;
    bool ok = psdm::config_parse(text, kSrc, overrides, c, &err);
    *msg = err.message;
    return ok;
}

bool contains(const std::string &hay, const std::string &needle) { return hay.find(needle) != std::string::npos; }

#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            std::fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            std::fprintf(stderr, __VA_ARGS__);                                            \
            std::fprintf(stderr, "\n");                                                   \
            ++failures;                                                                   \
        }                                                                                 \
    } while (0)

struct Case {
    const char *key;
    const char *value;
    bool ok;
    const char *expect;      // ok: value in config_dump; error: part of the message
    const char *extra = "";  // another line needed by the case
};

const Case kCases[] = {
    {"handoff_socket", "/run/psdm_socket/handoff.sock", true, "/run/psdm_socket/handoff.sock"},
    {"handoff_socket", "", true, ""},
    {"handoff_socket", "handoff.sock", false, "expected an absolute path of at most 107 bytes, got 'handoff.sock'"},
    {"handoff_socket_mode", "0660", true, "0660"},
    {"handoff_socket_mode", "0600", true, "0600"},
    {"handoff_socket_mode", "660", true, "0660"},
    {"handoff_socket_mode", "0", true, "0000"},
    {"handoff_socket_mode", "0777", true, "0777"},
    {"handoff_socket_mode", "0800", false, "expected an octal mode like 0660, got '0800'"},
    {"handoff_socket_mode", "01777", false, "must be at most 0777"},
    {"handoff_socket_mode", "rw-rw----", false, "expected an octal mode"},
    {"handoff_socket_mode", "-0660", false, "expected an octal mode"},
    {"handoff_socket_mode", "", false, "expected an octal mode"},
    {"handoff_allowed_peers", "www-data", true, "www-data"},
    {"handoff_allowed_peers", "www-data, 33 ,apache", true, "www-data, 33, apache"},
    {"handoff_allowed_peers", "4294967294", true, "4294967294"},
    {"handoff_allowed_peers", "", true, ""},  // allowed without handoff_socket
    {"handoff_allowed_peers", "bad user", false, "'bad user' is neither a user name nor a numeric uid"},
    {"handoff_allowed_peers", "-x", false, "neither a user name"},
    {"handoff_allowed_peers", "4294967295", false, "neither a user name"},
    {"handoff_allowed_peers", "a,a", false, "'a' is listed twice"},
    {"handoff_allowed_peers", "a,", false, "empty entry"},
    {"listen", "127.0.0.1:8080", true, "127.0.0.1:8080"},
    {"listen", "0.0.0.0:0", true, "0.0.0.0:0"},
    {"listen", "[::1]:8080", true, "[::1]:8080"},
    {"listen", "[::]:65535", true, "[::]:65535"},
    {"listen", "localhost:8080", true, "localhost:8080"},
    {"listen", "psdm-ws.slac.stanford.edu:8443", true, "psdm-ws.slac.stanford.edu:8443"},
    {"listen", "", true, "", "handoff_socket = /run/h.sock"},
    {"listen", "8080", false, "expected host:port like"},
    {"listen", ":8080", false, "expected host:port like"},
    {"listen", "localhost", false, "expected host:port like"},
    {"listen", "localhost:", false, "port must be a number from 0 to 65535"},
    {"listen", "localhost:65536", false, "port must be"},
    {"listen", "localhost:-1", false, "port must be"},
    {"listen", "localhost:80x", false, "port must be"},
    {"listen", "::1:8080", false, "must be in brackets"},
    {"listen", "[::1]8080", false, "expected host:port"},
    {"listen", "[::1]:", false, "port must be"},
    {"listen", "[zz]:80", false, "'zz' is not an IPv6 address"},
    {"listen", "256.1.1.1:80", false, "neither an IPv4 address nor a host name"},
    {"listen", "1.2.3:80", false, "neither an IPv4"},
    {"listen", "bad_host:80", false, "neither an IPv4"},
    {"listen", "-a.b:80", false, "neither an IPv4"},
    {"listen", "a..b:80", false, "neither an IPv4"},
    {"admin_listen", "127.0.0.1:9100", true, "127.0.0.1:9100"},
    {"admin_listen", "[::1]:0", true, "[::1]:0"},
    {"admin_listen", "localhost:9100", true, "localhost:9100"},
    {"admin_listen", "", true, ""},
    {"admin_listen", "127.0.0.1:0", true, "127.0.0.1:0"},  // listen is 127.0.0.1:0 too: two free ports
    {"admin_listen", "127.0.0.2:8080", true, "127.0.0.2:8080", "listen = 127.0.0.1:8080"},
    {"admin_listen", "9100", false, "expected host:port like"},
    {"admin_listen", "::1:9100", false, "must be in brackets"},
    {"admin_listen", "localhost:65536", false, "port must be"},
    {"admin_listen", "bad_host:80", false, "neither an IPv4"},
    {"admin_listen", "127.0.0.1:8080", false,
     "admin_listen: '127.0.0.1:8080' is the port of 'listen' ('127.0.0.1:8080'): the admin port must be a port of "
     "its own",
     "listen = 127.0.0.1:8080"},
    {"admin_listen", "0.0.0.0:8080", false, "is the port of 'listen'", "listen = 127.0.0.1:8080"},
    {"admin_listen", "[::1]:8080", false, "is the port of 'listen'", "listen = [::]:8080"},
    {"topics", "t1", true, "t1"},
    {"topics", " a , b,c ", true, "a, b, c"},
    {"topics", "", false, "topics: not set"},
    {"topics", "a,,b", false, "empty entry in the comma-separated list 'a,,b'"},
    {"topics", "a,b,a", false, "'a' is listed twice"},
    {"topics", ",a", false, "empty entry"},
    {"topics", "Elog.v2_x-y", true, "Elog.v2_x-y"},
    {"topics", "a b", false, "'a b' is not a Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -, not '.' or '..')"},
    {"topics", "a, .", false, "'.' is not a Kafka topic name"},
    {"topics", "..", false, "'..' is not a Kafka topic name"},
    {"topics", "a/b", false, "'a/b' is not a Kafka topic name"},
    {"topics", "caf\xC3\xA9", false, "is not a Kafka topic name"},
    {"topics", "a#b", false, "'a#b' is not a Kafka topic name"},
    {"global_room_topics", "experiments", true, "experiments"},
    {"global_room_topics", "x,y", true, "x, y"},
    {"global_room_topics", "", true, ""},
    {"global_room_topics", "x,,y", false, "empty entry"},
    {"global_room_topics", "x,x", false, "listed twice"},
    {"global_room_topics", "x,..", false, "'..' is not a Kafka topic name"},
    {"global_room_topics", "x y", false, "'x y' is not a Kafka topic name"},
    {"room_field", "exp", true, "exp"},
    {"room_field", "", false, "must not be empty"},
    {"namespace", "/", true, "/"},
    {"namespace", "/psdm", true, "/psdm"},
    {"namespace", "psdm", false, "expected a Socket.IO namespace like /psdm_ws"},
    {"namespace", "", false, "expected a Socket.IO namespace"},
    {"namespace", "/a,b", false, "expected a Socket.IO namespace"},
    {"namespace", "/a b", false, "expected a Socket.IO namespace"},
    {"namespace", "/a?x", false, "expected a Socket.IO namespace"},
    {"event", "msg", true, "msg"},
    {"event", "", false, "must not be empty"},
    {"event", "connect", false, "'connect' is reserved by the Socket.IO client"},
    {"event", "disconnect", false, "reserved"},
    {"authz", "allow-all", true, "allow-all"},
    {"authz", "file:/etc/psdm_socket/rooms", true, "file:/etc/psdm_socket/rooms"},
    {"authz", "http://localhost:8081/authz", true, "http://localhost:8081/authz"},
    {"authz", "https://authz.example/check?u=x", true, "https://authz.example/check?u=x"},
    {"authz", "allow", false, "expected 'allow-all', 'file:/ABSOLUTE/PATH', 'http://HOST/...' or"},
    {"authz", "ALLOW-ALL", false, "expected 'allow-all'"},
    {"authz", "file:", false, "expected 'allow-all'"},
    {"authz", "file:rooms", false, "expected 'allow-all'"},
    {"authz", "http://", false, "expected 'allow-all'"},
    {"authz", "https:///path", false, "expected 'allow-all'"},
    {"authz", "http:https://x", false, "expected 'allow-all'"},
    {"authz", "ftp://x", false, "expected 'allow-all'"},
    {"authz", "", false, "expected 'allow-all'"},
    {"max_connections", "0", true, "0"},
    {"max_connections", "10000", true, "10000"},
    {"max_connections", "-1", false, "expected a decimal integer, got '-1'"},
    {"max_connections", "+5", false, "expected a decimal integer"},
    {"max_connections", "10k", false, "expected a decimal integer"},
    {"max_connections", "1 000", false, "expected a decimal integer"},
    {"max_connections", "0x10", false, "expected a decimal integer"},
    {"max_connections", "99999999999999999999999", false, "must be between 0 and"},
    {"max_payload", "1048576", true, "1048576"},
    {"max_payload", "512k", true, "524288"},
    {"max_payload", "512K", true, "524288"},
    {"max_payload", "4M", true, "4194304"},
    {"max_payload", "1k", true, "1024"},
    {"max_payload", "64M", true, "67108864", "client_backlog = 64M"},
    {"max_payload", "x", false, "max_payload: expected a size like 1048576, 512k or 4M, got 'x'"},
    {"max_payload", "1023", false, "max_payload: must be between 1k and 64M, got '1023'"},
    {"max_payload", "65M", false, "must be between 1k and 64M, got '65M'"},
    {"max_payload", "4m", false, "expected a size like"},
    {"max_payload", "4MB", false, "expected a size like"},
    {"max_payload", "4 M", false, "expected a size like"},
    {"max_payload", "1.5M", false, "expected a size like"},
    {"max_payload", "-1", false, "expected a size like"},
    {"max_payload", "", false, "expected a size like"},
    {"max_payload", "M", false, "expected a size like"},
    {"max_payload", "99999999999999999999", false, "size too large"},
    {"max_payload", "18014398509481984M", false, "size too large"},
    {"client_backlog", "8M", true, "8388608"},
    {"client_backlog", "1M", true, "1048576"},  // == max_payload
    {"client_backlog", "1048575", false, "client_backlog: client_backlog (1048575) must be at least max_payload (1M)"},
    {"client_backlog", "0", false, "must be at least max_payload"},
    {"client_backlog", "lots", false, "expected a size like"},
    {"ping_interval_ms", "1000", true, "1000"},
    {"ping_interval_ms", "3600000", true, "3600000"},
    {"ping_interval_ms", "999", false, "must be between 1000 and 3600000, got '999'"},
    {"ping_interval_ms", "3600001", false, "must be between 1000 and 3600000"},
    {"ping_interval_ms", "4294967296", false, "must be between"},
    {"ping_interval_ms", "25s", false, "expected a decimal integer, got '25s'"},
    {"ping_interval_ms", "-25000", false, "expected a decimal integer"},
    {"ping_timeout_ms", "1000", true, "1000"},
    {"ping_timeout_ms", "60000", true, "60000"},
    {"ping_timeout_ms", "0", false, "must be between 1000 and 3600000"},
    {"ping_timeout_ms", "20 000", false, "expected a decimal integer"},
    {"max_rooms_per_client", "1", true, "1"},
    {"max_rooms_per_client", "100000", true, "100000"},
    {"max_rooms_per_client", "0", false, "must be between 1 and 100000"},
    {"max_rooms_per_client", "100001", false, "must be between 1 and 100000"},
    {"max_rooms_per_client", "many", false, "expected a decimal integer"},
    {"fanout_sends", "io_uring", true, "io_uring"},
    {"fanout_sends", "send", true, "send"},
    {"fanout_sends", "uring", false, "expected io_uring or send, got 'uring'"},
    {"fanout_sends", "", false, "expected io_uring or send"},
    {"log_level", "debug", true, "debug"},
    {"log_level", "info", true, "info"},
    {"log_level", "notice", true, "notice"},
    {"log_level", "warn", true, "warn"},
    {"log_level", "error", true, "error"},
    {"log_level", "warning", false, "expected debug, info, notice, warn or error, got 'warning'"},
    {"log_level", "INFO", false, "expected debug"},
    {"log_level", "", false, "expected debug"},
    {"authz_timeout_ms", "100", true, "100"},
    {"authz_timeout_ms", "60000", true, "60000"},
    {"authz_timeout_ms", "99", false, "must be between 100 and 60000"},
    {"authz_timeout_ms", "60001", false, "must be between 100 and 60000"},
    {"authz_timeout_ms", "2s", false, "expected a decimal integer"},
    {"authz_user_header", "REMOTE-USER", true, "REMOTE-USER"},
    {"authz_user_header", "REMOTE_USER", true, "REMOTE_USER"},
    {"authz_user_header", "X-Vouch-Idp-Claims-Name", true, "X-Vouch-Idp-Claims-Name"},
    {"authz_user_header", "", false, "expected an HTTP header name like REMOTE-USER, got ''"},
    {"authz_user_header", "REMOTE USER", false, "expected an HTTP header name"},
    {"authz_user_header", "X-User:", false, "expected an HTTP header name"},
    {"authz_allow_ttl_ms", "1000", true, "1000"},
    {"authz_allow_ttl_ms", "86400000", true, "86400000"},
    {"authz_allow_ttl_ms", "999", false, "must be between 1000 and 86400000, got '999'"},
    {"authz_allow_ttl_ms", "0", false, "must be between 1000 and 86400000"},
    {"authz_allow_ttl_ms", "1m", false, "expected a decimal integer"},
    {"authz_deny_ttl_ms", "0", true, "0"},
    {"authz_deny_ttl_ms", "86400000", true, "86400000"},
    {"authz_deny_ttl_ms", "86400001", false, "must be between 0 and 86400000"},
    {"authz_deny_ttl_ms", "-1", false, "expected a decimal integer"},
    {"shutdown_timeout_ms", "0", true, "0"},
    {"shutdown_timeout_ms", "600000", true, "600000"},
    {"shutdown_timeout_ms", "600001", false, "must be between 0 and 600000"},
    {"recovery_window_ms", "0", true, "0"},
    {"recovery_window_ms", "86400001", false, "must be between 0 and 86400000"},
    {"recovery_max_bytes", "0", true, "0"},
    {"recovery_max_bytes", "1024M", true, "1073741824"},
    {"authz_max_in_flight", "1", true, "1"},
    {"authz_max_in_flight", "1024", true, "1024"},
    {"authz_max_in_flight", "0", false, "must be between 1 and 1024, got '0'"},
    {"authz_max_in_flight", "1025", false, "must be between 1 and 1024"},
    {"kafka.bootstrap.servers", "a:9092,b:9092", true, "a:9092,b:9092"},
    {"kafka.group.id", "", true, ""},
    {"kafka.", "x", false, "kafka.: missing the librdkafka property name"},
    {"kafka", "x", false, "kafka: unknown key"},
    {"kafka.a b", "x", false, "kafka.a b: not a librdkafka property name (a-z A-Z 0-9 . _ -)"},
    {"kafka.a:b", "x", false, "not a librdkafka property name"},
    {"max payload", "1M", false, "max payload: unknown key"},
};

void check_case(const Case &tc, bool via_override, int &failures) {
    int lines = 0;
    std::string text = base_without(tc.key, tc.extra, &lines);
    std::string entry = std::string(tc.key) + (*tc.value ? " = " : " =") + tc.value;
    std::vector<std::string> overrides;
    if (via_override) {
        overrides.push_back(std::string(tc.key) + "=" + tc.value);
    } else {
        text += entry + "\n";
        ++lines;
    }
    const char *how = via_override ? "-o" : "file";
    Config c;
    std::string msg;
    bool ok = parse(text, overrides, &c, &msg);
    CHECK(ok == tc.ok, "[%s] %s: expected %s, got %s", how, entry.c_str(), tc.ok ? "success" : "an error",
          ok ? "success" : msg.c_str());
    if (ok && tc.ok) {
        std::string line = std::string(tc.key) + (*tc.expect ? " = " : " =") + tc.expect + "\n";
        std::string dump = psdm::config_dump(c);
        CHECK(contains(dump, line), "[%s] %s: dump lacks '%s':\n%s", how, entry.c_str(), line.c_str(), dump.c_str());
    } else if (!ok && !tc.ok) {
        std::string loc = via_override ? "-o: " : std::string(kSrc) + ":" + std::to_string(lines) + ": ";
        CHECK(msg.compare(0, loc.size(), loc) == 0, "[%s] %s: message does not start with '%s': %s", how, entry.c_str(),
              loc.c_str(), msg.c_str());
        CHECK(contains(msg, tc.expect), "[%s] %s: message lacks '%s': %s", how, entry.c_str(), tc.expect, msg.c_str());
    }
}

void test_table(void **) {
    int failures = 0;
    for (const Case &tc : kCases) {
        check_case(tc, false, failures);
        check_case(tc, true, failures);
    }
    if (failures) fail_msg("%d table checks failed", failures);
}

void test_defaults(void **) {
    Config c;
    std::string msg;
    assert_true(parse("authz = allow-all\nlisten = 127.0.0.1:0\ntopics = t1\n", {}, &c, &msg));
    const Config d;
    assert_string_equal(c.source.c_str(), kSrc);
    assert_string_equal(c.handoff_socket.c_str(), "");
    assert_int_equal(c.handoff_socket_mode, 0660);
    assert_true(c.handoff_allowed_peers == std::vector<std::string>{"www-data"});
    assert_true(c.kafka.empty());
    assert_true(c.global_room_topics == std::vector<std::string>{"experiments"});
    assert_string_equal(c.room_field.c_str(), "experiment_name");
    assert_string_equal(c.ns.c_str(), "/psdm_ws");
    assert_string_equal(c.event.c_str(), "psdm_ws_msg");
    assert_int_equal(c.max_connections, 0);
    assert_int_equal(c.max_payload, 1048576);
    assert_int_equal(c.client_backlog, 4194304);
    assert_int_equal(c.ping_interval_ms, 25000);
    assert_int_equal(c.ping_timeout_ms, 20000);
    assert_int_equal(c.max_rooms_per_client, 100);
    assert_string_equal(c.log_level.c_str(), "info");
    assert_int_equal(c.authz_timeout_ms, 2000);
    assert_string_equal(c.authz_user_header.c_str(), "REMOTE-USER");
    assert_int_equal(c.authz_allow_ttl_ms, 60000);
    assert_int_equal(c.authz_deny_ttl_ms, 10000);
    assert_int_equal(c.shutdown_timeout_ms, 5000);
    assert_int_equal(c.recovery_window_ms, 300000);
    assert_int_equal(c.recovery_max_bytes, 64 * 1024 * 1024);
    assert_int_equal(c.authz_max_in_flight, 16);
    // The defaults of the struct are those of the parser.
    Config copy = d;
    copy.source = kSrc;
    copy.authz = "allow-all";
    copy.listen = "127.0.0.1:0";
    copy.topics = {"t1"};
    assert_string_equal(psdm::config_dump(c).c_str(), psdm::config_dump(copy).c_str());
}

void test_syntax(void **) {
    const char *text =
        "\xEF\xBB\xBF# comment at the top\n"
        "\n"
        "   \t  \n"
        "   # indented comment = not a key\n"
        "authz=allow-all\r\n"
        "\tlisten   =   127.0.0.1:0   \r\n"
        "topics = a, b   # trailing comment\n"
        "kafka.sasl.password = ab#cd\n"
        "kafka.client.id = x\t# tab before the comment\n"
        "kafka.group.id = #only a comment\n"
        "kafka.sasl.username = u=v==w\n"
        "event =  #\n"
        "room_field = exp";  // no final newline
    // event becomes "" and is rejected: prove the line number counts every line.
    Config c;
    std::string msg;
    assert_false(parse(text, {}, &c, &msg));
    assert_string_equal(msg.c_str(), "test.conf:12: event: must not be empty");

    std::string fixed(text);
    fixed.replace(fixed.find("event =  #"), 10, "event = e#");
    assert_true(parse(fixed, {}, &c, &msg));
    assert_true(c.topics == (std::vector<std::string>{"a", "b"}));
    assert_string_equal(c.listen.c_str(), "127.0.0.1:0");
    assert_string_equal(c.kafka["sasl.password"].c_str(), "ab#cd");
    assert_string_equal(c.kafka["client.id"].c_str(), "x");
    assert_string_equal(c.kafka["group.id"].c_str(), "");
    assert_string_equal(c.kafka["sasl.username"].c_str(), "u=v==w");
    assert_string_equal(c.event.c_str(), "e#");
    assert_string_equal(c.room_field.c_str(), "exp");
    assert_int_equal(c.kafka.size(), 4);

    struct {
        const char *text;
        const char *msg;
    } bad[] = {
        {"authz = allow-all\nlisten\n", "test.conf:2: expected 'key = value', got 'listen'"},
        {"= allow-all\n", "test.conf:1: expected 'key = value', got '= allow-all'"},
        {"authz = allow\x01-all\n", "test.conf:1: control character 0x01 is not allowed"},
        {"authz = allow-all\n\nfoo = 1\n", "test.conf:3: foo: unknown key"},
        {"Authz = allow-all\n", "test.conf:1: Authz: unknown key"},
        {"topics = a\n# x\ntopics = b\n", "test.conf:3: topics: already set at line 1"},
        {"kafka.a = 1\nkafka.a = 1\n", "test.conf:2: kafka.a: already set at line 1"},
        {"listen = 127.0.0.1:0\nlisten = 127.0.0.1:0\n", "test.conf:2: listen: already set at line 1"},
    };
    for (auto &b : bad) {
        assert_false(parse(b.text, {}, &c, &msg));
        assert_string_equal(msg.c_str(), b.msg);
    }
    // Long values are cut in messages.
    std::string long_key(200, 'k');
    assert_false(parse(long_key + " = 1\n", {}, &c, &msg));
    assert_string_equal(msg.c_str(), ("test.conf:1: " + std::string(100, 'k') + "...: unknown key").c_str());
}

void test_overrides(void **) {
    const std::string text = "authz = allow-all\nlisten = 127.0.0.1:0\ntopics = t1\nmax_payload = 2M\n";
    Config c;
    std::string msg;
    assert_true(parse(
        text,
        {"max_payload=4M", "  topics = a , b ", "kafka.group.id=g", "kafka.sasl.password=a #b", "log_level=debug"}, &c,
        &msg));
    assert_int_equal(c.max_payload, 4u << 20);
    assert_true(c.topics == (std::vector<std::string>{"a", "b"}));
    assert_string_equal(c.kafka["group.id"].c_str(), "g");
    assert_string_equal(c.kafka["sasl.password"].c_str(), "a #b");  // -o is literal
    assert_string_equal(c.log_level.c_str(), "debug");

    struct {
        std::vector<std::string> o;
        const char *msg;
    } bad[] = {
        {{"max_payload"}, "-o: expected key=value, got 'max_payload'"},
        {{"=4M"}, "-o: expected key=value, got '=4M'"},
        {{"foo=1"}, "-o: foo: unknown key"},
        {{"max_payload=x"}, "-o: max_payload: expected a size like 1048576, 512k or 4M, got 'x'"},
        {{"max_payload=1M", "max_payload=2M"}, "-o: max_payload: given twice"},
        {{"authz=a\nb"}, "-o: control character 0x0a is not allowed"},
    };
    for (auto &b : bad) {
        assert_false(parse(text, b.o, &c, &msg));
        assert_string_equal(msg.c_str(), b.msg);
    }
}

void test_cross_checks(void **) {
    Config c;
    std::string msg;
    assert_false(parse("listen = 127.0.0.1:0\ntopics = t\n", {}, &c, &msg));
    assert_string_equal(msg.c_str(),
                        "test.conf: authz: not set: write 'authz = allow-all' explicitly to "
                        "allow every user into every room");
    assert_true(parse("listen = 127.0.0.1:0\ntopics = t\n", {"authz=allow-all"}, &c, &msg));

    assert_false(parse("authz = allow-all\ntopics = t\n", {}, &c, &msg));
    assert_true(contains(msg, "test.conf: handoff_socket, listen: nothing to listen on"));
    assert_false(parse("authz = allow-all\ntopics = t\nlisten =\nhandoff_socket =\n", {}, &c, &msg));
    assert_true(contains(msg, "test.conf: handoff_socket, listen: nothing to listen on"));
    assert_true(parse("authz = allow-all\ntopics = t\nhandoff_socket = /run/h.sock\n", {}, &c, &msg));
    assert_true(
        parse("authz = allow-all\ntopics = t\nlisten = [::1]:80\nhandoff_socket = /run/h.sock\n", {}, &c, &msg));

    assert_false(parse("authz = allow-all\nlisten = 127.0.0.1:0\n", {}, &c, &msg));
    assert_string_equal(msg.c_str(),
                        "test.conf: topics: not set: list the Kafka topics to consume, e.g. 'topics = "
                        "experiments, runs'");

    assert_false(
        parse("authz = allow-all\ntopics = t\nhandoff_socket = /run/h.sock\nhandoff_allowed_peers =\n", {}, &c, &msg));
    assert_true(contains(msg, "test.conf:4: handoff_allowed_peers: empty while 'handoff_socket' is set"));

    // max_payload raised above the default backlog: the max_payload line is blamed.
    assert_false(parse("authz = allow-all\ntopics = t\nlisten = a:1\nmax_payload = 8M\n", {}, &c, &msg));
    assert_string_equal(msg.c_str(),
                        "test.conf:4: max_payload: client_backlog (4M) must be at least max_payload (8M): "
                        "a client must be able to queue one full message");
    assert_false(parse("authz = allow-all\ntopics = t\nlisten = a:1\nmax_payload = 8M\n",
                       {"max_payload=16M", "client_backlog=8M"}, &c, &msg));
    assert_true(contains(msg, "-o: client_backlog: client_backlog (8M) must be at least max_payload (16M)"));

    // Handoff socket path length: sun_path holds 107 bytes and the NUL.
    std::string path = "/" + std::string(106, 'x');
    assert_true(parse("authz = allow-all\ntopics = t\nhandoff_socket = " + path + "\n", {}, &c, &msg));
    assert_false(parse("authz = allow-all\ntopics = t\nhandoff_socket = " + path + "x\n", {}, &c, &msg));
    assert_true(contains(msg, "test.conf:3: handoff_socket: expected an absolute path of at most 107"));
}

void test_untouched_on_error(void **) {
    Config c;
    c.event = "sentinel";
    ConfigError err{"old"};
    assert_false(psdm::config_parse("event = x\nfoo = 1\n", "f", {}, &c, &err));
    assert_string_equal(c.event.c_str(), "sentinel");
    assert_string_equal(err.message.c_str(), "f:2: foo: unknown key");
    assert_true(psdm::config_parse("authz=allow-all\nlisten=a:1\ntopics=t\n", "f", {}, &c, &err));
    assert_string_equal(err.message.c_str(), "f:2: foo: unknown key");  // err untouched on success
    assert_string_equal(c.event.c_str(), "psdm_ws_msg");
}

void test_dump(void **) {
    Config c;
    std::string msg;
    assert_true(
        parse("authz = file:/etc/psdm_socket/rooms\nlisten = [::1]:8080\ntopics = a, b\n"
              "handoff_socket = /run/h.sock\nhandoff_socket_mode = 0600\n"
              "handoff_allowed_peers = www-data, 33\nglobal_room_topics =\n"
              "kafka.bootstrap.servers = k1:9092,k2:9092\nkafka.sasl.password = hunter2\n"
              "kafka.ssl.key.password = p2\nkafka.SASL.OAUTHBEARER.CLIENT.SECRET = s3\n"
              "kafka.ssl.key.pem = KEY\nkafka.sasl.oauthbearer.config = principal=x\n"
              "kafka.sasl.username = alice\nmax_payload = 512k\n",
              {}, &c, &msg));
    std::string dump = psdm::config_dump(c);
    for (const char *line : {"kafka.sasl.password = ***\n", "kafka.ssl.key.password = ***\n",
                             "kafka.SASL.OAUTHBEARER.CLIENT.SECRET = ***\n", "kafka.ssl.key.pem = ***\n",
                             "kafka.sasl.oauthbearer.config = ***\n", "kafka.sasl.username = alice\n",
                             "kafka.bootstrap.servers = k1:9092,k2:9092\n", "handoff_socket_mode = 0600\n",
                             "handoff_allowed_peers = www-data, 33\n", "global_room_topics =\n",
                             "namespace = /psdm_ws\n", "max_payload = 524288\n", "topics = a, b\n"}) {
        if (!contains(dump, line)) fail_msg("dump lacks '%s':\n%s", line, dump.c_str());
    }
    for (const char *secret : {"hunter2", "p2", "s3", "KEY", "principal"})
        if (contains(dump, secret)) fail_msg("dump shows secret '%s':\n%s", secret, dump.c_str());

    // Without secrets the dump parses back to the same configuration.
    c.kafka.erase("sasl.password");
    c.kafka.erase("ssl.key.password");
    c.kafka.erase("SASL.OAUTHBEARER.CLIENT.SECRET");
    c.kafka.erase("ssl.key.pem");
    c.kafka.erase("sasl.oauthbearer.config");
    dump = psdm::config_dump(c);
    Config back;
    assert_true(parse(dump, {}, &back, &msg));
    assert_string_equal(psdm::config_dump(back).c_str(), dump.c_str());
    // One line per key: 29 keys + 2 kafka properties.
    size_t lines = 0;
    for (char ch : dump) lines += ch == '\n';
    assert_int_equal(lines, 31);
}

void test_topic_name_length(void **) {
    Config c;
    std::string msg;
    const std::string base = "authz = allow-all\nlisten = 127.0.0.1:0\n";
    assert_true(parse(base + "topics = " + std::string(249, 't') + "\n", {}, &c, &msg));
    assert_false(parse(base + "topics = a, " + std::string(250, 't') + "\n", {}, &c, &msg));
    assert_true(contains(msg, "test.conf:3: topics: '" + std::string(100, 't') + "...' is not a Kafka topic"));
    // A '#' entry is a comment in the file (the list ends before it), and refused through -o.
    assert_true(parse(base + "topics = a, b #c\n", {}, &c, &msg));
    assert_true(c.topics == (std::vector<std::string>{"a", "b"}));
    assert_false(parse(base + "topics = a\n", {"topics=a, #b"}, &c, &msg));
    assert_string_equal(msg.c_str(),
                        "-o: topics: '#b' is not a Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -, not '.' "
                        "or '..')");
}

void test_quoted_values(void **) {
    const std::string base = "authz = allow-all\nlisten = 127.0.0.1:0\ntopics = t\n";
    Config c;
    std::string msg;
    assert_true(parse(base + "room_field = \" a #1 \"   # the quotes keep blanks and '#'\n"
                             "event = \"say \\\"hi\\\" \\\\o/\"\n"
                             "kafka.client.id = \"\"\n"
                             "kafka.group.id = \"#g\"#right after the quote: a comment\n"
                             "kafka.sasl.username = a\"b\"\n"  // not starting with '"': bare
                             "kafka.sasl.password = a\\b\n",   // bare: no escapes
                      {}, &c, &msg));
    assert_string_equal(c.room_field.c_str(), " a #1 ");
    assert_string_equal(c.event.c_str(), "say \"hi\" \\o/");
    assert_string_equal(c.kafka["client.id"].c_str(), "");
    assert_string_equal(c.kafka["group.id"].c_str(), "#g");
    assert_string_equal(c.kafka["sasl.username"].c_str(), "a\"b\"");
    assert_string_equal(c.kafka["sasl.password"].c_str(), "a\\b");
    // -o is literal: quotes are part of the value.
    assert_true(parse(base, {"event=\"x\""}, &c, &msg));
    assert_string_equal(c.event.c_str(), "\"x\"");

    struct {
        const char *line;
        const char *msg;
    } bad[] = {
        {"event = \"abc", "test.conf:4: event: the quoted value '\"abc' has no closing '\"'"},
        {"event = \"a\\nb\"", "test.conf:4: event: in a quoted value '\\' must be followed by '\"' or '\\'"},
        {"event = \"a\\", "test.conf:4: event: in a quoted value '\\' must be followed by"},
        {"event = \"a\" b", "test.conf:4: event: unexpected text after the closing '\"' of '\"a\" b'"},
        {"event = \"\"", "test.conf:4: event: must not be empty"},
    };
    for (auto &b : bad) {
        assert_false(parse(base + b.line + "\n", {}, &c, &msg));
        if (!contains(msg, b.msg)) fail_msg("%s: got '%s', expected '%s'", b.line, msg.c_str(), b.msg);
    }
}

// Every key, set through -o (literal) to each hostile value it accepts, is dumped and the dump,
// parsed back as a file, gives the same configuration; values with blanks at either end, which
// only the file's quotes can give, too.
void test_dump_round_trips_hostile_values(void **) {
    const std::string base = "authz = allow-all\nlisten = 127.0.0.1:0\ntopics = t1\n";
    Config c;
    std::string msg;
    assert_true(parse(base, {}, &c, &msg));
    std::vector<std::string> keys{"kafka.client.id", "kafka.bootstrap.servers"};
    const std::string plain = psdm::config_dump(c);
    for (size_t pos = 0; pos < plain.size(); pos = plain.find('\n', pos) + 1) keys.push_back(key_of(plain.substr(pos)));
    assert_true(keys.size() >= 24);

    const char *hostile[] = {"#x",           "a #b", "a\t#b", "#",     "\"q\"",   "\"",        "q\"",    "a\\b",
                             "\\",           "\\\"", "a=b",   "x = y", "=",       "a, b",      "a,#b",   "a, #b",
                             " #",           "\t#x", "a#b",   "é",     "''",      "/tmp/a #b", "/a\"#b", "file:/a #b",
                             "#!$%&'*+^`|~", "-",    "12 #",  "\"\"",  "\"a\" #c"};
    size_t accepted = 0;
    auto round_trip = [&](const std::string &key, const Config &set) {
        const std::string dump = psdm::config_dump(set);
        Config back;
        std::string why;
        if (!parse(dump, {}, &back, &why))
            fail_msg("%s: the dump does not parse: %s\n%s", key.c_str(), why.c_str(), dump.c_str());
        const std::string again = psdm::config_dump(back);
        if (again != dump)
            fail_msg("%s: the dump does not read back:\n%s---\n%s", key.c_str(), dump.c_str(), again.c_str());
        ++accepted;
    };
    for (const std::string &key : keys) {
        for (const char *h : hostile) {
            if (parse(base, {key + "=" + h}, &c, &msg)) round_trip(key, c);
        }
    }
    assert_true(accepted >= 60);  // the string keys take most of them
    for (const char *line : {"room_field = \" exp \"", "event = \"\tmsg\"", "kafka.client.id = \" \"",
                             "handoff_socket = \"/tmp/a \"", "authz = \"file:/x #y \""}) {
        const std::string text = std::string(line).compare(0, 5, "authz") == 0
                                     ? "listen = 127.0.0.1:0\ntopics = t1\n" + std::string(line) + "\n"
                                     : base + line + "\n";
        if (!parse(text, {}, &c, &msg)) fail_msg("%s: %s", line, msg.c_str());
        round_trip(line, c);
    }
    assert_string_equal(c.authz.c_str(), "file:/x #y ");
    // How the dump writes them.
    assert_true(
        parse(base, {"event=#x", "room_field=a #\"b", "kafka.group.id=a \"#b\"", "kafka.client.id=\"q\\"}, &c, &msg));
    std::string dump = psdm::config_dump(c);
    for (const char *line : {"event = \"#x\"\n", "room_field = \"a #\\\"b\"\n", "kafka.group.id = a \"#b\"\n",
                             "kafka.client.id = \"\\\"q\\\\\"\n", "namespace = /psdm_ws\n"}) {
        if (!contains(dump, line)) fail_msg("dump lacks '%s':\n%s", line, dump.c_str());
    }
}

void test_listen_split(void **) {
    std::string host;
    unsigned port = 1;
    assert_true(psdm::config_listen_split("[::1]:8080", &host, &port));
    assert_string_equal(host.c_str(), "::1");
    assert_int_equal(port, 8080);
    assert_true(psdm::config_listen_split("0.0.0.0:0", &host, &port));
    assert_string_equal(host.c_str(), "0.0.0.0");
    assert_int_equal(port, 0);
    assert_true(psdm::config_listen_split("localhost:65535", &host, &port));
    assert_string_equal(host.c_str(), "localhost");
    assert_int_equal(port, 65535);
    assert_false(psdm::config_listen_split("", &host, &port));
    assert_false(psdm::config_listen_split("localhost", &host, &port));
}

std::string data_dir() {
    const char *d = getenv("PSDM_TEST_DATA");
    return d ? d : "";
}

// `c` has the built-in defaults in every key but those ops must set (authz, handoff_socket,
// topics, kafka.*).
void assert_defaults_but_required(const Config &c) {
    Config d;
    d.source = c.source;
    d.authz = c.authz;
    d.handoff_socket = c.handoff_socket;
    d.topics = c.topics;
    d.kafka = c.kafka;
    assert_string_equal(psdm::config_dump(c).c_str(), psdm::config_dump(d).c_str());
}

void test_load(void **) {
    if (data_dir().empty()) {
        std::fprintf(stderr, "PSDM_TEST_DATA not set: skipping\n");
        skip();
    }
    Config c;
    ConfigError err;
    const std::string full = data_dir() + "/config_full.conf";
    if (!psdm::config_load(full, {}, &c, &err)) fail_msg("%s", err.message.c_str());
    assert_string_equal(c.source.c_str(), full.c_str());
    assert_string_equal(c.handoff_socket.c_str(), "/run/psdm_socket/handoff.sock");
    assert_string_equal(c.kafka["bootstrap.servers"].c_str(), "kafka1:9092,kafka2:9092");
    assert_int_equal(c.max_payload, 2u << 20);

    assert_false(psdm::config_load(full, {"max_payload=1"}, &c, &err));
    assert_string_equal(err.message.c_str(), "-o: max_payload: must be between 1k and 64M, got '1'");

    const std::string bad = data_dir() + "/config_bad.conf";
    assert_false(psdm::config_load(bad, {}, &c, &err));
    assert_string_equal(err.message.c_str(), (bad + ":5: ping_interval_ms: already set at line 3").c_str());

    assert_false(psdm::config_load(data_dir() + "/config_missing.conf", {}, &c, &err));
    assert_string_equal(
        err.message.c_str(),
        ("cannot read config file '" + data_dir() + "/config_missing.conf': No such file or directory").c_str());
    assert_false(psdm::config_load(data_dir(), {}, &c, &err));
    assert_true(contains(err.message, "': Is a directory"));

    // The example shipped to ops stays valid; it leaves authz for ops to choose.
    const std::string example = data_dir() + "/../../../conf/psdm_socketd.conf";
    assert_false(psdm::config_load(example, {}, &c, &err));
    assert_string_equal(err.message.c_str(),
                        (example + ": authz: not set: write 'authz = allow-all' explicitly to allow every user "
                                   "into every room")
                            .c_str());
    if (!psdm::config_load(example, {"authz=allow-all"}, &c, &err)) fail_msg("%s", err.message.c_str());
    // Its values are the built-in defaults, except for the keys ops must set.
    assert_defaults_but_required(c);
}

// Where each key was set, and the one message format built on it.
void test_locations(void **) {
    Config c;
    std::string msg;
    assert_true(parse("authz = allow-all\n\nlisten = 127.0.0.1:0\ntopics = t1\nkafka.client.id = x\n", {"topics=t2"},
                      &c, &msg));
    assert_string_equal(psdm::config_where(c, "authz").c_str(), "test.conf:1");
    assert_string_equal(psdm::config_where(c, "listen").c_str(), "test.conf:3");
    assert_string_equal(psdm::config_where(c, "topics").c_str(), "-o");
    assert_string_equal(psdm::config_where(c, "kafka.client.id").c_str(), "test.conf:5");
    assert_string_equal(psdm::config_where(c, "max_payload").c_str(), "test.conf");  // default
    assert_string_equal(psdm::config_problem(c, "kafka.client.id", "why").c_str(), "test.conf:5: kafka.client.id: why");
}

// config_check_system: what only the running system can tell, each problem naming its line.
void test_system_checks(void **) {
    char dir[] = "/tmp/psdm-test-config-XXXXXX";
    assert_non_null(mkdtemp(dir));
    const std::string d = dir, pem = d + "/ca.pem", sock = d + "/h.sock";
    FILE *f = fopen(pem.c_str(), "w");
    assert_non_null(f);
    fclose(f);

    Config c;
    std::string msg;
    std::vector<std::string> problems;
    assert_true(parse("authz = allow-all\ntopics = t\nhandoff_socket = " + sock +
                          "\nhandoff_allowed_peers = root, 4242\nlisten = localhost:0\nadmin_listen = localhost:0\n"
                          "kafka.ssl.ca.location = " +
                          d + "\nkafka.ssl.certificate.location = " + pem + "\nkafka.sasl.kerberos.keytab =\n",
                      {"kafka.ssl.crl.location=" + pem}, &c, &msg));
    if (!psdm::config_check_system(c, &problems)) fail_msg("unexpected: %s", problems.front().c_str());
    std::vector<uid_t> uids;
    assert_true(psdm::config_peer_uids(c, &uids, &problems));
    assert_true(uids == (std::vector<uid_t>{0, 4242}));

    assert_true(parse("authz = allow-all\ntopics = t\nhandoff_socket = " + d +
                          "/missing/h.sock\nhandoff_allowed_peers = root, psdm-no-such-user, 33\n"
                          "kafka.ssl.key.location = " +
                          d + "/missing.pem\nkafka.ssl.certificate.location = " + d +
                          "\nkafka.ssl.ca.location = probe\nkafka.ssl.key.password = x\n",
                      {}, &c, &msg));
    problems.clear();
    assert_false(psdm::config_check_system(c, &problems));
    const std::vector<std::string> expect = {
        "test.conf:4: handoff_allowed_peers: no such user 'psdm-no-such-user'",
        "test.conf:3: handoff_socket: directory " + d + "/missing: No such file or directory",
        "test.conf:6: kafka.ssl.certificate.location: '" + d + "' is not a regular file",
        "test.conf:5: kafka.ssl.key.location: cannot read '" + d + "/missing.pem': No such file or directory",
    };
    if (problems != expect) {
        for (const std::string &p : problems) std::fprintf(stderr, "got: %s\n", p.c_str());
        fail_msg("%zu problems, expected %zu", problems.size(), expect.size());
    }
    uids.clear();
    problems.clear();
    assert_false(psdm::config_peer_uids(c, &uids, &problems));
    assert_true(uids == (std::vector<uid_t>{0, 33}));

    // Something other than a socket where the socket goes.
    assert_true(parse("authz = allow-all\ntopics = t\nhandoff_socket = " + pem + "\nhandoff_allowed_peers = 0\n", {},
                      &c, &msg));
    problems.clear();
    assert_false(psdm::config_check_system(c, &problems));
    assert_int_equal(problems.size(), 1);
    assert_string_equal(problems[0].c_str(),
                        ("test.conf:3: handoff_socket: " + pem + " exists and is not a socket").c_str());

    assert_true(psdm::config_kafka_property_is_file("ssl.engine.location"));
    assert_false(psdm::config_kafka_property_is_file("ssl.key.password"));
    unlink(pem.c_str());
    rmdir(dir);
}

// conf/psdm_socketd.conf documents each default as a commented-out "#key = value" line: with
// those lines uncommented, the example still gives the built-in defaults (except the keys
// whose commented lines are examples: authz, listen, kafka.*).
void test_example_documents_defaults(void **) {
    if (data_dir().empty()) skip();
    const std::string example = data_dir() + "/../../../conf/psdm_socketd.conf";
    FILE *f = fopen(example.c_str(), "r");
    assert_non_null(f);
    std::string text;
    char line[4096];
    size_t documented = 0;
    while (fgets(line, sizeof line, f)) {
        std::string l = line;
        std::string key = l.size() > 1 && l[0] == '#' && l[1] != ' ' && l[1] != '\n' ? key_of(l.substr(1)) : "";
        bool is_default = !key.empty() && key.find(' ') == std::string::npos && key != "authz" && key != "listen" &&
                          key.compare(0, 6, "kafka.") != 0;
        if (is_default) ++documented;
        text += is_default ? l.substr(1) : l;
    }
    fclose(f);
    assert_true(documented >= 18);
    Config c;
    std::string msg;
    if (!parse(text, {"authz=allow-all"}, &c, &msg)) fail_msg("%s", msg.c_str());
    assert_defaults_but_required(c);
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_cross_checks),
        cmocka_unit_test(test_untouched_on_error),
        cmocka_unit_test(test_dump),
        cmocka_unit_test(test_listen_split),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_topic_name_length),
        cmocka_unit_test(test_quoted_values),
        cmocka_unit_test(test_dump_round_trips_hostile_values),
        cmocka_unit_test(test_locations),
        cmocka_unit_test(test_system_checks),
        cmocka_unit_test(test_example_documents_defaults),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}

// Configuration of psdm_socketd: the file given with -c, then the -o key=value overrides.
//
// File syntax (see conf/psdm_socketd.conf for every key with its documentation):
//   - one `key = value` per line; whitespace (space, tab, CR) around key and value is trimmed;
//     the value is everything after the first '=' (it may itself contain '=');
//   - blank lines are ignored; a line whose first non-blank character is '#' is a comment;
//   - a '#' preceded by a space or tab starts a trailing comment: `a = b  # note` gives "b".
//     A '#' that is not preceded by whitespace is part of the value: `a = b#c` gives "b#c";
//   - a value whose first character is '"' is quoted: it ends at the next unescaped '"', inside
//     it \" is a quote and \\ a backslash (any other '\' is an error), '#' and blanks are part
//     of it, and only blanks or a comment may follow: `a = " x #1"` gives " x #1". Unquoted
//     values have no escapes: `a = b\c` gives "b\c";
//   - no line continuation; an empty value (`key =`) is the empty string;
//   - a key given twice is an error naming both lines; an unknown key is an error;
//   - control characters other than tab are rejected; a UTF-8 BOM at the start is skipped.
// Overrides (-o key=value) are taken literally (no comment stripping, no unquoting), trimmed,
// applied after the file and may replace a file key; the same key given twice with -o is an error.
// Names after "kafka." are librdkafka property names: [a-zA-Z0-9._-]+.
//
// Errors: every error is returned as one ConfigError, "WHERE: KEY: REASON" (config_problem):
// WHERE is "FILE:LINE" for a line, "-o" for an override; a cross-field check blames where the
// key at fault was last set, or "FILE" when it was left unset/default. Errors that concern no
// one key (a line that is not `key = value`, a control character) are "WHERE: REASON". Only
// the first error is reported. Nothing here logs: the caller logs the message once.
// What only the running system can tell (users, files, librdkafka, the ACL) is checked
// after parsing: base/config_check.h and main's startup checks.
// Thread: all functions are reentrant; nothing is shared.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace psdm {

// Bounds checked by config_parse (inclusive). Sizes accept plain bytes or a k/K (x1024) or M
// (x1048576) suffix; integers are decimal only: no sign, no trailing text, no overflow.
constexpr unsigned kConfigPingMinMs = 1000;               // ping_interval_ms, ping_timeout_ms: 1 s ..
constexpr unsigned kConfigPingMaxMs = 3600000;            //   .. 1 h
constexpr unsigned kConfigShutdownMaxMs = 600000;         // shutdown_timeout_ms: 0 .. 10 min
constexpr unsigned kConfigRecoveryMaxMs = 86400000;       // recovery_window_ms: 0 .. 1 day
constexpr unsigned kConfigRecoveryTimeoutMinMs = 100;     // recovery_timeout_ms: 100 ms ..
constexpr unsigned kConfigRecoveryTimeoutMaxMs = 600000;  //   .. 10 min
constexpr unsigned kConfigAuthzTimeoutMinMs = 100;        // authz_timeout_ms: 100 ms ..
constexpr unsigned kConfigAuthzTimeoutMaxMs = 60000;      //   .. 60 s
constexpr unsigned kConfigAuthzAllowTtlMinMs = 1000;      // authz_allow_ttl_ms: 1 s ..
constexpr unsigned kConfigAuthzTtlMaxMs = 86400000;       //   .. 1 day (also authz_deny_ttl_ms, from 0)
constexpr size_t kConfigAuthzInFlightMin = 1;             // authz_max_in_flight: 1 ..
constexpr size_t kConfigAuthzInFlightMax = 1024;          //   .. 1024
constexpr size_t kConfigMaxPayloadMin = 1024;             // max_payload: 1k ..
constexpr size_t kConfigMaxPayloadMax = 64u << 20;        //   .. 64M; client_backlog >= max_payload
constexpr size_t kConfigMaxRoomsMin = 1;                  // max_rooms_per_client: 1 ..
constexpr size_t kConfigMaxRoomsMax = 100000;             //   .. 100000
constexpr unsigned kConfigSocketModeMax = 0777;           // handoff_socket_mode: octal, at most 0777

// The built-in value of every key, the one place it is written: Config's members below and
// the structures that take their values from a Config (SessionLimits, RoutingConfig,
// HttpAuthzOptions) start from these, and conf/psdm_socketd.conf documents them (its commented
// "#key = value" lines are checked against them by tests/unit/test_config.cpp).
namespace defaults {
inline constexpr unsigned kHandoffSocketMode = 0660;
inline constexpr char kHandoffAllowedPeer[] = "www-data";  // Debian's Apache user
inline constexpr char kGlobalRoomTopic[] = "experiments";
inline constexpr char kRoomField[] = "experiment_name";
inline constexpr char kNamespace[] = "/psdm_ws";
inline constexpr char kEvent[] = "psdm_ws_msg";
inline constexpr size_t kMaxConnections = 0;  // as many as the open-files limit allows
inline constexpr size_t kMaxPayload = 1048576;
inline constexpr size_t kClientBacklog = 4194304;
inline constexpr unsigned kPingIntervalMs = 25000;
inline constexpr unsigned kPingTimeoutMs = 20000;
inline constexpr size_t kMaxRoomsPerClient = 100;
inline constexpr char kLogLevel[] = "info";
inline constexpr unsigned kAuthzTimeoutMs = 2000;
inline constexpr char kAuthzUserHeader[] = "REMOTE-USER";
inline constexpr unsigned kAuthzAllowTtlMs = 60000;
inline constexpr unsigned kAuthzDenyTtlMs = 10000;
inline constexpr size_t kAuthzMaxInFlight = 16;
inline constexpr unsigned kShutdownTimeoutMs = 5000;
inline constexpr unsigned kRecoveryWindowMs = 300000;          // 5 minutes
inline constexpr size_t kRecoveryMaxBytes = 64 * 1024 * 1024;  // ~100 000 records of 500 bytes
inline constexpr size_t kRecoveryMaxRecords = 100000;          // read from Kafka for one resume
inline constexpr unsigned kRecoveryTimeoutMs = 10000;          // to read them
}  // namespace defaults

struct Config {
    std::string source;  // file path the config came from (for messages)
    // Where each key was last set: "FILE:LINE" or "-o" ("kafka.<property>" for a property);
    // keys left at their default are absent. For messages: see config_where().
    std::map<std::string, std::string> locations;

    // Unix socket path for connections handed over by the Apache module; "" = no handoff
    // listener. When set: an absolute path that fits in sockaddr_un.sun_path.
    std::string handoff_socket;
    unsigned handoff_socket_mode = defaults::kHandoffSocketMode;  // key handoff_socket_mode, always read as octal
    // Key handoff_allowed_peers: comma list of user names or numeric uids allowed to connect
    // (checked with SO_PEERCRED); an all-digit entry is a uid. Names are resolved to uids by
    // config_peer_uids (base/config_check.h). Must not be empty when handoff_socket is set.
    std::vector<std::string> handoff_allowed_peers{defaults::kHandoffAllowedPeer};
    // "host:port" for direct WebSocket connections; "" = none. host is an IPv4 address, a
    // bracketed IPv6 address ("[::1]:8080") or a host name; port 0..65535 (0 = any free port).
    // Split it with config_listen_split().
    std::string listen;
    // "host:port" of the admin listener (GET /metrics, GET /healthz: server/admin_server.h);
    // "" = none. Same syntax as listen; a fixed port must not be listen's.
    std::string admin_listen;

    // Keys "kafka.<property>" with the prefix stripped, passed unchanged to librdkafka.
    std::map<std::string, std::string> kafka;
    // Comma list, trimmed, no empties, no duplicates; required. Each a Kafka topic name: 1 to 249
    // of [a-zA-Z0-9._-], not "." or "..".
    std::vector<std::string> topics;
    // Topics whose records go to every client of the namespace rather than to one room;
    // same list and name rules as topics, may be empty. Not required to be a subset of topics.
    std::vector<std::string> global_room_topics{defaults::kGlobalRoomTopic};
    std::string room_field = defaults::kRoomField;  // JSON field naming a record's room; non-empty
    // Key "namespace": Socket.IO namespace; starts with '/', printable ASCII, no ',?#' or space.
    std::string ns = defaults::kNamespace;
    std::string event = defaults::kEvent;  // Socket.IO event name for records; non-empty

    // Required: "allow-all", "file:/ABSOLUTE/PATH", or an "http://HOST..." / "https://HOST..."
    // URL (the URL itself, scheme included). Only the syntax is checked here.
    std::string authz;

    size_t max_connections = defaults::kMaxConnections;  // 0 = as many as the open-files limit allows
    size_t max_payload = defaults::kMaxPayload;
    size_t client_backlog = defaults::kClientBacklog;
    // Key "fanout_sends": how a record is written to the clients of a room that have nothing
    // queued: "io_uring" (batches of sends, one system call each; send() where the kernel
    // refuses io_uring) or "send" (a send() per client).
    std::string fanout_sends = "io_uring";
    unsigned ping_interval_ms = defaults::kPingIntervalMs;
    unsigned ping_timeout_ms = defaults::kPingTimeoutMs;
    size_t max_rooms_per_client = defaults::kMaxRoomsPerClient;
    std::string log_level = defaults::kLogLevel;            // debug|info|notice|warn|error (see log_level_parse)
    unsigned authz_timeout_ms = defaults::kAuthzTimeoutMs;  // used by the authz provider
    // The http provider (authz = http(s)://...): the header that carries the user (an RFC 7230
    // token), how long allowed / denied answers are cached (deny 0 = not cached; allow is also
    // how long a membership stays valid before it is checked again), and the most requests
    // to the application at once.
    std::string authz_user_header = defaults::kAuthzUserHeader;
    unsigned authz_allow_ttl_ms = defaults::kAuthzAllowTtlMs;
    unsigned authz_deny_ttl_ms = defaults::kAuthzDenyTtlMs;
    size_t authz_max_in_flight = defaults::kAuthzMaxInFlight;
    // SIGTERM: how long the worker waits for its clients' close frames (and what was queued
    // before them) to leave before it exits anyway. 0 = exit at once.
    unsigned shutdown_timeout_ms = defaults::kShutdownTimeoutMs;
    // The records kept in memory for clients that resume (fanout/replay_window.h): at most
    // this old and, all partitions together, this many bytes. 0 bytes: none kept.
    unsigned recovery_window_ms = defaults::kRecoveryWindowMs;
    size_t recovery_max_bytes = defaults::kRecoveryMaxBytes;
    // Beyond the window, or after a restart, what a client missed is read from Kafka (kafka/
    // replay_reader.h): at most this many records (offsets) per partition for one resume, read
    // within recovery_timeout_ms; more, or slower, and the client is told to resync.
    // 0 records: never read Kafka for a resume.
    size_t recovery_max_records = defaults::kRecoveryMaxRecords;
    unsigned recovery_timeout_ms = defaults::kRecoveryTimeoutMs;
};

// Kafka's rule for topic names (its Topic.validate): 1 to kMaxKafkaTopicName of
// [a-zA-Z0-9._-], not "." or "..". The config's topics, and positions (kafka/position.h).
inline constexpr size_t kMaxKafkaTopicName = 249;
bool kafka_topic_name_ok(std::string_view topic);

struct ConfigError {
    std::string message;  // "FILE:LINE: ...", "-o: ..." or "FILE: ..."
};

// Parses `text` (contents of the file named `source`) and then applies `overrides`
// ("key=value" strings from -o), then runs the cross-field checks (authz set, something to
// listen on, topics non-empty, client_backlog >= max_payload, peers non-empty with handoff,
// admin_listen not listen's port).
// Returns true and replaces *out, or false and sets *err leaving *out untouched.
// Never throws (allocation failure becomes an error). out and err must not be null.
bool config_parse(std::string_view text, std::string_view source, const std::vector<std::string> &overrides,
                  Config *out, ConfigError *err);

// Reads the file (at most 1 MiB) then calls config_parse with source = path.
// An unreadable file gives "cannot read config file 'PATH': <strerror>".
bool config_load(const std::string &path, const std::vector<std::string> &overrides, Config *out, ConfigError *err);

// Every key, one "key = value" line each (kafka.* sorted by name), in file syntax, a value
// quoted when it would not read back bare (blanks at either end, a leading '"', a '#' at its
// start or after a blank): parsing the output always gives back the same Config (source and
// locations aside),
// except that kafka properties whose name contains "password" or "secret" (any case),
// ssl.key.pem and sasl.oauthbearer.config (which librdkafka also treats as sensitive) are
// printed as "***". For --check-config.
std::string config_dump(const Config &c);

// Where `key` ("max_payload", "kafka.bootstrap.servers") was set, for a message about it:
// "FILE:LINE", "-o", or c.source when it was left at its default.
std::string config_where(const Config &c, const std::string &key);

// The one format of every configuration error about one key: "WHERE: KEY: REASON", WHERE as
// config_where gives it (config_parse's own errors read the same way).
std::string config_problem(const Config &c, const std::string &key, const std::string &reason);

// Splits a listen or admin_listen value that config_parse accepted into host (brackets
// removed from IPv6) and port. Returns false for a value config_parse would reject.
bool config_listen_split(std::string_view listen, std::string *host, unsigned *port);

}  // namespace psdm

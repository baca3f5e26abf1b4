// libFuzzer target for the worker's configuration file (worker/base/config.h), parsed as
// psdm_socketd -c FILE [-o key=value]... parses it (config_parse is what config_load calls).
// Built by CMake with -DPSDM_FUZZ=ON; run with `make fuzz` (README, "Fuzzing").
//
// Input: the file text up to the first NUL byte; after it, NUL-separated -o overrides (a NUL
// in a file is a control character, refused anyway, so nothing is lost).
// Checks, beyond the sanitizers:
//   - a refusal names its place ("fuzz.conf:LINE: " with LINE in the file, "fuzz.conf: " or
//     "-o: ") and leaves the output Config untouched;
//   - an accepted Config keeps the documented invariants (required keys, bounds, lists
//     trimmed without empties or duplicates, listen splittable, backlog >= payload, no
//     control character in any value);
//   - topics are Kafka topic names, kafka.* names librdkafka property names;
//   - every key set has its place (Config::locations: "fuzz.conf:LINE" or "-o");
//   - --check-config's dump (config_dump) masks every kafka.*password* / *secret* value and,
//     parsed back as a file, gives the same Config (masked values aside) and the same dump
//     (PSDM_FUZZ_CONFIG_DUMP_ROUNDTRIP, below).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "base/config.h"

// 1: check that config_dump parses back to the same Config. Needs the config_dump that quotes
// a value which would not read back bare: before it, `event =#x` was dumped as `event = #x`
// and read back as a comment (found by this target). 0 turns the check off for such a tree.
#ifndef PSDM_FUZZ_CONFIG_DUMP_ROUNDTRIP
#define PSDM_FUZZ_CONFIG_DUMP_ROUNDTRIP 1
#endif

namespace {

constexpr std::string_view kSource = "fuzz.conf";

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// What config.h promises of every value: no control character but tab (a quoted value may
// keep blanks at its ends).
bool clean(std::string_view v) {
    for (const char ch : v) {
        const auto u = static_cast<unsigned char>(ch);
        if ((u < 0x20 && ch != '\t') || u == 0x7f) return false;
    }
    return true;
}

bool trimmed(std::string_view v) {
    return v.empty() || (v.front() != ' ' && v.front() != '\t' && v.back() != ' ' && v.back() != '\t');
}

// Kafka's topic names (and librdkafka's property names, without the length and dot rules).
bool name_chars(std::string_view s) {
    return !s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
                             std::string_view::npos;
}

bool topic_names(const std::vector<std::string> &list) {
    for (const std::string &t : list)
        if (!name_chars(t) || t.size() > 249 || t == "." || t == "..") return false;
    return true;
}

bool clean_list(const std::vector<std::string> &list) {
    for (size_t i = 0; i < list.size(); ++i) {
        if (list[i].empty() || !clean(list[i]) || !trimmed(list[i])) return false;
        for (size_t j = 0; j < i; ++j)
            if (list[i] == list[j]) return false;
    }
    return true;
}

// "fuzz.conf:LINE: " with 1 <= LINE <= lines, "fuzz.conf: " or "-o: ".
bool names_its_place(const std::string &msg, size_t lines) {
    if (starts_with(msg, "-o: ")) return true;
    const std::string file = std::string(kSource) + ":";
    if (!starts_with(msg, file)) return false;
    if (starts_with(std::string_view(msg).substr(file.size()), " ")) return true;
    size_t i = file.size(), line = 0;
    while (i < msg.size() && msg[i] >= '0' && msg[i] <= '9' && line <= lines)
        line = line * 10 + static_cast<size_t>(msg[i++] - '0');
    return line >= 1 && line <= lines && msg.compare(i, 2, ": ") == 0;
}

void check_invariants(const psdm::Config &c) {
    CHECK(c.source == kSource);
    CHECK(!c.authz.empty() && clean(c.authz));
    CHECK(c.authz == "allow-all" || starts_with(c.authz, "file:/") || starts_with(c.authz, "http://") ||
          starts_with(c.authz, "https://"));
    CHECK(!c.handoff_socket.empty() || !c.listen.empty());
    CHECK(c.handoff_socket.empty() || (c.handoff_socket.front() == '/' && c.handoff_socket.size() < 108));
    CHECK(clean(c.handoff_socket) && clean(c.listen));
    if (!c.listen.empty()) {
        std::string host;
        unsigned port = 70000;
        CHECK(psdm::config_listen_split(c.listen, &host, &port) && port <= 65535 && !host.empty());
    }
    CHECK(c.handoff_socket_mode <= psdm::kConfigSocketModeMax);
    CHECK(clean_list(c.handoff_allowed_peers) && (c.handoff_socket.empty() || !c.handoff_allowed_peers.empty()));
    CHECK(!c.topics.empty() && clean_list(c.topics) && clean_list(c.global_room_topics));
    CHECK(topic_names(c.topics) && topic_names(c.global_room_topics));
    CHECK(!c.room_field.empty() && clean(c.room_field) && !c.event.empty() && clean(c.event));
    CHECK(c.ns.size() >= 1 && c.ns.front() == '/' && clean(c.ns));
    CHECK(c.max_payload >= psdm::kConfigMaxPayloadMin && c.max_payload <= psdm::kConfigMaxPayloadMax);
    CHECK(c.client_backlog >= c.max_payload);
    CHECK(c.ping_interval_ms >= psdm::kConfigPingMinMs && c.ping_interval_ms <= psdm::kConfigPingMaxMs);
    CHECK(c.ping_timeout_ms >= psdm::kConfigPingMinMs && c.ping_timeout_ms <= psdm::kConfigPingMaxMs);
    CHECK(c.max_rooms_per_client >= psdm::kConfigMaxRoomsMin && c.max_rooms_per_client <= psdm::kConfigMaxRoomsMax);
    CHECK(c.authz_timeout_ms >= psdm::kConfigAuthzTimeoutMinMs && c.authz_timeout_ms <= psdm::kConfigAuthzTimeoutMaxMs);
    CHECK(c.authz_allow_ttl_ms >= psdm::kConfigAuthzAllowTtlMinMs &&
          c.authz_allow_ttl_ms <= psdm::kConfigAuthzTtlMaxMs);
    CHECK(c.authz_deny_ttl_ms <= psdm::kConfigAuthzTtlMaxMs);
    CHECK(c.authz_max_in_flight >= psdm::kConfigAuthzInFlightMin &&
          c.authz_max_in_flight <= psdm::kConfigAuthzInFlightMax);
    CHECK(!c.authz_user_header.empty() && clean(c.authz_user_header) && clean(c.log_level));
    for (const auto &[name, value] : c.kafka) CHECK(name_chars(name) && clean(value));
}

// Every key set has its place ("fuzz.conf:LINE" in the file, or "-o"), for config_where.
void check_locations(const psdm::Config &c, size_t lines) {
    for (const auto &[key, where] : c.locations) {
        CHECK(!key.empty() && names_its_place(where + ": ", lines) && where != kSource);
        CHECK(psdm::config_problem(c, key, "x") == where + ": " + key + ": x");
    }
    CHECK(psdm::config_where(c, "") == kSource);  // never set: the file
}

bool secret_name(const std::string &name) {
    std::string lower;
    for (const char ch : name) lower += static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
    return lower.find("password") != std::string::npos || lower.find("secret") != std::string::npos;
}

// The dump masks secrets; everything else must come back as it was.
[[maybe_unused]] bool same(const psdm::Config &a, const psdm::Config &back) {
    if (a.kafka.size() != back.kafka.size()) return false;
    for (auto i = a.kafka.begin(), j = back.kafka.begin(); i != a.kafka.end(); ++i, ++j) {
        if (i->first != j->first || (i->second != j->second && j->second != "***")) return false;
    }
    return a.handoff_socket == back.handoff_socket && a.handoff_socket_mode == back.handoff_socket_mode &&
           a.handoff_allowed_peers == back.handoff_allowed_peers && a.listen == back.listen &&
           a.topics == back.topics && a.global_room_topics == back.global_room_topics &&
           a.room_field == back.room_field && a.ns == back.ns && a.event == back.event && a.authz == back.authz &&
           a.max_connections == back.max_connections && a.max_payload == back.max_payload &&
           a.client_backlog == back.client_backlog && a.ping_interval_ms == back.ping_interval_ms &&
           a.ping_timeout_ms == back.ping_timeout_ms && a.max_rooms_per_client == back.max_rooms_per_client &&
           a.log_level == back.log_level && a.authz_timeout_ms == back.authz_timeout_ms &&
           a.authz_user_header == back.authz_user_header && a.authz_allow_ttl_ms == back.authz_allow_ttl_ms &&
           a.authz_deny_ttl_ms == back.authz_deny_ttl_ms && a.authz_max_in_flight == back.authz_max_in_flight;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const std::string_view input(reinterpret_cast<const char *>(data), size);
    const size_t nul = input.find('\0');
    const std::string_view text = input.substr(0, nul);
    std::vector<std::string> overrides;
    for (size_t at = nul; at != std::string_view::npos && at < input.size();) {
        const size_t next = input.find('\0', at + 1);
        overrides.emplace_back(input.substr(at + 1, next == std::string_view::npos ? next : next - at - 1));
        at = next;
    }
    size_t lines = 0;
    for (size_t i = 0; i < text.size(); ++i) lines += text[i] == '\n' || i + 1 == text.size();

    psdm::Config c;
    c.source = "untouched";
    psdm::ConfigError err;
    if (!psdm::config_parse(text, kSource, overrides, &c, &err)) {
        CHECK(c.source == "untouched" && names_its_place(err.message, lines));
        return 0;
    }
    check_invariants(c);
    check_locations(c, lines);

    const std::string dump = psdm::config_dump(c);
    for (const auto &[name, value] : c.kafka) {
        if (secret_name(name)) CHECK(dump.find("\nkafka." + name + " = ***\n") != std::string::npos);
    }
#if PSDM_FUZZ_CONFIG_DUMP_ROUNDTRIP
    psdm::Config back;
    CHECK(psdm::config_parse(dump, kSource, {}, &back, &err) && same(c, back));
    CHECK(psdm::config_dump(back) == dump);
#endif
    return 0;
}

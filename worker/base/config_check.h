// What config_parse cannot know: a parsed Config checked against the system it is about to
// run on (users, files, names). Each problem is one message in config_problem's format,
// "WHERE: KEY: REASON", e.g.
//   /etc/psdm_socket/psdm_socketd.conf:12: handoff_allowed_peers: no such user 'wwwdata'
//   /etc/psdm_socket/psdm_socketd.conf:20: kafka.ssl.ca.location: cannot read '/etc/ca.pem': No such file or directory
// psdm_socketd runs these at every start and for --check-config, together with librdkafka's
// own check of the kafka.* properties and the authz provider's (main.cpp, startup_checks):
// one code path, so that a configuration --check-config accepts does not stop a start.
// Checks run as the calling user: run --check-config as the worker's user (as systemd's
// ExecStartPre does) for the file checks to mean what they will mean at start.
// Nothing here logs. Thread: reentrant (getpwnam_r, getaddrinfo).
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "base/config.h"

namespace psdm {

// handoff_allowed_peers as uids, in order: an all-digit entry is a uid, a name is looked up
// with getpwnam_r. Returns false and appends one problem per name that is no user (or whose
// lookup failed); *uids then holds the entries that resolved.
bool config_peer_uids(const Config &c, std::vector<uid_t> *uids, std::vector<std::string> *problems);

// True if the librdkafka property `name` (without "kafka.") names a file librdkafka reads:
// *.location (ssl.ca.location, ssl.certificate.location, ssl.key.location, ...) and
// sasl.kerberos.keytab.
bool config_kafka_property_is_file(std::string_view name);

// Every system check, appending one problem per finding; returns true if there was none:
//   - handoff_allowed_peers resolve (config_peer_uids), when handoff_socket is set;
//   - handoff_socket's directory exists, and the path is not something other than a socket;
//   - the hosts of listen and admin_listen resolve (getaddrinfo, as the listeners will);
//   - every kafka.* file (config_kafka_property_is_file) opens for reading: a regular file,
//     or a directory for ssl.ca.location ("probe" and empty values are left to librdkafka).
bool config_check_system(const Config &c, std::vector<std::string> *problems);

}  // namespace psdm

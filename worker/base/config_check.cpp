// System checks of a parsed Config: see config_check.h.
#include "base/config_check.h"

#include <fcntl.h>
#include <netdb.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/unique_fd.h"

namespace psdm {

namespace {

bool all_digits(const std::string &s) { return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos; }

std::string errno_text(int e) { return std::strerror(e); }

bool ends_with(std::string_view s, std::string_view tail) {
    return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

// The directory the socket file goes into must exist; a file other than a socket in its
// place would stop the start ("exists and is not a socket").
void check_handoff_socket(const Config &c, std::vector<std::string> *problems) {
    const std::string &path = c.handoff_socket;  // config_parse: absolute
    const std::string dir = path.substr(0, path.rfind('/') == 0 ? 1 : path.rfind('/'));
    struct stat st;
    if (stat(dir.c_str(), &st) != 0) {
        problems->push_back(config_problem(c, "handoff_socket", "directory " + dir + ": " + errno_text(errno)));
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        problems->push_back(config_problem(c, "handoff_socket", dir + " is not a directory"));
        return;
    }
    if (lstat(path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode))
        problems->push_back(config_problem(c, "handoff_socket", path + " exists and is not a socket"));
}

// The host part of `key` (listen, admin_listen: `value`) must resolve as the listener will
// resolve it (passive, TCP).
void check_listen(const Config &c, const char *key, const std::string &value, std::vector<std::string> *problems) {
    std::string host;
    unsigned port = 0;
    if (!config_listen_split(value, &host, &port)) return;  // config_parse refused it already
    struct addrinfo hints {};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    struct addrinfo *ai = nullptr;
    const std::string service = std::to_string(port);
    if (int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &ai)) {
        problems->push_back(config_problem(c, key, "cannot resolve '" + host + "': " + gai_strerror(rc)));
        return;
    }
    freeaddrinfo(ai);
}

// A file librdkafka will read: it must open for reading now.
void check_kafka_file(const Config &c, const std::string &name, const std::string &path,
                      std::vector<std::string> *problems) {
    const std::string key = "kafka." + name;
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd) {
        problems->push_back(config_problem(c, key, "cannot read '" + path + "': " + errno_text(errno)));
        return;
    }
    struct stat st;
    if (fstat(fd.get(), &st) != 0) {
        problems->push_back(config_problem(c, key, "cannot read '" + path + "': " + errno_text(errno)));
        return;
    }
    const bool dir_ok = name == "ssl.ca.location";  // a directory of CA certificates
    if (S_ISDIR(st.st_mode) ? !dir_ok : !S_ISREG(st.st_mode))
        problems->push_back(
            config_problem(c, key, "'" + path + "' is not a regular file" + (dir_ok ? " nor a directory" : "")));
}

}  // namespace

bool config_peer_uids(const Config &c, std::vector<uid_t> *uids, std::vector<std::string> *problems) {
    bool ok = true;
    for (const std::string &p : c.handoff_allowed_peers) {
        if (all_digits(p)) {  // config_parse: at most 4294967294
            uids->push_back(static_cast<uid_t>(std::stoul(p)));
            continue;
        }
        struct passwd pw, *found = nullptr;
        char buf[4096];
        int rc = getpwnam_r(p.c_str(), &pw, buf, sizeof buf, &found);
        if (rc != 0 || !found) {
            problems->push_back(config_problem(c, "handoff_allowed_peers",
                                               "no such user '" + p + "'" + (rc ? " (" + errno_text(rc) + ")" : "")));
            ok = false;
            continue;
        }
        uids->push_back(found->pw_uid);
    }
    return ok;
}

bool config_kafka_property_is_file(std::string_view name) {
    return ends_with(name, ".location") || name == "sasl.kerberos.keytab";
}

bool config_check_system(const Config &c, std::vector<std::string> *problems) {
    const size_t before = problems->size();
    if (!c.handoff_socket.empty()) {
        std::vector<uid_t> uids;
        config_peer_uids(c, &uids, problems);
        check_handoff_socket(c, problems);
    }
    if (!c.listen.empty()) check_listen(c, "listen", c.listen, problems);
    if (!c.admin_listen.empty()) check_listen(c, "admin_listen", c.admin_listen, problems);
    for (const auto &[name, value] : c.kafka) {
        if (!config_kafka_property_is_file(name) || value.empty()) continue;
        if (name == "ssl.ca.location" && value == "probe") continue;  // librdkafka searches itself
        check_kafka_file(c, name, value, problems);
    }
    return problems->size() == before;
}

}  // namespace psdm

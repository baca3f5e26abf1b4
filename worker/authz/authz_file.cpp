// The file provider: see authz_file.h for the ACL syntax and its contract.
#include "authz/authz_file.h"

#include "base/read_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <exception>
#include <system_error>

#include "base/log.h"
#include "base/unique_fd.h"

namespace psdm {

namespace {

constexpr const char *kTag = "PSDM-AUTHZ";
constexpr size_t kMaxFileSize = 1u << 20;
constexpr size_t kMaxLine = 4096;
constexpr size_t kMaxPattern = 256;  // = kMaxRoomBytes: a longer pattern could match no room
constexpr size_t kMaxName = 256;     // users and groups, as in the handoff protocol

bool is_blank(char ch) { return ch == ' ' || ch == '\t'; }

std::string quote(std::string_view v) {
    std::string q = "'";
    if (v.size() > 100) {
        q.append(v.substr(0, 100)).append("...");
    } else {
        q.append(v);
    }
    return q + "'";
}

// Splits on blanks; empty tokens are skipped.
std::vector<std::string_view> tokens_of(std::string_view line) {
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && is_blank(line[i])) i++;
        size_t b = i;
        while (i < line.size() && !is_blank(line[i])) i++;
        if (i > b) out.push_back(line.substr(b, i - b));
    }
    return out;
}

}  // namespace

bool acl_glob_match(std::string_view pattern, std::string_view name) {
    size_t p = 0, n = 0;
    size_t star = std::string_view::npos, star_n = 0;  // last '*' seen, and where it matched
    while (n < name.size()) {
        if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            star_n = n;
        } else if (p < pattern.size() && pattern[p] == name[n]) {
            p++;
            n++;
        } else if (star != std::string_view::npos) {
            p = star + 1;  // let the last '*' swallow one more byte
            n = ++star_n;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*') p++;
    return p == pattern.size();
}

bool Acl::parse(std::string_view text, const std::string &source, Acl *out, std::string *err) {
    try {
        Acl acl;
        acl.source_ = source;
        std::unordered_map<std::string, size_t> wildcard_index;
        if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
        size_t line_no = 0;
        auto fail = [&](const std::string &msg) {
            *err = source + ":" + std::to_string(line_no) + ": " + msg;
            return false;
        };
        while (!text.empty()) {
            ++line_no;
            size_t nl = text.find('\n');
            std::string_view line = text.substr(0, nl);
            text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            if (line.size() > kMaxLine) return fail("line longer than 4096 bytes");
            for (char ch : line) {
                auto u = static_cast<unsigned char>(ch);
                if ((u < 0x20 && ch != '\t') || u == 0x7f) {
                    char hex[8];
                    snprintf(hex, sizeof hex, "0x%02x", u);
                    return fail(std::string("control character ") + hex + " is not allowed");
                }
            }
            for (size_t i = 0; i < line.size(); ++i) {
                if (line[i] == '#' && (i == 0 || is_blank(line[i - 1]))) {
                    line = line.substr(0, i);
                    break;
                }
            }
            std::vector<std::string_view> tok = tokens_of(line);
            if (tok.empty()) continue;
            std::string_view pattern = tok[0];
            if (tok.size() < 2)
                return fail("room pattern " + quote(pattern) +
                            " names nobody: expected 'ROOM-PATTERN WHO...' where WHO is a user, "
                            "@group, * or %anonymous");
            if (pattern.size() > kMaxPattern) return fail("room pattern longer than 256 bytes");
            Grant *g;
            std::string key(pattern);
            if (pattern.find('*') == std::string_view::npos) {
                g = &acl.exact_[key];
            } else {
                auto [it, fresh] = wildcard_index.emplace(key, acl.wildcards_.size());
                if (fresh) acl.wildcards_.emplace_back(key, Grant{});
                g = &acl.wildcards_[it->second].second;
            }
            if (g->first_line == 0) g->first_line = line_no;
            for (size_t i = 1; i < tok.size(); ++i) {
                std::string_view who = tok[i];
                if (who == "*") {
                    g->any_user = true;
                } else if (who == "%anonymous") {
                    g->anonymous = true;
                } else if (who.front() == '%') {
                    return fail("unknown keyword " + quote(who) + " (the only one is %anonymous)");
                } else if (who.front() == '@') {
                    if (who.size() == 1) return fail("'@' must be followed by a group name");
                    if (who.size() - 1 > kMaxName) return fail("group name longer than 256 bytes");
                    g->groups.emplace(who.substr(1));
                } else {
                    if (who.size() > kMaxName) return fail("user name longer than 256 bytes");
                    g->users.emplace(who);
                }
            }
            acl.rules_++;
        }
        *out = std::move(acl);
        return true;
    } catch (const std::exception &e) {
        *err = source + ": " + e.what();
        return false;
    }
}

bool Acl::load(const std::string &path, Acl *out, std::string *err) {
    try {
        std::string text;
        if (int e = read_small_file(path, kMaxFileSize, &text)) {
            *err = read_small_file_error("ACL file", path, e, kMaxFileSize);
            return false;
        }
        return parse(text, path, out, err);
    } catch (const std::exception &e) {
        *err = "cannot read ACL file " + quote(path) + ": " + e.what();
        return false;
    }
}

bool Acl::grants(const Grant &g, const Identity &who) const {
    if (who.user.empty()) return g.anonymous;
    if (g.any_user || g.users.count(who.user)) return true;
    for (const std::string &group : who.groups)
        if (g.groups.count(group)) return true;
    return false;
}

bool Acl::allows(const Identity &who, std::string_view room, std::string *why) const {
    auto it = exact_.find(std::string(room));
    if (it != exact_.end() && grants(it->second, who)) {
        *why = "granted by " + source_ + ":" + std::to_string(it->second.first_line);
        return true;
    }
    for (const auto &[pattern, grant] : wildcards_) {
        if (acl_glob_match(pattern, room) && grants(grant, who)) {
            *why = "granted by " + source_ + ":" + std::to_string(grant.first_line);
            return true;
        }
    }
    *why = "no line of " + source_ + " grants it";
    return false;
}

std::unique_ptr<FileAuthorizer> FileAuthorizer::create(const std::string &path, std::string *err) {
    std::unique_ptr<FileAuthorizer> a(new FileAuthorizer(path));
    a->acl_ = std::make_unique<Acl>();
    if (!Acl::load(path, a->acl_.get(), err)) return nullptr;
    PSDM_LOG_INFO(kTag, "authz = file:%s: %zu rule(s)", path.c_str(), a->acl_->rule_count());
    return a;
}

bool FileAuthorizer::reload(std::string *err) {
    auto fresh = std::make_unique<Acl>();
    if (!Acl::load(path_, fresh.get(), err)) return false;
    acl_ = std::move(fresh);
    PSDM_LOG_NOTICE(kTag, "reloaded %s: %zu rule(s)", path_.c_str(), acl_->rule_count());
    return true;
}

void FileAuthorizer::do_check(const Identity &who, const std::string &room, Done done) {
    AuthzDecision d;
    d.allowed = acl_->allows(who, room, &d.reason);
    done(std::move(d));
}

}  // namespace psdm

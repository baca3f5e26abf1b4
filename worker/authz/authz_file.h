// The file provider (authz = file:/PATH): a small ACL file of room patterns and who may
// read them. Pure (no lws, no threads): parsed and matched here, unit-tested directly.
//
// File syntax (documented for operators in README.md, "Authorization"):
//
//   # comment                      a line whose first non-blank character is '#'
//   ROOM-PATTERN  WHO [WHO...]     # a '#' after a blank starts a trailing comment
//
//   ROOM-PATTERN  a room name (e.g. xpptut15, the_global_room) where '*' matches any run
//                 of characters, also none: xpp*, *15, * (every room). At most 256 bytes.
//   WHO           alice        the user alice (as Apache authenticated it, realm dropped)
//                 @ps-data     any user Apache reported in group ps-data (PsdmSocketGroups)
//                 *            any authenticated user
//                 %anonymous   connections without a user (the worker's direct `listen`)
//
// A user may read a room when any line whose pattern matches the room names the user,
// one of the user's groups, or '*'. Lines only grant; order does not matter; a pattern may
// appear on several lines. Anything else is an error naming FILE:LINE: a pattern without
// WHO, '@' without a group, an unknown %keyword, control characters, a line over 4096
// bytes, a file over 1 MiB.
//
// Thread: Acl is immutable after parsing (any thread may read it); FileAuthorizer runs on
// the event loop.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "authz/authz.h"

namespace psdm {

// True if `name` matches `pattern`, where '*' matches any run of bytes (also empty) and
// every other byte matches itself. Linear backtracking: O(|pattern| * |name|) worst case.
bool acl_glob_match(std::string_view pattern, std::string_view name);

class Acl {
 public:
    // Parses `text`, read from `source` (used in messages). Returns true and replaces
    // *out, or false and sets *err to "SOURCE:LINE: what is wrong" (*out untouched).
    static bool parse(std::string_view text, const std::string &source, Acl *out, std::string *err);

    // Reads the file (at most 1 MiB) and parses it. An unreadable file gives
    // "cannot read ACL file 'PATH': <strerror>".
    static bool load(const std::string &path, Acl *out, std::string *err);

    // May `who` read `room`? *why gets "PATH:LINE" of the granting line, or what was
    // looked at when nothing grants.
    bool allows(const Identity &who, std::string_view room, std::string *why) const;

    size_t rule_count() const { return rules_; }

 private:
    struct Grant {
        std::set<std::string, std::less<>> users;
        std::set<std::string, std::less<>> groups;
        bool any_user = false;
        bool anonymous = false;
        size_t first_line = 0;
    };
    bool grants(const Grant &g, const Identity &who) const;

    std::string source_;
    std::unordered_map<std::string, Grant> exact_;          // patterns without '*'
    std::vector<std::pair<std::string, Grant>> wildcards_;  // in file order
    size_t rules_ = 0;                                      // lines with a rule
};

// authz = file:PATH. Reads the ACL at creation and again on reload().
class FileAuthorizer final : public Authorizer {
 public:
    // Returns nullptr and sets *err when the file cannot be read or parsed.
    static std::unique_ptr<FileAuthorizer> create(const std::string &path, std::string *err);

    const char *name() const override { return "file"; }
    // On error the previous rules stay in force.
    bool reload(std::string *err) override;
    const Acl &acl() const { return *acl_; }

 protected:
    void do_check(const Identity &who, const std::string &room, Done done) override;

 private:
    explicit FileAuthorizer(std::string path) : path_(std::move(path)) {}
    std::string path_;
    std::unique_ptr<Acl> acl_;
};

}  // namespace psdm

// Unit tests of worker/authz_file: the ACL file syntax (every error names FILE:LINE),
// wildcard matching, users, groups, '*', %anonymous, load errors, and the provider's
// reload (a bad file keeps the old rules).
#include <cstdarg>
#include <cstddef>
#include <csetjmp>
#include <cstdint>
extern "C" {  // cmocka 1.1.5 has no C++ linkage guards
#include <cmocka.h>
}

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "authz/authz_file.h"

using psdm::Acl;
using psdm::acl_glob_match;
using psdm::Identity;

namespace {

Identity user(const std::string &name, std::vector<std::string> groups = {}) { return {name, std::move(groups)}; }

bool allows(const Acl &acl, const Identity &who, const std::string &room) {
    std::string why;
    return acl.allows(who, room, &why);
}

Acl parse_ok(const std::string &text) {
    Acl acl;
    std::string err;
    if (!Acl::parse(text, "acl", &acl, &err)) fail_msg("unexpected error: %s", err.c_str());
    return acl;
}

void test_glob(void **) {
    struct Case {
        const char *pattern, *name;
        bool match;
    };
    const Case cases[] = {
        {"xpptut15", "xpptut15", true},
        {"xpptut15", "xpptut16", false},
        {"xpptut15", "xpptut1", false},
        {"xpptut15", "xpptut155", false},
        {"xpp*", "xpptut15", true},
        {"xpp*", "xpp", true},
        {"xpp*", "xp", false},
        {"*15", "xpptut15", true},
        {"*15", "xpptut16", false},
        {"*", "", true},
        {"*", "anything", true},
        {"x*t*5", "xpptut15", true},
        {"x*t*5", "xpptut16", false},
        {"**", "a", true},
        {"a*a*a", "aaa", true},
        {"a*a*a", "aa", false},
        {"*ab", "aab", true},
        {"*ab*", "xxabyy", true},
        {"", "", true},
        {"", "a", false},
        {"a", "", false},
        {"the_global_room", "the_global_room", true},
    };
    for (const Case &c : cases) {
        if (acl_glob_match(c.pattern, c.name) != c.match)
            fail_msg("glob '%s' vs '%s': expected %d", c.pattern, c.name, c.match);
    }
    // Linear backtracking: a pathological pattern is still fast.
    std::string name(256, 'a');
    assert_false(acl_glob_match("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", name));
}

void test_users_groups_wildcards(void **) {
    Acl acl = parse_ok(
        "# rooms of the tests\n"
        "xpptut15        alice bob      # two users\n"
        "xpp*            @xpp-data\n"
        "   \t\n"
        "the_global_room *\n"
        "public*         * %anonymous\n"
        "*               @ps-admin\n"
        "xpptut15        carol\n"  // a pattern on two lines: merged
        "cxi*17          dave\n");
    assert_int_equal(acl.rule_count(), 7);
    assert_true(allows(acl, user("alice"), "xpptut15"));
    assert_true(allows(acl, user("bob"), "xpptut15"));
    assert_true(allows(acl, user("carol"), "xpptut15"));
    assert_false(allows(acl, user("alice"), "xpptut16"));
    assert_false(allows(acl, user("mallory"), "xpptut15"));
    assert_false(allows(acl, user("Alice"), "xpptut15"));  // names are case-sensitive
    // Groups, through a wildcard.
    assert_true(allows(acl, user("erin", {"other", "xpp-data"}), "xpptut16"));
    assert_true(allows(acl, user("erin", {"xpp-data"}), "xpptut15"));
    assert_false(allows(acl, user("erin", {"xpp-dat"}), "xpptut16"));
    assert_false(allows(acl, user("erin", {"xpp-data"}), "cxi12345"));
    // '*' is any authenticated user, never an anonymous connection.
    assert_true(allows(acl, user("anyone"), "the_global_room"));
    assert_false(allows(acl, user(""), "the_global_room"));
    assert_true(allows(acl, user(""), "public-news"));
    assert_true(allows(acl, user("x"), "public-news"));
    // A group on the catch-all pattern.
    assert_true(allows(acl, user("root", {"ps-admin"}), "any room at all"));
    // A group named like a user grants nothing to that user, and vice versa.
    assert_false(allows(acl, user("xpp-data"), "xpptut16"));
    assert_false(allows(acl, user("zed", {"alice"}), "xpptut15"));
    assert_true(allows(acl, user("dave"), "cxi00017"));
    assert_false(allows(acl, user("dave"), "cxi00018"));
    // Anonymous connections get nothing unless %anonymous says so.
    assert_false(allows(acl, user(""), "xpptut15"));
}

void test_reasons(void **) {
    Acl acl = parse_ok("a alice\n\nb* bob\n");
    std::string why;
    assert_true(acl.allows(user("bob"), "bx", &why));
    assert_string_equal(why.c_str(), "granted by acl:3");
    assert_true(acl.allows(user("alice"), "a", &why));
    assert_string_equal(why.c_str(), "granted by acl:1");
    assert_false(acl.allows(user("alice"), "bx", &why));
    assert_string_equal(why.c_str(), "no line of acl grants it");
}

void test_syntax(void **) {
    // Comments, CRLF, BOM, tabs, an empty file.
    Acl acl = parse_ok("\xEF\xBB\xBFroom1\talice\r\n#comment\r\n  # indented comment\nroom2 bob#not-a-comment\n");
    assert_true(allows(acl, user("alice"), "room1"));
    assert_true(allows(acl, user("bob#not-a-comment"), "room2"));
    assert_int_equal(parse_ok("").rule_count(), 0);
    assert_int_equal(parse_ok("# nothing\n\n").rule_count(), 0);
    assert_false(allows(parse_ok(""), user("alice"), "room1"));
}

void test_errors(void **) {
    struct Case {
        const char *text, *message;
    };
    const Case cases[] = {
        {"ok alice\nxpptut15\n",
         "acl:2: room pattern 'xpptut15' names nobody: expected 'ROOM-PATTERN WHO...' where WHO is a user, "
         "@group, * or %anonymous"},
        {"xpptut15   # alice\n", "acl:1: room pattern 'xpptut15' names nobody"},
        {"a alice\n\nb @\n", "acl:3: '@' must be followed by a group name"},
        {"a %anon\n", "acl:1: unknown keyword '%anon' (the only one is %anonymous)"},
        {"a alice\x01\n", "acl:1: control character 0x01 is not allowed"},
        {"a alice\x7f\n", "acl:1: control character 0x7f is not allowed"},
        {"a alice\rbob\n", "acl:1: control character 0x0d is not allowed"},
    };
    for (const Case &c : cases) {
        Acl acl;
        std::string err;
        if (Acl::parse(c.text, "acl", &acl, &err)) fail_msg("accepted: %s", c.text);
        if (err.compare(0, std::string(c.message).size(), c.message) != 0)
            fail_msg("for %s\n  expected: %s\n  got:      %s", c.text, c.message, err.c_str());
    }
    std::string err;
    Acl acl;
    assert_false(Acl::parse(std::string(257, 'r') + " alice\n", "acl", &acl, &err));
    assert_string_equal(err.c_str(), "acl:1: room pattern longer than 256 bytes");
    assert_false(Acl::parse("r " + std::string(257, 'u') + "\n", "acl", &acl, &err));
    assert_string_equal(err.c_str(), "acl:1: user name longer than 256 bytes");
    assert_false(Acl::parse("r @" + std::string(257, 'g') + "\n", "acl", &acl, &err));
    assert_string_equal(err.c_str(), "acl:1: group name longer than 256 bytes");
    assert_false(Acl::parse("r " + std::string(5000, 'u') + "\n", "acl", &acl, &err));
    assert_string_equal(err.c_str(), "acl:1: line longer than 4096 bytes");
}

std::string write_temp(const std::string &text) {
    char path[] = "/tmp/psdm-acl-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    close(fd);
    return path;
}

void rewrite(const std::string &path, const std::string &text) {
    FILE *f = fopen(path.c_str(), "w");
    assert_non_null(f);
    fputs(text.c_str(), f);
    fclose(f);
}

void test_load_and_provider_reload(void **) {
    std::string err;
    Acl acl;
    assert_false(Acl::load("/nonexistent/psdm/acl", &acl, &err));
    assert_string_equal(err.c_str(), "cannot read ACL file '/nonexistent/psdm/acl': No such file or directory");
    assert_false(Acl::load("/tmp", &acl, &err));
    assert_string_equal(err.c_str(), "cannot read ACL file '/tmp': Is a directory");
    assert_null(psdm::FileAuthorizer::create("/nonexistent/psdm/acl", &err).get());

    std::string path = write_temp("room alice\n");
    auto a = psdm::FileAuthorizer::create(path, &err);
    assert_non_null(a.get());
    assert_string_equal(a->name(), "file");
    assert_int_equal(a->revalidate_after_ms(), 0);
    int answers = 0;
    bool last = false;
    auto ask = [&](const std::string &who, const std::string &room) {
        a->check(user(who), room, [&](psdm::AuthzDecision d) {
            answers++;
            last = d.allowed;
            assert_false(d.failed);
        });
        return last;
    };
    assert_true(ask("alice", "room"));  // answered before check() returns
    assert_false(ask("bob", "room"));
    assert_int_equal(answers, 2);

    // A bad file: the reload fails naming the line, the old rules stay.
    rewrite(path, "room bob\nbroken\n");
    assert_false(a->reload(&err));
    assert_string_equal(err.c_str(), (path + ":2: room pattern 'broken' names nobody: expected 'ROOM-PATTERN "
                                             "WHO...' where WHO is a user, @group, * or %anonymous")
                                         .c_str());
    assert_true(ask("alice", "room"));
    assert_false(ask("bob", "room"));

    // A good file replaces them.
    rewrite(path, "room bob\n");
    assert_true(a->reload(&err));
    assert_false(ask("alice", "room"));
    assert_true(ask("bob", "room"));

    // A file that went away: the old rules stay.
    unlink(path.c_str());
    assert_false(a->reload(&err));
    assert_true(err.find("No such file or directory") != std::string::npos);
    assert_true(ask("bob", "room"));

    const psdm::AuthzCounters &n = a->counters();
    assert_int_equal(n.allowed, 4);
    assert_int_equal(n.denied, 3);
    assert_int_equal(n.failed, 0);
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glob),    cmocka_unit_test(test_users_groups_wildcards),
        cmocka_unit_test(test_reasons), cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_errors),  cmocka_unit_test(test_load_and_provider_reload),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}

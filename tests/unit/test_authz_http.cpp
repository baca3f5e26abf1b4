// Unit tests of worker/authz_http's provider logic with a fake transport and clock:
// URL template and header, status mapping (2xx / 401 403 404 / anything else / no answer),
// the cache (allow and deny TTLs, expiry, reload), shared questions, the in-flight bound
// and its queue timeout, anonymous users, stop. The libcurl transport itself is tested
// end to end by tests/integration/test_authz.py.
#include <cstdarg>
#include <cstddef>
#include <csetjmp>
#include <cstdint>
extern "C" {  // cmocka 1.1.5 has no C++ linkage guards
#include <cmocka.h>
}

#include <memory>
#include <string>
#include <vector>

#include "authz/authz_http.h"

using psdm::AuthzDecision;
using psdm::HttpAuthorizer;
using psdm::HttpAuthzOptions;
using psdm::HttpRequest;
using psdm::HttpResult;
using psdm::Identity;

namespace {

// What the test sees of the transport: the requests sent, and results to hand back.
struct Wire {
    std::vector<HttpRequest> sent;
    std::vector<HttpResult> results;
    bool started = false, stopped = false;
};

class FakeTransport final : public psdm::HttpTransport {
 public:
    explicit FakeTransport(Wire *w) : w_(w) {}
    bool start(std::function<void()>, std::string *) override {
        w_->started = true;
        return true;
    }
    void submit(HttpRequest req) override { w_->sent.push_back(std::move(req)); }
    void take_results(std::vector<HttpResult> *out) override {
        for (HttpResult &r : w_->results) out->push_back(std::move(r));
        w_->results.clear();
    }
    void stop() override { w_->stopped = true; }

 private:
    Wire *w_;
};

struct Fixture {
    Wire wire;
    int64_t now = 1000000;
    std::unique_ptr<HttpAuthorizer> authz;
    std::vector<AuthzDecision> answers;

    explicit Fixture(HttpAuthzOptions o = {}) {
        if (o.url_template.empty()) o.url_template = "http://127.0.0.1:5000/ws/authz/{room}";
        o.timeout_ms = 500;
        std::string err;
        authz = HttpAuthorizer::create(
            o, std::make_unique<FakeTransport>(&wire), [this] { return now; }, &err);
        if (!authz) fail_msg("%s", err.c_str());
        assert_true(authz->start([] {}, &err));
    }
    void ask(const std::string &user, const std::string &room, std::vector<std::string> groups = {}) {
        authz->check(Identity{user, std::move(groups)}, room, [this](AuthzDecision d) { answers.push_back(d); });
    }
    // Answers the i-th request sent with `status` (0: `error`) and polls.
    void answer(size_t i, long status, const std::string &error = "") {
        assert_true(i < wire.sent.size());
        wire.results.push_back({wire.sent[i].id, status, error});
        authz->poll();
    }
};

void test_url_template(void **) {
    using psdm::http_authz_url;
    assert_string_equal(http_authz_url("http://h/ws/authz/{room}", "alice", "xpptut15").c_str(),
                        "http://h/ws/authz/xpptut15");
    assert_string_equal(http_authz_url("https://h/a/{room}?u={user}&r={room}", "a b@c", "x/y?z#").c_str(),
                        "https://h/a/x%2Fy%3Fz%23?u=a%20b%40c&r=x%2Fy%3Fz%23");
    assert_string_equal(http_authz_url("http://h/{room}", "", "the_global_room").c_str(), "http://h/the_global_room");
    assert_string_equal(http_authz_url("http://h/{room}", "", "\xc3\xa9-._~").c_str(), "http://h/%C3%A9-._~");
    assert_string_equal(http_authz_url("http://h/{ro}{room", "u", "r").c_str(), "http://h/{ro}{room");
}

// Whatever the room or user, the URL is the template's with exactly the placeholder replaced:
// reserved characters and '%' are encoded, and so are dot segments (which a URL parser would
// otherwise resolve to the template's parent path).
void test_url_tricky_values(void **) {
    using psdm::http_authz_url;
    const std::string t = "http://127.0.0.1:5000/ws/authz/{room}";
    struct {
        const char *room, *url;
    } rooms[] = {
        {"..", "http://127.0.0.1:5000/ws/authz/%2E%2E"},
        {".", "http://127.0.0.1:5000/ws/authz/%2E"},
        {"...", "http://127.0.0.1:5000/ws/authz/%2E%2E%2E"},
        {".a", "http://127.0.0.1:5000/ws/authz/.a"},
        {"a..", "http://127.0.0.1:5000/ws/authz/a.."},
        {"a/b", "http://127.0.0.1:5000/ws/authz/a%2Fb"},
        {"../x", "http://127.0.0.1:5000/ws/authz/..%2Fx"},
        {"%2e%2e", "http://127.0.0.1:5000/ws/authz/%252e%252e"},
        {"a?b", "http://127.0.0.1:5000/ws/authz/a%3Fb"},
        {"a#b", "http://127.0.0.1:5000/ws/authz/a%23b"},
        {"a b+c", "http://127.0.0.1:5000/ws/authz/a%20b%2Bc"},
        {"a\\b;c=d&e", "http://127.0.0.1:5000/ws/authz/a%5Cb%3Bc%3Dd%26e"},
        {"\xe2\x80\xae", "http://127.0.0.1:5000/ws/authz/%E2%80%AE"},
    };
    for (const auto &r : rooms) {
        const std::string url = http_authz_url(t, "alice", r.room);
        if (url != r.url) fail_msg("room '%s': got %s, expected %s", r.room, url.c_str(), r.url);
    }
    const std::string u = "http://h/ws/{user}/rooms/{room}?who={user}";
    assert_string_equal(http_authz_url(u, "..", "r").c_str(), "http://h/ws/%2E%2E/rooms/r?who=%2E%2E");
    assert_string_equal(http_authz_url(u, ".", "r").c_str(), "http://h/ws/%2E/rooms/r?who=%2E");
    assert_string_equal(http_authz_url(u, "a/../b", "r").c_str(), "http://h/ws/a%2F..%2Fb/rooms/r?who=a%2F..%2Fb");
    assert_string_equal(http_authz_url(u, "bob@SLAC", "r").c_str(), "http://h/ws/bob%40SLAC/rooms/r?who=bob%40SLAC");
    assert_string_equal(http_authz_url(u, "", "r").c_str(), "http://h/ws//rooms/r?who=");
}

void test_create_errors(void **) {
    std::string err;
    HttpAuthzOptions o;
    o.url_template = "http://127.0.0.1:5000/ws/authz";
    Wire w;
    assert_null(HttpAuthorizer::create(
                    o, std::make_unique<FakeTransport>(&w), [] { return int64_t{0}; }, &err)
                    .get());
    assert_string_equal(err.c_str(),
                        "the URL 'http://127.0.0.1:5000/ws/authz' has no {room}: write where the room goes, e.g. "
                        "http://127.0.0.1:5000/ws/authz/{room}");
    o.url_template = "http://h/{room}";
    o.user_header = "REMOTE USER";
    assert_null(HttpAuthorizer::create(
                    o, std::make_unique<FakeTransport>(&w), [] { return int64_t{0}; }, &err)
                    .get());
    assert_string_equal(err.c_str(), "authz_user_header 'REMOTE USER' is not an HTTP header name");
}

void test_allow_then_cache_then_expiry(void **) {
    HttpAuthzOptions o;
    o.allow_ttl_ms = 1000;
    Fixture f(o);
    assert_true(f.wire.started);
    assert_int_equal(f.authz->revalidate_after_ms(), 1000);
    f.ask("alice", "xpptut15", {"ps-data"});
    assert_int_equal(f.answers.size(), 0);  // waits for the application
    assert_int_equal(f.wire.sent.size(), 1);
    assert_string_equal(f.wire.sent[0].url.c_str(), "http://127.0.0.1:5000/ws/authz/xpptut15");
    assert_string_equal(f.wire.sent[0].header.c_str(), "REMOTE-USER: alice");
    assert_int_equal(f.wire.sent[0].timeout_ms, 500);
    f.answer(0, 200);
    assert_int_equal(f.answers.size(), 1);
    assert_true(f.answers[0].allowed);
    assert_false(f.answers[0].failed);
    assert_string_equal(f.answers[0].reason.c_str(), "HTTP 200");

    // Many joins, one request.
    f.now += 999;
    for (int i = 0; i < 10; i++) f.ask("alice", "xpptut15");
    assert_int_equal(f.wire.sent.size(), 1);
    assert_int_equal(f.answers.size(), 11);
    assert_true(f.answers.back().allowed);
    // Another user or room is another question.
    f.ask("bob", "xpptut15");
    f.ask("alice", "xpptut16");
    assert_int_equal(f.wire.sent.size(), 3);
    // Expired: asked again.
    f.now += 1;
    f.ask("alice", "xpptut15");
    assert_int_equal(f.wire.sent.size(), 4);
    f.answer(3, 204);
    assert_true(f.answers.back().allowed);

    const psdm::AuthzCounters &n = f.authz->counters();
    assert_int_equal(n.allowed, 12);
    assert_int_equal(n.cache_hits, 10);
    assert_int_equal(n.requests, 4);
}

void test_deny_statuses_and_deny_ttl(void **) {
    HttpAuthzOptions o;
    o.deny_ttl_ms = 2000;
    Fixture f(o);
    long statuses[] = {401, 403, 404};
    for (size_t i = 0; i < 3; i++) {
        f.ask("u" + std::to_string(i), "room");
        f.answer(i, statuses[i]);
        assert_false(f.answers.back().allowed);
        assert_false(f.answers.back().failed);
        assert_string_equal(f.answers.back().reason.c_str(), ("HTTP " + std::to_string(statuses[i])).c_str());
    }
    f.ask("u1", "room");  // cached deny
    assert_int_equal(f.wire.sent.size(), 3);
    assert_false(f.answers.back().allowed);
    f.now += 2000;
    f.ask("u1", "room");
    assert_int_equal(f.wire.sent.size(), 4);
    assert_int_equal(f.authz->counters().denied, 4);
}

void test_deny_ttl_zero_is_not_cached(void **) {
    HttpAuthzOptions o;
    o.deny_ttl_ms = 0;
    Fixture f(o);
    f.ask("u", "r");
    f.answer(0, 403);
    f.ask("u", "r");
    assert_int_equal(f.wire.sent.size(), 2);
}

void test_failures_are_refused_and_not_cached(void **) {
    Fixture f;
    f.ask("u", "r");
    f.answer(0, 500);
    assert_false(f.answers.back().allowed);
    assert_true(f.answers.back().failed);
    assert_string_equal(f.answers.back().reason.c_str(), "HTTP 500 (expected 2xx, 401, 403 or 404)");
    f.ask("u", "r");
    assert_int_equal(f.wire.sent.size(), 2);
    f.answer(1, 0, "no answer within 500 ms (authz_timeout_ms)");
    assert_true(f.answers.back().failed);
    assert_string_equal(f.answers.back().reason.c_str(), "no answer within 500 ms (authz_timeout_ms)");
    f.ask("u", "r");
    f.answer(2, 302);  // a redirect (to a login page) is not an answer
    assert_true(f.answers.back().failed);
    assert_int_equal(f.authz->counters().failed, 3);
    assert_int_equal(f.authz->cache_size(), 0);
}

void test_identical_questions_share_one_request(void **) {
    Fixture f;
    for (int i = 0; i < 5; i++) f.ask("alice", "r");
    f.ask("bob", "r");
    assert_int_equal(f.wire.sent.size(), 2);
    assert_int_equal(f.answers.size(), 0);
    f.answer(0, 403);
    assert_int_equal(f.answers.size(), 5);
    for (const AuthzDecision &d : f.answers) assert_false(d.allowed);
    f.answer(1, 200);
    assert_int_equal(f.answers.size(), 6);
    assert_true(f.answers.back().allowed);
    // A result for an unknown request is ignored.
    f.wire.results.push_back({9999, 200, ""});
    f.authz->poll();
    assert_int_equal(f.answers.size(), 6);
}

void test_in_flight_bound_and_queue_timeout(void **) {
    HttpAuthzOptions o;
    o.max_in_flight = 2;
    Fixture f(o);
    for (int i = 0; i < 5; i++) f.ask("u", "room" + std::to_string(i));
    assert_int_equal(f.wire.sent.size(), 2);
    assert_int_equal(f.authz->in_flight(), 2);
    assert_int_equal(f.authz->queued(), 3);
    f.ask("u", "room4");  // shares the queued question
    assert_int_equal(f.authz->queued(), 3);
    f.answer(0, 200);  // a slot frees: the next queued question goes
    assert_int_equal(f.wire.sent.size(), 3);
    assert_string_equal(f.wire.sent[2].url.c_str(), "http://127.0.0.1:5000/ws/authz/room2");
    assert_int_equal(f.authz->queued(), 2);
    // The rest waited longer than the timeout for a slot: refused when one frees.
    f.now += 500;
    f.answer(1, 200);
    assert_int_equal(f.wire.sent.size(), 3);
    assert_int_equal(f.authz->queued(), 0);
    assert_int_equal(f.answers.size(), 5);  // room0, room1, room3, room4 x2
    int failed = 0;
    for (const AuthzDecision &d : f.answers) failed += d.failed;
    assert_int_equal(failed, 3);
    assert_true(f.answers.back().reason.find("no free request slot within 500 ms") == 0);
    f.answer(2, 200);
    assert_int_equal(f.authz->in_flight(), 0);
}

void test_anonymous_and_custom_header(void **) {
    HttpAuthzOptions o;
    o.user_header = "X-Remote-User";
    o.url_template = "http://h/authz/{room}/{user}";
    Fixture f(o);
    f.ask("", "r");
    assert_string_equal(f.wire.sent[0].header.c_str(), "");  // no header: the application decides
    assert_string_equal(f.wire.sent[0].url.c_str(), "http://h/authz/r/");
    f.ask("bob", "r");
    assert_string_equal(f.wire.sent[1].header.c_str(), "X-Remote-User: bob");
    assert_string_equal(f.wire.sent[1].url.c_str(), "http://h/authz/r/bob");
    f.ask("bad\r\nX-Injected: 1", "r");  // never reaches a header line
    assert_int_equal(f.wire.sent.size(), 2);
    assert_true(f.answers.back().failed);
}

void test_reload_forgets_answers(void **) {
    Fixture f;
    f.ask("u", "r");
    f.answer(0, 200);
    assert_int_equal(f.authz->cache_size(), 1);
    std::string err;
    assert_true(f.authz->reload(&err));
    assert_int_equal(f.authz->cache_size(), 0);
    f.ask("u", "r");
    assert_int_equal(f.wire.sent.size(), 2);
}

void test_answer_callback_may_ask_again(void **) {
    Fixture f;
    bool asked_again = false;
    f.authz->check(Identity{"u", {}}, "r", [&](AuthzDecision) {
        asked_again = true;
        f.ask("u", "r");  // the failed question is gone: this one starts afresh
    });
    f.answer(0, 503);
    assert_true(asked_again);
    assert_int_equal(f.wire.sent.size(), 2);
}

void test_stop_drops_waiters(void **) {
    Fixture f;
    f.ask("u", "r");
    f.authz->stop();
    assert_true(f.wire.stopped);
    f.wire.results.push_back({f.wire.sent[0].id, 200, ""});
    f.authz->poll();
    f.ask("u", "r");
    assert_int_equal(f.answers.size(), 0);
}

void test_cache_bound(void **) {
    HttpAuthzOptions o;
    o.max_cache_entries = 4;
    o.allow_ttl_ms = 1000;
    Fixture f(o);
    for (int i = 0; i < 4; i++) {
        f.ask("u", "r" + std::to_string(i));
        f.answer(static_cast<size_t>(i), 200);
    }
    assert_int_equal(f.authz->cache_size(), 4);
    f.now += 1000;  // all expired: dropped to make room
    f.ask("u", "r9");
    f.answer(4, 200);
    assert_int_equal(f.authz->cache_size(), 1);
    for (int i = 0; i < 3; i++) {
        f.ask("v", "r" + std::to_string(i));
        f.answer(static_cast<size_t>(5 + i), 200);
    }
    assert_int_equal(f.authz->cache_size(), 4);
    f.ask("w", "r");  // none expired: the cache starts over
    f.answer(8, 200);
    assert_int_equal(f.authz->cache_size(), 1);
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_template),
        cmocka_unit_test(test_url_tricky_values),
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_allow_then_cache_then_expiry),
        cmocka_unit_test(test_deny_statuses_and_deny_ttl),
        cmocka_unit_test(test_deny_ttl_zero_is_not_cached),
        cmocka_unit_test(test_failures_are_refused_and_not_cached),
        cmocka_unit_test(test_identical_questions_share_one_request),
        cmocka_unit_test(test_in_flight_bound_and_queue_timeout),
        cmocka_unit_test(test_anonymous_and_custom_header),
        cmocka_unit_test(test_reload_forgets_answers),
        cmocka_unit_test(test_answer_callback_may_ask_again),
        cmocka_unit_test(test_stop_drops_waiters),
        cmocka_unit_test(test_cache_bound),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}

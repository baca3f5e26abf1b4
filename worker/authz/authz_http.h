// The http provider (authz = http://... or https://...): asks the site's web application,
// so that the rules stay where they are (flask_authnz: roles in the database plus LDAP
// groups). One GET per question:
//
//   GET <authz with {room} and {user} replaced, percent-encoded (http_authz_url)>
//   <authz_user_header>: <user>          (absent for anonymous connections)
//
//   2xx            allow                 cached authz_allow_ttl_ms
//   401, 403, 404  deny                  cached authz_deny_ttl_ms (0 = not cached)
//   anything else, or no answer within authz_timeout_ms: refused ("failed"), one log
//   line, not cached (the next join asks again)
//
// Questions are per (user, room); groups are not sent (the application looks them up).
// Concurrent identical questions share one request (the later ones wait for the first
// one's answer). At most authz_max_in_flight requests run at once; further questions
// queue, and one that waited longer than authz_timeout_ms for a free slot is refused.
//
// The HTTP work runs on a thread of its own (HttpTransport, libcurl's multi interface);
// answers come back through a mutex-guarded queue and the `wake` function (the worker's
// lws_cancel_service), and are delivered by poll() on the event loop. The provider
// logic itself (cache, sharing, queue) is transport-free and unit-tested with a fake.
//
// Thread: HttpAuthorizer runs on the event loop only; HttpTransport says per method.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "authz/authz.h"
#include "base/config.h"  // defaults::

namespace psdm {

struct HttpAuthzOptions {
    std::string url_template;  // must contain {room}; may contain {user}
    std::string user_header = defaults::kAuthzUserHeader;
    unsigned timeout_ms = defaults::kAuthzTimeoutMs;
    unsigned allow_ttl_ms = defaults::kAuthzAllowTtlMs;
    unsigned deny_ttl_ms = defaults::kAuthzDenyTtlMs;
    size_t max_in_flight = defaults::kAuthzMaxInFlight;
    size_t max_cache_entries = 100000;  // beyond this, expired answers are dropped, then all
};

struct HttpRequest {
    uint64_t id = 0;
    std::string url;
    std::string header;  // "NAME: value", or "" for none
    unsigned timeout_ms = 0;
};

struct HttpResult {
    uint64_t id = 0;
    long status = 0;    // HTTP status; 0 = no answer (then `error` says why)
    std::string error;  // "timed out after 2000 ms", "Couldn't connect to server", ...
};

// Runs GET requests somewhere else than the event loop.
class HttpTransport {
 public:
    virtual ~HttpTransport() = default;
    // Loop thread, once. `wake` (thread-safe) is called when results are ready.
    virtual bool start(std::function<void()> wake, std::string *err) = 0;
    // Loop thread. Every submitted request gets exactly one result (unless stopped).
    virtual void submit(HttpRequest req) = 0;
    // Loop thread: moves the results that arrived into *out.
    virtual void take_results(std::vector<HttpResult> *out) = 0;
    // Loop thread: stops and joins its threads; pending requests are dropped.
    virtual void stop() = 0;
};

// The libcurl transport (one thread driving a curl multi handle).
std::unique_ptr<HttpTransport> http_transport_curl();

// `{room}` and `{user}` replaced by their percent-encoded values (RFC 3986: everything but
// ALPHA DIGIT - . _ ~ is encoded as %XX, and the dots too in a value made only of dots, such
// as "." or ".."), so that a value is always exactly the text it replaces, never a '/', '?',
// '#' or a dot segment: the URL asked is the template's with only the placeholders changed.
// Room names are never "." or ".." anyway (sio/session.h, room_name_ok); user names come
// from Apache. The transport sends the path as built (libcurl CURLOPT_PATH_AS_IS).
std::string http_authz_url(const std::string &url_template, const std::string &user, const std::string &room);

class HttpAuthorizer final : public Authorizer {
 public:
    // Returns nullptr and sets *err for an unusable template (no {room}) or header name.
    static std::unique_ptr<HttpAuthorizer> create(HttpAuthzOptions opts, std::unique_ptr<HttpTransport> transport,
                                                  std::function<int64_t()> clock, std::string *err);
    ~HttpAuthorizer() override;

    const char *name() const override { return "http"; }
    bool start(std::function<void()> wake, std::string *err) override;
    void poll() override;
    // Forgets every cached answer (questions in flight still get theirs).
    bool reload(std::string *err) override;
    int64_t revalidate_after_ms() const override { return opts_.allow_ttl_ms; }
    void stop() override;

    size_t cache_size() const { return cache_.size(); }
    size_t in_flight() const { return in_flight_; }
    size_t queued() const { return queue_.size(); }

 protected:
    void do_check(const Identity &who, const std::string &room, Done done) override;

 private:
    struct Cached {
        bool allowed;
        int64_t expires_ms;
    };
    // One question being asked: everyone who asked it waits for the same answer.
    struct Pending {
        std::string user, room;
        std::vector<Done> waiters;
        int64_t asked_ms = 0;
        uint64_t request_id = 0;  // 0 while queued for a free slot
    };

    HttpAuthorizer(HttpAuthzOptions opts, std::unique_ptr<HttpTransport> transport, std::function<int64_t()> clock)
        : opts_(std::move(opts)), transport_(std::move(transport)), clock_(std::move(clock)) {}
    static std::string key_of(const std::string &user, const std::string &room);
    void send(const std::string &key, Pending &p);
    void remember(const std::string &key, bool allowed, int64_t now);
    void finish(const std::string &key, AuthzDecision d);
    void pump_queue();

    HttpAuthzOptions opts_;
    std::unique_ptr<HttpTransport> transport_;
    std::function<int64_t()> clock_;
    bool stopped_ = false;
    std::unordered_map<std::string, Cached> cache_;         // key_of(user, room) -> answer
    std::unordered_map<std::string, Pending> pending_;      // key -> question being asked
    std::unordered_map<uint64_t, std::string> by_request_;  // request id -> key
    std::deque<std::string> queue_;                         // keys waiting for a free slot
    size_t in_flight_ = 0;
    uint64_t next_request_id_ = 0;
};

}  // namespace psdm

// Authorization of room joins: "may USER (with GROUPS) read ROOM?"
//
// Providers (authz = ...): allow-all, file:PATH (authz_file.h), http(s)://URL
// (authz_http.h). Answers are asynchronous: check() may call `done` before returning
// (allow-all, file ACL, a cached HTTP answer) or later from poll() on the event loop (an
// HTTP callback to the web application). The worker never lets a client into a room
// before `done` said yes for that (client, room), and never waits for an answer on the
// event loop.
//
// Thread: every member runs on the event loop thread, except the `wake` function given
// to start(), which the provider may call from any thread of its own.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace psdm {

struct Config;

// Who a connection belongs to. It comes only from Apache over the handoff socket
// (never from anything the client sends); direct `listen` connections are anonymous.
struct Identity {
    std::string user;                 // "" = anonymous
    std::vector<std::string> groups;  // optional, from Apache
};

struct AuthzDecision {
    bool allowed = false;
    std::string reason;   // why (not), for the log line and the join ack
    bool failed = false;  // no answer could be had (error, timeout): refused, counted apart
};

// What the providers answered since the start. allowed + denied + failed = questions
// asked (joins and re-checks). cache_hits and requests are the http provider's.
struct AuthzCounters {
    uint64_t allowed = 0;
    uint64_t denied = 0;      // a rule or the application said no
    uint64_t failed = 0;      // refused because no answer could be had
    uint64_t cache_hits = 0;  // answered from the cache
    uint64_t requests = 0;    // HTTP requests sent
};

class Authorizer {
 public:
    using Done = std::function<void(AuthzDecision)>;

    virtual ~Authorizer() = default;
    Authorizer() = default;
    Authorizer(const Authorizer &) = delete;
    Authorizer &operator=(const Authorizer &) = delete;

    // "allow-all", "file", "http".
    virtual const char *name() const = 0;

    // Calls done(decision) exactly once, now or later from poll(), unless stop() ran
    // first. `done` may call check() again.
    void check(const Identity &who, const std::string &room, Done done) {
        do_check(who, room, [this, done = std::move(done)](AuthzDecision d) {
            (d.allowed ? counters_.allowed : d.failed ? counters_.failed : counters_.denied)++;
            done(std::move(d));
        });
    }

    // Called once before the first check, on the event loop. `wake` is thread-safe:
    // a provider that answers from another thread calls it, and the loop then calls
    // poll(). Returns false and sets *err if the provider cannot work.
    virtual bool start(std::function<void()> wake, std::string *err) {
        (void)wake;
        (void)err;
        return true;
    }

    // Delivers the answers that arrived since the last call (the loop was woken).
    virtual void poll() {}

    // SIGHUP: re-read the rules (file) or forget cached answers (http). Returns false
    // and sets *err (with FILE:LINE for a syntax error) and keeps the old rules.
    // The caller then re-checks every membership.
    virtual bool reload(std::string *err) {
        (void)err;
        return true;
    }

    // How long an allowed membership stays valid before it must be asked again
    // (http: authz_allow_ttl_ms); 0 = until the next reload (allow-all, file).
    virtual int64_t revalidate_after_ms() const { return 0; }

    // Stops threads of its own; no `done` is called afterwards. Before the event
    // loop goes away.
    virtual void stop() {}

    const AuthzCounters &counters() const { return counters_; }

 protected:
    virtual void do_check(const Identity &who, const std::string &room, Done done) = 0;
    AuthzCounters counters_;
};

// Builds the provider that cfg.authz names, with the authz_* keys of cfg. Returns
// nullptr and sets *err ("cannot read ACL file '/etc/psdm_socket/acl': ...") when it
// cannot: the worker then refuses to start. allow-all logs a warning.
std::unique_ptr<Authorizer> authorizer_create(const Config &cfg, std::string *err);

}  // namespace psdm

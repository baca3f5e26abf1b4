// Authorization of room joins: "may USER (with GROUPS) read ROOM?"
//
// Answers are asynchronous: check() may call `done` before returning (allow-all,
// file ACL) or later from the event loop (an HTTP callback to the web application).
// Thread: event loop only. The worker never lets a client into a room before
// `done(true)` ran for that (client, room).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace psdm {

// Who a connection belongs to. It comes only from Apache over the handoff socket
// (never from anything the client sends); direct `listen` connections are anonymous.
struct Identity {
    std::string user;                 // "" = anonymous
    std::vector<std::string> groups;  // optional, from Apache
};

struct AuthzDecision {
    bool allowed;
    std::string reason;  // why not, for the log line and the join ack
};

class Authorizer {
 public:
    virtual ~Authorizer() = default;
    virtual const char *name() const = 0;
    // Calls done(decision) exactly once, now or later on the event loop.
    virtual void check(const Identity &who, const std::string &room, std::function<void(AuthzDecision)> done) = 0;
};

// Builds the provider that `authz = SPEC` names. Returns nullptr and sets *err for an
// unknown or not yet supported provider.
std::unique_ptr<Authorizer> authorizer_create(const std::string &spec, std::string *err);

}  // namespace psdm

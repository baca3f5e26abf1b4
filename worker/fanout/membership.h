// Membership: the one owner of "which client is in which room, and since when may it be".
//
// A client (a member, named by a MemberId) asks to join a room; Membership asks the
// Authorizer and, only once it said yes, puts the member into the room's fan-out index
// (Rooms). It also re-asks: after a reload of the rules (recheck_all) and, when the
// authorizer's answers expire, for every membership older than that (recheck_expired),
// and takes a member out of a room the authorizer now refuses.
//
//   Membership m(authz, max_rooms, clock, events);
//   m.add(id, identity);                 // a client connected
//   m.join(id, "xpptut15", ack);         // its join request: events.answered() follows
//   m.for_each_member("xpptut15", cb);   // fan-out
//   m.remove(id);                        // it went away
//
// Per member it keeps the rooms the member wants: pending (asked, no answer yet) or
// joined (in Rooms, with the time of the last yes). That list is the truth; Rooms is the
// index fan-out walks, changed only here and always in step.
//
// Re-check policy (authorizer with revalidate_after_ms() = TTL > 0): a membership whose
// last yes is TTL old is asked again; a no removes it; an answer that could not be had
// (d.failed) keeps it until its last yes is 2 x TTL old, then removes it. With TTL = 0
// (file, allow-all) memberships stay until the next recheck_all().
//
// Answers arrive through the Authorizer's callback, now or later. An answer for a member
// that has gone (remove), or that was removed and added again under the same MemberId,
// is dropped: each add() gets a new serial that the question carries.
//
// Events are called after Membership has finished changing its state, so an event
// handler may call any member of Membership (leave, remove, join), also for other members.
//
// Exceptions: std::bad_alloc from a join leaves the member's state as it was before the
// call (no half-joined room, no pending entry that can never be answered).
//
// Thread: event loop only, like the Authorizer it uses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "authz/authz.h"
#include "fanout/rooms.h"

namespace psdm {

class Membership {
 public:
    // What Membership tells its owner (the Server sends acks and writes the log lines).
    class Events {
     public:
        virtual ~Events() = default;
        // The answer to a join(): d.allowed = m is now in room (or was allowed but left
        // meanwhile); refused otherwise, and m is then not in room.
        virtual void answered(MemberId m, const std::string &room, std::optional<uint64_t> ack_id,
                              const AuthzDecision &d) = 0;
        // A re-check refused m: it is no longer in room.
        virtual void revoked(MemberId m, const std::string &room, const AuthzDecision &d) = 0;
        // A re-check got no answer; m stays in room until its last yes is 2 x TTL old.
        virtual void kept(MemberId m, const std::string &room, const AuthzDecision &d) = 0;
    };

    enum class JoinStart {
        asked,           // the authorizer was asked; answered() follows (maybe already came)
        too_many_rooms,  // m already wants max_rooms_per_member other rooms: nothing asked
    };

    // `authz` and `events` must outlive this object. `now_ms` is a monotonic millisecond
    // clock (tests pass a fake one).
    Membership(Authorizer &authz, size_t max_rooms_per_member, std::function<int64_t()> now_ms, Events &events);
    Membership(const Membership &) = delete;
    Membership &operator=(const Membership &) = delete;

    // Registers member m with its identity (`who` must stay valid until remove(m)).
    // m must not be registered already (asserted).
    void add(MemberId m, const Identity &who);
    // m has gone: leaves every room; answers still on their way for m are dropped.
    void remove(MemberId m);

    // m asks to join room. A room m already wants (pending or joined) does not count
    // against the cap again, and is asked again (the answer may have changed).
    // m must be registered (asserted).
    JoinStart join(MemberId m, const std::string &room, std::optional<uint64_t> ack_id);
    // m leaves room (a pending join of it will not take effect). False if m did not want it.
    bool leave(MemberId m, std::string_view room);
    // m leaves every room and forgets pending joins; it stays registered.
    void leave_all(MemberId m);

    // After the rules changed: asks again for every joined membership. Returns how many.
    size_t recheck_all();
    // Asks again for every joined membership whose last yes is at least TTL old (TTL =
    // the authorizer's revalidate_after_ms(); nothing if 0). Returns how many.
    size_t recheck_expired();

    // Fan-out: cb(MemberId) for each member that is in room (joined, not pending).
    // The callback must not change Membership (Rooms asserts it).
    template <class F>
    size_t for_each_member(std::string_view room, F &&cb) const {
        return rooms_.for_each_member(room, std::forward<F>(cb));
    }

    bool is_member(MemberId m, std::string_view room) const { return rooms_.is_member(m, room); }
    // Rooms m wants, pending included (0 if m is not registered).
    size_t wanted_count(MemberId m) const;
    size_t registered() const { return members_.size(); }
    const Rooms &rooms() const { return rooms_; }
    uint64_t revoked_total() const { return revoked_total_; }

    // Each member's joined wants mirror Rooms exactly, and Rooms is consistent. For tests.
    bool check_invariants() const;

 private:
    struct Want {
        std::string room;
        bool joined = false;     // in rooms_ (the authorizer said yes)
        int64_t allowed_at = 0;  // when it last said yes (joined only)
    };
    struct Member {
        const Identity *who;
        uint64_t serial;  // answers carry it: a re-added MemberId is another member
        std::vector<Want> wants;
    };

    Member *find(MemberId m, uint64_t serial);
    static Want *find_want(Member &mb, std::string_view room);
    static void erase_want(Member &mb, std::string_view room);
    void on_join_answer(MemberId m, uint64_t serial, const std::string &room, std::optional<uint64_t> ack_id,
                        AuthzDecision d);
    void recheck(MemberId m, const std::string &room);
    void on_recheck_answer(MemberId m, uint64_t serial, const std::string &room, AuthzDecision d);
    // Asks again for the joined memberships that `due` selects. Returns how many.
    size_t recheck_where(const std::function<bool(const Want &)> &due);

    Authorizer &authz_;
    size_t max_rooms_;
    std::function<int64_t()> now_ms_;
    Events &events_;
    Rooms rooms_;
    std::unordered_map<MemberId, Member> members_;
    uint64_t next_serial_ = 0;
    uint64_t revoked_total_ = 0;
};

}  // namespace psdm

// Membership: see membership.h for the contract and the re-check policy.
#include "fanout/membership.h"

#include <algorithm>
#include <cassert>
#include <limits>
#include <utility>

namespace psdm {

Membership::Membership(Authorizer &authz, size_t max_rooms_per_member, std::function<int64_t()> now_ms, Events &events)
    : authz_(authz), max_rooms_(max_rooms_per_member), now_ms_(std::move(now_ms)), events_(events) {}

void Membership::add(MemberId m, const Identity &who) {
    bool fresh = members_.emplace(m, Member{&who, ++next_serial_, {}}).second;
    assert(fresh && "Membership::add: member already registered");
    (void)fresh;
}

void Membership::remove(MemberId m) {
    rooms_.leave_all(m);
    members_.erase(m);
}

Membership::Member *Membership::find(MemberId m, uint64_t serial) {
    auto it = members_.find(m);
    return it == members_.end() || it->second.serial != serial ? nullptr : &it->second;
}

Membership::Want *Membership::find_want(Member &mb, std::string_view room) {
    for (Want &w : mb.wants)
        if (w.room == room) return &w;
    return nullptr;
}

void Membership::erase_want(Member &mb, std::string_view room) {
    auto it = std::find_if(mb.wants.begin(), mb.wants.end(), [room](const Want &w) { return w.room == room; });
    if (it == mb.wants.end()) return;
    *it = std::move(mb.wants.back());  // order does not matter: swap with last, O(1)
    mb.wants.pop_back();
}

Membership::JoinStart Membership::join(MemberId m, const std::string &room, std::optional<uint64_t> ack_id) {
    auto it = members_.find(m);
    assert(it != members_.end() && "Membership::join: member not registered");
    Member &mb = it->second;
    const uint64_t serial = mb.serial;
    const bool added = find_want(mb, room) == nullptr;
    if (added) {
        if (mb.wants.size() >= max_rooms_) return JoinStart::too_many_rooms;
        mb.wants.push_back(Want{room});
    }
    try {
        authz_.check(*mb.who, room, [this, m, serial, room, ack_id](AuthzDecision d) {
            on_join_answer(m, serial, room, ack_id, std::move(d));
        });
    } catch (...) {
        // The question was not asked (or its answer failed half-way): a pending want that
        // no answer will ever settle must not stay, nor count against the cap.
        if (Member *again = find(m, serial); again && added) {
            Want *w = find_want(*again, room);
            if (w && !w->joined) erase_want(*again, room);
        }
        throw;
    }
    return JoinStart::asked;
}

void Membership::on_join_answer(MemberId m, uint64_t serial, const std::string &room, std::optional<uint64_t> ack_id,
                                AuthzDecision d) {
    Member *mb = find(m, serial);
    if (mb == nullptr) return;             // gone while we waited
    if (Want *w = find_want(*mb, room)) {  // absent: left meanwhile, nothing to change
        if (d.allowed) {
            if (!w->joined) {
                try {
                    rooms_.join(m, room, std::numeric_limits<size_t>::max());
                } catch (...) {
                    erase_want(*mb, room);  // not joined, and no answer will come again
                    throw;
                }
                w->joined = true;
            }
            w->allowed_at = now_ms_();
        } else {
            if (w->joined) rooms_.leave(m, room);  // a repeated join the rules now refuse
            erase_want(*mb, room);
        }
    }
    events_.answered(m, room, ack_id, d);
}

bool Membership::leave(MemberId m, std::string_view room) {
    auto it = members_.find(m);
    if (it == members_.end()) return false;
    Want *w = find_want(it->second, room);
    if (w == nullptr) return false;
    if (w->joined) rooms_.leave(m, room);
    erase_want(it->second, room);
    return true;
}

void Membership::leave_all(MemberId m) {
    auto it = members_.find(m);
    if (it == members_.end()) return;
    rooms_.leave_all(m);
    it->second.wants.clear();
    it->second.wants.shrink_to_fit();
}

size_t Membership::wanted_count(MemberId m) const {
    auto it = members_.find(m);
    return it == members_.end() ? 0 : it->second.wants.size();
}

size_t Membership::recheck_all() {
    return recheck_where([](const Want &) { return true; });
}

size_t Membership::recheck_expired() {
    const int64_t ttl = authz_.revalidate_after_ms();
    if (ttl <= 0) return 0;
    const int64_t now = now_ms_();
    return recheck_where([now, ttl](const Want &w) { return now - w.allowed_at >= ttl; });
}

// Collected first: answers may come at once (inside check) and change memberships.
// O(registered members + their wants).
size_t Membership::recheck_where(const std::function<bool(const Want &)> &due) {
    std::vector<std::pair<MemberId, std::string>> asks;
    for (const auto &[m, mb] : members_)
        for (const Want &w : mb.wants)
            if (w.joined && due(w)) asks.emplace_back(m, w.room);
    for (const auto &[m, room] : asks) recheck(m, room);
    return asks.size();
}

void Membership::recheck(MemberId m, const std::string &room) {
    auto it = members_.find(m);
    if (it == members_.end()) return;
    const uint64_t serial = it->second.serial;
    authz_.check(*it->second.who, room,
                 [this, m, serial, room](AuthzDecision d) { on_recheck_answer(m, serial, room, std::move(d)); });
}

void Membership::on_recheck_answer(MemberId m, uint64_t serial, const std::string &room, AuthzDecision d) {
    Member *mb = find(m, serial);
    if (mb == nullptr) return;
    Want *w = find_want(*mb, room);
    if (w == nullptr || !w->joined) return;  // left meanwhile
    const int64_t now = now_ms_();
    if (d.allowed) {
        w->allowed_at = now;
        return;
    }
    const int64_t ttl = authz_.revalidate_after_ms();
    if (d.failed && ttl > 0 && now - w->allowed_at < 2 * ttl) {
        events_.kept(m, room, d);
        return;
    }
    rooms_.leave(m, room);
    erase_want(*mb, room);
    revoked_total_++;
    events_.revoked(m, room, d);
}

bool Membership::check_invariants() const {
    if (!rooms_.check_invariants()) return false;
    for (const auto &[m, mb] : members_) {
        if (mb.wants.size() > max_rooms_) return false;
        for (const Want &w : mb.wants) {
            if (w.joined != rooms_.is_member(m, w.room)) return false;
        }
        if (rooms_.rooms_of_count(m) != static_cast<size_t>(std::count_if(mb.wants.begin(), mb.wants.end(),
                                                                          [](const Want &w) { return w.joined; })))
            return false;
    }
    return true;
}

}  // namespace psdm

// Rooms: see rooms.h for the layout and its reasons.
#include "fanout/rooms.h"

#include <cassert>
#include <limits>
#include <utility>

namespace psdm {

namespace {

// A room vector that has shrunk to a quarter of its capacity is reallocated to fit, so a
// room that once held 10 000 members and now holds 10 does not keep 160 KB. Amortised O(1):
// at least 3/4 of the capacity was removed since the last reallocation.
constexpr size_t kShrinkMinCapacity = 64;

template <class V>
void maybe_shrink(V &v) {
    if (v.capacity() >= kShrinkMinCapacity && v.size() * 4 <= v.capacity()) {
        V(v.begin(), v.end()).swap(v);
    }
}

// Room for one more element, growing geometrically (doubling): joins into one room cost O(1)
// amortised. (reserve(size() + 1) would reallocate, and copy the whole room, on every join.)
template <class V>
void reserve_one_more(V &v) {
    if (v.size() == v.capacity()) v.reserve(v.capacity() < 4 ? 4 : v.capacity() * 2);
}

}  // namespace

Rooms::~Rooms() { assert(iterating_ == 0); }

const Rooms::Room *Rooms::find_room(std::string_view room) const {
    auto it = rooms_.find(room);
    return it == rooms_.end() ? nullptr : it->second.get();
}

Rooms::JoinResult Rooms::join(MemberId m, std::string_view room, size_t max_rooms_per_member) {
    assert(iterating_ == 0 && "Rooms::join called from a for_each_member callback");

    auto rit = rooms_.find(room);
    auto mit = members_.find(m);
    if (mit != members_.end()) {
        if (rit != rooms_.end()) {
            for (const Entry &e : mit->second) {
                if (e.room == rit->second.get()) return JoinResult::already_member;
            }
        }
        if (mit->second.size() >= max_rooms_per_member) return JoinResult::too_many_rooms;
    } else if (max_rooms_per_member == 0) {
        return JoinResult::too_many_rooms;
    }

    // Allocate everything that can throw before linking, so a bad_alloc leaves both indexes
    // as they were.
    std::unique_ptr<Room> fresh;
    Room *r;
    if (rit == rooms_.end()) {
        fresh = std::make_unique<Room>(room);
        r = fresh.get();
    } else {
        r = rit->second.get();
    }
    reserve_one_more(r->members);
    if (mit == members_.end()) mit = members_.emplace(m, EntryList{}).first;
    EntryList &list = mit->second;
    try {
        reserve_one_more(list);
        if (fresh) rooms_.emplace(std::string_view(fresh->name), std::move(fresh));
    } catch (...) {
        if (list.empty()) members_.erase(mit);
        throw;
    }

    assert(r->members.size() < std::numeric_limits<uint32_t>::max());
    assert(list.size() < std::numeric_limits<uint32_t>::max());
    const auto slot = static_cast<uint32_t>(r->members.size());
    const auto entry = static_cast<uint32_t>(list.size());
    r->members.push_back(Slot{m, entry});
    list.push_back(Entry{r, slot});
    memberships_++;
    return JoinResult::joined;
}

void Rooms::remove_slot(Room *r, uint32_t si) {
    std::vector<Slot> &v = r->members;
    assert(si < v.size());
    const auto last = static_cast<uint32_t>(v.size() - 1);
    if (si != last) {
        v[si] = v[last];
        // The member whose slot moved must learn its new position.
        auto mit = members_.find(v[si].id);
        assert(mit != members_.end());
        Entry &moved = mit->second[v[si].entry];
        assert(moved.room == r && moved.slot == last);
        moved.slot = si;
    }
    v.pop_back();
    maybe_shrink(v);
}

void Rooms::erase_room(Room *r) {
    assert(r->members.empty());
    auto it = rooms_.find(std::string_view(r->name));
    assert(it != rooms_.end() && it->second.get() == r);
    rooms_.erase(it);  // destroys *r, and with it the bytes the key viewed
}

void Rooms::remove_membership(EntryList &list, size_t ei) {
    assert(ei < list.size());
    Room *r = list[ei].room;
    remove_slot(r, list[ei].slot);
    if (r->members.empty()) erase_room(r);

    const size_t last = list.size() - 1;
    if (ei != last) {
        list[ei] = list[last];
        // The moved entry's slot must learn the entry's new position.
        Slot &s = list[ei].room->members[list[ei].slot];
        assert(s.entry == last);
        s.entry = static_cast<uint32_t>(ei);
    }
    list.pop_back();
    memberships_--;
}

bool Rooms::leave(MemberId m, std::string_view room) {
    assert(iterating_ == 0 && "Rooms::leave called from a for_each_member callback");

    auto mit = members_.find(m);
    if (mit == members_.end()) return false;
    const Room *r = find_room(room);
    if (r == nullptr) return false;
    EntryList &list = mit->second;
    for (size_t i = 0; i < list.size(); ++i) {
        if (list[i].room == r) {
            remove_membership(list, i);
            if (list.empty()) members_.erase(mit);  // a member in no room costs nothing
            return true;
        }
    }
    return false;
}

size_t Rooms::leave_all(MemberId m) {
    assert(iterating_ == 0 && "Rooms::leave_all called from a for_each_member callback");

    auto mit = members_.find(m);
    if (mit == members_.end()) return 0;
    EntryList &list = mit->second;
    const size_t n = list.size();
    // From the back, so no entry of m's moves and only other members' entries are re-pointed.
    while (!list.empty()) remove_membership(list, list.size() - 1);
    members_.erase(mit);
    return n;
}

bool Rooms::is_member(MemberId m, std::string_view room) const {
    auto mit = members_.find(m);
    if (mit == members_.end()) return false;
    const Room *r = find_room(room);
    if (r == nullptr) return false;
    for (const Entry &e : mit->second) {
        if (e.room == r) return true;
    }
    return false;
}

size_t Rooms::member_count(std::string_view room) const {
    const Room *r = find_room(room);
    return r == nullptr ? 0 : r->members.size();
}

size_t Rooms::rooms_of_count(MemberId m) const {
    auto mit = members_.find(m);
    return mit == members_.end() ? 0 : mit->second.size();
}

std::vector<std::string> Rooms::rooms_of(MemberId m) const {
    std::vector<std::string> out;
    auto mit = members_.find(m);
    if (mit == members_.end()) return out;
    out.reserve(mit->second.size());
    for (const Entry &e : mit->second) out.push_back(e.room->name);
    return out;
}

bool Rooms::check_invariants() const {
    size_t slots = 0;
    for (const auto &kv : rooms_) {
        const Room *r = kv.second.get();
        if (r == nullptr || r->members.empty()) return false;
        if (kv.first.data() != r->name.data() || kv.first != r->name) return false;
        for (size_t si = 0; si < r->members.size(); ++si) {
            const Slot &s = r->members[si];
            auto mit = members_.find(s.id);
            if (mit == members_.end() || s.entry >= mit->second.size()) return false;
            const Entry &e = mit->second[s.entry];
            if (e.room != r || e.slot != si) return false;
        }
        slots += r->members.size();
    }
    size_t entries = 0;
    for (const auto &kv : members_) {
        const EntryList &list = kv.second;
        if (list.empty()) return false;
        for (size_t ei = 0; ei < list.size(); ++ei) {
            const Entry &e = list[ei];
            auto rit = rooms_.find(std::string_view(e.room->name));
            if (rit == rooms_.end() || rit->second.get() != e.room) return false;
            if (e.slot >= e.room->members.size()) return false;
            const Slot &s = e.room->members[e.slot];
            if (s.id != kv.first || s.entry != ei) return false;
            // A member is in a room at most once.
            for (size_t j = ei + 1; j < list.size(); ++j) {
                if (list[j].room == e.room) return false;
            }
        }
        entries += list.size();
    }
    return slots == entries && slots == memberships_;
}

}  // namespace psdm

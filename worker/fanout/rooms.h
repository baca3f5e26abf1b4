// Rooms: which connections (members) are in which named rooms.
//
// Two indexes kept in step, like redis pubsub.c (channel -> clients, client -> channels)
// and uWebSockets TopicTree.h (Topic -> subscribers, Subscriber -> topics):
//
//   rooms_    room name -> Room { name, members: contiguous vector of slots }
//   members_  MemberId  -> the member's list of entries { Room *, position in Room::members }
//
// Each slot in a room records where the member's matching entry is, and each entry records
// where its slot is, so leaving is a swap-with-last on both sides: O(1) plus one hash lookup
// to re-point the member whose slot moved (O(rooms_of(m)) to find m's entry: m's list is
// capped by max_rooms_per_member, so a cap in the hundreds keeps join/leave cheap, while a
// cap of 100 000 would let one client make each of its joins scan 100 000 entries).
//
// Why a vector per room and not a set or a per-room index map: publishing walks every member
// of a room (10 000 members, 200 000 deliveries/s), and a walk over 16-byte slots in one
// contiguous block is as cache-friendly as it gets; a node-based set costs a pointer chase
// and a cache miss per member. A per-room hash map MemberId -> position would also give O(1)
// removal, but at ~40 bytes more per membership; the cross-indexed entries cost 16 bytes.
//
// Why unordered_map<std::string_view, std::unique_ptr<Room>>: C++17 unordered_map has no
// heterogeneous lookup, so a std::string key would force a std::string temporary (an
// allocation for names longer than 15 bytes) on every publish. Here the key is a view of the
// Room's own name: the Room lives on the heap behind the unique_ptr and its name is never
// modified, so the view stays valid as long as the node exists, and rehashing moves only the
// unique_ptr. Lookup by string_view is O(1) average and allocates nothing. (std::map with
// std::less<> would also avoid the allocation, but costs log2(rooms) string comparisons.)
//
// Memory: a member in no room has no entry at all (its entry is erased when its last room
// is left); an empty room is erased at once. A membership costs 32 bytes (slot + entry) plus
// vector slack; a room costs its map node, the Room object, its name and its vector.
//
// Thread: not thread-safe; owned by the one event-loop thread.
// Rule: a for_each_member callback must not join, leave or leave_all (it would invalidate
// the vector being walked). Asserted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace psdm {

using MemberId = uint64_t;

class Rooms {
 public:
    enum class JoinResult { joined, already_member, too_many_rooms };

    Rooms() = default;
    Rooms(const Rooms &) = delete;
    Rooms &operator=(const Rooms &) = delete;
    ~Rooms();

    // Adds m to room, creating the room if needed.
    // Returns joined; already_member if m is in room (nothing changes); too_many_rooms if m is
    // already in max_rooms_per_member rooms (nothing changes).
    // Complexity: O(rooms_of(m)) + O(1) average; allocates when the room or m's list is new or
    // grows. Must not be called from inside for_each_member.
    JoinResult join(MemberId m, std::string_view room, size_t max_rooms_per_member);

    // Removes m from room; erases the room if it becomes empty.
    // Returns true if m was a member, false if not (nothing changes).
    // Complexity: O(rooms_of(m)) + O(1) average. Must not be called from inside for_each_member.
    bool leave(MemberId m, std::string_view room);

    // Removes m from every room it is in (call when a connection closes); erases the rooms
    // that become empty and m's entry. Returns the number of rooms left (0 if m was in none).
    // Complexity: O(rooms_of(m)). Must not be called from inside for_each_member.
    size_t leave_all(MemberId m);

    // Calls cb(MemberId) once for each member of room, in unspecified order; returns the number
    // of members (0 if the room does not exist). No allocation.
    // The callback must not join, leave or leave_all on this Rooms (asserted); it may call the
    // const members, including a nested for_each_member.
    template <class F>
    size_t for_each_member(std::string_view room, F &&cb) const;

    // O(1) average + O(rooms_of(m)); no allocation.
    bool is_member(MemberId m, std::string_view room) const;

    size_t room_count() const { return rooms_.size(); }
    size_t membership_count() const { return memberships_; }      // (member, room) pairs, O(1)
    size_t member_count(std::string_view room) const;             // 0 if the room does not exist
    size_t rooms_of_count(MemberId m) const;                      // 0 if m is in no room
    std::vector<std::string> rooms_of(MemberId m) const;          // unspecified order; allocates
    size_t member_index_size() const { return members_.size(); }  // members in at least one room

    // Walks both indexes and checks that each mirrors the other, that no room is empty and
    // that no member entry is empty. O(total memberships). For tests and debug builds.
    bool check_invariants() const;

 private:
    struct Room;
    // A member's view of one of its rooms.
    struct Entry {
        Room *room;
        uint32_t slot;  // index of the member's slot in room->members
    };
    // A room's view of one of its members.
    struct Slot {
        MemberId id;
        uint32_t entry;  // index of the room's entry in members_[id]
    };
    struct Room {
        explicit Room(std::string_view n) : name(n) {}
        const std::string name;  // the rooms_ key views these bytes: never modify
        std::vector<Slot> members;
    };
    using EntryList = std::vector<Entry>;

    // Sets iterating_ for the duration of a walk, even if the callback throws.
    class IterationGuard {
     public:
        explicit IterationGuard(const Rooms &r) : r_(r) { ++r_.iterating_; }
        ~IterationGuard() { --r_.iterating_; }
        IterationGuard(const IterationGuard &) = delete;
        IterationGuard &operator=(const IterationGuard &) = delete;

     private:
        const Rooms &r_;
    };

    const Room *find_room(std::string_view room) const;
    // Removes entry index `ei` of list `list` (owned by member m): takes m's slot out of the
    // room, erases the room if it became empty, and takes the entry out of the list.
    void remove_membership(EntryList &list, size_t ei);
    // Takes slot `si` out of room r (swap with last), re-pointing the moved member's entry.
    void remove_slot(Room *r, uint32_t si);
    void erase_room(Room *r);

    size_t memberships_ = 0;
    std::unordered_map<std::string_view, std::unique_ptr<Room>> rooms_;
    std::unordered_map<MemberId, EntryList> members_;
    mutable int iterating_ = 0;  // depth of for_each_member walks in progress
};

template <class F>
size_t Rooms::for_each_member(std::string_view room, F &&cb) const {
    const Room *r = find_room(room);
    if (r == nullptr) return 0;
    IterationGuard guard(*this);
    const Slot *s = r->members.data();
    const size_t n = r->members.size();
    for (size_t i = 0; i < n; ++i) cb(s[i].id);  // cb mutating *this asserts in the mutator
    return n;
}

}  // namespace psdm

// ReplayWindow: the records the worker published lately, per Kafka partition, kept so that a
// client that comes back (a network blip, a restart of its worker, another host) can be sent
// what it missed from memory (issue 12: resume). Pure: no Kafka, no sockets, no clock of its
// own.
//
// What it holds: for each record routed to a room, its offset, its room (and whether it also
// went to the_global_room), the time it was added and its encoded Frame, shared with the
// clients' outboxes (the bytes are not copied). Records are bounded by age (max_age_ms) and by
// bytes (max_bytes, frames and rooms counted); the oldest go first, whatever their partition.
//
// Completeness: a partition's window is complete from `start` on: it holds every record the
// worker published from that partition with an offset >= start. start is the first offset
// added, and moves past each record evicted. A resume from an offset >= start can be served
// from here; one from below start cannot (the caller reads Kafka itself, or tells the client
// to resync). Offsets need not be consecutive (Kafka leaves gaps: compaction, transaction
// markers), only increasing per partition (add() refuses a step back).
//
// Thread: the event loop's; not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "fanout/outbox.h"

namespace psdm {

class ReplayWindow {
 public:
    ReplayWindow(int64_t max_age_ms, size_t max_bytes) : max_age_ms_(max_age_ms), max_bytes_(max_bytes) {}

    // Adds a published record of partition `partition` (the caller's dense index of a Kafka
    // partition). Returns false, holding nothing, for an offset not above the partition's last.
    // Evicts what max_bytes then requires (and what max_age_ms does at now_ms).
    bool add(size_t partition, int64_t offset, std::string_view room, bool global, FrameRef frame, int64_t now_ms);

    // Drops what is older than max_age_ms at now_ms (add does it too; call it when idle).
    void expire(int64_t now_ms);

    enum class Coverage {
        complete,  // every record from `from` on was published since the window starts
        partial,   // the window starts after `from`: records before its start are not here
        none,      // nothing known of this partition
    };
    // Appends to *out the frames of `room` in `partition` with offset >= from, in offset order
    // (a record of a global topic counts for the_global_room, given as `global_room`), and
    // tells whether that is all of them. O(log n + records of the partition from `from`).
    Coverage collect(size_t partition, int64_t from, std::string_view room, std::string_view global_room,
                     std::vector<FrameRef> *out) const;

    // The next offset after the last record added to `partition` (-1: none).
    int64_t next_offset(size_t partition) const;

    size_t bytes() const { return bytes_; }
    size_t records() const { return arrival_.size(); }

 private:
    struct Entry {
        int64_t offset;
        std::string room;
        bool global;
        int64_t added_ms;
        FrameRef frame;
        size_t bytes;  // what it counts against max_bytes
    };
    struct Partition {
        std::deque<Entry> entries;  // increasing offsets
        int64_t start = -1;         // complete from here on (-1: nothing added yet)
        int64_t next = -1;          // one past the last offset added
    };
    void evict_oldest();

    int64_t max_age_ms_;
    size_t max_bytes_;
    size_t bytes_ = 0;
    std::vector<Partition> partitions_;  // by the caller's index
    std::deque<size_t> arrival_;         // the partition of each entry held, oldest first
};

}  // namespace psdm

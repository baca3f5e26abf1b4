// ReplayReads: the bookkeeping of the Kafka reads that resumes need (issue 12), apart from
// librdkafka so that it can be tested alone. Pure: no Kafka, no I/O, no clock.
//
// A read asks for the records of one partition from offset `from` on, up to `until` (exclusive;
// kOpenEnd: up to the partition's end as the reader first reaches it). Many reads share one
// reader (kafka/replay_reader.h): for each partition it fetches one PASS, from one start offset
// on, and every read whose range lies ahead of where the pass stands takes its records from it.
// A read that starts behind the pass (another client asked for older records meanwhile) needs
// a new pass from its offset: the assignment is then "dirty", and the next pass starts at the
// lowest offset any read of the partition still needs. Records are never fetched twice for one
// read, and a read ends once it has seen every offset of its range:
//   - a record at or past `until` (offsets need not be consecutive: compaction, transaction
//     markers), or
//   - the partition's end (Kafka's "partition EOF") at or past `until`, or for an open end
//     anywhere, or
//   - an error for the partition (offset out of range: Kafka no longer holds `from`): it fails.
// Reads end where they stand: `end` is the next offset after everything they were given.
//
// Thread: one (the event loop's); not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <vector>

#include "kafka/position.h"

namespace psdm {

class ReplayReads {
 public:
    static constexpr int64_t kOpenEnd = std::numeric_limits<int64_t>::max();

    // A new read of `p` from `from` to `until`; returns its id (never 0). Marks the assignment
    // dirty when a new pass is needed for it.
    uint64_t add(const PartitionKey &p, int64_t from, int64_t until);
    // Forgets a read (its client went away). Unknown ids are ignored.
    void cancel(uint64_t id);

    struct Ended {
        uint64_t id;
        bool ok;      // false: the partition failed (see on_error)
        int64_t end;  // one past the last offset covered
    };
    // The reader fetched a record of `p` at `offset`: appends to *wanted the reads it belongs to
    // (records of a pass before it started, or behind where it stands, are nobody's), and to
    // *ended the reads it completes (those are forgotten).
    void on_record(const PartitionKey &p, int64_t offset, std::vector<uint64_t> *wanted, std::vector<Ended> *ended);
    // The reader reached the end of `p`'s log at `end_offset` (the next offset to be written).
    void on_end(const PartitionKey &p, int64_t end_offset, std::vector<Ended> *ended);
    // The reader cannot read `p` (offset out of range, unknown partition): every read of it fails.
    void on_error(const PartitionKey &p, std::vector<Ended> *ended);

    // The assignment the reader should fetch now: each partition with reads, from the lowest
    // offset they need. Returns false (and leaves *out) when nothing changed since the last call;
    // else starts a new pass for every partition that needed one.
    bool take_assignment(Positions *out);

    size_t active() const { return reads_.size(); }
    size_t partitions() const { return parts_.size(); }

 private:
    struct Read {
        uint64_t id;
        PartitionKey part;
        int64_t cursor;  // the next offset it needs
        int64_t until;
        bool in_pass;  // the current pass started at or before cursor
    };
    struct Part {
        int64_t pass_start = -1;    // -1: no pass yet
        int64_t pass_pos = -1;      // next offset the pass will deliver
        std::vector<Read *> reads;  // into reads_ (a map: its nodes do not move); no lookup per record
    };
    void finish(uint64_t id, bool ok, std::vector<Ended> *ended);

    uint64_t next_id_ = 0;
    bool dirty_ = false;
    std::map<uint64_t, Read> reads_;
    std::map<PartitionKey, Part> parts_;
};

}  // namespace psdm

// TimerWheel: many coarse deadlines (one per connection), O(1) to arm, cheap to expire.
//
//   TimerWheel wheel(100, 1024, now_ms);     // 100 ms ticks, 1024 slots: a 102.4 s horizon
//   wheel.schedule(client_id, deadline_ms);  // O(1)
//   wheel.advance(now_ms, [&](uint64_t id, int64_t deadline) { ... });  // every tick or so
//
// A hashed timing wheel: slot = (deadline / tick_ms) % slots. advance() visits every
// tick from the last one it reached up to now and hands each entry of that tick's slot
// whose deadline has come to `due`; entries of the same slot that belong to a later
// turn of the wheel (deadline beyond the horizon, slots x tick_ms) stay where they are
// and are looked at again one turn later ("lazy re-insertion": nothing is moved).
//
// Contracts:
//  - No cancel: an entry stays until it is due. The caller keeps, per id, the deadline
//    it armed last and ignores entries that do not match it (re-armed, or the id is
//    gone). Re-arming earlier or later is just another schedule(); the stale entry is
//    reported at its own deadline and ignored then. So each id has at most one live
//    entry plus stale ones, which expire within their own deadline.
//  - Precision: an entry is reported by the first advance() whose now_ms >= its
//    deadline, never before, and a deadline in the past is reported by the next
//    advance(). How late depends on how often advance() is called (every tick_ms: at
//    most about one tick late).
//  - Order: entries are reported tick by tick in deadline order across ticks; within
//    one tick (same slot) in no particular order.
//  - `due` may call schedule() (e.g. to re-arm the id it was given); such an entry is
//    reported by this advance() if its slot is still to be visited and it is due, else by
//    a later one. `due` must not call advance().
//  - Not thread-safe: one thread (the event loop).
//
// Complexity: schedule O(1) amortised (a vector push). advance O(min(ticks elapsed, slots)
// + entries looked at): an entry is looked at once per turn of the wheel it waits
// (deadlines within the horizon: once, when due) plus, if it lies in the current tick,
// once per advance() within that tick. So with advance() every tick: O(1 + due) per
// call, amortised. Memory: 16 bytes per entry (stale ones included) plus the slots.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace psdm {

class TimerWheel {
 public:
    // tick_ms >= 1, slots >= 1. `now_ms` is where the wheel starts (any monotonic
    // millisecond clock, the one advance() is given).
    TimerWheel(int64_t tick_ms, size_t slots, int64_t now_ms = 0);

    // Arms `id` for `deadline_ms`. Several entries for one id may coexist (see above).
    void schedule(uint64_t id, int64_t deadline_ms);

    // Reports, through due(uint64_t id, int64_t deadline_ms), every entry whose
    // deadline is <= now_ms, tick by tick, and removes it.
    template <class F>
    void advance(int64_t now_ms, F &&due);

    // Entries held, stale ones included.
    size_t size() const { return size_; }
    int64_t tick_ms() const { return tick_ms_; }
    // Slots x tick_ms: deadlines further away wait for later turns of the wheel.
    int64_t horizon_ms() const { return tick_ms_ * static_cast<int64_t>(slots_.size()); }

 private:
    struct Entry {
        uint64_t id;
        int64_t deadline_ms;
    };

    int64_t tick_of(int64_t ms) const;  // floor(ms / tick_ms), also for negative ms
    size_t slot_of(int64_t tick) const;

    int64_t tick_ms_;
    std::vector<std::vector<Entry>> slots_;
    // The tick of the last advance() (or of the start): every tick before it has been
    // visited; it has been only partly, so the next advance() visits it again.
    int64_t cur_tick_;
    size_t size_ = 0;
    std::vector<Entry> batch_;  // reused: the due entries of the slot being visited
};

template <class F>
void TimerWheel::advance(int64_t now_ms, F &&due) {
    int64_t last = tick_of(now_ms);
    if (last < cur_tick_) last = cur_tick_;  // the clock is monotonic; be safe anyway
    int64_t first = cur_tick_;               // revisited: it was only partly over last time
    const int64_t nslots = static_cast<int64_t>(slots_.size());
    if (last - first >= nslots) first = last - nslots + 1;  // one pass over every slot suffices
    // From here on, schedule() puts deadlines <= last into last's slot, which this loop
    // (or the next advance) visits.
    cur_tick_ = last;
    if (size_ == 0) return;
    for (int64_t t = first; t <= last && size_ > 0; t++) {
        std::vector<Entry> &slot = slots_[slot_of(t)];
        if (slot.empty()) continue;
        // Take the due entries out (later turns of the wheel stay in place), then report
        // them: due() may schedule into any slot, this one included.
        std::vector<Entry> batch;
        batch.swap(batch_);
        size_t keep = 0;
        for (const Entry &e : slot) {
            if (e.deadline_ms <= now_ms) batch.push_back(e);
            else slot[keep++] = e;
        }
        slot.resize(keep);
        if (keep == 0 && slot.capacity() > 64) std::vector<Entry>().swap(slot);  // give back a burst's memory
        size_ -= batch.size();
        for (const Entry &e : batch) due(e.id, e.deadline_ms);
        batch.clear();
        batch_.swap(batch);
    }
}

}  // namespace psdm

#include "base/timer_wheel.h"

namespace psdm {

TimerWheel::TimerWheel(int64_t tick_ms, size_t slots, int64_t now_ms)
    : tick_ms_(tick_ms < 1 ? 1 : tick_ms), slots_(slots < 1 ? 1 : slots), cur_tick_(0) {
    cur_tick_ = tick_of(now_ms);
}

int64_t TimerWheel::tick_of(int64_t ms) const {
    int64_t t = ms / tick_ms_;
    if (ms % tick_ms_ < 0) t--;  // floor for negative times too
    return t;
}

size_t TimerWheel::slot_of(int64_t tick) const {
    int64_t n = static_cast<int64_t>(slots_.size());
    int64_t s = tick % n;
    if (s < 0) s += n;
    return static_cast<size_t>(s);
}

void TimerWheel::schedule(uint64_t id, int64_t deadline_ms) {
    int64_t tick = tick_of(deadline_ms);
    if (tick < cur_tick_) tick = cur_tick_;  // overdue: the next visit of the current tick reports it
    slots_[slot_of(tick)].push_back(Entry{id, deadline_ms});
    size_++;
}

}  // namespace psdm

// ReplayWindow: see replay_window.h.
#include "fanout/replay_window.h"

#include <algorithm>

namespace psdm {

namespace {
// What an entry costs besides its frame and room: the entry, its deque slots, the control
// block of the shared frame counted once per reference. An estimate, for the bound.
constexpr size_t kEntryOverhead = 96;
}  // namespace

bool ReplayWindow::add(size_t partition, int64_t offset, std::string_view room, bool global, FrameRef frame,
                       int64_t now_ms) {
    if (partition >= partitions_.size()) partitions_.resize(partition + 1);
    Partition &p = partitions_[partition];
    if (offset < 0 || (p.next >= 0 && offset < p.next)) return false;
    const size_t bytes = kEntryOverhead + room.size() + (frame ? frame->size() : 0);
    if (p.start < 0) p.start = offset;
    p.next = offset + 1;
    if (bytes > max_bytes_) {  // never fits: not held, so the window is complete only after it
        p.start = p.next;
        expire(now_ms);
        return true;
    }
    p.entries.push_back(Entry{offset, std::string(room), global, now_ms, std::move(frame), bytes});
    arrival_.push_back(partition);
    bytes_ += bytes;
    while (bytes_ > max_bytes_) evict_oldest();
    expire(now_ms);
    return true;
}

void ReplayWindow::evict_oldest() {
    Partition &p = partitions_[arrival_.front()];
    arrival_.pop_front();
    bytes_ -= p.entries.front().bytes;
    p.start = std::max(p.start, p.entries.front().offset + 1);  // never back: a record too big moved it on
    p.entries.pop_front();
}

void ReplayWindow::expire(int64_t now_ms) {
    while (!arrival_.empty()) {
        const Partition &p = partitions_[arrival_.front()];
        if (now_ms - p.entries.front().added_ms <= max_age_ms_) return;
        evict_oldest();
    }
}

ReplayWindow::Coverage ReplayWindow::collect(size_t partition, int64_t from, std::string_view room,
                                             std::string_view global_room, std::vector<FrameRef> *out) const {
    if (partition >= partitions_.size() || partitions_[partition].start < 0) return Coverage::none;
    const Partition &p = partitions_[partition];
    auto it = std::lower_bound(p.entries.begin(), p.entries.end(), from,
                               [](const Entry &e, int64_t off) { return e.offset < off; });
    const bool to_global = room == global_room;
    for (; it != p.entries.end(); ++it)
        if (it->room == room || (to_global && it->global)) out->push_back(it->frame);
    return from >= p.start ? Coverage::complete : Coverage::partial;
}

int64_t ReplayWindow::next_offset(size_t partition) const {
    return partition < partitions_.size() ? partitions_[partition].next : -1;
}

}  // namespace psdm

#include "kafka/replay_reads.h"

#include <algorithm>

namespace psdm {

uint64_t ReplayReads::add(const PartitionKey &p, int64_t from, int64_t until) {
    const uint64_t id = ++next_id_;
    Part &part = parts_[p];
    // The current pass serves it if it has not gone past `from` yet.
    const bool in_pass = part.pass_start >= 0 && from >= part.pass_pos;
    if (!in_pass) dirty_ = true;
    part.reads.push_back(&reads_.emplace(id, Read{id, p, from, until, in_pass}).first->second);
    return id;
}

void ReplayReads::cancel(uint64_t id) { finish(id, false, nullptr); }

void ReplayReads::finish(uint64_t id, bool ok, std::vector<Ended> *ended) {
    auto it = reads_.find(id);
    if (it == reads_.end()) return;
    const Read &r = it->second;
    if (ended) ended->push_back({id, ok, r.until == kOpenEnd ? r.cursor : std::max(r.cursor, r.until)});
    auto part = parts_.find(r.part);
    if (part != parts_.end()) {
        std::vector<Read *> &reads = part->second.reads;
        reads.erase(std::remove(reads.begin(), reads.end(), &it->second), reads.end());
        if (reads.empty()) {  // nobody reads it any more: stop fetching it
            parts_.erase(part);
            dirty_ = true;
        }
    }
    reads_.erase(it);
}

void ReplayReads::on_record(const PartitionKey &p, int64_t offset, std::vector<uint64_t> *wanted,
                            std::vector<Ended> *ended) {
    auto part = parts_.find(p);
    if (part == parts_.end() || part->second.pass_start < 0 || offset < part->second.pass_pos) return;
    part->second.pass_pos = offset + 1;
    std::vector<uint64_t> done;
    for (Read *r : part->second.reads) {
        if (!r->in_pass || offset < r->cursor) continue;
        if (offset < r->until) {
            wanted->push_back(r->id);
            r->cursor = offset + 1;
        }
        if (offset >= r->until || r->cursor >= r->until) done.push_back(r->id);
    }
    for (uint64_t id : done) finish(id, true, ended);  // may erase `part`
}

void ReplayReads::on_end(const PartitionKey &p, int64_t end_offset, std::vector<Ended> *ended) {
    auto part = parts_.find(p);
    if (part == parts_.end() || part->second.pass_start < 0 || end_offset < part->second.pass_pos) return;
    part->second.pass_pos = end_offset;
    std::vector<uint64_t> done;
    for (Read *r : part->second.reads) {
        if (!r->in_pass) continue;
        r->cursor = std::max(r->cursor, end_offset);  // nothing more below the end
        if (r->until == kOpenEnd || r->cursor >= r->until) done.push_back(r->id);
    }
    for (uint64_t id : done) finish(id, true, ended);
}

void ReplayReads::on_error(const PartitionKey &p, std::vector<Ended> *ended) {
    auto part = parts_.find(p);
    if (part == parts_.end()) return;
    std::vector<uint64_t> ids;
    for (const Read *r : part->second.reads) ids.push_back(r->id);
    for (uint64_t id : ids) finish(id, false, ended);
}

bool ReplayReads::take_assignment(Positions *out) {
    if (!dirty_) return false;
    dirty_ = false;
    out->clear();
    for (auto &kv : parts_) {
        int64_t start = kOpenEnd;
        for (const Read *r : kv.second.reads) start = std::min(start, r->cursor);
        kv.second.pass_start = kv.second.pass_pos = start;
        for (Read *r : kv.second.reads) r->in_pass = true;
        out->emplace(kv.first, start);
    }
    return true;
}

}  // namespace psdm

#include "kafka/partition_table.h"

namespace psdm {

size_t PartitionTable::index(std::string_view topic, int32_t partition) {
    auto it = by_topic_.find(topic);
    if (it == by_topic_.end()) it = by_topic_.emplace(std::string(topic), std::vector<size_t>{}).first;
    std::vector<size_t> &by_number = it->second;
    const auto n = static_cast<size_t>(partition);
    if (n >= by_number.size()) by_number.resize(n + 1, kNone);
    if (by_number[n] == kNone) {
        by_number[n] = keys_.size();
        keys_.push_back(PartitionKey{std::string(topic), partition});
        next_.push_back(-1);
    }
    return by_number[n];
}

size_t PartitionTable::find(std::string_view topic, int32_t partition) const {
    auto it = by_topic_.find(topic);
    if (it == by_topic_.end() || partition < 0) return kNone;
    const auto n = static_cast<size_t>(partition);
    return n < it->second.size() ? it->second[n] : kNone;
}

}  // namespace psdm

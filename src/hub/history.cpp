#include "ringcast/hub/history.h"

#include <algorithm>

namespace ringcast::hub {

namespace {
constexpr size_t kFirstSlots = 4;
}

void HistoryRing::grow() {
  // Full and below the bound: the records move, oldest first, into a ring twice the size.
  size_t n = std::min(capacity_, std::max(kFirstSlots, slots_.size() * 2));
  std::vector<HistoryRecord> bigger;
  bigger.reserve(n);
  for (size_t age = count_; age-- > 0;)
    bigger.push_back(std::move(slots_[(next_ + slots_.size() - 1 - age) % slots_.size()]));
  bigger.resize(n);
  slots_ = std::move(bigger);
  next_ = count_;
}

void HistoryRing::push(HistoryRecord rec) {
  if (capacity_ == 0) return;
  if (count_ == slots_.size() && slots_.size() < capacity_) grow();
  slots_[next_] = std::move(rec);
  next_ = (next_ + 1) % slots_.size();
  if (count_ < slots_.size()) ++count_;
}

void HistoryRing::clear() {
  std::vector<HistoryRecord>().swap(slots_);
  next_ = 0;
  count_ = 0;
}

}  // namespace ringcast::hub

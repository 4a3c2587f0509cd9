#include "ringcast/hub/history.h"

namespace ringcast::hub {

void HistoryRing::push(HistoryRecord rec) {
  if (slots_.empty()) return;
  slots_[next_] = std::move(rec);
  next_ = (next_ + 1) % slots_.size();
  if (count_ < slots_.size()) ++count_;
}

}  // namespace ringcast::hub

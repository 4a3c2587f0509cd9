#include "ringcast/engine/timer_wheel.h"

#include <algorithm>

namespace ringcast::engine {

TimerWheel::TimerWheel(int64_t now_ms, int64_t tick_ms, uint32_t slots)
    : tick_ms_(tick_ms), current_tick_(now_ms / tick_ms) {
  uint32_t size = 1;
  while (size < slots) size <<= 1;
  mask_ = size - 1;
  heads_.resize(size);
  for (auto& h : heads_) h.prev = h.next = &h;
}

void TimerWheel::schedule(TimerNode* node, int64_t deadline_ms) {
  if (node->linked()) unlink(node);
  // A deadline in the past or in the current tick fires on the next advance.
  int64_t min_deadline = current_tick_ * tick_ms_;  // overdue: current slot, next advance
  node->deadline_ms = deadline_ms;
  int64_t effective = std::max(deadline_ms, min_deadline);
  TimerNode* head = &heads_[slot_of(effective)];
  if (next_valid_ && effective / tick_ms_ < next_tick_) next_tick_ = effective / tick_ms_;
  node->next = head;
  node->prev = head->prev;
  head->prev->next = node;
  head->prev = node;
  ++count_;
}

void TimerWheel::unlink(TimerNode* node) {
  node->prev->next = node->next;
  node->next->prev = node->prev;
  node->prev = node->next = nullptr;
  --count_;
}

int64_t TimerWheel::next_timeout_ms(int64_t now_ms) const {
  if (count_ == 0) return -1;
  if (!next_valid_ || next_tick_ < current_tick_) {
    // Wake at the end of the first occupied tick (the current one included): every deadline in
    // it has passed by then, and no wake-up comes more than one tick late.
    next_tick_ = current_tick_ + mask_;
    for (uint32_t i = 0; i <= mask_; ++i) {
      int64_t t = current_tick_ + i;
      const TimerNode* head = &heads_[static_cast<uint32_t>(t & mask_)];
      if (head->next != head) {
        next_tick_ = t;
        break;
      }
    }
    next_valid_ = true;
  }
  return std::max<int64_t>(0, (next_tick_ + 1) * tick_ms_ - now_ms);
}

}  // namespace ringcast::engine

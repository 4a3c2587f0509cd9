// Hashed timer wheel: O(1) schedule and cancel, one pass over due slots per loop iteration.
// Each owner embeds one TimerNode (a connection needs a single "next deadline"), so arming or
// moving a timer never allocates and never makes a syscall.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ringcast::engine {

struct TimerNode {
  TimerNode* prev = nullptr;
  TimerNode* next = nullptr;
  int64_t deadline_ms = 0;  // absolute, in the loop's monotonic milliseconds
  void* owner = nullptr;    // what the timer belongs to, for the fire callback
  bool linked() const { return prev != nullptr; }
};

class TimerWheel {
 public:
  // tick_ms: resolution; slots: wheel size. Deadlines beyond one turn wait in their slot for
  // later turns (checked against deadline_ms when the slot comes round).
  explicit TimerWheel(int64_t now_ms, int64_t tick_ms = 10, uint32_t slots = 1024);
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  void schedule(TimerNode* node, int64_t deadline_ms);
  void cancel(TimerNode* node) {
    if (node->linked()) unlink(node);
  }

  // Calls fire(node) for every node whose deadline is <= now_ms; the node is unlinked first, so
  // fire may reschedule it.
  template <typename Fn>
  void advance(int64_t now_ms, Fn&& fire);

  // Milliseconds until the next slot that holds a node (0 if overdue), or -1 if the wheel is empty.
  int64_t next_timeout_ms(int64_t now_ms) const;
  size_t size() const { return count_; }

 private:
  uint32_t slot_of(int64_t deadline_ms) const {
    return static_cast<uint32_t>((deadline_ms / tick_ms_) & mask_);
  }
  void unlink(TimerNode* node);

  int64_t tick_ms_;
  uint32_t mask_;
  int64_t current_tick_;  // last tick processed
  size_t count_ = 0;
  // No later than the earliest deadline's tick, so next_timeout_ms() scans the slots only after
  // that tick has passed, not on every loop pass.
  mutable int64_t next_tick_ = 0;
  mutable bool next_valid_ = false;
  std::vector<TimerNode> heads_;  // sentinel per slot
};

template <typename Fn>
void TimerWheel::advance(int64_t now_ms, Fn&& fire) {
  int64_t target = now_ms / tick_ms_;
  if (count_ == 0) {
    current_tick_ = target;
    return;
  }
  // Visit at most one full turn of slots; later turns are covered by the deadline check. The
  // current tick's slot is visited again: it may hold deadlines later in that tick.
  int64_t last = std::min<int64_t>(target, current_tick_ + static_cast<int64_t>(mask_));
  for (int64_t t = current_tick_; t <= last && count_ > 0; ++t) {
    TimerNode* head = &heads_[static_cast<uint32_t>(t & mask_)];
    TimerNode* n = head->next;
    while (n != head) {
      TimerNode* next = n->next;
      if (n->deadline_ms <= now_ms) {
        unlink(n);
        fire(n);
      }
      n = next;
    }
  }
  current_tick_ = target;
}

}  // namespace ringcast::engine

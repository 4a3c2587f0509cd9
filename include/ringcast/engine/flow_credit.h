// Flow control for a sender whose messages go straight to other connections (raw rooms, one-to-one
// relays): the bytes of its frames that some recipient has not yet handed to the kernel. Frames
// carry a pointer to their sender's credit; the thread that drops a frame's last reference (any
// core) gives the bytes back. The sender's loop stops reading it while the count is over the
// high-water mark and resumes once it falls to the low-water mark, so a burst is held back by TCP
// instead of piling up in recipients' queues, and memory stays bounded per sender however many
// recipients share the frames.
#pragma once

#include <atomic>
#include <cstdint>

namespace ringcast::engine {

// What a credit wakes when it drains: the owning loop (thread-safe).
class Waker {
 public:
  virtual ~Waker() = default;
  virtual void wake() = 0;
};

class FlowCredit {
 public:
  explicit FlowCredit(Waker* waker) : waker_(waker) {}

  void add_ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // Owner's thread: a frame of `n` bytes now depends on this credit.
  void charge(int64_t n) { outstanding_.fetch_add(n, std::memory_order_relaxed); }
  // Any thread: the frame is gone from every queue.
  void refund(int64_t n) {
    // seq_cst pairs with wait_for(): either it sees this refund or this sees its wait.
    int64_t left = outstanding_.fetch_sub(n, std::memory_order_seq_cst) - n;
    if (left <= low_water_.load(std::memory_order_relaxed) &&
        waiting_.load(std::memory_order_seq_cst) && waiting_.exchange(false)) {
      if (Waker* w = waker_.load(std::memory_order_acquire)) w->wake();
    }
  }
  int64_t outstanding() const { return outstanding_.load(std::memory_order_acquire); }

  // Owner's thread: the sender stops reading until outstanding() <= low_water. Returns false if it
  // has already drained that far (no need to wait). A refund that sees the wait clears it and
  // wakes the owner, which then finds waiting() false.
  bool wait_for(int64_t low_water) {
    low_water_.store(low_water, std::memory_order_relaxed);
    waiting_.store(true, std::memory_order_seq_cst);
    if (outstanding_.load(std::memory_order_seq_cst) <= low_water) {
      waiting_.store(false, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
  bool waiting() const { return waiting_.load(std::memory_order_acquire); }
  // The owner is gone: later refunds wake nobody.
  void detach() {
    waker_.store(nullptr, std::memory_order_release);
    waiting_.store(false, std::memory_order_relaxed);
  }

 private:
  ~FlowCredit() = default;
  std::atomic<uint32_t> refs_{1};
  std::atomic<bool> waiting_{false};
  std::atomic<int64_t> outstanding_{0};
  std::atomic<int64_t> low_water_{0};
  std::atomic<Waker*> waker_;
};

}  // namespace ringcast::engine

// Cross-core mailbox: one SPSC ring per ordered pair of cores, so any core can hand work to any
// other without a lock. A loop that is about to block announces it (sleeping flag); senders check
// the flag after their batch and wake the target once per batch, never once per message.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "ringcast/engine/spsc_ring.h"

namespace ringcast::engine {

template <typename T>
class Mailbox {
 public:
  // No ring from a core to itself (work for the same core never crosses a ring; see Hub::send):
  // each would be capacity_per_pair slots of memory, touched at start, and never used.
  Mailbox(int cores, size_t capacity_per_pair) : cores_(cores), sleeping_(cores) {
    rings_.reserve(static_cast<size_t>(cores) * cores);
    for (int i = 0; i < cores * cores; ++i)
      rings_.push_back(i / cores == i % cores ? nullptr
                                              : std::make_unique<SpscRing<T>>(capacity_per_pair));
  }

  int cores() const { return cores_; }

  // Called only from core `from`, never with to == from. False when the ring is full (the caller
  // holds the item back).
  bool send(int from, int to, const T& item) { return ring(from, to).push(item); }

  // Called only from core `to`: drains every ring into fn, up to max_per_ring from each.
  template <typename Fn>
  size_t drain(int to, size_t max_per_ring, Fn&& fn) {
    size_t n = 0;
    for (int from = 0; from < cores_; ++from)
      if (from != to) n += ring(from, to).drain(max_per_ring, fn);
    return n;
  }

  // Items waiting for core `to`; any thread (approximate while the rings move).
  size_t depth(int to) const {
    size_t n = 0;
    for (int from = 0; from < cores_; ++from)
      if (from != to) n += ring(from, to).size_approx();
    return n;
  }

  bool has_pending(int to) const {
    for (int from = 0; from < cores_; ++from)
      if (from != to && !ring(from, to).empty()) return true;
    return false;
  }

  // Consumer, before blocking: returns false if it must not block (work arrived meanwhile).
  bool prepare_sleep(int core) {
    sleeping_[core].v.store(true, std::memory_order_relaxed);
    // Both sides do a read-modify-write on the same word: the two are totally ordered, so either
    // the sender sees the flag or this side sees the item (the pattern ThreadSanitizer can check,
    // unlike a pair of fences).
    sleeping_[core].sync.fetch_add(1, std::memory_order_acq_rel);
    if (has_pending(core)) {
      sleeping_[core].v.store(false, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
  void end_sleep(int core) { sleeping_[core].v.store(false, std::memory_order_relaxed); }

  // Producer, after its batch of sends: true if the target may be blocked and must be woken.
  bool needs_wake(int to) {
    sleeping_[to].sync.fetch_add(1, std::memory_order_acq_rel);
    return sleeping_[to].v.load(std::memory_order_relaxed);
  }

 private:
  struct alignas(kCacheLine) Flag {
    std::atomic<bool> v{false};
    std::atomic<uint32_t> sync{0};
  };
  SpscRing<T>& ring(int from, int to) { return *rings_[static_cast<size_t>(from) * cores_ + to]; }
  const SpscRing<T>& ring(int from, int to) const {
    return *rings_[static_cast<size_t>(from) * cores_ + to];
  }

  int cores_;
  std::vector<std::unique_ptr<SpscRing<T>>> rings_;
  std::vector<Flag> sleeping_;
};

}  // namespace ringcast::engine

// Bounded lock-free single-producer/single-consumer ring. Head and tail live on separate cache
// lines and each side caches the other's index, so a push or pop touches shared memory only when
// the cached view runs out.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

namespace ringcast::engine {

inline constexpr size_t kCacheLine = 64;

template <typename T>
class SpscRing {
 public:
  // capacity is rounded up to a power of two.
  explicit SpscRing(size_t capacity) {
    size_t cap = 2;
    while (cap < capacity) cap <<= 1;
    mask_ = cap - 1;
    slots_ = std::make_unique<T[]>(cap);
  }
  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  // Producer side. False when full.
  bool push(const T& value) {
    size_t tail = tail_.load(std::memory_order_relaxed);
    if (tail - head_cache_ > mask_) {
      head_cache_ = head_.load(std::memory_order_acquire);
      if (tail - head_cache_ > mask_) return false;
    }
    slots_[tail & mask_] = value;
    tail_.store(tail + 1, std::memory_order_release);
    return true;
  }

  // Consumer side: pops up to max items into fn(T&), in order; returns how many.
  template <typename Fn>
  size_t drain(size_t max, Fn&& fn) {
    size_t head = head_.load(std::memory_order_relaxed);
    if (head == tail_cache_) {
      tail_cache_ = tail_.load(std::memory_order_acquire);
      if (head == tail_cache_) return 0;
    }
    size_t n = std::min(max, tail_cache_ - head);
    for (size_t i = 0; i < n; ++i) fn(slots_[(head + i) & mask_]);
    head_.store(head + n, std::memory_order_release);  // one store per batch
    return n;
  }

  // Either side: a snapshot (exact only from the consumer).
  bool empty() const {
    return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_acquire);
  }
  size_t capacity() const { return mask_ + 1; }
  // Any thread: items in the ring, approximate while either side moves.
  size_t size_approx() const {
    size_t head = head_.load(std::memory_order_acquire);
    size_t tail = tail_.load(std::memory_order_acquire);
    return tail >= head ? tail - head : 0;
  }

 private:
  // Producer-owned line.
  alignas(kCacheLine) std::atomic<size_t> tail_{0};
  size_t head_cache_ = 0;
  // Consumer-owned line.
  alignas(kCacheLine) std::atomic<size_t> head_{0};
  size_t tail_cache_ = 0;
  alignas(kCacheLine) size_t mask_ = 0;
  std::unique_ptr<T[]> slots_;
};

}  // namespace ringcast::engine

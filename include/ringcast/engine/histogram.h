// A fixed-bucket histogram written by one thread and read by any (a metrics scrape). The writer
// bumps its counters with a relaxed load and store, never a read-modify-write: nothing is shared
// with other writers, and a reader sees each counter whole, at worst one observation behind.
#pragma once

#include <time.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

namespace ringcast::engine {

class Histogram {
 public:
  static constexpr size_t kMaxBounds = 24;

  // Upper bounds (inclusive, ascending) of the finite buckets; one more bucket takes the rest.
  explicit Histogram(std::span<const uint64_t> bounds) {
    for (uint64_t b : bounds)
      if (n_ < kMaxBounds) bounds_[n_++] = b;
  }

  // Writer thread only.
  void observe(uint64_t v) {
    size_t i = 0;
    while (i < n_ && v > bounds_[i]) ++i;
    bump(counts_[i], 1);
    bump(sum_, v);
  }

  size_t bounds() const { return n_; }
  uint64_t bound(size_t i) const { return bounds_[i]; }
  // Observations in bucket i alone (i == bounds() is the overflow bucket); any thread.
  uint64_t count_in(size_t i) const { return counts_[i].load(std::memory_order_relaxed); }
  uint64_t sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  static void bump(std::atomic<uint64_t>& c, uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::array<uint64_t, kMaxBounds> bounds_{};
  size_t n_ = 0;
  std::array<std::atomic<uint64_t>, kMaxBounds + 1> counts_{};
  std::atomic<uint64_t> sum_{0};
};

// Bucket bounds in nanoseconds for latencies from 50 µs to 5 s.
inline constexpr uint64_t kLatencyBoundsNs[] = {
    50'000,      100'000,       250'000,       500'000,      1'000'000,   2'500'000,
    5'000'000,   10'000'000,    25'000'000,    50'000'000,   100'000'000, 250'000'000,
    500'000'000, 1'000'000'000, 2'500'000'000, 5'000'000'000};

// A monotonic clock in nanoseconds (vDSO: no system call).
inline int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace ringcast::engine

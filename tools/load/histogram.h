// HDR-style latency histogram: logarithmic buckets, each split into linear sub-buckets.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace ringcast::load {

// 1-based rank of the p-th percentile (0 <= p <= 100) among n sorted values: the smallest rank r
// with r >= p/100 * n, at least 1. The tiny epsilon keeps 99.9 % of 1000 at rank 999 despite
// rounding.
inline uint64_t percentile_rank(double p, uint64_t n) {
  if (n == 0) return 0;
  double r = std::ceil(p / 100.0 * static_cast<double>(n) - 1e-7);
  if (r < 1) return 1;
  if (r > static_cast<double>(n)) return n;
  return static_cast<uint64_t>(r);
}

// Histogram of non-negative integer values (ringcast-load records nanoseconds).
//
// Values below kLinearLimit are counted exactly. Above it, every power-of-two range [2^e, 2^(e+1))
// is split into kSubBuckets linear sub-buckets of width 2^(e - kSubBits), so a bucket is never
// wider than 1/kSubBuckets (0.78 %) of the values it holds. Percentiles report the bucket midpoint
// (clamped to the exact minimum and maximum), which bounds the relative error by 1/(2 *
// kSubBuckets) = 0.39 %. The whole uint64 range is covered by 7424 buckets (58 KiB).
class Histogram {
 public:
  static constexpr int kSubBits = 7;
  static constexpr uint64_t kSubBuckets = uint64_t{1} << kSubBits;
  static constexpr uint64_t kLinearLimit = 2 * kSubBuckets;
  static constexpr size_t kBucketCount = kLinearLimit + (64 - (kSubBits + 1)) * kSubBuckets;

  Histogram() : counts_(kBucketCount, 0) {}

  static size_t index_of(uint64_t v) {
    if (v < kLinearLimit) return static_cast<size_t>(v);
    int e = 63 - std::countl_zero(v);  // >= kSubBits + 1
    int shift = e - kSubBits;
    uint64_t sub = (v >> shift) - kSubBuckets;
    return static_cast<size_t>(kLinearLimit +
                               static_cast<uint64_t>(e - (kSubBits + 1)) * kSubBuckets + sub);
  }
  // Smallest and largest value that land in bucket i.
  static uint64_t bucket_low(size_t i) {
    if (i < kLinearLimit) return i;
    uint64_t k = i - kLinearLimit;
    int e = static_cast<int>(k / kSubBuckets) + kSubBits + 1;
    uint64_t sub = k % kSubBuckets;
    return (sub + kSubBuckets) << (e - kSubBits);
  }
  static uint64_t bucket_high(size_t i) {
    if (i < kLinearLimit) return i;
    int e = static_cast<int>((i - kLinearLimit) / kSubBuckets) + kSubBits + 1;
    return bucket_low(i) + ((uint64_t{1} << (e - kSubBits)) - 1);
  }
  static uint64_t bucket_mid(size_t i) {
    uint64_t lo = bucket_low(i);
    return lo + (bucket_high(i) - lo) / 2;
  }

  void record(uint64_t v, uint64_t n = 1) {
    if (n == 0) return;
    counts_[index_of(v)] += n;
    if (total_ == 0 || v < min_) min_ = v;
    if (total_ == 0 || v > max_) max_ = v;
    total_ += n;
    sum_ += static_cast<double>(v) * static_cast<double>(n);
  }

  void merge(const Histogram& o) {
    if (o.total_ == 0) return;
    for (size_t i = 0; i < kBucketCount; ++i) counts_[i] += o.counts_[i];
    if (total_ == 0 || o.min_ < min_) min_ = o.min_;
    if (total_ == 0 || o.max_ > max_) max_ = o.max_;
    total_ += o.total_;
    sum_ += o.sum_;
  }

  void reset() {
    std::fill(counts_.begin(), counts_.end(), 0);
    total_ = 0;
    min_ = max_ = 0;
    sum_ = 0;
  }

  uint64_t count() const { return total_; }
  uint64_t min() const { return total_ ? min_ : 0; }
  uint64_t max() const { return total_ ? max_ : 0; }
  double mean() const { return total_ ? sum_ / static_cast<double>(total_) : 0.0; }

  // Value at percentile p (0..100); 0 for an empty histogram. p = 0 gives the exact minimum,
  // p = 100 the exact maximum.
  uint64_t percentile(double p) const {
    if (total_ == 0) return 0;
    uint64_t rank = percentile_rank(p, total_);
    if (rank <= 1 && p <= 0) return min_;
    if (rank >= total_) return max_;
    uint64_t seen = 0;
    for (size_t i = 0; i < kBucketCount; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::clamp(bucket_mid(i), min_, max_);
    }
    return max_;
  }

  // Calls f(low, high, count) for every non-empty bucket in increasing order.
  template <class F>
  void for_each_bucket(F&& f) const {
    for (size_t i = 0; i < kBucketCount; ++i)
      if (counts_[i]) f(bucket_low(i), bucket_high(i), counts_[i]);
  }

 private:
  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
  uint64_t min_ = 0;
  uint64_t max_ = 0;
  double sum_ = 0;
};

}  // namespace ringcast::load

// Accuracy of the HDR-style latency histogram against exact sorted values.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "load/histogram.h"

namespace ringcast::load {
namespace {

constexpr uint64_t kUs = 1000;
constexpr uint64_t kSec = 1'000'000'000;

uint64_t exact_percentile(const std::vector<uint64_t>& sorted, double p) {
  return sorted[percentile_rank(p, sorted.size()) - 1];
}

void expect_close(const Histogram& h, std::vector<uint64_t> values, double tolerance) {
  std::sort(values.begin(), values.end());
  for (double p : {1.0, 10.0, 50.0, 90.0, 99.0, 99.9, 99.99}) {
    double exact = static_cast<double>(exact_percentile(values, p));
    double got = static_cast<double>(h.percentile(p));
    EXPECT_LE(std::fabs(got - exact), tolerance * exact)
        << "p" << p << " exact " << exact << " got " << got;
  }
  EXPECT_EQ(h.min(), values.front());
  EXPECT_EQ(h.max(), values.back());
  EXPECT_EQ(h.percentile(0), values.front());
  EXPECT_EQ(h.percentile(100), values.back());
  EXPECT_EQ(h.count(), values.size());
}

TEST(Histogram, LogUniformFrom1usTo60s) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> exp10(3.0, std::log10(60.0 * kSec));
  std::vector<uint64_t> values;
  Histogram h;
  for (int i = 0; i < 200000; ++i) {
    auto v = static_cast<uint64_t>(std::pow(10.0, exp10(rng)));
    values.push_back(v);
    h.record(v);
  }
  expect_close(h, values, 0.01);
}

TEST(Histogram, ConstantValuesAtEveryScale) {
  for (uint64_t v : {kUs, 7 * kUs, 999 * kUs, 1234567 * kUs, 60 * kSec}) {
    Histogram h;
    for (int i = 0; i < 1000; ++i) h.record(v);
    for (double p : {50.0, 99.0}) EXPECT_EQ(h.percentile(p), v);  // clamped to exact min/max
  }
}

TEST(Histogram, TwoPointsAcrossTheRange) {
  // 90 % at 1 µs, 10 % at 60 s: p50 and p90 are 1 µs, p99 is 60 s.
  Histogram h;
  std::vector<uint64_t> values;
  for (int i = 0; i < 900; ++i) values.push_back(kUs + static_cast<uint64_t>(i % 7));
  for (int i = 0; i < 100; ++i) values.push_back(60 * kSec - static_cast<uint64_t>(i) * 1000);
  for (uint64_t v : values) h.record(v);
  expect_close(h, values, 0.01);
}

TEST(Histogram, ExponentialAroundOneMillisecond) {
  std::mt19937_64 rng(7);
  std::exponential_distribution<double> d(1.0 / (1000.0 * kUs));
  std::vector<uint64_t> values;
  Histogram h;
  for (int i = 0; i < 100000; ++i) {
    auto v = static_cast<uint64_t>(d(rng)) + kUs;
    values.push_back(v);
    h.record(v);
  }
  expect_close(h, values, 0.01);
}

TEST(Histogram, BucketsCoverValuesWithinOnePercent) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 100000; ++i) {
    uint64_t v = rng() >> (rng() % 64);
    size_t idx = Histogram::index_of(v);
    ASSERT_LT(idx, Histogram::kBucketCount);
    ASSERT_LE(Histogram::bucket_low(idx), v);
    ASSERT_GE(Histogram::bucket_high(idx), v);
    double width = static_cast<double>(Histogram::bucket_high(idx) - Histogram::bucket_low(idx));
    ASSERT_LE(width, 0.01 * static_cast<double>(v) + 1) << v;
  }
  EXPECT_EQ(Histogram::index_of(UINT64_MAX), Histogram::kBucketCount - 1);
  EXPECT_EQ(Histogram::bucket_high(Histogram::kBucketCount - 1), UINT64_MAX);
  // Indexes are monotonic and contiguous.
  for (size_t i = 0; i + 1 < Histogram::kBucketCount; ++i)
    ASSERT_EQ(Histogram::bucket_high(i) + 1, Histogram::bucket_low(i + 1)) << i;
}

TEST(Histogram, SmallValuesAreExact) {
  Histogram h;
  for (uint64_t v = 0; v < 256; ++v) h.record(v);
  EXPECT_EQ(h.percentile(50), 127u);
  EXPECT_EQ(h.percentile(1), 2u);
}

TEST(Histogram, MergeResetAndEmpty) {
  Histogram a, b, all;
  EXPECT_EQ(a.percentile(50), 0u);
  EXPECT_EQ(a.count(), 0u);
  EXPECT_EQ(a.mean(), 0.0);
  for (uint64_t v = 1; v <= 1000; ++v) {
    (v % 2 ? a : b).record(v * kUs);
    all.record(v * kUs);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), kUs);
  EXPECT_EQ(a.max(), 1000 * kUs);
  for (double p : {50.0, 90.0, 99.0}) EXPECT_EQ(a.percentile(p), all.percentile(p));
  EXPECT_NEAR(a.mean(), 500.5 * kUs, 1);
  a.reset();
  EXPECT_EQ(a.count(), 0u);
  EXPECT_EQ(a.max(), 0u);
  a.record(5, 3);
  EXPECT_EQ(a.count(), 3u);
  EXPECT_EQ(a.percentile(50), 5u);
}

TEST(Histogram, PercentileRank) {
  EXPECT_EQ(percentile_rank(50, 1000), 500u);
  EXPECT_EQ(percentile_rank(99.9, 1000), 999u);
  EXPECT_EQ(percentile_rank(99, 1000), 990u);
  EXPECT_EQ(percentile_rank(0, 1000), 1u);
  EXPECT_EQ(percentile_rank(100, 1000), 1000u);
  EXPECT_EQ(percentile_rank(50, 1), 1u);
  EXPECT_EQ(percentile_rank(50, 0), 0u);
}

}  // namespace
}  // namespace ringcast::load

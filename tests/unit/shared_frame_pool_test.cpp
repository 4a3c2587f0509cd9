#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "ringcast/engine/shared_frame.h"

using ringcast::engine::SharedFrame;

namespace {
// Frames of `size` bytes allocated on another thread and released (last reference) on this one:
// the shape of cross-core fan-out, where the consumer's pool gets every buffer.
void release_here_from_elsewhere(size_t size, size_t n) {
  std::vector<SharedFrame*> frames(n);
  std::thread producer([&] {
    for (auto& f : frames) f = SharedFrame::allocate(size);
  });
  producer.join();
  for (SharedFrame* f : frames) f->release();
}
}  // namespace

TEST(SharedFramePool, PoolIsCappedPerSizeClass) {
  SharedFrame::trim_this_thread();
  const size_t size = 16 * 1024 + 4;        // a 16 KiB message and its header: the 32 KiB class
  release_here_from_elsewhere(size, 4000);  // 125 MiB passing through
  EXPECT_GT(SharedFrame::pool_cap_bytes(size), 0u);
  EXPECT_LE(SharedFrame::pooled_bytes_this_thread(), SharedFrame::pool_cap_bytes(size));
  EXPECT_LE(SharedFrame::pool_cap_bytes(size), size_t{1} << 20);
  // Every class together stays small.
  for (size_t s = 64; s <= 64 * 1024; s *= 2) release_here_from_elsewhere(s, 100 + (8 << 20) / s);
  EXPECT_LE(SharedFrame::pooled_bytes_this_thread(), size_t{9} << 20);
  EXPECT_EQ(SharedFrame::pool_cap_bytes(1 << 20), 0u) << "large buffers are never pooled";
  SharedFrame::trim_this_thread();
  EXPECT_EQ(SharedFrame::pooled_bytes_this_thread(), 0u);
}

TEST(SharedFramePool, IdleTrimFreesWhatWasNotUsed) {
  SharedFrame::trim_this_thread();
  int64_t now = 1'000'000;
  SharedFrame::trim_idle_this_thread(now);  // starts an interval
  release_here_from_elsewhere(4096, 100);
  const size_t pooled = SharedFrame::pooled_bytes_this_thread();
  ASSERT_GT(pooled, 0u);
  EXPECT_EQ(SharedFrame::trim_idle_this_thread(now + 10), 0u) << "at most once a second";
  // First interval: the frames arrived during it, so they are kept once.
  SharedFrame::trim_idle_this_thread(now += 1000);
  // In use meanwhile: a buffer taken and returned keeps one in the working set.
  SharedFrame* f = SharedFrame::allocate(4096);
  f->release();
  SharedFrame::trim_idle_this_thread(now += 1000);
  EXPECT_LE(SharedFrame::pooled_bytes_this_thread(), 4096u) << "all but the one in use freed";
  SharedFrame::trim_idle_this_thread(now += 1000);
  EXPECT_EQ(SharedFrame::pooled_bytes_this_thread(), 0u) << "idle: everything goes back";
}

#include "ringcast/engine/shared_frame.h"

#include <malloc.h>

#include <algorithm>
#include <cstdlib>
#include <new>

#include "ringcast/engine/histogram.h"

namespace ringcast::engine {

namespace {
// Size classes 256 B .. 64 KiB (powers of two); larger buffers go straight to malloc.
constexpr int kClasses = 9;
constexpr size_t kMinClass = 256;
// A thread keeps at most this many bytes per size class (and 4096 buffers): frames released on
// a thread go to ITS pool, so a core that only consumes (the last reader of frames another core
// encoded) would otherwise collect every buffer that passes through it. Over the cap: free().
constexpr size_t kMaxPooledBytesPerClass = size_t{1} << 20;
constexpr size_t kMaxPooledPerClass = 4096;
// Idle trim: buffers a pool did not hand out during the last interval are freed. Once this much
// has gone back to malloc (trimmed, or freed over the cap) and a whole interval passed without
// more, the heap is trimmed too so the memory goes back to the kernel: after a burst, not during.
constexpr int64_t kTrimIntervalMs = 1000;
constexpr size_t kMallocTrimAfterBytes = size_t{1} << 20;

constexpr size_t class_bytes(int cls) {
  return kMinClass << cls;
}
constexpr size_t class_cap(int cls) {
  return std::min(kMaxPooledPerClass, kMaxPooledBytesPerClass / class_bytes(cls));
}

int class_for(size_t capacity) {
  size_t c = kMinClass;
  for (int i = 0; i < kClasses; ++i, c <<= 1)
    if (capacity <= c) return i;
  return -1;
}
}  // namespace

struct FramePool {
  SharedFrame* free[kClasses] = {};
  size_t count[kClasses] = {};
  size_t low[kClasses] = {};  // fewest buffers the class held since the last trim
  int64_t last_trim_ms = 0;
  size_t unpooled = 0;   // bytes freed straight to malloc during this interval
  size_t untrimmed = 0;  // bytes given back to malloc since the heap was last trimmed
  ~FramePool() { trim(); }
  // Frees up to n buffers of a class; returns their bytes.
  size_t free_some(int cls, size_t n) {
    size_t freed = 0;
    while (n-- > 0 && free[cls]) {
      SharedFrame* f = free[cls];
      free[cls] = f->next_free_;
      --count[cls];
      f->~SharedFrame();
      std::free(f);
      freed += class_bytes(cls);
    }
    low[cls] = std::min(low[cls], count[cls]);
    return freed;
  }
  size_t trim() {
    size_t freed = 0;
    for (int i = 0; i < kClasses; ++i) freed += free_some(i, SIZE_MAX);
    return freed;
  }
};

static thread_local FramePool t_pool;

// A distinct address no real frame has.
static SharedFrame* no_variant_marker() {
  alignas(SharedFrame) static unsigned char marker[sizeof(SharedFrame)];
  return reinterpret_cast<SharedFrame*>(marker);
}
SharedFrame* const SharedFrame::kNoVariant = no_variant_marker();

SharedFrame* SharedFrame::install_variant(SharedFrame* v) {
  SharedFrame* expected = nullptr;
  if (variant_.compare_exchange_strong(expected, v, std::memory_order_acq_rel)) return v;
  if (v != kNoVariant) v->release();  // another core made it first: use theirs
  return expected;
}

namespace {
thread_local SharedFrame::FanoutObserver t_fanout_observer = nullptr;
thread_local void* t_fanout_ctx = nullptr;
}  // namespace

void SharedFrame::set_fanout_observer_this_thread(FanoutObserver fn, void* ctx) {
  t_fanout_observer = fn;
  t_fanout_ctx = ctx;
}

bool SharedFrame::begin_fanout(int64_t start_ns) {
  int64_t untracked = 0;
  if (fanout_start_ns_.load(std::memory_order_relaxed) != 0) return false;
  // Published with the frame itself: other cores see it through the mailbox's release/acquire.
  if (!fanout_start_ns_.compare_exchange_strong(untracked, start_ns, std::memory_order_relaxed))
    return false;
  fanout_pending_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void SharedFrame::fanout_done() {
  if (fanout_pending_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  const int64_t start = fanout_start_ns_.exchange(-1, std::memory_order_relaxed);
  if (start > 0 && t_fanout_observer) t_fanout_observer(t_fanout_ctx, monotonic_ns() - start);
}

SharedFrame* SharedFrame::allocate(size_t capacity) {
  int cls = class_for(capacity);
  if (cls >= 0) {
    FramePool& pool = t_pool;
    if (SharedFrame* f = pool.free[cls]) {
      pool.free[cls] = f->next_free_;
      if (--pool.count[cls] < pool.low[cls]) pool.low[cls] = pool.count[cls];
      f->next_free_ = nullptr;
      f->refs_.store(1, std::memory_order_relaxed);
      f->size_ = 0;
      f->message_opcode_ = 0;
      f->header_bytes_ = 0;
      f->fanout_start_ns_.store(0, std::memory_order_relaxed);
      f->fanout_pending_.store(0, std::memory_order_relaxed);
      return f;
    }
    capacity = class_bytes(cls);
  }
  void* mem = std::malloc(sizeof(SharedFrame) + capacity);
  if (!mem) throw std::bad_alloc();
  auto* f = new (mem) SharedFrame();
  f->capacity_ = static_cast<uint32_t>(capacity);
  f->size_class_ = static_cast<uint8_t>(cls < 0 ? 0xff : cls);
  return f;
}

void SharedFrame::release() {
  // acq_rel: the thread that frees must see every other holder's reads as finished.
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  // The last holder is alone with the frame: a load and a store, no read-modify-write.
  if (SharedFrame* v = variant_.load(std::memory_order_acquire)) {
    variant_.store(nullptr, std::memory_order_relaxed);
    if (v != kNoVariant) v->release();
  }
  if (credit_) {
    credit_->refund(size_);
    credit_->release();
    credit_ = nullptr;
  }
  if (size_class_ != 0xff) {
    FramePool& pool = t_pool;
    if (pool.count[size_class_] < class_cap(size_class_)) {
      next_free_ = pool.free[size_class_];
      pool.free[size_class_] = this;
      ++pool.count[size_class_];
      return;
    }
  }
  t_pool.unpooled += capacity_;
  this->~SharedFrame();
  std::free(this);
}

size_t SharedFrame::pooled_bytes_this_thread() {
  size_t total = 0;
  for (int i = 0; i < kClasses; ++i) total += t_pool.count[i] * class_bytes(i);
  return total;
}

size_t SharedFrame::pool_cap_bytes(size_t capacity) {
  int cls = class_for(capacity);
  return cls < 0 ? 0 : class_cap(cls) * class_bytes(cls);
}

void SharedFrame::trim_this_thread() {
  t_pool.trim();
}

size_t SharedFrame::trim_idle_this_thread(int64_t now_ms) {
  FramePool& pool = t_pool;
  if (now_ms - pool.last_trim_ms < kTrimIntervalMs) return 0;
  pool.last_trim_ms = now_ms;
  size_t freed = 0;
  for (int i = 0; i < kClasses; ++i) {
    // What stayed pooled through the whole interval was not needed: free it, keep the rest.
    freed += pool.free_some(i, pool.low[i]);
    pool.low[i] = pool.count[i];
  }
  pool.untrimmed += freed + pool.unpooled;
  if (pool.unpooled == 0 && pool.untrimmed >= kMallocTrimAfterBytes) {
    malloc_trim(0);
    pool.untrimmed = 0;
  }
  pool.unpooled = 0;
  return freed;
}

}  // namespace ringcast::engine

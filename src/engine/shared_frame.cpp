#include "ringcast/engine/shared_frame.h"

#include <cstdlib>
#include <new>

namespace ringcast::engine {

namespace {
// Size classes 256 B .. 64 KiB (powers of two); larger buffers go straight to malloc.
constexpr int kClasses = 9;
constexpr size_t kMinClass = 256;
constexpr size_t kMaxPooledPerClass = 4096;

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
  ~FramePool() { trim(); }
  void trim() {
    for (int i = 0; i < kClasses; ++i) {
      while (free[i]) {
        SharedFrame* f = free[i];
        free[i] = f->next_free_;
        f->~SharedFrame();
        std::free(f);
      }
      count[i] = 0;
    }
  }
};

static thread_local FramePool t_pool;

SharedFrame* SharedFrame::allocate(size_t capacity) {
  int cls = class_for(capacity);
  if (cls >= 0) {
    FramePool& pool = t_pool;
    if (SharedFrame* f = pool.free[cls]) {
      pool.free[cls] = f->next_free_;
      --pool.count[cls];
      f->next_free_ = nullptr;
      f->refs_.store(1, std::memory_order_relaxed);
      f->size_ = 0;
      return f;
    }
    capacity = kMinClass << cls;
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
  if (credit_) {
    credit_->refund(size_);
    credit_->release();
    credit_ = nullptr;
  }
  if (size_class_ != 0xff) {
    FramePool& pool = t_pool;
    if (pool.count[size_class_] < kMaxPooledPerClass) {
      next_free_ = pool.free[size_class_];
      pool.free[size_class_] = this;
      ++pool.count[size_class_];
      return;
    }
  }
  this->~SharedFrame();
  std::free(this);
}

size_t SharedFrame::pooled_bytes_this_thread() {
  size_t total = 0;
  for (int i = 0; i < kClasses; ++i) total += t_pool.count[i] * (kMinClass << i);
  return total;
}

void SharedFrame::trim_this_thread() {
  t_pool.trim();
}

}  // namespace ringcast::engine

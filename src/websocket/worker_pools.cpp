// The worker's spare objects: queue items, send batches and message buffers are reused across
// sessions, each pool capped, and what a pool did not hand out for a second is freed. Split from
// worker.cpp.
#include <malloc.h>

#include "ringcast/websocket/worker.h"

namespace ringcast::websocket {

namespace {
constexpr size_t kMaxIdleBuffers = 256;
constexpr size_t kMaxKeptBufferCapacity = 64 * 1024;
// Pools of queue items and send batches keep at most this many spare; what a pool did not hand
// out for a second is freed (trim_idle_pools), so a burst's peak is not held for ever.
constexpr size_t kMaxIdleItems = 16384;
constexpr size_t kMaxIdleBatches = 4096;  // one per socket with a send in flight: a fan-out to
                                          // thousands needs thousands (64 cost +3 ms at 1k subs)
constexpr int64_t kPoolTrimIntervalMs = 1000;
}  // namespace

OutItem* Worker::new_item() {
  if (OutItem* it = free_items_) {
    free_items_ = it->next;
    if (--free_item_count_ < items_low_) items_low_ = free_item_count_;
    return it;
  }
  return new OutItem();
}

void Worker::free_item(OutItem* item) {
  if (free_item_count_ >= kMaxIdleItems) {
    delete item;
    return;
  }
  item->next = free_items_;
  free_items_ = item;
  ++free_item_count_;
}

SendBatch* Worker::new_batch() {
  if (SendBatch* b = free_batches_) {
    free_batches_ = b->next_free;
    if (--free_batch_count_ < batches_low_) batches_low_ = free_batch_count_;
    return b;
  }
  return new SendBatch();
}

void Worker::free_batch(SendBatch* b) {
  if (free_batch_count_ >= kMaxIdleBatches) {
    delete b;
    return;
  }
  b->next_free = free_batches_;
  free_batches_ = b;
  ++free_batch_count_;
}

std::string* Worker::take_buffer() {
  if (free_buffers_.empty()) return new std::string();
  std::string* b = free_buffers_.back();
  free_buffers_.pop_back();
  buffers_low_ = std::min(buffers_low_, free_buffers_.size());
  return b;
}

void Worker::trim_idle_pools() {
  engine::SharedFrame::trim_idle_this_thread(now_ms_);  // at most once a second itself
  if (now_ms_ - last_pool_trim_ms_ < kPoolTrimIntervalMs) return;
  last_pool_trim_ms_ = now_ms_;
  size_t freed = 0;
  // Spares that stayed in a pool through the whole interval were not needed.
  for (; items_low_ > 0 && free_items_; --items_low_, --free_item_count_) {
    OutItem* n = free_items_->next;
    delete free_items_;
    free_items_ = n;
    freed += sizeof(OutItem);
  }
  for (; batches_low_ > 0 && free_batches_; --batches_low_, --free_batch_count_) {
    SendBatch* n = free_batches_->next_free;
    delete free_batches_;
    free_batches_ = n;
    freed += sizeof(SendBatch);
  }
  for (; buffers_low_ > 0 && !free_buffers_.empty(); --buffers_low_) {
    freed += free_buffers_.back()->capacity();
    delete free_buffers_.back();
    free_buffers_.pop_back();
  }
  // Spare inflaters (about 40 KiB each) the last interval did not lease.
  for (; inflaters_low_ > 0 && !spare_inflaters_.empty(); --inflaters_low_) {
    delete spare_inflaters_.back();
    spare_inflaters_.pop_back();
  }
  inflaters_low_ = spare_inflaters_.size();
  items_low_ = free_item_count_;
  batches_low_ = free_batch_count_;
  buffers_low_ = free_buffers_.size();
  // The frame pool trims the heap after its own large trims; these pools' spares are small
  // blocks that only go back to the kernel with an explicit trim.
  if (freed >= (size_t{1} << 20)) malloc_trim(0);
}

void Worker::give_buffer(std::string*& b) {
  if (!b) return;
  if (free_buffers_.size() < kMaxIdleBuffers && b->capacity() <= kMaxKeptBufferCapacity) {
    b->clear();
    free_buffers_.push_back(b);
  } else {
    delete b;
  }
  b = nullptr;
}

}  // namespace ringcast::websocket

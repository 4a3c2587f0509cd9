// A reference-counted, immutable byte buffer holding one or more encoded WebSocket frames.
// A broadcast is encoded once into a SharedFrame and every recipient, on any core, queues a
// reference; the memory goes back to a size-class free list of whichever thread drops the last
// reference, so steady-state traffic never reaches malloc. Each thread's pool is capped per size
// class (over the cap a buffer is freed) and trimmed when idle (trim_idle_this_thread).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

#include "ringcast/engine/flow_credit.h"

namespace ringcast::engine {

class SharedFrame {
 public:
  // Buffer with room for `capacity` bytes and one reference owned by the caller.
  static SharedFrame* allocate(size_t capacity);

  void add_ref(uint32_t n = 1) { refs_.fetch_add(n, std::memory_order_relaxed); }
  // Drops one reference; returns the buffer to the pool when it was the last.
  void release();

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  void set_size(size_t n) { size_ = static_cast<uint32_t>(n); }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  uint32_t refs() const { return refs_.load(std::memory_order_relaxed); }
  // Paces the sender: the frame's size counts against `credit` until its last reference is
  // dropped. Set once, after the frame is complete and before it is shared.
  void set_credit(FlowCredit* credit) {
    credit->add_ref();
    credit->charge(size_);
    credit_ = credit;
  }
  bool paced() const { return credit_ != nullptr; }
  FlowCredit* credit() const { return credit_; }

  // One complete, unfragmented data message (set by the WebSocket encoder): its opcode and the
  // length of its frame header; 0 for anything else (HTTP responses, several frames).
  void set_message(uint8_t opcode, uint8_t header_bytes) {
    message_opcode_ = opcode;
    header_bytes_ = header_bytes;
  }
  uint8_t message_opcode() const { return message_opcode_; }
  std::span<const uint8_t> message_payload() const {
    return {data_ + header_bytes_, size_ - header_bytes_};
  }
  // A variant of this message every recipient that needs it shares (the permessage-deflate
  // frame): made once by whichever core first needs it, kept until this frame is freed.
  // kNoVariant: made, and found not worth sending (the message did not shrink).
  static SharedFrame* const kNoVariant;
  SharedFrame* variant() const { return variant_.load(std::memory_order_acquire); }
  // Installs `v` (taking over its reference) unless another core installed one first; returns
  // the installed variant (whose reference this frame owns).
  SharedFrame* install_variant(SharedFrame* v);

  // Fan-out latency, for sampled broadcasts: begin_fanout stamps the start and holds one pending
  // delivery for the caller; every queued recipient (and every envelope to another core) holds
  // another, dropped by fanout_done once its send completed (or it was dropped). The last
  // fanout_done reports now - start to the observer of the thread it runs on. A frame is tracked
  // by one fan-out at most: begin_fanout is false if it is or was tracked already.
  bool begin_fanout(int64_t start_ns);
  bool fanout_tracked() const { return fanout_start_ns_.load(std::memory_order_relaxed) > 0; }
  void fanout_hold() { fanout_pending_.fetch_add(1, std::memory_order_relaxed); }
  void fanout_done();
  using FanoutObserver = void (*)(void* ctx, int64_t latency_ns);
  static void set_fanout_observer_this_thread(FanoutObserver fn, void* ctx);

  // Bytes held in this thread's free lists (for tests and /health).
  static size_t pooled_bytes_this_thread();
  // Frees this thread's free lists (called when a worker exits).
  static void trim_this_thread();
  // Most bytes a thread pools for buffers of this capacity (0: never pooled).
  static size_t pool_cap_bytes(size_t capacity);
  // Call from a loop every pass: at most once a second, frees the buffers this thread's pool did
  // not hand out since the last time (so a pool that was not used drains within about two
  // seconds), and returns freed heap to the kernel after a large trim. Returns bytes freed.
  static size_t trim_idle_this_thread(int64_t now_ms);

 private:
  SharedFrame() = default;
  friend struct FramePool;

  std::atomic<uint32_t> refs_{1};
  uint32_t size_ = 0;
  uint32_t capacity_ = 0;
  uint8_t size_class_ = 0;
  uint8_t message_opcode_ = 0;
  uint8_t header_bytes_ = 0;
  SharedFrame* next_free_ = nullptr;
  FlowCredit* credit_ = nullptr;
  std::atomic<SharedFrame*> variant_{nullptr};
  std::atomic<int64_t> fanout_start_ns_{0};  // 0: untracked, -1: its fan-out was reported
  std::atomic<uint32_t> fanout_pending_{0};
  alignas(8) uint8_t data_[];
};

// Owning smart reference for code paths outside the hot loop (tests, handshake replies).
class FrameRef {
 public:
  FrameRef() = default;
  explicit FrameRef(SharedFrame* f) : f_(f) {}
  FrameRef(const FrameRef& o) : f_(o.f_) {
    if (f_) f_->add_ref();
  }
  FrameRef(FrameRef&& o) noexcept : f_(o.f_) { o.f_ = nullptr; }
  FrameRef& operator=(FrameRef o) noexcept {
    std::swap(f_, o.f_);
    return *this;
  }
  ~FrameRef() {
    if (f_) f_->release();
  }
  SharedFrame* get() const { return f_; }
  SharedFrame* operator->() const { return f_; }
  explicit operator bool() const { return f_ != nullptr; }
  SharedFrame* release_ownership() {
    SharedFrame* f = f_;
    f_ = nullptr;
    return f;
  }

 private:
  SharedFrame* f_ = nullptr;
};

}  // namespace ringcast::engine

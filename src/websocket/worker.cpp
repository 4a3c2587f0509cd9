#include "ringcast/websocket/worker.h"

#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "ringcast/engine/listen_socket.h"
#include "ringcast/engine/log.h"
#include "ringcast/websocket/close_code.h"
#include "ringcast/websocket/frame_encoder.h"
#include "ringcast/websocket/http_response.h"

namespace ringcast::websocket {

// Ordered holds of one session (see Worker::hold_ordered), and the replies its passing messages
// made while earlier writes were still pending. Allocated only while pipelining.
struct Pipeline {
  struct HeldReply {
    engine::SharedFrame* frame;
    uint32_t after;  // goes out once this many ordered holds have been released
    HeldReply* next;
  };
  const void* key = nullptr;  // what passing messages must write to; nullptr once keys differ
  uint32_t ordered = 0;       // ordered holds now
  uint32_t taken = 0;         // ordered holds ever taken
  uint32_t released = 0;      // ... and released (they are released in the order taken)
  uint32_t entry = 0;         // `taken` when the passing message now handled arrived
  size_t bytes = 0;           // size of the writes held for
  HeldReply* head = nullptr;
  HeldReply* tail = nullptr;
};

namespace {

constexpr uint32_t kMaxPipeline = 4096;     // durable writes in flight per connection
constexpr int64_t kCloseLingerMs = 2000;    // wait for the peer after our close frame
constexpr size_t kMaxBatchBytes = 1 << 20;  // bytes per vectored send
constexpr size_t kMaxIdleBuffers = 256;
constexpr size_t kMaxKeptBufferCapacity = 64 * 1024;
// Pools of queue items and send batches keep at most this many spare; what a pool did not hand
// out for a second is freed (trim_idle_pools), so a burst's peak is not held for ever.
constexpr size_t kMaxIdleItems = 16384;
constexpr size_t kMaxIdleBatches = 4096;  // one per socket with a send in flight: a fan-out to
                                          // thousands needs thousands (64 cost +3 ms at 1k subs)
constexpr int64_t kPoolTrimIntervalMs = 1000;

int64_t mono_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

Session& as_session(engine::Socket* s) {
  return *static_cast<Session*>(s);
}

std::array<uint8_t, 16> ip_key(const sockaddr_storage& peer) {
  std::array<uint8_t, 16> key{};
  if (peer.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(peer);
    key[10] = key[11] = 0xff;  // v4-mapped, so both families share one key space
    std::memcpy(&key[12], &a.sin_addr, 4);
  } else if (peer.ss_family == AF_INET6) {
    std::memcpy(key.data(), &reinterpret_cast<const sockaddr_in6&>(peer).sin6_addr, 16);
  }
  return key;
}

}  // namespace

// ---- Session forwarding -------------------------------------------------------------------------

void Session::send_message(Opcode op, std::span<const uint8_t> payload) {
  worker_->send_message(*this, op, payload);
}
void Session::send_frame(engine::SharedFrame* frame) {
  worker_->send_frame(*this, frame);
}
void Session::close(uint16_t code, std::string_view reason) {
  worker_->close_session(*this, code, reason);
}
void Session::close_unless_message_within(int64_t ms) {
  worker_->set_message_deadline(*this, ms);
}
void Session::hold_input() {
  worker_->hold_input(*this);
}
void Session::release_input() {
  worker_->release_input(*this);
}
void Session::pace(engine::SharedFrame* frame) {
  worker_->pace(*this, frame);
}

// ---- Worker lifecycle ---------------------------------------------------------------------------

Worker::Worker(int index, int cpu, WorkerShared& shared)
    : index_(index),
      cpu_(cpu),
      shared_(shared),
      stats_(shared.stats->worker(index)),
      timers_(mono_ms(), 10, 1024),
      // Session ids are unique across the process: the worker index sits in the top bits.
      next_session_id_((static_cast<uint64_t>(index) << 48) + 1) {}

Worker::~Worker() {
  while (free_items_) {
    OutItem* n = free_items_->next;
    delete free_items_;
    free_items_ = n;
  }
  while (free_batches_) {
    SendBatch* n = free_batches_->next_free;
    delete free_batches_;
    free_batches_ = n;
  }
  for (auto* b : free_buffers_) delete b;
}

bool Worker::wait_started() {
  int v;
  while ((v = start_state_.load(std::memory_order_acquire)) == 0) start_state_.wait(0);
  return v == 1;
}

void Worker::wake() {
  if (engine::Backend* b = wake_target_.load(std::memory_order_acquire)) b->wake();
}

void Worker::run() {
  if (shared_.pin_threads && !engine::pin_current_thread(cpu_)) {
    RC_WARN("worker %d: could not pin to cpu %d", index_, cpu_);
  }
  engine::BackendOptions options = shared_.backend_options;
  if (options.refusal.empty()) {
    // Out of descriptors, waiting clients are answered this instead of being left in the backlog.
    HttpResponse refusal = json_error(503, "server out of file descriptors, try again later");
    refusal.keep_alive = false;
    engine::FrameRef f(refusal.encode());
    options.refusal.assign(reinterpret_cast<const char*>(f->data()), f->size());
  }
  if (shared_.backend == engine::BackendKind::kIoUring) {
    std::string why;
    backend_ = engine::make_io_uring_backend(*this, options, why);
    if (!backend_)
      RC_WARN("worker %d: io_uring unavailable (%s), using epoll", index_, why.c_str());
  }
  if (!backend_) backend_ = engine::make_epoll_backend(*this, options);
  backend_kind_ = backend_->kind();
  if (static_cast<size_t>(index_) < shared_.hooks.size()) hooks_ = shared_.hooks[index_];
  refresh_settings();
  for (size_t i = 0; i < shared_.listeners.size(); ++i) {
    const auto& spec = shared_.listeners[i];
    int fd = engine::open_listener(spec.host, spec.port, 4096, error_);
    if (fd < 0) {
      start_state_.store(-1, std::memory_order_release);
      start_state_.notify_all();
      return;
    }
    backend_->add_listener(static_cast<int>(i), fd);
  }
  wake_target_.store(backend_.get(), std::memory_order_release);
  start_state_.store(1, std::memory_order_release);
  start_state_.notify_all();
  loop();
  wake_target_.store(nullptr, std::memory_order_release);
  backend_.reset();
  engine::SharedFrame::trim_this_thread();
}

void Worker::loop() {
  now_ms_ = mono_ms();
  while (true) {
    if (shared_.stopping.load(std::memory_order_acquire) && !stopping_) begin_stop();
    if (stopping_) {
      if (session_count_ == 0) break;
      if (now_ms_ >= drain_deadline_ms_) {
        // Drain time is up: drop whoever is still there.
        for (Session* s = sessions_; s; s = s->next_) abort_session(*s);
      }
    }
    int64_t timeout = timers_.next_timeout_ms(now_ms_);
    if (stopping_) timeout = timeout < 0 ? 50 : std::min<int64_t>(timeout, 50);
    if (!stall_watch_.empty()) timeout = timeout < 0 ? 100 : std::min<int64_t>(timeout, 100);
    if (!resumes_.empty()) timeout = 0;  // held input to decode
    // Wake at least once a second even when idle: the watchdog reads loop_passes as a heartbeat.
    timeout = timeout < 0 ? 1000 : std::min<int64_t>(timeout, 1000);
    run_pass(static_cast<int>(timeout));
  }
}

void Worker::run_pass(int timeout_ms) {
  bool announced = false;
  if (hooks_ && timeout_ms > 0) {
    announced = true;
    if (!hooks_->prepare_sleep()) timeout_ms = 0;
  }
  backend_->poll(timeout_ms);
  if (announced) hooks_->end_sleep();
  now_ms_ = mono_ms();
  ++pass_;
  stats_.loop_passes.store(pass_, std::memory_order_relaxed);  // a plain store: no locked RMW
  if (shared_.settings->generation() != settings_generation_) refresh_settings();
  timers_.advance(
      now_ms_, [this](engine::TimerNode* node) { on_timer(*static_cast<Session*>(node->owner)); });
  // Before the hooks: what resumed sessions send reaches other cores in this same pass.
  if (!pace_waits_.empty()) check_paced();
  if (!resumes_.empty()) run_resumes();
  if (hooks_) hooks_->on_pass();
  if (!stall_watch_.empty() && now_ms_ >= next_stall_check_ms_) check_stalls();
  flush();
  notify_peers();
  trim_idle_pools();
  stats_.queued_bytes.store(queued_bytes_, std::memory_order_relaxed);
}

void Worker::start_with(std::unique_ptr<engine::Backend> backend) {
  backend_ = std::move(backend);
  backend_kind_ = backend_->kind();
  if (static_cast<size_t>(index_) < shared_.hooks.size()) hooks_ = shared_.hooks[index_];
  refresh_settings();
  now_ms_ = mono_ms();
  wake_target_.store(backend_.get(), std::memory_order_release);
  start_state_.store(1, std::memory_order_release);
}

void Worker::notify_peers() {
  while (peers_to_notify_) {
    int peer = __builtin_ctzll(peers_to_notify_);
    peers_to_notify_ &= peers_to_notify_ - 1;
    if (engine::Backend* target =
            shared_.workers[peer]->wake_target_.load(std::memory_order_acquire)) {
      backend_->notify(*target);
    }
  }
}

Session* Worker::find_session(uint64_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second;
}

// Token bucket per session (in thousandths of a message, refilled from the loop's cached clock):
// no syscall and no allocation per message.
bool Worker::take_message_token(Session& s) {
  const Limits& L = settings_->limits;
  if (L.max_messages_per_second == 0) return true;
  const uint64_t cap =
      uint64_t{L.message_burst ? L.message_burst : L.max_messages_per_second} * 1000;
  uint64_t tokens = s.rate_tokens_ == UINT32_MAX ? cap : s.rate_tokens_;
  if (s.rate_refill_ms_ == 0) s.rate_refill_ms_ = now_ms_;
  const int64_t dt = now_ms_ - s.rate_refill_ms_;
  if (dt > 0) {
    tokens =
        std::min<uint64_t>(cap, tokens + static_cast<uint64_t>(dt) * L.max_messages_per_second);
    s.rate_refill_ms_ = now_ms_;
  }
  if (tokens < 1000) return false;
  s.rate_tokens_ = static_cast<uint32_t>(std::min<uint64_t>(tokens - 1000, UINT32_MAX - 1));
  return true;
}

void Worker::refresh_settings() {
  settings_generation_ = shared_.settings->generation();
  settings_ = shared_.settings->get();
}

void Worker::begin_stop() {
  stopping_ = true;
  drain_deadline_ms_ = now_ms_ + settings_->limits.drain_timeout_ms;
  backend_->close_listeners();
  for (Session* s = sessions_; s;) {
    Session* next = s->next_;
    if (s->state_ == Session::State::kOpen) {
      if (s->route_ && s->route_->handler) s->route_->handler->on_shutdown(*s);
      close_session(*s, kCloseGoingAway, "server shutting down");
    } else if (s->state_ == Session::State::kHttp && !s->sending_ && !s->out_head_) {
      abort_session(*s);  // idle keep-alive connection
    } else if (s->state_ == Session::State::kHttp) {
      s->close_after_flush_ = true;
    }
    s = next;
  }
  flush();
}

void Worker::on_wakeup() {
  // Events below are stamped with the time the wait ended, not when it began.
  now_ms_ = mono_ms();
}

void Worker::on_wake() {
  // Nothing to do here: the loop checks the stop flag and the settings generation every pass.
}

// ---- Accept and teardown ------------------------------------------------------------------------

void Worker::on_accept(int listener_id, int fd, const sockaddr_storage& peer) {
  if (stopping_) {
    ::close(fd);
    return;
  }
  // Messages are written whole and batched per loop pass already; Nagle would only add a
  // round-trip delay to every small frame.
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  auto* s = new Session();
  s->worker_ = this;
  s->id_ = next_session_id_++;
  s->websocket_port_ = shared_.listeners[listener_id].websocket;
  s->peer_ip_ = ip_key(peer);
  s->last_rx_ms_ = now_ms_;
  s->timer_.owner = s;
  by_id_.emplace(s->id_, s);
  s->next_ = sessions_;
  if (sessions_) sessions_->prev_ = s;
  sessions_ = s;
  ++session_count_;
  stats_.connections.fetch_add(1, std::memory_order_relaxed);
  schedule(*s, now_ms_ + settings_->limits.handshake_timeout_ms);
  backend_->attach(s, fd);
}

void Worker::abort_session(Session& s) {
  if (s.state_ == Session::State::kDead) return;
  if (s.state_ == Session::State::kOpen || s.state_ == Session::State::kClosing) end_websocket(s);
  s.state_ = Session::State::kDead;
  timers_.cancel(&s.timer_);
  backend_->close(&s);
}

void Worker::end_websocket(Session& s) {
  // Runs once per upgraded session, whichever way it ends.
  if (s.route_) {
    Route* route = s.route_;
    route->handler->on_close(s);
    route->connections.fetch_sub(1, std::memory_order_relaxed);
    stats_.websockets.fetch_sub(1, std::memory_order_relaxed);
    s.route_ = nullptr;
  }
  if (s.counted_ws_) {
    shared_.stats->leave(s.peer_ip_);
    s.counted_ws_ = false;
  }
}

void Worker::on_closed(engine::Socket* sock) {
  Session& s = as_session(sock);
  if (s.state_ != Session::State::kDead) {
    if (s.state_ == Session::State::kOpen || s.state_ == Session::State::kClosing) end_websocket(s);
    s.state_ = Session::State::kDead;
  }
  timers_.cancel(&s.timer_);
  drop_queue(s);
  if (s.sending_) {
    free_batch(s.sending_);
    s.sending_ = nullptr;
  }
  if (s.reader_) {
    readers_.release(s.reader_);
    s.reader_ = nullptr;
  }
  give_buffer(s.assembly_);
  give_buffer(s.http_buf_);
  give_buffer(s.held_in_);
  drop_pipeline(s);
  if (s.credit_) {
    // Frames still queued elsewhere keep the credit alive; they just wake nobody now.
    s.credit_->detach();
    s.credit_->release();
    s.credit_ = nullptr;
  }
  if (s.dirty_) {
    // Unlink from the flush list.
    Session* prev = nullptr;
    Session** p = &dirty_head_;
    while (*p && *p != &s) {
      prev = *p;
      p = &(*p)->next_dirty_;
    }
    if (*p) {
      *p = s.next_dirty_;
      if (dirty_tail_ == &s) dirty_tail_ = prev;
    }
  }
  if (s.prev_)
    s.prev_->next_ = s.next_;
  else
    sessions_ = s.next_;
  if (s.next_) s.next_->prev_ = s.prev_;
  --session_count_;
  by_id_.erase(s.id_);
  stats_.connections.fetch_sub(1, std::memory_order_relaxed);
  delete &s;
}

void Worker::on_read_end(engine::Socket* sock, int err) {
  Session& s = as_session(sock);
  if (err && err != -ECONNRESET) RC_DEBUG("session %lu read error: %s", s.id_, strerror(-err));
  abort_session(s);
}

// ---- Sending ------------------------------------------------------------------------------------

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

void Worker::drop_queue(Session& s) {
  // Items in the batch in flight are still referenced by the kernel until its completion; callers
  // only drop the queue when no send is in flight or the socket is gone.
  for (OutItem* it = s.out_head_; it;) {
    OutItem* next = it->next;
    it->frame->release();
    free_item(it);
    it = next;
  }
  s.out_head_ = s.out_tail_ = nullptr;
  queued_bytes_ -= s.out_bytes_;
  s.out_bytes_ = 0;
  s.uncapped_bytes_ = 0;
}

void Worker::mark_dirty(Session& s) {
  if (s.dirty_) return;
  s.dirty_ = true;
  // First come, first flushed: output queued to two sessions in one pass reaches the kernel in
  // that order (a profile that tells A before B can rely on it).
  s.next_dirty_ = nullptr;
  if (dirty_tail_)
    dirty_tail_->next_dirty_ = &s;
  else
    dirty_head_ = &s;
  dirty_tail_ = &s;
}

size_t Worker::capped_backlog(const Session& s) const {
  // What the kernel has not taken, less what the cap does not judge (snapshots, paced frames).
  // Approximate while a send covering uncapped items is in flight: it errs towards leniency by at
  // most one batch.
  const size_t exempt = size_t{s.inflight_bytes_} + s.uncapped_bytes_;
  return s.out_bytes_ > exempt ? s.out_bytes_ - exempt : 0;
}

void Worker::send_frame(Session& s, engine::SharedFrame* f) {
  if (s.state_ == Session::State::kDead || s.close_sent_) return;
  if (s.passing_ && s.pipe_ && (s.pipe_->head || s.pipe_->released < s.pipe_->entry)) {
    // A reply to a message that passed earlier writes: it waits until they are in effect (and
    // behind any reply already waiting). What others send this session meanwhile (the effects
    // of those earlier writes among them) is not held.
    Pipeline& p = *s.pipe_;
    f->add_ref();
    auto* r = new Pipeline::HeldReply{f, p.entry, nullptr};
    if (p.tail)
      p.tail->next = r;
    else
      p.head = r;
    p.tail = r;
    return;
  }
  if (s.state_ == Session::State::kHttp) {
    enqueue(s, f, OutItem::kKeep);  // a response head: never dropped
    return;
  }
  // A join's snapshot is what the joiner must get, and a paced frame is bounded by its sender's
  // credit: neither is slow-consumer backlog (a reader stuck on them is closed by check_stalls).
  if (s.snapshot_ || f->paced()) {
    enqueue(s, f, OutItem::kUncapped);
    return;
  }
  // The outbound cap is judged at flush time, against what the kernel has not taken (see
  // enforce_cap): one loop pass may legitimately queue a burst larger than the cap for a reader
  // that keeps up. Within a pass the queue is still bounded, at twice the cap.
  const size_t backlog = capped_backlog(s);
  if (s.state_ == Session::State::kOpen && backlog > 0 &&
      backlog + f->size() > 2 * settings_->limits.outbound_cap && !enforce_cap(s, f->size())) {
    return;
  }
  enqueue(s, f);
}

bool Worker::enforce_cap(Session& s, size_t incoming) {
  const Limits& lim = settings_->limits;
  if (lim.slow_consumer == Limits::SlowConsumer::kDropOldest) {
    drop_oldest(s, incoming);
    return true;  // whatever the kernel holds already stays; the queue behind it is trimmed
  }
  // Slow consumer: it cannot keep up, and nobody else may pay for that.
  RC_DEBUG("session %lu over its outbound cap, closing", s.id_);
  stats_.slow_consumer_closes.fetch_add(1, std::memory_order_relaxed);
  drop_unsent(s);
  close_session(s, kCloseTryAgainLater, "slow consumer");
  return false;
}

void Worker::unlink_item(Session& s, OutItem* it) {
  // `it` is the item after `prev` in s's queue (prev is found by the callers' walk).
  s.out_bytes_ -= it->length;
  queued_bytes_ -= it->length;
  if (it->flags & OutItem::kUncapped) s.uncapped_bytes_ -= it->length;
  it->frame->release();
  free_item(it);
}

template <typename Drop>
uint64_t Worker::drop_queued(Session& s, Drop&& drop) {
  // Items covered by the send in flight belong to the kernel until it completes; of the ones
  // after them, oldest first, those drop(item) picks are freed while it asks for more.
  OutItem* prev = nullptr;
  OutItem* it = s.out_head_;
  for (uint16_t i = 0; i < s.inflight_items_ && it; ++i) {
    prev = it;
    it = it->next;
  }
  uint64_t dropped = 0;
  while (it) {
    OutItem* next = it->next;
    const int verdict = drop(*it);  // 1 drop, 0 keep, -1 stop
    if (verdict < 0) break;
    if (verdict == 0) {
      prev = it;
      it = next;
      continue;
    }
    if (prev)
      prev->next = next;
    else
      s.out_head_ = next;
    if (s.out_tail_ == it) s.out_tail_ = prev;
    unlink_item(s, it);
    ++dropped;
    it = next;
  }
  return dropped;
}

bool Worker::drop_oldest(Session& s, size_t incoming) {
  // Only whole capped messages are dropped: never part of a frame, the HTTP response, a snapshot
  // or a paced frame.
  const size_t cap = settings_->limits.outbound_cap;
  uint64_t dropped = drop_queued(s, [&](const OutItem& it) {
    if (capped_backlog(s) + incoming <= cap) return -1;
    return it.flags || it.offset != 0 ? 0 : 1;
  });
  if (dropped) stats_.dropped_messages.fetch_add(dropped, std::memory_order_relaxed);
  return capped_backlog(s) + incoming <= cap;
}

void Worker::drop_unsent(Session& s) {
  // Everything but the HTTP response: a close frame queued next must never reach the client ahead
  // of the 101.
  drop_queued(s, [](const OutItem& it) { return it.flags & OutItem::kKeep ? 0 : 1; });
}

void Worker::enqueue(Session& s, engine::SharedFrame* f, uint8_t flags) {
  f->add_ref();
  OutItem* it = new_item();
  it->frame = f;
  it->offset = 0;
  it->length = static_cast<uint32_t>(f->size());
  it->flags = flags;
  it->next = nullptr;
  if (flags & OutItem::kUncapped) {
    s.uncapped_bytes_ += it->length;
    if (!s.stall_watched_) {
      s.stall_watched_ = true;
      s.progress_ms_ = now_ms_;
      stall_watch_.push_back(s.id_);
    }
  }
  if (s.out_tail_)
    s.out_tail_->next = it;
  else
    s.out_head_ = it;
  s.out_tail_ = it;
  s.out_bytes_ += it->length;
  queued_bytes_ += it->length;
  mark_dirty(s);
}

void Worker::send_message(Session& s, Opcode op, std::span<const uint8_t> payload) {
  engine::SharedFrame* f = encode_frame(op, payload);
  send_frame(s, f);
  f->release();
}

void Worker::flush() {
  while (Session* s = dirty_head_) {
    dirty_head_ = s->next_dirty_;
    if (!dirty_head_) dirty_tail_ = nullptr;
    s->dirty_ = false;
    s->next_dirty_ = nullptr;
    if (s->closing || !s->out_head_) continue;
    if (s->sending_) {
      // The kernel has not taken the previous batch through a whole wait (a send it could take
      // completes by the next pass) and the backlog behind it is over the cap: this reader is not
      // keeping up.
      if (s->state_ == Session::State::kOpen && pass_ - s->send_pass_ >= 2 &&
          capped_backlog(*s) > settings_->limits.outbound_cap) {
        enforce_cap(*s, 0);
      }
      continue;
    }
    SendBatch* b = new_batch();
    int n = 0;
    size_t bytes = 0;
    for (OutItem* it = s->out_head_; it && n < SendBatch::kMaxIov && bytes < kMaxBatchBytes;
         it = it->next) {
      b->iov[n].iov_base = it->frame->data() + it->offset;
      b->iov[n].iov_len = it->length;
      bytes += it->length;
      ++n;
    }
    b->msg = {};
    b->msg.msg_iov = b->iov;
    b->msg.msg_iovlen = n;
    s->sending_ = b;
    s->inflight_items_ = static_cast<uint16_t>(n);
    s->inflight_bytes_ = static_cast<uint32_t>(bytes);
    s->send_pass_ = pass_;
    backend_->send(s, &b->msg);
  }
}

void Worker::on_send_done(engine::Socket* sock, int res) {
  Session& s = as_session(sock);
  if (s.sending_) {
    free_batch(s.sending_);
    s.sending_ = nullptr;
  }
  s.inflight_items_ = 0;
  s.inflight_bytes_ = 0;
  if (res < 0) {
    drop_queue(s);
    abort_session(s);
    return;
  }
  size_t left = static_cast<size_t>(res);
  if (left > 0) s.progress_ms_ = now_ms_;
  while (left > 0 && s.out_head_) {
    OutItem* it = s.out_head_;
    if (left >= it->length) {
      left -= it->length;
      s.out_head_ = it->next;
      unlink_item(s, it);
    } else {
      it->offset += static_cast<uint32_t>(left);
      it->length -= static_cast<uint32_t>(left);
      s.out_bytes_ -= static_cast<uint32_t>(left);
      if (it->flags & OutItem::kUncapped) s.uncapped_bytes_ -= static_cast<uint32_t>(left);
      queued_bytes_ -= static_cast<int64_t>(left);
      left = 0;
    }
  }
  if (!s.out_head_) s.out_tail_ = nullptr;
  if (s.state_ == Session::State::kDead) {
    drop_queue(s);
    return;
  }
  if (s.out_head_) {
    mark_dirty(s);
    return;
  }
  if (s.close_after_flush_) {
    if (s.state_ == Session::State::kHttp)
      abort_session(s);
    else
      shut_write(s);
  }
}

void Worker::shut_write(Session& s) {
  // Our close frame is out: send FIN and let the peer close its side, which ends the session via
  // on_read_end; the linger timer bounds the wait.
  if (s.write_shut_) return;
  s.write_shut_ = true;
  ::shutdown(s.fd, SHUT_WR);
}

// ---- Timers -------------------------------------------------------------------------------------

void Worker::schedule(Session& s, int64_t deadline_ms) {
  // An open session's one timer node also carries its first-message deadline: whichever is due
  // first. Firing early is harmless: on_timer re-derives the next deadline.
  if (s.state_ == Session::State::kOpen && s.message_deadline_ms_ > 0)
    deadline_ms = std::min(deadline_ms, s.message_deadline_ms_);
  timers_.schedule(&s.timer_, deadline_ms);
}

void Worker::set_message_deadline(Session& s, int64_t ms) {
  if (s.state_ != Session::State::kOpen) return;
  if (ms <= 0) {
    s.message_deadline_ms_ = 0;  // a pending timer fires early and re-derives: harmless
    return;
  }
  s.message_deadline_ms_ = now_ms_ + ms;
  if (!s.timer_.linked() || s.timer_.deadline_ms > s.message_deadline_ms_)
    timers_.schedule(&s.timer_, s.message_deadline_ms_);
}

void Worker::on_timer(Session& s) {
  const Limits& lim = settings_->limits;
  switch (s.state_) {
    case Session::State::kHttp:
      // Handshake or keep-alive idle deadline passed (rescheduled whenever a request completes).
      abort_session(s);
      return;
    case Session::State::kOpen: {
      if (s.message_deadline_ms_ > 0 && now_ms_ >= s.message_deadline_ms_) {
        s.message_deadline_ms_ = 0;
        close_session(s, kCloseNormal, {});
        return;
      }
      if (s.ping_outstanding_) {
        if (s.last_rx_ms_ > s.ping_sent_ms_) {
          s.ping_outstanding_ = false;
        } else if (now_ms_ - s.ping_sent_ms_ >= lim.ping_timeout_ms) {
          fail(s, kCloseInternalError, "keepalive ping timeout");
          return;
        } else {
          schedule(s, s.ping_sent_ms_ + lim.ping_timeout_ms);
          return;
        }
      }
      if (lim.ping_interval_ms <= 0) {  // keepalive pings disabled
        if (s.message_deadline_ms_ > 0) schedule(s, s.message_deadline_ms_);
        return;
      }
      int64_t due = s.last_rx_ms_ + lim.ping_interval_ms;
      if (now_ms_ >= due) {
        static constexpr uint8_t kPingPayload[] = {'r', 'c'};
        send_message(s, Opcode::kPing, kPingPayload);
        s.ping_outstanding_ = true;
        s.ping_sent_ms_ = now_ms_;
        schedule(s, now_ms_ + lim.ping_timeout_ms);
      } else {
        schedule(s, due);
      }
      return;
    }
    case Session::State::kClosing:
      abort_session(s);
      return;
    case Session::State::kDead:
      return;
  }
}

// ---- Receiving ----------------------------------------------------------------------------------

void Worker::on_data(engine::Socket* sock, std::span<const uint8_t> data) {
  Session& s = as_session(sock);
  s.last_rx_ms_ = now_ms_;
  switch (s.state_) {
    case Session::State::kHttp:
      handle_http(s, data);
      break;
    case Session::State::kOpen:
    case Session::State::kClosing:
      handle_ws(s, data);
      break;
    case Session::State::kDead:
      break;
  }
}

void Worker::handle_ws(Session& s, std::span<const uint8_t> data) {
  if (s.discard_input_) return;
  // Held, or held input still waiting to be decoded: this goes behind it.
  if (s.held_in_ || (s.holds_ > 0 && !passes_holds(s))) {
    stash_input(s, data);
    return;
  }
  feed_ws(s, data);
}

void Worker::stash_input(Session& s, std::span<const uint8_t> data) {
  if (data.empty()) return;
  // Bounded: the socket is not read while held; only receives already completed land here.
  if (!s.held_in_) s.held_in_ = take_buffer();
  s.held_in_->append(reinterpret_cast<const char*>(data.data()), data.size());
}

void Worker::feed_ws(Session& s, std::span<const uint8_t> data) {
  FrameReader* reader = s.reader_ ? s.reader_ : readers_.acquire();
  s.reader_ = reader;
  FrameReader::Result res = reader->feed(data, [&](const FrameChunk& c) { return on_chunk(s, c); });
  if (res == FrameReader::Result::kStopped && s.state_ == Session::State::kOpen && s.holds_ > 0) {
    // A message took a hold or was deferred: everything after it waits, in order, until the holds
    // are released (run_resumes).
    stash_input(s, reader->take_rest());
    backend_->pause_read(&s);  // ordered holds leave reading on until something must wait
    if (reader->at_boundary()) {
      readers_.release(reader);
      s.reader_ = nullptr;
    }
    return;
  }
  if (res == FrameReader::Result::kProtocolError) fail(s, kCloseProtocolError, "protocol error");
  if (res != FrameReader::Result::kNeedMore) {
    // Decoding stopped mid-input (close or error): the rest of the stream is not worth parsing.
    s.discard_input_ = true;
  }
  if (res != FrameReader::Result::kNeedMore || reader->at_boundary()) {
    readers_.release(reader);  // the pool keeps clean readers and frees the others
    s.reader_ = nullptr;
  }
}

void Worker::fail(Session& s, uint16_t code, const char* reason) {
  if (s.state_ == Session::State::kOpen) {
    close_session(s, code, reason);
  } else if (s.state_ == Session::State::kHttp) {
    abort_session(s);
  }
}

bool Worker::on_chunk(Session& s, const FrameChunk& c) {
  if (s.state_ == Session::State::kDead) return false;
  if (s.state_ == Session::State::kClosing) {
    // After our close frame only the peer's close matters; everything else is discarded.
    if (c.frame_end && c.opcode == static_cast<uint8_t>(Opcode::kClose) && s.write_shut_) {
      abort_session(s);  // both close frames exchanged and ours is out: done
      return false;
    }
    return true;
  }
  const size_t max_size = settings_->limits.max_message_size;
  if (c.frame_start) {
    if (c.rsv) return fail(s, kCloseProtocolError, "reserved bits set"), false;
    if (!is_known_opcode(c.opcode)) return fail(s, kCloseProtocolError, "unknown opcode"), false;
    if (!c.masked) return fail(s, kCloseProtocolError, "client frames must be masked"), false;
    // A ping costs a pong: pings share the data messages' budget, or a client could make the
    // server write without limit.
    if (c.opcode == static_cast<uint8_t>(Opcode::kPing) && !take_message_token(s))
      return fail(s, kClosePolicyViolation, "message rate limit exceeded"), false;
    if (!is_control(c.opcode)) {
      if (c.opcode == static_cast<uint8_t>(Opcode::kContinuation)) {
        if (!s.in_message_) return fail(s, kCloseProtocolError, "unexpected continuation"), false;
      } else {
        if (s.in_message_) return fail(s, kCloseProtocolError, "expected continuation"), false;
        if (s.skip_token_)
          s.skip_token_ = false;
        else if (!take_message_token(s))
          return fail(s, kClosePolicyViolation, "message rate limit exceeded"), false;
        s.in_message_ = true;
        s.message_opcode_ = c.opcode;
        s.message_size_ = 0;
        s.utf8_.reset();
      }
      if (s.message_size_ + c.payload_length > max_size) {
        return fail(s, kCloseMessageTooBig, "message too big"), false;
      }
    }
  }
  if (is_control(c.opcode)) {
    if (c.frame_start && c.frame_end) {
      handle_control(s, c.opcode, c.data);
    } else {
      // A control payload (<= 125 bytes) split across reads: collect it.
      if (c.frame_start) {
        if (!s.assembly_) s.assembly_ = take_buffer();
      }
      // Control frames may interleave a fragmented message, so they use the tail of the buffer.
      std::string& a = *s.assembly_;
      a.append(reinterpret_cast<const char*>(c.data.data()), c.data.size());
      if (c.frame_end) {
        size_t len = c.payload_length;
        std::string ctrl = a.substr(a.size() - len);
        a.resize(a.size() - len);
        if (a.empty() && !s.in_message_) give_buffer(s.assembly_);
        handle_control(s, c.opcode, {reinterpret_cast<uint8_t*>(ctrl.data()), ctrl.size()});
      }
    }
    return s.state_ == Session::State::kOpen;
  }
  // Data frame chunk.
  if (c.data.empty() && !c.frame_end) return true;  // a header ahead of its payload
  s.message_size_ += c.data.size();
  bool text = s.message_opcode_ == static_cast<uint8_t>(Opcode::kText);
  if (text && !s.utf8_.feed(c.data.data(), c.data.size())) {
    return fail(s, kCloseInvalidPayload, "invalid UTF-8"), false;
  }
  bool message_end = c.frame_end && c.fin;
  if (message_end && text && !s.utf8_.complete()) {
    return fail(s, kCloseInvalidPayload, "invalid UTF-8"), false;
  }
  auto op = static_cast<Opcode>(s.message_opcode_);
  if (c.frame_start && message_end && !s.assembly_) {
    // Whole message in one chunk: hand the reader's buffer over without copying.
    s.in_message_ = false;
    s.message_deadline_ms_ = 0;
    return deliver_message(s, op, c.data);
  }
  if (!s.assembly_) s.assembly_ = take_buffer();
  s.assembly_->append(reinterpret_cast<const char*>(c.data.data()), c.data.size());
  if (message_end) {
    s.in_message_ = false;
    s.message_deadline_ms_ = 0;
    std::string* a = s.assembly_;
    bool go = deliver_message(s, op, {reinterpret_cast<uint8_t*>(a->data()), a->size()});
    if (s.assembly_ == a) give_buffer(s.assembly_);
    return go;
  }
  return s.state_ == Session::State::kOpen;
}

void Worker::handle_control(Session& s, uint8_t opcode, std::span<uint8_t> payload) {
  switch (static_cast<Opcode>(opcode)) {
    case Opcode::kPing:
      send_message(s, Opcode::kPong, payload);
      break;
    case Opcode::kPong:
      s.ping_outstanding_ = false;
      break;
    case Opcode::kClose: {
      uint16_t code = kCloseNormal;
      if (payload.size() == 1) return fail(s, kCloseProtocolError, "bad close frame");
      if (payload.size() >= 2) {
        code = static_cast<uint16_t>(payload[0] << 8 | payload[1]);
        if (!valid_close_code_on_wire(code)) return fail(s, kCloseProtocolError, "bad close code");
        if (!is_valid_utf8(payload.data() + 2, payload.size() - 2)) {
          return fail(s, kCloseProtocolError, "bad close reason");
        }
      }
      close_session(s, code, {});
      break;
    }
    default:
      break;
  }
}

void Worker::close_session(Session& s, uint16_t code, std::string_view reason) {
  if (s.state_ != Session::State::kOpen) return;
  // State first: the close frame bypasses the outbound cap, and nothing may follow it.
  s.state_ = Session::State::kClosing;
  engine::SharedFrame* f = encode_close(code, reason);
  enqueue(s, f);
  f->release();
  s.close_sent_ = true;
  s.close_after_flush_ = true;
  end_websocket(s);
  schedule(s,
           now_ms_ + std::min<int64_t>(kCloseLingerMs, settings_->limits.drain_timeout_ms + 500));
}

}  // namespace ringcast::websocket

namespace ringcast::websocket {

// ---- Input holds and pacing ---------------------------------------------------------------------

void Worker::hold_input(Session& s) {
  if (s.holds_++ == 0 && s.state_ != Session::State::kDead) backend_->pause_read(&s);
}

void Worker::release_input(Session& s) {
  if (s.holds_ == 0) return;
  if (--s.holds_ == 0) resumes_.push_back(s.id_);
}

void Worker::release_input(uint64_t session_id) {
  if (Session* s = find_session(session_id)) release_input(*s);
}

void Worker::pace(Session& s, engine::SharedFrame* frame) {
  if (!s.credit_) s.credit_ = new engine::FlowCredit(this);
  frame->set_credit(s.credit_);
}

bool Worker::after_message(Session& s) {
  if (s.state_ != Session::State::kOpen) return false;
  if (s.credit_ && !s.pace_waiting_) {
    // Over the high-water mark of frames still waiting in recipients' queues: read no more of
    // this sender until they have taken half of it.
    const auto high = static_cast<int64_t>(settings_->limits.outbound_cap);
    if (s.credit_->outstanding() > high && s.credit_->wait_for(high / 2)) {
      s.pace_waiting_ = true;
      pace_waits_.push_back(s.id_);
      hold_input(s);
    }
  }
  return s.holds_ == 0 || passes_holds(s);
}

bool Worker::passes_holds(const Session& s) const {
  // Only ordered holds, all for one key, and not too many in flight.
  return s.pipe_ && s.pipe_->key && s.holds_ == s.pipe_->ordered &&
         s.pipe_->ordered < kMaxPipeline && s.pipe_->bytes < settings_->limits.outbound_cap;
}

bool Worker::deliver_message(Session& s, Opcode op, std::span<uint8_t> payload) {
  MessageHandler* h = s.route_->handler;
  if (s.holds_ == 0) {
    h->on_message(s, op, payload);
    return after_message(s);
  }
  if (!passes_holds(s) || h->order_key(s, op, payload) != s.pipe_->key) {
    defer_message(s, op, payload);
    return false;
  }
  // Ordered behind the pending writes by their home core; its direct replies wait for them.
  s.pipe_->entry = s.pipe_->taken;
  s.passing_ = true;
  h->on_message(s, op, payload);
  s.passing_ = false;
  return after_message(s);
}

void Worker::defer_message(Session& s, Opcode op, std::span<const uint8_t> payload) {
  // The message is decoded already: it goes back in front of the held input as a frame of its
  // own (masked with a zero key, so the payload bytes are unchanged) and is decoded again once the
  // holds are released. It was counted against the rate limit once.
  uint8_t head[14];
  size_t n = 0;
  const uint64_t len = payload.size();
  head[n++] = static_cast<uint8_t>(0x80 | static_cast<uint8_t>(op));
  if (len < 126) {
    head[n++] = static_cast<uint8_t>(0x80 | len);
  } else if (len < 65536) {
    head[n++] = 0x80 | 126;
    head[n++] = static_cast<uint8_t>(len >> 8);
    head[n++] = static_cast<uint8_t>(len);
  } else {
    head[n++] = 0x80 | 127;
    for (int i = 7; i >= 0; --i) head[n++] = static_cast<uint8_t>(len >> (8 * i));
  }
  for (int i = 0; i < 4; ++i) head[n++] = 0;
  if (!s.held_in_) s.held_in_ = take_buffer();
  s.held_in_->append(reinterpret_cast<const char*>(head), n);
  s.held_in_->append(reinterpret_cast<const char*>(payload.data()), payload.size());
  s.skip_token_ = true;
  backend_->pause_read(&s);
}

void Worker::hold_ordered(Session& s, const void* key, size_t bytes) {
  if (!s.pipe_) s.pipe_ = new Pipeline();
  Pipeline& p = *s.pipe_;
  if (p.ordered == 0)
    p.key = key;
  else if (p.key != key)
    p.key = nullptr;  // writes to two places: nothing passes until all are done
  ++p.ordered;
  ++p.taken;
  p.bytes += bytes;
  ++s.holds_;  // reading goes on: a passing message may follow (deliver_message)
}

void Worker::release_ordered(uint64_t session_id, size_t bytes) {
  Session* s = find_session(session_id);
  if (!s || !s->pipe_ || s->pipe_->ordered == 0) return;
  Pipeline& p = *s->pipe_;
  p.bytes -= std::min(bytes, p.bytes);
  --p.ordered;
  ++p.released;
  if (p.ordered == 0) p.key = nullptr;
  flush_held_replies(*s);  // kept until the session goes: a pipelining client needs it again
  release_input(*s);
}

void Worker::flush_held_replies(Session& s) {
  Pipeline& p = *s.pipe_;
  while (p.head && p.head->after <= p.released) {
    Pipeline::HeldReply* r = p.head;
    p.head = r->next;
    if (!p.head) p.tail = nullptr;
    send_frame(s, r->frame);  // the head moved on: this one is not held again
    r->frame->release();
    delete r;
  }
}

void Worker::drop_pipeline(Session& s) {
  if (!s.pipe_) return;
  for (Pipeline::HeldReply* r = s.pipe_->head; r;) {
    Pipeline::HeldReply* next = r->next;
    r->frame->release();
    delete r;
    r = next;
  }
  delete s.pipe_;
  s.pipe_ = nullptr;
}

void Worker::check_paced() {
  for (size_t i = 0; i < pace_waits_.size();) {
    Session* s = find_session(pace_waits_[i]);
    if (s && s->pace_waiting_ && s->credit_->waiting()) {
      ++i;
      continue;
    }
    if (s && s->pace_waiting_) {
      s->pace_waiting_ = false;
      release_input(*s);
    }
    pace_waits_[i] = pace_waits_.back();
    pace_waits_.pop_back();
  }
}

void Worker::run_resumes() {
  resume_scratch_.swap(resumes_);  // releases during decoding go to the next round
  for (uint64_t id : resume_scratch_) {
    Session* s = find_session(id);
    if (!s || s->holds_ > 0 || s->state_ == Session::State::kDead) continue;
    std::string* held = s->held_in_;
    s->held_in_ = nullptr;
    if ((held || s->reader_) && !s->discard_input_ && s->state_ != Session::State::kHttp) {
      // What waited, in order; an empty feed lets the decoder finish what it had buffered.
      feed_ws(*s, held ? std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(held->data()),
                                                  held->size())
                       : std::span<const uint8_t>());
    }
    give_buffer(held);
    if (s->holds_ == 0 && s->state_ != Session::State::kDead) backend_->resume_read(s);
  }
  resume_scratch_.clear();
}

void Worker::check_stalls() {
  next_stall_check_ms_ = now_ms_ + 100;
  const int64_t timeout = settings_->limits.stall_timeout_ms;
  for (size_t i = 0; i < stall_watch_.size();) {
    Session* s = find_session(stall_watch_[i]);
    bool keep = s && s->uncapped_bytes_ > 0 && s->state_ == Session::State::kOpen;
    if (keep && !s->sending_) s->progress_ms_ = now_ms_;  // nothing in flight: nothing is stuck
    if (keep && now_ms_ - s->progress_ms_ >= timeout) {
      // The kernel took nothing for the whole timeout: the reader stopped. Its queue goes (so the
      // senders it held resume) and it is told why, if it ever reads again.
      RC_DEBUG("session %lu made no progress for %d ms, closing", s->id_,
               static_cast<int>(timeout));
      stats_.slow_consumer_closes.fetch_add(1, std::memory_order_relaxed);
      drop_unsent(*s);
      close_session(*s, kCloseTryAgainLater, "slow consumer");
      keep = false;
    }
    if (keep) {
      ++i;
      continue;
    }
    if (s) s->stall_watched_ = false;
    stall_watch_[i] = stall_watch_.back();
    stall_watch_.pop_back();
  }
}

}  // namespace ringcast::websocket

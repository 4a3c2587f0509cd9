#include "ringcast/websocket/worker.h"

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

namespace {

constexpr int64_t kCloseLingerMs = 2000;    // wait for the peer after our close frame
constexpr size_t kMaxBatchBytes = 1 << 20;  // bytes per vectored send

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
void Session::close_after(int64_t ms, uint16_t code, const char* reason) {
  worker_->set_close_deadline(*this, ms, code, reason);
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
  for (auto* i : spare_inflaters_) delete i;
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
  backend_ = make_backend(options);
  backend_kind_ = backend_->kind();
  stats_.metrics.tid.store(static_cast<int>(gettid()), std::memory_order_relaxed);
  engine::SharedFrame::set_fanout_observer_this_thread(
      [](void* m, int64_t ns) {
        static_cast<WorkerMetrics*>(m)->fanout_ns.observe(static_cast<uint64_t>(ns));
      },
      &stats_.metrics);
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
  drop_inflater(s);
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

void Worker::drop_queue(Session& s) {
  // Items in the batch in flight are still referenced by the kernel until its completion; callers
  // only drop the queue when no send is in flight or the socket is gone.
  for (OutItem* it = s.out_head_; it;) {
    OutItem* next = it->next;
    release_item_frame(it);
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

void Worker::send_frame(Session& s, engine::SharedFrame* f) {
  if (s.state_ == Session::State::kDead || s.close_sent_) return;
  if (s.passing_ && s.pipe_ && hold_reply(s, f)) return;
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

void Worker::release_item_frame(OutItem* it) {
  if (it->flags & OutItem::kFanout) it->frame->fanout_done();
  it->frame->release();
}

void Worker::enqueue(Session& s, engine::SharedFrame* f, uint8_t flags) {
  bool owned = false;
  engine::SharedFrame* encoded = f;
  if (s.deflate_bits_ && f->message_opcode()) f = deflated_for(s, f, owned);
  if (!owned) f->add_ref();
  // The sampled fan-out latency follows the frame as encoded; sends of a compressed variant are
  // not part of it.
  if (f == encoded && f->fanout_tracked()) {
    f->fanout_hold();
    flags |= OutItem::kFanout;
  }
  if (!(flags & OutItem::kKeep)) WorkerMetrics::add(stats_.metrics.frames_out);
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
  if (left > 0) {
    s.progress_ms_ = now_ms_;
    WorkerMetrics::add(stats_.metrics.bytes_out, left);
  }
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
  backend_->shutdown_write(&s);
}

// ---- Timers -------------------------------------------------------------------------------------

namespace {

// The earliest of an open session's handler deadlines (first message, close_after), or 0.
int64_t handler_deadline(int64_t message_deadline_ms, int64_t close_deadline_ms) {
  if (message_deadline_ms > 0 && close_deadline_ms > 0)
    return std::min(message_deadline_ms, close_deadline_ms);
  return message_deadline_ms > 0 ? message_deadline_ms : close_deadline_ms;
}

}  // namespace

void Worker::schedule(Session& s, int64_t deadline_ms) {
  // An open session's one timer node also carries its handler deadlines (first message,
  // close_after): whichever is due first. Firing early is harmless: on_timer re-derives the next
  // deadline.
  if (s.state_ == Session::State::kOpen) {
    int64_t h = handler_deadline(s.message_deadline_ms_, s.close_deadline_ms_);
    if (h > 0) deadline_ms = std::min(deadline_ms, h);
  }
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

void Worker::set_close_deadline(Session& s, int64_t ms, uint16_t code, const char* reason) {
  if (s.state_ != Session::State::kOpen) return;
  if (ms < 0) {
    s.close_deadline_ms_ = 0;  // a pending timer fires early and re-derives: harmless
    return;
  }
  // Never 0: that means "none".
  s.close_deadline_ms_ = std::max<int64_t>(now_ms_ + ms, 1);
  s.close_code_ = code;
  s.close_reason_ = reason;
  if (!s.timer_.linked() || s.timer_.deadline_ms > s.close_deadline_ms_)
    timers_.schedule(&s.timer_, s.close_deadline_ms_);
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
      if (s.close_deadline_ms_ > 0 && now_ms_ >= s.close_deadline_ms_) {
        s.close_deadline_ms_ = 0;
        close_session(s, s.close_code_, s.close_reason_ ? s.close_reason_ : "");
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
        if (int64_t h = handler_deadline(s.message_deadline_ms_, s.close_deadline_ms_); h > 0)
          schedule(s, h);
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
  WorkerMetrics::add(stats_.metrics.bytes_in, data.size());
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

void Worker::rate_limit_close(Session& s) {
  if (s.state_ == Session::State::kOpen) WorkerMetrics::add(stats_.metrics.rate_limit_closes);
  fail(s, kClosePolicyViolation, "message rate limit exceeded");
}

void Worker::fail(Session& s, uint16_t code, const char* reason) {
  if (s.state_ == Session::State::kOpen) {
    close_session(s, code, reason);
  } else if (s.state_ == Session::State::kHttp) {
    abort_session(s);
  }
}

void Worker::close_session(Session& s, uint16_t code, std::string_view reason) {
  if (s.state_ != Session::State::kOpen) return;
  // State first: the close frame bypasses the outbound cap, and nothing may follow it.
  s.state_ = Session::State::kClosing;
  stats_.metrics.close_sent(code);
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

namespace ringcast::websocket {}  // namespace ringcast::websocket

// The worker's flow control: the outbound cap and what happens over it, input holds (a session's
// later messages wait), ordered holds for pipelined durable writes with the replies they hold back,
// pacing of senders by their frames' credit, and the stall watch over recipients. Split from
// worker.cpp, which keeps the loop, sending, timers and frame decoding.
#include <cstring>

#include "ringcast/engine/log.h"
#include "ringcast/websocket/close_code.h"
#include "ringcast/websocket/worker.h"

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
constexpr uint32_t kMaxPipeline = 4096;  // durable writes in flight per connection
}  // namespace

// ---- Outbound cap and slow consumers ------------------------------------------------------------

size_t Worker::capped_backlog(const Session& s) const {
  // What the kernel has not taken, less what the cap does not judge (snapshots, paced frames).
  // Approximate while a send covering uncapped items is in flight: it errs towards leniency by at
  // most one batch.
  const size_t exempt = size_t{s.inflight_bytes_} + s.uncapped_bytes_;
  return s.out_bytes_ > exempt ? s.out_bytes_ - exempt : 0;
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
  release_item_frame(it);
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
    return (it.flags & (OutItem::kKeep | OutItem::kUncapped)) || it.offset != 0 ? 0 : 1;
  });
  if (dropped) stats_.dropped_messages.fetch_add(dropped, std::memory_order_relaxed);
  return capped_backlog(s) + incoming <= cap;
}

void Worker::drop_unsent(Session& s) {
  // Everything but the HTTP response: a close frame queued next must never reach the client ahead
  // of the 101.
  drop_queued(s, [](const OutItem& it) { return it.flags & OutItem::kKeep ? 0 : 1; });
}

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

bool Worker::hold_reply(Session& s, engine::SharedFrame* f) {
  // A reply to a message that passed earlier writes waits until they are in effect (and behind
  // any reply already waiting). What others send this session meanwhile (the effects of those
  // earlier writes among them) is not held.
  Pipeline& p = *s.pipe_;
  if (!p.head && p.released >= p.entry) return false;
  f->add_ref();
  auto* r = new Pipeline::HeldReply{f, p.entry, nullptr};
  if (p.tail)
    p.tail->next = r;
  else
    p.head = r;
  p.tail = r;
  return true;
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

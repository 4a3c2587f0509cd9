// A Backend that never touches the kernel, for driving a real Worker from a fuzzer: the harness
// delivers "received" bytes itself, sends complete at once (whole, or short when asked) and their
// bytes go to a per-connection checker of what the server wrote; close() finishes on the next poll
// once no send is in flight, as the real backends do.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "ringcast/engine/backend.h"

namespace ringcast::fuzz {

class FakeBackend final : public engine::Backend {
 public:
  // What the harness learns about its connections.
  class Observer {
   public:
    virtual ~Observer() = default;
    virtual void attached(engine::Socket* s) = 0;
    // Every byte range the worker sends on s, in order.
    virtual void sent(engine::Socket* s, const uint8_t* p, size_t n) = 0;
    // Just before on_closed frees s.
    virtual void finished(engine::Socket* s) = 0;
  };

  FakeBackend(engine::BackendEvents& events, Observer& observer)
      : events_(events), observer_(observer) {}

  engine::BackendKind kind() const override { return engine::BackendKind::kEpoll; }
  void add_listener(int, int) override {}
  void close_listeners() override {}
  void attach(engine::Socket* s, int fd) override {
    s->fd = fd;
    s->recv_armed = true;
    observer_.attached(s);
  }
  void pause_read(engine::Socket* s) override { s->read_paused = true; }
  void resume_read(engine::Socket* s) override { s->read_paused = false; }
  void send(engine::Socket* s, msghdr* msg) override {
    ++s->inflight;
    size_t total = 0;
    size_t limit = short_send_ ? short_send_ : SIZE_MAX;
    for (size_t i = 0; i < msg->msg_iovlen && total < limit; ++i) {
      const iovec& v = msg->msg_iov[i];
      size_t n = std::min(v.iov_len, limit - total);
      observer_.sent(s, static_cast<const uint8_t*>(v.iov_base), n);
      total += n;
    }
    completions_.push_back({s, static_cast<int>(total)});
  }
  void close(engine::Socket* s) override {
    if (s->closing) return;
    s->closing = true;
    s->recv_armed = false;
    maybe_finish(s);
  }
  void poll(int) override {
    events_.on_wakeup();
    while (!completions_.empty() || !closed_.empty()) {
      std::vector<Completion> batch;
      batch.swap(completions_);
      for (auto& c : batch) {
        --c.s->inflight;
        events_.on_send_done(c.s, c.res);
        maybe_finish(c.s);
      }
      std::vector<engine::Socket*> closed;
      closed.swap(closed_);
      for (engine::Socket* s : closed) {
        observer_.finished(s);
        events_.on_closed(s);
      }
    }
  }
  void wake() override {}

  // Sends complete with at most this many bytes (0: whole), so partial sends are exercised.
  void set_short_send(size_t bytes) { short_send_ = bytes; }

 private:
  struct Completion {
    engine::Socket* s;
    int res;
  };
  void maybe_finish(engine::Socket* s) {
    if (s->closing && s->inflight == 0 && s->fd != kFinished) {
      s->fd = kFinished;
      closed_.push_back(s);
    }
  }
  static constexpr int kFinished = -2;

  engine::BackendEvents& events_;
  Observer& observer_;
  size_t short_send_ = 0;
  std::vector<Completion> completions_;
  std::vector<engine::Socket*> closed_;
};

}  // namespace ringcast::fuzz

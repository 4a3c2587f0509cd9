// epoll backend, for kernels or sandboxes without io_uring. Level-triggered readiness, reads into
// one per-loop scratch buffer (so idle connections hold no buffer here either), sendmsg at flush
// time with EPOLLOUT only while a socket's send is blocked. Completions are queued and delivered
// from poll() so both backends call the upper layer in the same order and never re-entrantly.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "ringcast/engine/backend.h"
#include "ringcast/engine/descriptor_reserve.h"
#include "ringcast/engine/log.h"

namespace ringcast::engine {
namespace {

constexpr uint64_t kTagSocket = 0, kTagListener = 1, kTagWake = 2, kTagMask = 7;
constexpr int kMaxEvents = 256;
constexpr int kAcceptBurst = 64;
constexpr int kReadBurst = 4;  // reads per socket per pass, so one busy peer can't starve the rest

struct Listener {
  int id;
  int fd;
  bool closed = false;
  bool paused = false;  // out of epoll after a failed accept (EMFILE...), until resume_at_ms
  int64_t resume_at_ms = 0;
};

int64_t mono_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct Completion {
  Socket* s;
  int res;
};

class EpollBackend final : public Backend {
 public:
  EpollBackend(BackendEvents& events, const BackendOptions& opts)
      : events_(events),
        scratch_(opts.recv_buffer_size < 65536 ? 65536 : opts.recv_buffer_size),
        reserve_(opts.refusal) {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kTagWake;
    epoll_ctl(ep_, EPOLL_CTL_ADD, wake_fd_, &ev);
  }

  ~EpollBackend() override {
    for (auto* l : listeners_) {
      if (!l->closed) ::close(l->fd);
      delete l;
    }
    ::close(wake_fd_);
    ::close(ep_);
  }

  BackendKind kind() const override { return BackendKind::kEpoll; }

  void add_listener(int listener_id, int fd) override {
    auto* l = new Listener{listener_id, fd};
    listeners_.push_back(l);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = reinterpret_cast<uint64_t>(l) | kTagListener;
    epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
  }

  void close_listeners() override {
    for (auto* l : listeners_) {
      if (l->closed) continue;
      l->closed = true;
      if (!l->paused) epoll_ctl(ep_, EPOLL_CTL_DEL, l->fd, nullptr);
      ::close(l->fd);
    }
  }

  void attach(Socket* s, int fd) override {
    s->fd = fd;
    s->recv_armed = true;
    update(s, EPOLL_CTL_ADD);
  }

  void pause_read(Socket* s) override {
    if (s->read_paused) return;
    s->read_paused = true;
    if (!s->closing) update(s, EPOLL_CTL_MOD);
  }

  void resume_read(Socket* s) override {
    if (!s->read_paused) return;
    s->read_paused = false;
    if (!s->closing) update(s, EPOLL_CTL_MOD);
  }

  void send(Socket* s, msghdr* msg) override {
    ++s->inflight;
    ssize_t n = ::sendmsg(s->fd, msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      s->pending_msg = msg;
      s->send_pending = true;
      update(s, EPOLL_CTL_MOD);
      return;
    }
    completions_.push_back({s, n < 0 ? -errno : static_cast<int>(n)});
  }

  void close(Socket* s) override {
    if (s->closing) return;
    s->closing = true;
    epoll_ctl(ep_, EPOLL_CTL_DEL, s->fd, nullptr);
    if (s->send_pending) {
      s->send_pending = false;
      completions_.push_back({s, -ECANCELED});
    }
    maybe_finish(s);
  }

  void poll(int timeout_ms) override {
    if (!completions_.empty() || !closed_.empty()) timeout_ms = 0;
    if (paused_listeners_) resume_listeners(timeout_ms);
    epoll_event events[kMaxEvents];
    int n = epoll_wait(ep_, events, kMaxEvents, timeout_ms);
    if (n < 0 && errno != EINTR) RC_ERROR("epoll_wait failed: %s", std::strerror(errno));
    events_.on_wakeup();
    for (int i = 0; i < n; ++i) {
      uint64_t data = events[i].data.u64;
      uint64_t tag = data & kTagMask;
      if (tag == kTagWake) {
        uint64_t v;
        ssize_t ignored = ::read(wake_fd_, &v, sizeof v);
        (void)ignored;
        events_.on_wake();
      } else if (tag == kTagListener) {
        accept_burst(reinterpret_cast<Listener*>(data & ~kTagMask));
      } else {
        on_socket(reinterpret_cast<Socket*>(data), events[i].events);
      }
    }
    deliver_completions();
    deliver_closed();
  }

  void wake() override {
    uint64_t one = 1;
    ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
    (void)ignored;
  }

 private:
  void update(Socket* s, int op) {
    epoll_event ev{};
    ev.events = (s->recv_armed && !s->read_paused ? uint32_t{EPOLLIN | EPOLLRDHUP} : 0u) |
                (s->send_pending ? uint32_t{EPOLLOUT} : 0u);
    ev.data.u64 = reinterpret_cast<uint64_t>(s) | kTagSocket;
    epoll_ctl(ep_, op, s->fd, &ev);
  }

  void accept_burst(Listener* l) {
    for (int i = 0; i < kAcceptBurst && !l->closed; ++i) {
      sockaddr_storage peer{};
      socklen_t len = sizeof peer;
      int fd =
          accept4(l->fd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK) return;
        if (DescriptorReserve::transient(err)) continue;
        // Level-triggered: the queued connection keeps the listener readable, so retrying now
        // would spin. Rest it instead.
        pause_listener(l, reserve_.on_accept_error(l->fd, err));
        return;
      }
      reserve_.on_accept_ok();
      events_.on_accept(l->id, fd, peer);
    }
  }

  void pause_listener(Listener* l, int ms) {
    if (l->paused) return;
    epoll_ctl(ep_, EPOLL_CTL_DEL, l->fd, nullptr);
    l->paused = true;
    l->resume_at_ms = mono_ms() + ms;
    ++paused_listeners_;
  }

  void resume_listeners(int& timeout_ms) {
    const int64_t now = mono_ms();
    for (auto* l : listeners_) {
      if (!l->paused) continue;
      if (l->closed) {
        l->paused = false;
        --paused_listeners_;
        continue;
      }
      if (now < l->resume_at_ms) {
        int wait = static_cast<int>(l->resume_at_ms - now);
        if (timeout_ms < 0 || timeout_ms > wait) timeout_ms = wait;
        continue;
      }
      l->paused = false;
      --paused_listeners_;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = reinterpret_cast<uint64_t>(l) | kTagListener;
      epoll_ctl(ep_, EPOLL_CTL_ADD, l->fd, &ev);
    }
  }

  void on_socket(Socket* s, uint32_t ev) {
    if (s->closing) return;
    if ((ev & EPOLLOUT) && s->send_pending) {
      ssize_t n = ::sendmsg(s->fd, s->pending_msg, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
        s->send_pending = false;
        s->pending_msg = nullptr;
        completions_.push_back({s, n < 0 ? -errno : static_cast<int>(n)});
        update(s, EPOLL_CTL_MOD);
      }
    }
    if (!(ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) || !s->recv_armed || s->read_paused) {
      return;
    }
    for (int i = 0; i < kReadBurst; ++i) {
      ssize_t n = ::recv(s->fd, scratch_.data(), scratch_.size(), MSG_DONTWAIT);
      if (n > 0) {
        events_.on_data(s, {scratch_.data(), static_cast<size_t>(n)});
        if (s->closing || s->read_paused) return;
        if (static_cast<size_t>(n) < scratch_.size()) return;  // drained; level-triggered anyway
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
      s->recv_armed = false;
      update(s, EPOLL_CTL_MOD);
      events_.on_read_end(s, n == 0 ? 0 : -errno);
      return;
    }
  }

  void deliver_completions() {
    while (!completions_.empty()) {
      // Swapping with a member keeps both capacities: no allocation per pass.
      completion_batch_.clear();
      completion_batch_.swap(completions_);
      for (auto& c : completion_batch_) {
        --c.s->inflight;
        events_.on_send_done(c.s, c.res);
        maybe_finish(c.s);
      }
    }
  }

  void maybe_finish(Socket* s) {
    if (s->closing && s->inflight == 0 && s->fd >= 0) {
      ::close(s->fd);
      s->fd = -1;
      closed_.push_back(s);
      // A descriptor came free: a listener resting after EMFILE may accept again right away.
      if (paused_listeners_)
        for (auto* l : listeners_) l->resume_at_ms = 0;
    }
  }

  void deliver_closed() {
    while (!closed_.empty()) {
      closed_batch_.clear();
      closed_batch_.swap(closed_);
      for (Socket* s : closed_batch_) events_.on_closed(s);
    }
  }

  BackendEvents& events_;
  int ep_ = -1;
  int wake_fd_ = -1;
  std::vector<uint8_t> scratch_;
  std::vector<Listener*> listeners_;
  int paused_listeners_ = 0;
  DescriptorReserve reserve_;
  std::vector<Completion> completions_, completion_batch_;
  std::vector<Socket*> closed_, closed_batch_;
};

}  // namespace

std::unique_ptr<Backend> make_epoll_backend(BackendEvents& events, const BackendOptions& opts) {
  return std::make_unique<EpollBackend>(events, opts);
}

}  // namespace ringcast::engine

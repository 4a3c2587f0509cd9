// io_uring backend: multishot accept, multishot receive into a provided buffer ring (an idle
// connection holds no receive buffer), sendmsg with iovecs, and one io_uring_enter per loop pass
// that both submits everything queued during the pass and waits for the next completions.
#include <liburing.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "ringcast/engine/backend.h"
#include "ringcast/engine/descriptor_reserve.h"
#include "ringcast/engine/log.h"

namespace ringcast::engine {
namespace {

enum Tag : uint64_t {
  kTagAccept = 1,
  kTagRecv = 2,
  kTagSend = 3,
  kTagWake = 4,
  kTagIgnore = 5,
  kTagMsgRing = 6,  // posted into our ring by another loop
};
constexpr uint64_t kTagMask = 7;
constexpr uint16_t kBufferGroup = 0;

uint64_t tagged(const void* p, Tag tag) {
  return reinterpret_cast<uint64_t>(p) | tag;
}

struct Listener {
  int id;
  int fd;
  bool armed = false;
  bool closed = false;
  int64_t retry_at_ms = 0;  // accept failed (EMFILE...): try again later instead of spinning
};

int64_t mono_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

class IoUringBackend final : public Backend {
 public:
  IoUringBackend(BackendEvents& events, const BackendOptions& opts)
      : events_(events), opts_(opts), reserve_(opts.refusal) {}

  ~IoUringBackend() override {
    for (auto* l : listeners_) {
      if (!l->closed) ::close(l->fd);
      delete l;
    }
    if (ring_ready_) io_uring_queue_exit(&ring_);
    if (buf_ring_) munmap(buf_ring_, buf_ring_bytes_);
    if (buffers_) munmap(buffers_, buffers_bytes_);
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }

  bool init(std::string& why) {
    io_uring_params p{};
    // Prefer the flags that cut kernel-side wakeups; fall back on older kernels.
    const unsigned flag_sets[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        0,
    };
    int rc = -EINVAL;
    for (unsigned flags : flag_sets) {
      std::memset(&p, 0, sizeof p);
      p.flags = flags;
      rc = io_uring_queue_init_params(opts_.ring_entries, &ring_, &p);
      if (rc == 0) {
        setup_flags_ = flags;
        break;
      }
      if (rc != -EINVAL) break;
    }
    if (rc != 0) {
      why = std::string("io_uring_setup failed: ") + std::strerror(-rc);
      return false;
    }
    ring_ready_ = true;
    if (!(p.features & IORING_FEAT_EXT_ARG)) {
      why = "kernel lacks IORING_FEAT_EXT_ARG (need Linux 5.11+)";
      return false;
    }
    // Provided buffer ring: the kernel picks a buffer only when data actually arrives.
    unsigned count = opts_.recv_buffer_count;
    buf_ring_bytes_ = sizeof(io_uring_buf) * count;
    void* ring_mem =
        mmap(nullptr, buf_ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (ring_mem == MAP_FAILED) {
      why = "mmap of buffer ring failed";
      return false;
    }
    buf_ring_ = static_cast<io_uring_buf_ring*>(ring_mem);
    buffers_bytes_ = static_cast<size_t>(count) * opts_.recv_buffer_size;
    void* bufs =
        mmap(nullptr, buffers_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (bufs == MAP_FAILED) {
      why = "mmap of receive buffers failed";
      return false;
    }
    buffers_ = static_cast<uint8_t*>(bufs);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uint64_t>(buf_ring_);
    reg.ring_entries = count;
    reg.bgid = kBufferGroup;
    rc = io_uring_register_buf_ring(&ring_, &reg, 0);
    if (rc != 0) {
      why = std::string("provided buffer rings unsupported: ") + std::strerror(-rc);
      return false;
    }
    io_uring_buf_ring_init(buf_ring_);
    buf_mask_ = io_uring_buf_ring_mask(count);
    for (unsigned i = 0; i < count; ++i) {
      io_uring_buf_ring_add(buf_ring_, buffers_ + static_cast<size_t>(i) * opts_.recv_buffer_size,
                            opts_.recv_buffer_size, static_cast<unsigned short>(i), buf_mask_,
                            static_cast<int>(i));
    }
    io_uring_buf_ring_advance(buf_ring_, static_cast<int>(count));

    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) {
      why = "eventfd failed";
      return false;
    }
    arm_wake();
    // Probe that the kernel really runs io_uring (a seccomp filter may let setup pass but not
    // enter).
    rc = io_uring_submit(&ring_);
    if (rc < 0) {
      why = std::string("io_uring_enter failed: ") + std::strerror(-rc);
      return false;
    }
    return true;
  }

  BackendKind kind() const override { return BackendKind::kIoUring; }

  void add_listener(int listener_id, int fd) override {
    auto* l = new Listener{listener_id, fd};
    listeners_.push_back(l);
    arm_accept(l);
  }

  void close_listeners() override {
    for (auto* l : listeners_) {
      if (l->closed) continue;
      l->closed = true;
      if (l->armed) {
        io_uring_sqe* sqe = get_sqe();
        io_uring_prep_cancel64(sqe, tagged(l, kTagAccept), 0);
        io_uring_sqe_set_data64(sqe, kTagIgnore);
      }
      // Closing the fd ends the kernel's listen queue even while the cancel is in flight.
      ::close(l->fd);
    }
    io_uring_submit(&ring_);
  }

  void attach(Socket* s, int fd) override {
    s->fd = fd;
    arm_recv(s);
  }

  void pause_read(Socket* s) override {
    if (s->read_paused) return;
    s->read_paused = true;
    if (s->recv_armed) {
      io_uring_sqe* sqe = get_sqe();
      io_uring_prep_cancel64(sqe, tagged(s, kTagRecv), 0);
      io_uring_sqe_set_data64(sqe, kTagIgnore);
    }
  }

  void resume_read(Socket* s) override {
    if (!s->read_paused) return;
    s->read_paused = false;
    if (!s->recv_armed && !s->closing) arm_recv(s);
  }

  void send(Socket* s, msghdr* msg) override {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_sendmsg(sqe, s->fd, msg, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, tagged(s, kTagSend));
    ++s->inflight;
  }

  void close(Socket* s) override {
    if (s->closing) return;
    s->closing = true;
    if (s->inflight > 0) {
      // Ends the armed receive and any blocked send; their completions bring inflight to zero.
      ::shutdown(s->fd, SHUT_RDWR);
    } else {
      finish_close(s);
    }
  }

  void poll(int timeout_ms) override {
    if (!closed_.empty()) timeout_ms = 0;
    retry_deferred(timeout_ms);
    io_uring_cqe* cqe = nullptr;
    int rc;
    if (timeout_ms < 0) {
      rc = io_uring_submit_and_wait(&ring_, 1);
    } else {
      __kernel_timespec ts{};
      ts.tv_sec = timeout_ms / 1000;
      ts.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1000000;
      rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    }
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN) {
      RC_ERROR("io_uring wait failed: %s", std::strerror(-rc));
    }
    events_.on_wakeup();
    unsigned head;
    unsigned seen = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      dispatch(cqe);
    }
    io_uring_cq_advance(&ring_, seen);
    if (recycled_) {
      io_uring_buf_ring_advance(buf_ring_, recycled_);
      recycled_ = 0;
    }
    if (!no_buffers_.empty()) {
      // Buffers were recycled above; receives that stopped for lack of buffers can run again.
      waiting_batch_.clear();
      waiting_batch_.swap(no_buffers_);
      for (Socket* s : waiting_batch_) {
        --s->inflight;  // the hold taken when the receive ran dry
        if (!s->closing && !s->read_paused && !s->recv_armed)
          arm_recv(s);
        else
          maybe_finish(s);
      }
    }
    deliver_closed();
  }

  int ring_fd() const override { return ring_.ring_fd; }

  void notify(Backend& target) override {
    int fd = target.ring_fd();
    if (fd < 0) {
      target.wake();
      return;
    }
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_msg_ring(sqe, fd, 0, kTagMsgRing, 0);
    io_uring_sqe_set_data64(sqe, kTagIgnore);
  }

  void wake() override {
    uint64_t one = 1;
    ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
    (void)ignored;
  }

 private:
  io_uring_sqe* get_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    while (!sqe) {
      // Submission queue full: hand the batch to the kernel and continue.
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
  }

  void arm_accept(Listener* l) {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_multishot_accept(sqe, l->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, tagged(l, kTagAccept));
    l->armed = true;
  }

  void arm_recv(Socket* s) {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_recv_multishot(sqe, s->fd, nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = kBufferGroup;
    io_uring_sqe_set_data64(sqe, tagged(s, kTagRecv));
    s->recv_armed = true;
    ++s->inflight;
  }

  void arm_wake() {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_read(sqe, wake_fd_, &wake_value_, sizeof wake_value_, 0);
    io_uring_sqe_set_data64(sqe, kTagWake);
  }

  void dispatch(io_uring_cqe* cqe) {
    uint64_t data = cqe->user_data;
    auto tag = static_cast<Tag>(data & kTagMask);
    void* ptr = reinterpret_cast<void*>(data & ~kTagMask);
    switch (tag) {
      case kTagAccept:
        on_accept(static_cast<Listener*>(ptr), cqe);
        break;
      case kTagRecv:
        on_recv(static_cast<Socket*>(ptr), cqe);
        break;
      case kTagSend: {
        auto* s = static_cast<Socket*>(ptr);
        --s->inflight;
        events_.on_send_done(s, cqe->res);
        maybe_finish(s);
        break;
      }
      case kTagWake:
        arm_wake();
        events_.on_wake();
        break;
      case kTagMsgRing:
        events_.on_wake();
        break;
      default:
        break;
    }
  }

  void on_accept(Listener* l, io_uring_cqe* cqe) {
    if (!(cqe->flags & IORING_CQE_F_MORE)) l->armed = false;
    if (cqe->res >= 0) {
      if (l->closed) {
        ::close(cqe->res);
      } else {
        sockaddr_storage peer{};
        socklen_t len = sizeof peer;
        getpeername(cqe->res, reinterpret_cast<sockaddr*>(&peer), &len);
        reserve_.on_accept_ok();
        events_.on_accept(l->id, cqe->res, peer);
      }
    } else if (cqe->res != -ECANCELED && !l->closed && !DescriptorReserve::transient(-cqe->res)) {
      // The failure ended the multishot accept; re-arming at once would fail the same way.
      l->retry_at_ms = mono_ms() + reserve_.on_accept_error(l->fd, -cqe->res);
    }
    if (!l->armed && !l->closed && l->retry_at_ms == 0) arm_accept(l);
  }

  void on_recv(Socket* s, io_uring_cqe* cqe) {
    bool more = cqe->flags & IORING_CQE_F_MORE;
    if (cqe->flags & IORING_CQE_F_BUFFER) {
      unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
      uint8_t* buf = buffers_ + static_cast<size_t>(bid) * opts_.recv_buffer_size;
      if (cqe->res > 0 && !s->closing) {
        events_.on_data(s, {buf, static_cast<size_t>(cqe->res)});
      }
      io_uring_buf_ring_add(buf_ring_, buf, opts_.recv_buffer_size,
                            static_cast<unsigned short>(bid), buf_mask_, recycled_++);
    }
    if (more) return;
    s->recv_armed = false;
    int res = cqe->res;
    if (res == -ENOBUFS && !s->closing) {
      // Every buffer is in use: retry after this pass recycles some; hold the socket meanwhile.
      no_buffers_.push_back(s);
      return;  // inflight stays counted until the retry
    }
    --s->inflight;
    if (s->closing) {
      maybe_finish(s);
      return;
    }
    if (res > 0) {
      if (!s->read_paused) arm_recv(s);
      return;
    }
    if (res == -ECANCELED) {
      // Cancelled by pause_read; a resume may already have come in meanwhile.
      if (!s->read_paused) arm_recv(s);
      return;
    }
    events_.on_read_end(s, res);
    maybe_finish(s);
  }

  void maybe_finish(Socket* s) {
    if (s->closing && s->inflight == 0) finish_close(s);
  }

  void finish_close(Socket* s) {
    if (s->fd < 0) return;  // already finished (close() may run inside a completion handler)
    ::close(s->fd);
    s->fd = -1;
    closed_.push_back(s);
    // A descriptor came free: a listener resting after EMFILE may accept again right away.
    for (auto* l : listeners_)
      if (l->retry_at_ms != 0) l->retry_at_ms = 1;
  }

  void deliver_closed() {
    while (!closed_.empty()) {
      closed_batch_.clear();
      closed_batch_.swap(closed_);
      for (Socket* s : closed_batch_) events_.on_closed(s);
    }
  }

  void retry_deferred(int& timeout_ms) {
    int64_t now = 0;
    for (auto* l : listeners_) {
      if (l->closed || l->armed || l->retry_at_ms == 0) continue;
      if (!now) now = mono_ms();
      if (now >= l->retry_at_ms) {
        l->retry_at_ms = 0;
        arm_accept(l);
      } else {
        int wait = static_cast<int>(l->retry_at_ms - now);
        if (timeout_ms < 0 || timeout_ms > wait) timeout_ms = wait;
      }
    }
  }

  BackendEvents& events_;
  BackendOptions opts_;
  io_uring ring_{};
  bool ring_ready_ = false;
  unsigned setup_flags_ = 0;
  io_uring_buf_ring* buf_ring_ = nullptr;
  size_t buf_ring_bytes_ = 0;
  uint8_t* buffers_ = nullptr;
  size_t buffers_bytes_ = 0;
  int buf_mask_ = 0;
  int recycled_ = 0;
  int wake_fd_ = -1;
  uint64_t wake_value_ = 0;
  std::vector<Listener*> listeners_;
  DescriptorReserve reserve_;
  std::vector<Socket*> closed_, closed_batch_;
  std::vector<Socket*> no_buffers_, waiting_batch_;
};

}  // namespace

std::string_view backend_name(BackendKind kind) {
  return kind == BackendKind::kIoUring ? "io_uring" : "epoll";
}

std::unique_ptr<Backend> make_io_uring_backend(BackendEvents& events, const BackendOptions& opts,
                                               std::string& why) {
  auto backend = std::make_unique<IoUringBackend>(events, opts);
  if (!backend->init(why)) return nullptr;
  return backend;
}

}  // namespace ringcast::engine

#include "ringcast/engine/descriptor_reserve.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "ringcast/engine/log.h"

namespace ringcast::engine {
namespace {

// Connections turned away per failed accept: enough to empty a backlog within a few pauses, few
// enough that one pass of the loop stays short.
constexpr int kRefuseBurst = 64;

// Shared by every worker, so N loops hitting the same limit still log once a second in all.
log::Throttle g_failure_log(1000);
log::Throttle g_recovery_log(1000);
std::atomic<uint64_t> g_refused_unreported{0};  // connections answered 503 since the last line

int64_t mono_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool out_of_descriptors(int err) {
  return err == EMFILE || err == ENFILE;
}

int open_reserve() {
  return ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

}  // namespace

DescriptorReserve::DescriptorReserve(std::string refusal)
    : refusal_(std::move(refusal)), reserve_fd_(open_reserve()) {}

DescriptorReserve::~DescriptorReserve() {
  if (reserve_fd_ >= 0) ::close(reserve_fd_);
}

bool DescriptorReserve::transient(int err) {
  // ECONNABORTED: the client gave up while queued; EPROTO/ENETDOWN & co: see accept(2), "treat
  // them like EAGAIN by retrying".
  switch (err) {
    case EAGAIN:
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
      return true;
    default:
      return false;
  }
}

int DescriptorReserve::on_accept_error(int listener_fd, int err) {
  if (out_of_descriptors(err)) {
    short_ = true;
    refuse_queued(listener_fd);
  }
  uint64_t held_back = 0;
  if (g_failure_log.allow(mono_ms(), held_back)) {
    if (out_of_descriptors(err)) {
      RC_WARN(
          "accept failed: %s (%lu more times since the last report); accepts pause and waiting "
          "clients get 503 until descriptors free up (%lu refused since the last report). Raise "
          "LimitNOFILE / ulimit -n or lower [limits] max_connections",
          std::strerror(err), static_cast<unsigned long>(held_back),
          static_cast<unsigned long>(g_refused_unreported.exchange(0)));
    } else {
      RC_WARN("accept failed: %s (%lu similar failures not logged in the last second)",
              std::strerror(err), static_cast<unsigned long>(held_back));
    }
  }
  return kPauseMs;
}

void DescriptorReserve::refuse_queued(int listener_fd) {
  // The reserve is our one spare descriptor: without it nothing could be accepted to be refused.
  if (reserve_fd_ >= 0) {
    ::close(reserve_fd_);
    reserve_fd_ = -1;
  }
  for (int i = 0; i < kRefuseBurst; ++i) {
    int fd = accept4(listener_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      break;  // EAGAIN: the backlog is empty; EMFILE: another thread took the spare descriptor
    }
    ssize_t ignored = ::send(fd, refusal_.data(), refusal_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)ignored;
    // Read what the client already sent, so closing sends FIN rather than a reset that could
    // discard the answer before the client reads it.
    ::shutdown(fd, SHUT_WR);
    char sink[4096];
    for (int j = 0; j < 4 && ::recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; ++j) {
    }
    ::close(fd);
    ++refused_;
    g_refused_unreported.fetch_add(1, std::memory_order_relaxed);
  }
  reserve_fd_ = open_reserve();  // may fail while still short: tried again at the next failure
}

void DescriptorReserve::recovered() {
  short_ = false;
  if (reserve_fd_ < 0) reserve_fd_ = open_reserve();
  uint64_t held_back = 0;
  if (g_recovery_log.allow(mono_ms(), held_back)) {
    RC_INFO("accepting connections again (file descriptors available; %lu refused so far here)",
            static_cast<unsigned long>(refused_));
  }
}

}  // namespace ringcast::engine

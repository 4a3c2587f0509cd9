// What a backend does when accept() fails. Out of file descriptors (EMFILE/ENFILE) the kernel
// keeps the connection queued, so the listener stays readable and a loop that simply retries spins
// at full CPU, logging every failure. Instead the listener is paused for a short while (or until
// one of the loop's connections closes), and the clients waiting in the backlog get an answer
// rather than a hang: one descriptor is kept in reserve, and at EMFILE it is closed, the queued
// connections are accepted one at a time, each gets the refusal (an HTTP 503) and is closed, and
// the reserve is reopened. Failures are logged at most once a second, with a count.
#pragma once

#include <cstdint>
#include <string>

namespace ringcast::engine {

class DescriptorReserve {
 public:
  // How long a listener rests after a failed accept before it is tried again.
  static constexpr int kPauseMs = 100;

  // `refusal`: bytes written (best effort) to a connection accepted only to be turned away.
  explicit DescriptorReserve(std::string refusal);
  ~DescriptorReserve();
  DescriptorReserve(const DescriptorReserve&) = delete;
  DescriptorReserve& operator=(const DescriptorReserve&) = delete;

  // True for accept errors that only mean "this one connection went away; carry on".
  static bool transient(int err);
  // An accept on listening socket `listener_fd` failed with errno `err` (not transient): turns
  // queued connections away if descriptors ran out, logs (throttled), and returns how many
  // milliseconds the listener should rest before accepting again.
  int on_accept_error(int listener_fd, int err);
  // An accept succeeded: notes the recovery after a shortage (logged, throttled).
  void on_accept_ok() {
    if (short_) recovered();
  }
  // Connections turned away so far (by this reserve).
  uint64_t refused() const { return refused_; }

 private:
  void refuse_queued(int listener_fd);
  void recovered();

  std::string refusal_;
  int reserve_fd_ = -1;
  bool short_ = false;  // the last accept ran out of descriptors
  uint64_t refused_ = 0;
};

}  // namespace ringcast::engine

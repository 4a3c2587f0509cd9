// The I/O backend of one worker loop: io_uring (default) or epoll, behind one interface.
// The backend owns the kernel side (listening sockets, receive buffers, submissions); the layer
// above owns connection state and reacts to the events it delivers. Everything here runs on the
// worker's own thread except wake(), which any thread may call.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace ringcast::engine {

struct TlsStream;  // tls_backend.cpp

enum class BackendKind { kIoUring, kEpoll };
std::string_view backend_name(BackendKind kind);

// Kernel-facing part of a connection; the upper layer's connection type derives from it so that a
// completion maps back to its connection without a lookup.
struct Socket {
  int fd = -1;
  uint16_t inflight = 0;          // backend operations that still reference this socket
  bool recv_armed = false;        // a (multishot) receive or EPOLLIN interest is active
  bool closing = false;           // close() was called; no new operations
  bool send_pending = false;      // epoll: waiting for EPOLLOUT
  bool read_paused = false;       // upper layer asked for no more data for now
  msghdr* pending_msg = nullptr;  // epoll: the send waiting for EPOLLOUT
  TlsStream* tls = nullptr;       // a TLS connection's record layer state (see tls_backend.h)
};

class BackendEvents {
 public:
  virtual ~BackendEvents() = default;
  // A new connection arrived on listener `listener_id`. The handler creates its Socket-derived
  // object and calls Backend::attach, or closes the fd.
  virtual void on_accept(int listener_id, int fd, const sockaddr_storage& peer) = 0;
  // Bytes received. The span is only valid during the call.
  virtual void on_data(Socket* s, std::span<const uint8_t> data) = 0;
  // The peer closed (err == 0) or the connection failed (err = -errno). No more on_data follows.
  virtual void on_read_end(Socket* s, int err) = 0;
  // A send finished: res = bytes written (may be short) or -errno.
  virtual void on_send_done(Socket* s, int res) = 0;
  // close() finished: the fd is closed and the backend holds no reference; the object may be freed.
  virtual void on_closed(Socket* s) = 0;
  // Another thread called wake().
  virtual void on_wake() = 0;
  // poll() finished waiting and is about to deliver events (lets the loop refresh its clock).
  virtual void on_wakeup() {}
};

struct BackendOptions {
  unsigned ring_entries = 4096;
  unsigned recv_buffer_size = 16384;  // bytes per provided receive buffer
  unsigned recv_buffer_count = 1024;  // power of two
  // Written to connections accepted only to be turned away when descriptors run out (see
  // descriptor_reserve.h); the layer above supplies it in its own protocol.
  std::string refusal;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual BackendKind kind() const = 0;

  // Starts accepting on an already listening, non-blocking socket.
  virtual void add_listener(int listener_id, int fd) = 0;
  // Stops accepting everywhere and closes the listening sockets.
  virtual void close_listeners() = 0;
  // Registers an accepted socket and starts receiving.
  virtual void attach(Socket* s, int fd) = 0;
  // Stop or resume delivering data for s (backpressure).
  virtual void pause_read(Socket* s) = 0;
  virtual void resume_read(Socket* s) = 0;
  // Sends msg (iovecs must stay valid until on_send_done). At most one send per socket at a time.
  virtual void send(Socket* s, msghdr* msg) = 0;
  // Half-closes the sending side (FIN) once everything sent so far has completed; a TLS session
  // sends its close_notify first.
  virtual void shutdown_write(Socket* s) { ::shutdown(s->fd, SHUT_WR); }
  // Shuts the socket down and closes it once no operation references it; then on_closed(s).
  virtual void close(Socket* s) = 0;
  // Submits queued work and waits up to timeout_ms (-1 = no limit) for events; dispatches them.
  virtual void poll(int timeout_ms) = 0;
  // Thread-safe: makes poll() return soon and deliver on_wake().
  virtual void wake() = 0;
  // From this loop's thread: wake another loop. Between two io_uring loops this is an
  // IORING_OP_MSG_RING riding on the next submission (no extra syscall); otherwise wake().
  virtual void notify(Backend& target) { target.wake(); }
  // The io_uring file descriptor, or -1.
  virtual int ring_fd() const { return -1; }
};

// Creates the io_uring backend, or returns nullptr and fills `why` when the kernel (or a seccomp
// profile) does not allow what it needs.
std::unique_ptr<Backend> make_io_uring_backend(BackendEvents& events, const BackendOptions& opts,
                                               std::string& why);
std::unique_ptr<Backend> make_epoll_backend(BackendEvents& events, const BackendOptions& opts);

}  // namespace ringcast::engine

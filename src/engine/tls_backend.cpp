#include "ringcast/engine/tls_backend.h"

#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "ringcast/engine/log.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

namespace ringcast::engine {

class TlsBackend;

struct TlsStream {
  enum class Phase : uint8_t { kHandshake, kOpen, kFailed };
  Socket* sock = nullptr;
  TlsBackend* owner = nullptr;
  SSL* ssl = nullptr;
  Phase phase = Phase::kHandshake;
  bool ulp = false;                // the `tls` ULP is attached to the socket
  bool ktls_tx = false;            // the kernel encrypts what we send: sends pass through
  bool inner_busy = false;         // a send of `out` is in flight in the real backend
  bool read_end_sent = false;      // the worker was told the stream ended
  bool fail_pending = false;       // handshake failed: end the stream once the alert is out
  bool shut_pending = false;       // FIN once `out` (ending with close_notify) is out
  bool worker_failed = false;      // the worker's batch could not be encrypted
  bool counted = false;            // in counters (ktls or userspace, by ktls_tx)
  const char* ktls_why = nullptr;  // why kernel TLS was not used, for the one-time log line
  int ktls_errno = 0;
  // The receive span being fed to OpenSSL (valid only during on_data).
  const uint8_t* in_ptr = nullptr;
  size_t in_len = 0;
  // Ciphertext waiting for the kernel; borrowed from the loop's pool only while non-empty.
  std::string* out = nullptr;
  size_t out_sent = 0;
  int64_t worker_plain = -1;  // plaintext bytes of the worker's batch in `out`; -1: none
  iovec iov{};
  msghdr msg{};
};

namespace {

constexpr size_t kRecordBytes = 16384;  // TLS maximum plaintext per record
// Plaintext encrypted per send: the rest of a larger batch is reported as not yet taken (a short
// write), which the worker handles as with a plaintext socket. Keeps the ciphertext buffer small
// enough to be pooled, and lets the worker see a slow reader's progress (stall_timeout_ms) in
// steps of this size rather than whole batches.
constexpr size_t kMaxPlainPerSend = 128 * 1024;
constexpr size_t kSpareBuffers = 16;
constexpr size_t kMaxSpareCapacity = 256 * 1024;
// Ciphertext waiting for a peer that does not read. A worker's batch adds at most ~130 KiB of
// it; more can only be records OpenSSL answers with (TLS 1.3 key updates) to a peer that keeps
// asking without reading: that peer is cut off.
constexpr size_t kMaxPendingCipher = 4 << 20;

size_t crypto_info_size(uint16_t cipher) {
  switch (cipher) {
    case TLS_CIPHER_AES_GCM_128:
      return sizeof(tls12_crypto_info_aes_gcm_128);
    case TLS_CIPHER_AES_GCM_256:
      return sizeof(tls12_crypto_info_aes_gcm_256);
    case TLS_CIPHER_AES_CCM_128:
      return sizeof(tls12_crypto_info_aes_ccm_128);
    case TLS_CIPHER_CHACHA20_POLY1305:
      return sizeof(tls12_crypto_info_chacha20_poly1305);
    default:
      return 0;
  }
}

KtlsSetsockopt g_ktls_setsockopt = ::setsockopt;

// OpenSSL 3.0's record layer asks the BIO to install kTLS keys with this control (internal
// header: BIO_set_ktls(b, keyblob, is_tx) = BIO_ctrl(b, BIO_CTRL_SET_KTLS, is_tx, keyblob)); the
// keyblob starts with the kernel's struct tls_crypto_info.
constexpr int kBioCtrlSetKtls = 72;

}  // namespace

class TlsBackend final : public Backend, public BackendEvents {
 public:
  TlsBackend(BackendEvents& events, TlsContext& context, std::vector<bool> tls_listeners)
      : events_(events), context_(context), tls_listeners_(std::move(tls_listeners)) {
    plain_.resize(kRecordBytes);
    stage_.resize(kRecordBytes);
  }

  ~TlsBackend() override {
    if (ctx_) SSL_CTX_free(ctx_);
    for (auto* b : spare_) delete b;
  }

  void set_inner(std::unique_ptr<Backend> inner) { inner_ = std::move(inner); }

  // ---- Backend ----
  BackendKind kind() const override { return inner_->kind(); }
  void add_listener(int id, int fd) override { inner_->add_listener(id, fd); }
  void close_listeners() override { inner_->close_listeners(); }
  void pause_read(Socket* s) override { inner_->pause_read(s); }
  void resume_read(Socket* s) override { inner_->resume_read(s); }
  void close(Socket* s) override { inner_->close(s); }
  void poll(int timeout_ms) override { inner_->poll(timeout_ms); }
  void wake() override { inner_->wake(); }
  void notify(Backend& target) override { inner_->notify(target); }
  int ring_fd() const override { return inner_->ring_fd(); }

  void attach(Socket* s, int fd) override {
    if (accepting_tls_) s->tls = new_stream(s);
    inner_->attach(s, fd);
  }

  void send(Socket* s, msghdr* msg) override {
    TlsStream* t = s->tls;
    if (!t || t->ktls_tx) {
      inner_->send(s, msg);
      return;
    }
    size_t total = 0;
    for (size_t i = 0; i < msg->msg_iovlen; ++i) total += msg->msg_iov[i].iov_len;
    total = std::min(total, kMaxPlainPerSend);
    t->worker_plain = static_cast<int64_t>(total);
    t->worker_failed = !(t->phase == TlsStream::Phase::kOpen && t->ssl && encrypt(*t, *msg, total));
    // Even a failure completes through the backend (a zero-length send if need be), so the
    // worker never sees a completion from inside its own send().
    kick(*t);
  }

  void shutdown_write(Socket* s) override {
    TlsStream* t = s->tls;
    if (!t || t->ktls_tx || !t->ssl || t->phase != TlsStream::Phase::kOpen) {
      ::shutdown(s->fd, SHUT_WR);
      return;
    }
    // close_notify first, so the peer can tell our end of the stream from a truncation.
    ERR_clear_error();
    SSL_shutdown(t->ssl);
    ERR_clear_error();
    t->shut_pending = true;
    kick(*t);
    if (!t->inner_busy) {
      t->shut_pending = false;
      ::shutdown(s->fd, SHUT_WR);
    }
  }

  // ---- BackendEvents (from the real backend) ----
  void on_accept(int listener_id, int fd, const sockaddr_storage& peer) override {
    accepting_tls_ = listener_id >= 0 && static_cast<size_t>(listener_id) < tls_listeners_.size() &&
                     tls_listeners_[listener_id];
    events_.on_accept(listener_id, fd, peer);
    accepting_tls_ = false;
  }

  void on_data(Socket* s, std::span<const uint8_t> data) override {
    TlsStream* t = s->tls;
    if (!t) {
      events_.on_data(s, data);
      return;
    }
    if (t->phase == TlsStream::Phase::kFailed || s->closing || !t->ssl) return;
    t->in_ptr = data.data();
    t->in_len = data.size();
    if (t->phase == TlsStream::Phase::kHandshake) handshake(*t);
    if (t->phase == TlsStream::Phase::kOpen && !s->closing) read_records(*t);
    // Whatever OpenSSL did not take belongs to a stream that failed or is closing.
    t->in_ptr = nullptr;
    t->in_len = 0;
    kick(*t);
  }

  void on_read_end(Socket* s, int err) override {
    if (TlsStream* t = s->tls) {
      if (t->read_end_sent) return;
      t->read_end_sent = true;
    }
    events_.on_read_end(s, err);
  }

  void on_send_done(Socket* s, int res) override {
    TlsStream* t = s->tls;
    if (!t || !t->inner_busy) {
      events_.on_send_done(s, res);
      return;
    }
    t->inner_busy = false;
    if (res > 0) t->out_sent += static_cast<size_t>(res);
    const size_t pending = t->out ? t->out->size() - t->out_sent : 0;
    if (res >= 0 && pending > 0 && !s->closing) {
      kick(*t);  // a short write: the rest follows
      return;
    }
    give_buffer(t->out);
    t->out_sent = 0;
    if (t->worker_plain >= 0) {
      int n = res < 0            ? res
              : t->worker_failed ? -EPROTO
              : pending > 0      ? -ECANCELED
                                 : static_cast<int>(t->worker_plain);
      t->worker_plain = -1;
      t->worker_failed = false;
      events_.on_send_done(s, n);
    } else if (res < 0) {
      end_read(*t, res);
    }
    // The worker may have queued more (its close frame's FIN becomes a close_notify send in
    // shutdown_write): the FIN waits until that is out too.
    if (t->inner_busy) return;
    if (t->fail_pending) {
      t->fail_pending = false;
      end_read(*t, -EPROTO);
    }
    if (t->shut_pending && !s->closing) {
      t->shut_pending = false;
      ::shutdown(s->fd, SHUT_WR);
    }
  }

  void on_closed(Socket* s) override {
    if (TlsStream* t = s->tls) {
      s->tls = nullptr;
      free_stream(t);
    }
    events_.on_closed(s);
  }

  void on_wake() override { events_.on_wake(); }
  void on_wakeup() override { events_.on_wakeup(); }

  // ---- the BIO under each SSL ----
  static int bio_write(BIO* bio, const char* data, size_t len, size_t* written) {
    auto* t = static_cast<TlsStream*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    // With kernel TLS sending, a record OpenSSL wants to write itself (an alert, a key update)
    // cannot be framed here: refuse it, which ends that session.
    if (t->ktls_tx) return 0;
    if (!t->out) t->out = t->owner->take_buffer();
    t->out->append(data, len);
    *written = len;
    return 1;
  }

  static int bio_read(BIO* bio, char* data, size_t len, size_t* readbytes) {
    auto* t = static_cast<TlsStream*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    if (t->in_len == 0) {
      BIO_set_retry_read(bio);
      return 0;
    }
    size_t n = len < t->in_len ? len : t->in_len;
    std::memcpy(data, t->in_ptr, n);
    t->in_ptr += n;
    t->in_len -= n;
    *readbytes = n;
    return 1;
  }

  static long bio_ctrl(BIO* bio, int cmd, long num, void* ptr) {
    auto* t = static_cast<TlsStream*>(BIO_get_data(bio));
    switch (cmd) {
      case BIO_CTRL_FLUSH:
        return 1;  // `out` is sent at the end of the event that produced it
      case BIO_CTRL_GET_KTLS_SEND:
        return t->ktls_tx ? 1 : 0;
      case BIO_CTRL_GET_KTLS_RECV:
        return 0;  // receiving always stays in user space (see enable_ktls)
      case kBioCtrlSetKtls:
        return t->owner->enable_ktls(*t, num != 0, ptr) ? 1 : 0;
      default:
        return 0;
    }
  }

 private:
  static BIO_METHOD* bio_method() {
    static BIO_METHOD* method = [] {
      BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ringcast-tls");
      BIO_meth_set_write_ex(m, bio_write);
      BIO_meth_set_read_ex(m, bio_read);
      BIO_meth_set_ctrl(m, bio_ctrl);
      return m;
    }();
    return method;
  }

  TlsStream* new_stream(Socket* s) {
    auto* t = new TlsStream();
    t->sock = s;
    t->owner = this;
    uint64_t gen = context_.generation();
    if (gen != ctx_generation_ || !ctx_) {
      // SIGHUP loaded a new certificate: handshakes from now on use it.
      if (ctx_) SSL_CTX_free(ctx_);
      ctx_ = context_.acquire();
      ctx_generation_ = gen;
    }
    BIO* bio = ctx_ ? BIO_new(bio_method()) : nullptr;
    t->ssl = bio ? SSL_new(ctx_) : nullptr;
    if (!t->ssl) {
      // Fail closed: the stream stays silent and the handshake timeout ends it.
      if (bio) BIO_free(bio);
      ERR_clear_error();
      RC_ERROR("tls: cannot create a session (out of memory?)");
      t->phase = TlsStream::Phase::kFailed;
      return t;
    }
    BIO_set_data(bio, t);
    BIO_set_init(bio, 1);
    SSL_set_bio(t->ssl, bio, bio);
    SSL_set_accept_state(t->ssl);
    return t;
  }

  void free_stream(TlsStream* t) {
    if (t->counted) {
      (t->ktls_tx ? context_.counters.ktls : context_.counters.userspace)
          .fetch_sub(1, std::memory_order_relaxed);
    }
    if (t->ssl) SSL_free(t->ssl);
    give_buffer(t->out);
    delete t;
  }

  void handshake(TlsStream& t) {
    ERR_clear_error();
    int r = SSL_do_handshake(t.ssl);
    if (r == 1) {
      established(t);
      return;
    }
    int e = SSL_get_error(t.ssl, r);
    if (e == SSL_ERROR_WANT_READ) return;
    context_.counters.handshake_failures.fetch_add(1, std::memory_order_relaxed);
    if (log::enabled(log::Level::kDebug)) {
      char buf[256];
      ERR_error_string_n(ERR_peek_error(), buf, sizeof buf);
      RC_DEBUG("tls handshake failed on fd %d: %s", t.sock->fd, buf);
    }
    ERR_clear_error();
    t.phase = TlsStream::Phase::kFailed;
    // Let an alert OpenSSL wrote go out before the connection ends.
    if (t.out && t.out->size() > t.out_sent) {
      t.fail_pending = true;
    } else {
      end_read(t, -EPROTO);
    }
  }

  void established(TlsStream& t) {
    t.phase = TlsStream::Phase::kOpen;
    t.counted = true;
    if (t.ktls_tx) {
      context_.counters.ktls.fetch_add(1, std::memory_order_relaxed);
    } else {
      context_.counters.userspace.fetch_add(1, std::memory_order_relaxed);
      if (!context_.counters.fallback_logged.exchange(true)) {
        RC_INFO("tls: kernel TLS not used (%s%s%s); encrypting in user space",
                t.ktls_why ? t.ktls_why : "OpenSSL did not offer the keys (cipher not supported)",
                t.ktls_errno ? ": " : "", t.ktls_errno ? std::strerror(t.ktls_errno) : "");
      }
    }
  }

  void read_records(TlsStream& t) {
    while (!t.sock->closing && t.phase == TlsStream::Phase::kOpen) {
      size_t n = 0;
      ERR_clear_error();
      const int r = SSL_read_ex(t.ssl, plain_.data(), plain_.size(), &n);
      if (t.out && t.out->size() - t.out_sent > kMaxPendingCipher) {
        RC_DEBUG("tls: fd %d answers records it never reads; closing", t.sock->fd);
        t.phase = TlsStream::Phase::kFailed;
        end_read(t, -EPROTO);
        return;
      }
      if (r == 1) {
        events_.on_data(t.sock, {plain_.data(), n});
        continue;
      }
      int e = SSL_get_error(t.ssl, r);
      if (e == SSL_ERROR_WANT_READ) return;
      ERR_clear_error();
      t.phase = TlsStream::Phase::kFailed;
      // close_notify is an orderly end; anything else (a bad record, an alert) an error.
      end_read(t, e == SSL_ERROR_ZERO_RETURN ? 0 : -EPROTO);
      return;
    }
  }

  // Encrypts the first `total` bytes of the worker's iovecs into `out`: full records straight
  // from large buffers, small frames coalesced through one record-sized staging buffer, so N
  // small frames cost about one record's overhead, not N.
  bool encrypt(TlsStream& t, const msghdr& msg, size_t total) {
    if (total == 0) return true;
    if (!t.out) t.out = take_buffer();
    t.out->reserve(t.out->size() + total + (total / kRecordBytes + 1) * 64);
    size_t staged = 0;
    auto write = [&t](const uint8_t* p, size_t n) {
      size_t written = 0;
      ERR_clear_error();
      return SSL_write_ex(t.ssl, p, n, &written) == 1 && written == n;
    };
    size_t left = total;
    for (size_t i = 0; i < msg.msg_iovlen && left > 0; ++i) {
      auto* p = static_cast<const uint8_t*>(msg.msg_iov[i].iov_base);
      size_t len = std::min(msg.msg_iov[i].iov_len, left);
      left -= len;
      while (len > 0) {
        if (staged == 0 && len >= kRecordBytes) {
          size_t n = len - len % kRecordBytes;
          if (!write(p, n)) return false;
          p += n;
          len -= n;
          continue;
        }
        size_t n = std::min(len, kRecordBytes - staged);
        std::memcpy(stage_.data() + staged, p, n);
        staged += n;
        p += n;
        len -= n;
        if (staged == kRecordBytes) {
          if (!write(stage_.data(), staged)) return false;
          staged = 0;
        }
      }
    }
    return staged == 0 || write(stage_.data(), staged);
  }

  void kick(TlsStream& t) {
    Socket* s = t.sock;
    if (t.inner_busy || s->closing) return;
    const size_t pending = t.out ? t.out->size() - t.out_sent : 0;
    if (pending == 0 && t.worker_plain < 0) return;
    t.iov.iov_base = pending ? t.out->data() + t.out_sent : nullptr;
    t.iov.iov_len = pending;
    t.msg = {};
    t.msg.msg_iov = &t.iov;
    t.msg.msg_iovlen = 1;
    t.inner_busy = true;
    inner_->send(s, &t.msg);
  }

  void end_read(TlsStream& t, int err) {
    if (t.read_end_sent) return;
    t.read_end_sent = true;
    events_.on_read_end(t.sock, err);
  }

  // Called by OpenSSL (through the BIO) when it has traffic keys for one direction.
  bool enable_ktls(TlsStream& t, bool tx, void* keyblob) {
    const int fd = t.sock->fd;
    // Receiving stays in user space. The loop reads the socket itself, so by the time OpenSSL
    // has receive keys the bytes after the key change are already out of the kernel (TLS 1.2's
    // Finished arrives with its ChangeCipherSpec; an io_uring multishot receive reads ahead at
    // any time), and OpenSSL 3.0 offers no TLS 1.3 receive keys at all. Decrypting is
    // per-session work either way; the shared broadcast frame is on the sending side.
    if (!tx) return false;
    // TLS 1.2 installs the sending keys before its Finished, which OpenSSL then writes as a
    // control record through the kernel (sendmsg with a record-type cmsg); the sessions that
    // go to the kernel here are TLS 1.3 ones, which write nothing after the switch (no tickets).
    if (SSL_version(t.ssl) != TLS1_3_VERSION) {
      t.ktls_why = "kernel TLS is used for TLS 1.3 sessions";
      return false;
    }
    if (t.inner_busy) {
      t.ktls_why = "handshake bytes still in flight";
      return false;
    }
    auto* info = static_cast<const tls_crypto_info*>(keyblob);
    const size_t len = info ? crypto_info_size(info->cipher_type) : 0;
    if (len == 0) {
      t.ktls_why = "cipher not supported by kernel TLS";
      return false;
    }
    if (!t.ulp) {
      if (g_ktls_setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof "tls") != 0) {
        t.ktls_why = "the kernel has no `tls` module";
        t.ktls_errno = errno;
        return false;
      }
      t.ulp = true;
    }
    {
      // Everything encrypted so far must be on the wire before the kernel encrypts what follows.
      while (t.out && t.out_sent < t.out->size()) {
        ssize_t n = ::send(fd, t.out->data() + t.out_sent, t.out->size() - t.out_sent,
                           MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n <= 0) {
          t.ktls_why = "handshake bytes not yet taken by the kernel";
          t.ktls_errno = n < 0 ? errno : 0;
          return false;
        }
        t.out_sent += static_cast<size_t>(n);
      }
      give_buffer(t.out);
      t.out_sent = 0;
    }
    if (g_ktls_setsockopt(fd, SOL_TLS, TLS_TX, keyblob, static_cast<socklen_t>(len)) != 0) {
      t.ktls_why = "the kernel refused the keys";
      t.ktls_errno = errno;
      return false;
    }
    t.ktls_tx = true;
    return true;
  }

  std::string* take_buffer() {
    if (spare_.empty()) return new std::string();
    std::string* b = spare_.back();
    spare_.pop_back();
    return b;
  }

  void give_buffer(std::string*& b) {
    if (!b) return;
    if (spare_.size() >= kSpareBuffers || b->capacity() > kMaxSpareCapacity) {
      delete b;
    } else {
      b->clear();
      spare_.push_back(b);
    }
    b = nullptr;
  }

  BackendEvents& events_;
  TlsContext& context_;
  std::vector<bool> tls_listeners_;
  std::unique_ptr<Backend> inner_;
  SSL_CTX* ctx_ = nullptr;  // this loop's reference to the context handshakes start with
  uint64_t ctx_generation_ = 0;
  bool accepting_tls_ = false;
  std::vector<uint8_t> plain_;  // decrypted records on their way up
  std::vector<uint8_t> stage_;  // small frames coalesced into one record
  std::vector<std::string*> spare_;
};

void set_ktls_setsockopt_for_testing(KtlsSetsockopt fn) {
  g_ktls_setsockopt = fn ? fn : ::setsockopt;
}

std::unique_ptr<Backend> make_tls_backend(
    BackendEvents& events, TlsContext& context, std::vector<bool> tls_listeners,
    const std::function<std::unique_ptr<Backend>(BackendEvents&)>& make_inner) {
  auto tls = std::make_unique<TlsBackend>(events, context, std::move(tls_listeners));
  std::unique_ptr<Backend> inner = make_inner(*tls);
  if (!inner) return nullptr;
  tls->set_inner(std::move(inner));
  return tls;
}

}  // namespace ringcast::engine

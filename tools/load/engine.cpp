#include "load/engine.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

namespace ringcast::load {

namespace {

constexpr uint64_t kWakeTag = UINT64_MAX;
constexpr int kMaxEvents = 512;
constexpr size_t kScratch = 256 * 1024;
constexpr uint64_t kMaxIdleWaitNs = 100'000'000;  // loop re-checks the phase at least this often

std::string errno_text(const char* what, int err) {
  return std::string(what) + ": " + std::strerror(err);
}

}  // namespace

const char* error_kind_name(ErrorKind k) {
  switch (k) {
    case ErrorKind::kConnect:
      return "connect";
    case ErrorKind::kHandshake:
      return "handshake";
    case ErrorKind::kClosed:
      return "closed";
    case ErrorKind::kProtocol:
      return "protocol";
    case ErrorKind::kPayload:
      return "payload";
    case ErrorKind::kOrder:
      return "order";
    case ErrorKind::kDuplicate:
      return "duplicate";
    case ErrorKind::kHttp:
      return "http";
    case ErrorKind::kCount:
      break;
  }
  return "?";
}

void ErrorLog::note(ErrorKind k, const std::string& msg) {
  constexpr int kPrintLimit = 5;
  int i = static_cast<int>(k);
  std::lock_guard lock(mu);
  if (first[i].empty()) first[i] = msg;
  if (printed[i] < kPrintLimit) {
    std::fprintf(stderr, "ringcast-load: %s error: %s\n", error_kind_name(k), msg.c_str());
  } else if (printed[i] == kPrintLimit) {
    std::fprintf(stderr, "ringcast-load: further %s errors are counted, not printed\n",
                 error_kind_name(k));
  }
  if (printed[i] <= kPrintLimit) ++printed[i];
}

Worker::Worker(Run& run, int index, int nthreads, uint64_t total_conns)
    : run_(run), index_(index), scratch_(kScratch) {
  uint64_t mine = total_conns > static_cast<uint64_t>(index)
                      ? (total_conns - static_cast<uint64_t>(index) + nthreads - 1) /
                            static_cast<uint64_t>(nthreads)
                      : 0;
  conns_.resize(mine);
  for (size_t k = 0; k < mine; ++k) {
    uint64_t gid = static_cast<uint64_t>(index) + k * static_cast<uint64_t>(nthreads);
    conns_[k].gid = static_cast<uint32_t>(gid);
    conns_[k].role = run.workload->role(gid);
    conns_[k].http = run.workload->is_http(gid);
    conns_[k].node = static_cast<uint16_t>(run.workload->node(gid));
  }
  size_t slots = run.ws.size() + run.api.size();
  node_opened.assign(slots, 0);
  node_failed.assign(slots, 0);
  node_lost.assign(slots, 0);
  std::random_device rd;
  rng_ = (uint64_t{rd()} << 32) ^ rd() ^ (static_cast<uint64_t>(index) << 17) ^ now_ns();
  if (rng_ == 0) rng_ = 0x9E3779B97F4A7C15ull;
  if (run.opt.url.tls) {
    tls_ctx_ = SSL_CTX_new(TLS_client_method());
    if (!tls_ctx_) throw std::runtime_error("SSL_CTX_new failed");
    SSL_CTX_set_min_proto_version(tls_ctx_, TLS1_2_VERSION);
    SSL_CTX_set_mode(tls_ctx_, SSL_MODE_RELEASE_BUFFERS);
    if (!run.opt.tls_ca.empty()) {
      if (SSL_CTX_load_verify_file(tls_ctx_, run.opt.tls_ca.c_str()) != 1)
        throw std::runtime_error("--tls-ca: cannot load " + run.opt.tls_ca);
      SSL_CTX_set_verify(tls_ctx_, SSL_VERIFY_PEER, nullptr);
    }
    tls_buf_.resize(16384);
  }
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  evfd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epfd_ < 0 || evfd_ < 0) throw std::runtime_error(errno_text("epoll/eventfd", errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeTag;
  epoll_ctl(epfd_, EPOLL_CTL_ADD, evfd_, &ev);
}

Worker::~Worker() {
  for (auto& c : conns_) {
    if (c.fd >= 0) ::close(c.fd);
    if (c.ssl) SSL_free(c.ssl);
  }
  if (tls_ctx_) SSL_CTX_free(tls_ctx_);
  if (epfd_ >= 0) ::close(epfd_);
  if (evfd_ >= 0) ::close(evfd_);
}

void Worker::start() {
  thread_ = std::thread([this] { loop(); });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::wake() {
  uint64_t one = 1;
  ssize_t r = ::write(evfd_, &one, sizeof one);
  (void)r;
}

uint64_t Worker::random64() {
  // xorshift64*: fast, good enough for mask keys and nonces of a load generator.
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  return rng_ * 0x2545F4914F6CDD1Dull;
}

void Worker::record(int series, uint64_t ns) {
  hist[series].record(ns);
  if (series == 0) {
    std::lock_guard lock(interval_mu);
    interval.record(ns);
  }
}

void Worker::error(ErrorKind k, const std::string& msg) {
  bump(counters_.errors[static_cast<int>(k)]);
  run_.log.note(k, msg);
}

void Worker::send_message(Conn& c, uint8_t op, const uint8_t* p, size_t n) {
  if (c.state != ConnState::kOpen) return;
  append_frame(c.out, op, p, n, static_cast<uint32_t>(random64()));
  bump(counters_.sent);
  mark_dirty(c);
}

void Worker::send_http(Conn& c, const char* p, size_t n) {
  if (c.state != ConnState::kOpen) return;
  c.out.append(p, n);
  bump(counters_.sent);
  mark_dirty(c);
}

void Worker::send_control(Conn& c, uint8_t op, const uint8_t* p, size_t n) {
  if (c.fd < 0) return;
  append_frame(c.out, op, p, n, static_cast<uint32_t>(random64()));
  mark_dirty(c);
}

void Worker::mark_dirty(Conn& c) {
  if (c.dirty) return;
  c.dirty = true;
  dirty_.push_back(static_cast<uint32_t>(&c - conns_.data()));
}

// Sends buf from off on until the socket would block (c.blocked) or fails (the connection is
// lost); what the kernel took is dropped from the front of buf, without shrinking its capacity.
void Worker::send_buffered(Conn& c, std::string& buf, size_t& off) {
  while (off < buf.size()) {
    ssize_t r = ::send(c.fd, buf.data() + off, buf.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (r > 0) {
      off += static_cast<size_t>(r);
      bump(counters_.bytes_sent, static_cast<uint64_t>(r));
    } else if (r < 0 && errno == EINTR) {
      continue;
    } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      c.blocked = true;
      break;
    } else {
      lost(c, errno_text("send", errno));
      return;
    }
  }
  if (off == buf.size()) {
    buf.clear();
    off = 0;
  } else if (off > 65536 && off > buf.size() / 2) {
    buf.erase(0, off);
    off = 0;
  }
}

void Worker::flush(Conn& c) {
  if (c.fd < 0 || c.blocked || c.state == ConnState::kConnecting) return;
  if (c.ssl) {
    tls_flush(c);
    return;
  }
  send_buffered(c, c.out, c.out_off);
}

void Worker::tls_flush(Conn& c) {
  if (!SSL_is_init_finished(c.ssl)) {
    ERR_clear_error();
    int r = SSL_do_handshake(c.ssl);
    if (r != 1 && SSL_get_error(c.ssl, r) != SSL_ERROR_WANT_READ) {
      char buf[256];
      ERR_error_string_n(ERR_peek_error(), buf, sizeof buf);
      ERR_clear_error();
      handshake_failed(c, ErrorKind::kHandshake, std::string("TLS handshake: ") + buf);
      return;
    }
  }
  if (SSL_is_init_finished(c.ssl) && c.out_off < c.out.size()) {
    size_t written = 0;
    if (SSL_write_ex(c.ssl, c.out.data() + c.out_off, c.out.size() - c.out_off, &written) != 1) {
      ERR_clear_error();
      lost(c, "TLS write failed");
      return;
    }
    c.out.clear();
    c.out_off = 0;
  }
  BIO* wbio = SSL_get_wbio(c.ssl);
  char* pending = nullptr;
  long n = BIO_get_mem_data(wbio, &pending);
  if (n > 0) {
    c.tls_out.append(pending, static_cast<size_t>(n));
    (void)BIO_reset(wbio);
  }
  send_buffered(c, c.tls_out, c.tls_off);
}

void Worker::tls_input(Conn& c, const uint8_t* data, size_t n) {
  BIO_write(SSL_get_rbio(c.ssl), data, static_cast<int>(n));
  if (!SSL_is_init_finished(c.ssl)) {
    tls_flush(c);  // advances the handshake; once done, sends the upgrade request
    if (c.fd < 0 || !SSL_is_init_finished(c.ssl)) return;
  }
  for (;;) {
    size_t got = 0;
    ERR_clear_error();
    if (SSL_read_ex(c.ssl, tls_buf_.data(), tls_buf_.size(), &got) == 1) {
      on_input(c, tls_buf_.data(), got, now_ns());
      if (c.fd < 0) return;
      continue;
    }
    int e = SSL_get_error(c.ssl, 0);
    ERR_clear_error();
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_ZERO_RETURN) break;  // FIN follows close_notify
    if (c.state == ConnState::kHandshake)
      handshake_failed(c, ErrorKind::kHandshake, "TLS error");
    else
      lost(c, "TLS error");
    return;
  }
  if (BIO_ctrl_pending(SSL_get_wbio(c.ssl)) > 0) mark_dirty(c);
}

void Worker::flush_dirty() {
  // flush() may close a connection but never adds to dirty_, so iterating by index is safe.
  for (size_t i = 0; i < dirty_.size(); ++i) {
    Conn& c = conns_[dirty_[i]];
    c.dirty = false;
    flush(c);
  }
  dirty_.clear();
}

void Worker::loop() {
  // Fixed-rate sends wake on precise deadlines; the default 50 us timer slack would delay each.
  prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
  epoll_event events[kMaxEvents];
  Phase seen = Phase::kDone;
  bool first = true;
  for (;;) {
    Phase p = run_.current();
    uint64_t now = now_ns();
    if (first || p != seen) {
      first = false;
      seen = p;
      on_phase(p, now);
      if (p == Phase::kDone) break;
    }
    uint64_t next = now + kMaxIdleWaitNs;
    if (p == Phase::kConnect) next = std::min(next, start_connects(now));
    if (p == Phase::kRun) next = std::min(next, run_.workload->on_tick(*this, now));
    flush_dirty();
    update_flags(p, now);
    now = now_ns();
    uint64_t wait = next > now ? next - now : 0;
    if (p == Phase::kDrain && !drained.load(std::memory_order_relaxed))
      wait = std::min<uint64_t>(wait, 10'000'000);
    timespec ts{static_cast<time_t>(wait / 1'000'000'000u),
                static_cast<long>(wait % 1'000'000'000u)};
    int n = epoll_pwait2(epfd_, events, kMaxEvents, &ts, nullptr);
    if (n < 0) {
      if (errno == EINTR) continue;
      error(ErrorKind::kConnect, errno_text("epoll_pwait2", errno));
      break;
    }
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == kWakeTag) {
        uint64_t v;
        ssize_t r = ::read(evfd_, &v, sizeof v);
        (void)r;
        continue;
      }
      on_event(conns_[events[i].data.u64], events[i].events);
    }
    flush_dirty();
  }
  for (auto& c : conns_)
    if (c.fd >= 0) close_conn(c, ConnState::kClosed);
  closed.store(true, std::memory_order_release);
}

void Worker::on_phase(Phase p, uint64_t now) {
  switch (p) {
    case Phase::kRun:
      run_.workload->on_run_start(*this, now);
      break;
    case Phase::kDrain:
      run_.workload->on_tick(*this, now);  // whatever was still due before the end
      break;
    case Phase::kClose:
      for (auto& c : conns_) {
        if (c.http && c.fd >= 0) {
          // Nothing to say goodbye with in HTTP/1.1: answers still due were waited for (drain).
          close_conn(c, ConnState::kClosed);
        } else if (c.state == ConnState::kOpen) {
          static constexpr uint8_t kNormal[2] = {0x03, 0xE8};  // 1000
          send_control(c, opcode::kClose, kNormal, 2);
          c.state = ConnState::kClosing;
          bump(counters_.open, static_cast<uint64_t>(-1));
        } else if (c.state == ConnState::kConnecting || c.state == ConnState::kHandshake) {
          close_conn(c, ConnState::kClosed);
        }
      }
      next_to_start_ = conns_.size();  // nothing new from now on
      break;
    default:
      break;
  }
}

void Worker::update_flags(Phase p, uint64_t now) {
  if (!connect_done.load(std::memory_order_relaxed) && resolved_ == conns_.size() &&
      run_.workload->ready(*this))
    connect_done.store(true, std::memory_order_release);
  if (p == Phase::kDrain && !drained.load(std::memory_order_relaxed) &&
      now - last_drain_check_ >= 5'000'000) {
    last_drain_check_ = now;
    if (run_.workload->drained(*this)) drained.store(true, std::memory_order_release);
  }
  if (p == Phase::kClose && live_ == 0) closed.store(true, std::memory_order_release);
}

uint64_t Worker::start_connects(uint64_t now) {
  const Options& o = run_.opt;
  bool paced = o.scenario == Scenario::kConnect && o.rate > 0;
  uint64_t t0 = run_.t_connect_start.load(std::memory_order_relaxed);
  while (next_to_start_ < conns_.size()) {
    if (pending_ >= o.max_pending) return now + kMaxIdleWaitNs;  // woken by completions
    Conn& c = conns_[next_to_start_];
    if (paced) {
      uint64_t due = t0 + static_cast<uint64_t>(static_cast<double>(c.gid) * 1e9 / o.rate);
      if (due > now) return due;
    }
    ++next_to_start_;
    open_conn(c, now_ns());
  }
  return UINT64_MAX;
}

void Worker::open_conn(Conn& c, uint64_t now) {
  const Options& o = run_.opt;
  c.t_start = now;
  if (counters_.first_start.load(std::memory_order_relaxed) == 0)
    counters_.first_start.store(now, std::memory_order_relaxed);
  const Run::Endpoint& ep = c.http ? run_.api[c.node] : run_.ws[c.node];
  const sockaddr_storage& addr = ep.addr;
  socklen_t addr_len = ep.len;
  int family = addr.ss_family;
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int err = errno;
    c.state = ConnState::kFailed;
    ++resolved_;
    bump(counters_.failed);
    ++node_failed[node_slot(c)];
    error(ErrorKind::kConnect,
          errno_text("socket", err) +
              (err == EMFILE || err == ENFILE ? " (file descriptor limit)" : ""));
    return;
  }
  c.fd = fd;
  ++live_;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (o.source_addrs > 1 && family == AF_INET) {
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7F000001u + c.gid % o.source_addrs);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
      handshake_failed(c, ErrorKind::kConnect, errno_text("bind to source address", errno));
      return;
    }
  }
  c.state = ConnState::kConnecting;
  ++pending_;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), addr_len) != 0 &&
      errno != EINPROGRESS) {
    int err = errno;
    handshake_failed(
        c, ErrorKind::kConnect,
        errno_text("connect", err) +
            (err == EADDRNOTAVAIL ? " (out of ephemeral ports: try --source-addrs)" : ""));
    return;
  }
  // Registered after connect(): an unconnected socket would poll as EPOLLHUP.
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = static_cast<uint64_t>(&c - conns_.data());
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    handshake_failed(c, ErrorKind::kConnect, errno_text("epoll_ctl", errno));
    return;
  }
  // Completion (or failure) is reported by EPOLLOUT/EPOLLERR.
}

void Worker::on_event(Conn& c, uint32_t events) {
  if (c.fd < 0) return;
  if (c.state == ConnState::kConnecting) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
      if (err == 0) err = ECONNRESET;
      handshake_failed(
          c, ErrorKind::kConnect,
          errno_text("connect", err) +
              (err == EADDRNOTAVAIL ? " (out of ephemeral ports: try --source-addrs)" : ""));
      return;
    }
    on_connected(c);
    if (c.fd < 0) return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) on_readable(c);
  if (c.fd >= 0 && (events & EPOLLOUT) && c.blocked) {
    c.blocked = false;
    flush(c);
  }
}

void Worker::on_connected(Conn& c) {
  if (c.http) {
    // Open as soon as TCP is: the connect time is its "handshake".
    uint64_t now = now_ns();
    c.state = ConnState::kOpen;
    --pending_;
    ++resolved_;
    bump(counters_.open);
    bump(counters_.opened);
    ++node_opened[node_slot(c)];
    counters_.last_open.store(now, std::memory_order_relaxed);
    handshake.record(now - c.t_start);
    run_.workload->on_open(*this, c, now);
    return;
  }
  c.state = ConnState::kHandshake;
  uint8_t nonce[16];
  uint64_t a = random64(), b = random64();
  std::memcpy(nonce, &a, 8);
  std::memcpy(nonce + 8, &b, 8);
  std::string key = base64_encode(nonce, 16);
  std::string accept = websocket_accept(key);
  std::memcpy(c.accept, accept.data(), std::min(accept.size(), sizeof c.accept));
  const Url& url = run_.opt.urls[c.node];
  c.out = upgrade_request(url.host_header(), run_.workload->target(c.gid), key, run_.opt.deflate);
  c.out_off = 0;
  if (tls_ctx_) {
    // The request waits in `out` until the TLS handshake this starts is done.
    c.ssl = SSL_new(tls_ctx_);
    if (!c.ssl) {
      handshake_failed(c, ErrorKind::kHandshake, "SSL_new failed");
      return;
    }
    SSL_set_bio(c.ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_connect_state(c.ssl);
    const std::string& host = url.host;
    in6_addr ip;
    if (inet_pton(AF_INET, host.c_str(), &ip) != 1 && inet_pton(AF_INET6, host.c_str(), &ip) != 1)
      SSL_set_tlsext_host_name(c.ssl, host.c_str());
    if (!run_.opt.tls_ca.empty()) SSL_set1_host(c.ssl, host.c_str());
  }
  mark_dirty(c);
}

void Worker::on_readable(Conn& c) {
  for (;;) {
    ssize_t r = ::recv(c.fd, scratch_.data(), scratch_.size(), 0);
    if (r > 0) {
      bump(counters_.bytes_received, static_cast<uint64_t>(r));
      if (c.ssl)
        tls_input(c, scratch_.data(), static_cast<size_t>(r));
      else
        on_input(c, scratch_.data(), static_cast<size_t>(r), now_ns());
      if (c.fd < 0) return;
      continue;
    }
    if (r == 0) {
      if (c.state == ConnState::kClosing) {
        close_conn(c, ConnState::kClosed);
      } else if (c.state == ConnState::kHandshake) {
        handshake_failed(c, ErrorKind::kHandshake, "connection closed before the 101 response");
      } else if (c.http) {
        lost(c, "the server closed the HTTP connection");
      } else {
        lost(c, "connection closed by the server without a close frame");
      }
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    int err = errno;
    if (c.state == ConnState::kHandshake)
      handshake_failed(c, ErrorKind::kHandshake, errno_text("recv", err));
    else if (c.state == ConnState::kClosing)
      close_conn(c, ConnState::kClosed);
    else
      lost(c, errno_text("recv", err));
    return;
  }
}

void Worker::on_input(Conn& c, const uint8_t* data, size_t n, uint64_t now) {
  if (c.http) {
    if (c.state != ConnState::kOpen) return;
    c.in.append(reinterpret_cast<const char*>(data), n);  // keeps its capacity: no allocation
    size_t used = run_.workload->on_http(*this, c, c.in, now);
    if (c.fd >= 0) c.in.erase(0, std::min(used, c.in.size()));
    return;
  }
  if (c.state == ConnState::kHandshake) {
    c.in.append(reinterpret_cast<const char*>(data), n);
    size_t consumed = 0;
    std::string err;
    bool deflate = false;
    switch (parse_upgrade_response(c.in, std::string_view(c.accept, sizeof c.accept), consumed, err,
                                   &deflate)) {
      case HandshakeStatus::kIncomplete:
        return;
      case HandshakeStatus::kFailed:
        handshake_failed(c, ErrorKind::kHandshake, err);
        return;
      case HandshakeStatus::kOk:
        break;
    }
    if (run_.opt.deflate && !deflate) {
      // A --deflate run that silently ran uncompressed would measure the wrong thing.
      handshake_failed(c, ErrorKind::kHandshake,
                       "--deflate: the server did not agree permessage-deflate "
                       "([compression] enabled = true)");
      return;
    }
    c.frag.deflate = deflate;
    c.state = ConnState::kOpen;
    --pending_;
    ++resolved_;
    bump(counters_.open);
    bump(counters_.opened);
    ++node_opened[node_slot(c)];
    counters_.last_open.store(now, std::memory_order_relaxed);
    handshake.record(now - c.t_start);
    std::string rest = c.in.substr(consumed);
    std::string().swap(c.in);
    run_.workload->on_open(*this, c, now);
    if (!rest.empty() && c.fd >= 0)
      on_input(c, reinterpret_cast<const uint8_t*>(rest.data()), rest.size(), now);
    return;
  }
  if (c.state != ConnState::kOpen && c.state != ConnState::kClosing) return;
  const char* err = nullptr;
  auto cb = [&](uint8_t op, const uint8_t* p, size_t len) { return on_frame(c, op, p, len, now); };
  if (c.in.empty()) {
    long used = consume_frames(data, n, c.frag, cb, &err);
    if (used < 0) {
      error(ErrorKind::kProtocol, std::string(err) + " (connection " + std::to_string(c.gid) + ")");
      lost(c, "");
      return;
    }
    if (c.fd >= 0 && static_cast<size_t>(used) < n)
      c.in.assign(reinterpret_cast<const char*>(data) + used, n - static_cast<size_t>(used));
  } else {
    c.in.append(reinterpret_cast<const char*>(data), n);
    long used = consume_frames(reinterpret_cast<const uint8_t*>(c.in.data()), c.in.size(), c.frag,
                               cb, &err);
    if (used < 0) {
      error(ErrorKind::kProtocol, std::string(err) + " (connection " + std::to_string(c.gid) + ")");
      lost(c, "");
      return;
    }
    if (c.fd >= 0) {
      c.in.erase(0, static_cast<size_t>(used));
      if (c.in.empty() && c.in.capacity() > 4096) std::string().swap(c.in);
    }
  }
}

bool Worker::on_frame(Conn& c, uint8_t op, const uint8_t* p, size_t n, uint64_t now) {
  switch (op) {
    case opcode::kPing:
      bump(counters_.pings);
      send_control(c, opcode::kPong, p, n);
      return true;
    case opcode::kPong:
      return true;
    case opcode::kClose: {
      if (c.state == ConnState::kClosing) {
        close_conn(c, ConnState::kClosed);
        return false;
      }
      unsigned code = n >= 2 ? (unsigned{p[0]} << 8 | p[1]) : 1005;
      std::string reason = n > 2 ? std::string(reinterpret_cast<const char*>(p) + 2, n - 2) : "";
      uint8_t reply[2] = {static_cast<uint8_t>(code == 1005 ? 0x03 : p[0]),
                          static_cast<uint8_t>(code == 1005 ? 0xE8 : p[1])};
      send_control(c, opcode::kClose, reply, 2);
      flush(c);
      lost(c, "server closed the connection with code " + std::to_string(code) +
                  (reason.empty() ? "" : " (" + reason + ")"));
      return false;
    }
    default:
      if (c.state != ConnState::kOpen) return true;  // closing: late data is dropped
      bump(counters_.received);
      run_.workload->on_message(*this, c, op, p, n, now);
      return c.fd >= 0;
  }
}

void Worker::handshake_failed(Conn& c, ErrorKind k, const std::string& msg) {
  if (c.state == ConnState::kConnecting || c.state == ConnState::kHandshake) --pending_;
  ++resolved_;
  bump(counters_.failed);
  ++node_failed[node_slot(c)];
  error(k, msg + " (connection " + std::to_string(c.gid) + ")");
  close_conn(c, ConnState::kFailed);
}

void Worker::lost(Conn& c, const std::string& why) {
  // Closing phase: the server may hang up first; anything else is an error.
  if (run_.current() < Phase::kClose && c.state != ConnState::kClosing && !why.empty()) {
    ++node_lost[node_slot(c)];
    error(ErrorKind::kClosed, why + " (connection " + std::to_string(c.gid) + ")");
  }
  close_conn(c, ConnState::kClosed);
}

void Worker::close_conn(Conn& c, ConnState final_state) {
  if (c.state == ConnState::kOpen || c.state == ConnState::kClosing)
    run_.workload->on_close(*this, c);
  if (c.fd >= 0) {
    ::close(c.fd);
    c.fd = -1;
    --live_;
  }
  if (c.state == ConnState::kOpen) bump(counters_.open, static_cast<uint64_t>(-1));
  c.state = final_state;
  c.blocked = false;
  std::string().swap(c.in);
  std::string().swap(c.out);
  c.out_off = 0;
  c.frag = FragmentState{};
  if (c.ssl) {
    SSL_free(c.ssl);
    c.ssl = nullptr;
  }
  std::string().swap(c.tls_out);
  c.tls_off = 0;
}

}  // namespace ringcast::load

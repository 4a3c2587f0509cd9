// Event loop of ringcast-load: one epoll (edge-triggered) loop per thread, each owning a slice of
// the connections (global index g belongs to thread g % threads). A connection is ~200 bytes plus
// whatever partial frame or unsent data it has to keep; reads go through one per-thread buffer.
#pragma once

#include <openssl/ssl.h>
#include <sys/socket.h>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "load/histogram.h"
#include "load/options.h"
#include "load/ws_proto.h"

namespace ringcast::load {

inline uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

// Phases of a run, driven by the main thread.
enum class Phase : int { kConnect, kRun, kDrain, kHold, kClose, kDone };

enum class ConnState : uint8_t {
  kIdle,
  kConnecting,
  kHandshake,
  kOpen,
  kClosing,
  kClosed,
  kFailed
};

enum class ErrorKind : int {
  kConnect,    // socket/connect failed or the TCP connection broke before the upgrade finished
  kHandshake,  // upgrade refused or answered wrongly
  kClosed,     // an open connection was closed (by the server or the network) during the run
  kProtocol,   // malformed frames from the server
  kPayload,    // wrong message content (echo payload mismatch, bad header, wrong size or opcode)
  kOrder,      // a message arrived out of order
  kDuplicate,  // a message arrived twice
  kHttp,       // an HTTP answer other than 200, or a malformed one (http-publish)
  kCount
};
const char* error_kind_name(ErrorKind k);

struct Conn {
  int fd = -1;
  uint32_t gid = 0;  // global connection index
  ConnState state = ConnState::kIdle;
  uint8_t role = 0;
  uint16_t node = 0;     // index of its URL: Options::urls (WebSocket) or Options::apis (http)
  bool http = false;     // plain HTTP/1.1 keep-alive connection (no upgrade, no frames)
  bool dirty = false;    // queued in the thread's flush list
  bool blocked = false;  // last send hit EAGAIN: wait for EPOLLOUT
  uint32_t inflight = 0;
  uint64_t t_start = 0;  // connect() called
  uint64_t next_seq = 0;
  uint64_t expect_seq = 0;
  std::string in;   // unparsed input (partial handshake reply or partial frame)
  std::string out;  // unsent output, from out_off on
  size_t out_off = 0;
  FragmentState frag;
  char accept[28] = {};  // expected Sec-WebSocket-Accept
  // wss:// only: the TLS session over memory BIOs. `out` then holds plaintext not yet encrypted
  // (the upgrade request waits there until the TLS handshake is done), tls_out ciphertext.
  SSL* ssl = nullptr;
  std::string tls_out;
  size_t tls_off = 0;
};

class Worker;

// Scenario logic. The hooks run on the worker thread that owns the connection.
class Workload {
 public:
  virtual ~Workload() = default;
  virtual uint8_t role(uint64_t gid) const = 0;
  virtual std::string target(uint64_t gid) const = 0;  // request target: path[?query]
  // Index of the URL connection gid goes to (Options::urls, or Options::apis when is_http).
  virtual uint32_t node(uint64_t gid) const = 0;
  // True for connections that speak plain HTTP to Run::api instead of WebSocket: they are
  // open once TCP is connected, and their input goes to on_http.
  virtual bool is_http(uint64_t /*gid*/) const { return false; }
  // Input of an HTTP connection, accumulated in `in`; returns how many bytes it consumed. It may
  // close the connection (then the return value is ignored).
  virtual size_t on_http(Worker&, Conn&, std::string_view /*in*/, uint64_t /*now*/) { return 0; }
  virtual void on_open(Worker&, Conn&, uint64_t /*now*/) {}
  virtual void on_run_start(Worker&, uint64_t /*now*/) {}
  // Sends what is due; returns when it wants to be called next (UINT64_MAX: not at all).
  virtual uint64_t on_tick(Worker&, uint64_t /*now*/) { return UINT64_MAX; }
  virtual void on_message(Worker&, Conn&, uint8_t op, const uint8_t* p, size_t n, uint64_t now) = 0;
  // An open connection is going away (any reason, including the end of the run).
  virtual void on_close(Worker&, Conn&) {}
  // True when this worker's open connections are ready for the measured phase (e.g. logged in).
  virtual bool ready(Worker&) { return true; }
  // True when nothing this worker waits for is still in flight (checked during the drain phase).
  virtual bool drained(Worker&) { return true; }
};

struct ErrorLog {
  std::mutex mu;
  int printed[static_cast<int>(ErrorKind::kCount)] = {};
  std::string first[static_cast<int>(ErrorKind::kCount)];
  void note(ErrorKind k, const std::string& msg);
};

// State shared by the main thread and the workers.
struct Run {
  explicit Run(const Options& o) : opt(o) {}
  const Options& opt;
  struct Endpoint {
    sockaddr_storage addr{};
    socklen_t len = 0;
  };
  std::vector<Endpoint> ws;   // resolved Options::urls
  std::vector<Endpoint> api;  // resolved Options::apis (http-publish)
  Workload* workload = nullptr;
  std::atomic<int> phase{static_cast<int>(Phase::kConnect)};
  std::atomic<uint64_t> t_connect_start{0};  // connect phase start (connect-rate schedule)
  std::atomic<uint64_t> t_run_start{0};      // start of the measured phase
  std::atomic<uint64_t> t_run_end{0};        // intended end of the measured phase
  ErrorLog log;
  Phase current() const { return static_cast<Phase>(phase.load(std::memory_order_acquire)); }
};

// Counters read by the main thread for progress lines; written only by the owning worker.
struct Counters {
  std::atomic<uint64_t> open{0};  // connections currently open
  std::atomic<uint64_t> opened{0};
  std::atomic<uint64_t> failed{0};  // never got open
  std::atomic<uint64_t> sent{0};    // data messages
  std::atomic<uint64_t> received{0};
  std::atomic<uint64_t> bytes_sent{0};
  std::atomic<uint64_t> bytes_received{0};
  std::atomic<uint64_t> pings{0};
  std::atomic<uint64_t> errors[static_cast<int>(ErrorKind::kCount)] = {};
  std::atomic<uint64_t> first_start{0};  // first connect() of this worker
  std::atomic<uint64_t> last_open{0};    // last completed upgrade of this worker
};

inline void bump(std::atomic<uint64_t>& a, uint64_t n = 1) {
  a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

class Worker {
 public:
  Worker(Run& run, int index, int nthreads, uint64_t total_conns);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void start();
  void join();
  void wake();  // makes the loop re-read the phase now

  int index() const { return index_; }
  Run& run() { return run_; }
  std::vector<Conn>& conns() { return conns_; }
  Counters& counters() { return counters_; }

  // Queues a data message (counted as sent) or a control frame on c; sent at the end of this loop
  // iteration.
  void send_message(Conn& c, uint8_t op, const uint8_t* p, size_t n);
  void send_control(Conn& c, uint8_t op, const uint8_t* p, size_t n);
  // Queues bytes as they are on an HTTP connection (counted as one sent message).
  void send_http(Conn& c, const char* p, size_t n);
  // Ends a connection after a protocol error the workload found (counted by the caller).
  void drop(Conn& c) { lost(c, ""); }
  void error(ErrorKind k, const std::string& msg);
  uint64_t random64();

  // Latency histograms: [0] the scenario's main series (also copied into `interval`, under
  // interval_mu, for the per-second progress line), [1] its second series, [2] fixed-rate send lag
  // (actual minus intended send time: how far the generator itself fell behind), [3] a third
  // series (http-publish: API response time); handshake latency separately.
  // [4] and [5]: the main series split by node, when the run spans several URLs (broadcast: a
  // delivery on the publisher's node / on another node).
  Histogram hist[6];
  Histogram handshake;
  std::mutex interval_mu;
  Histogram interval;
  void record(int series, uint64_t ns);

  // Connections that opened / failed to open / closed during the run, per URL (index: Conn::node;
  // WebSocket URLs first, then the API URLs). Written by this worker, read after join().
  std::vector<uint64_t> node_opened, node_failed, node_lost;

  // Status flags for the main thread.
  std::atomic<bool> connect_done{false};
  std::atomic<bool> drained{false};
  std::atomic<bool> closed{false};

 private:
  void loop();
  void on_phase(Phase p, uint64_t now);
  uint64_t start_connects(uint64_t now);
  void open_conn(Conn& c, uint64_t now);
  void on_event(Conn& c, uint32_t events);
  void on_connected(Conn& c);
  void on_readable(Conn& c);
  void on_input(Conn& c, const uint8_t* data, size_t n, uint64_t now);
  bool on_frame(Conn& c, uint8_t op, const uint8_t* p, size_t n, uint64_t now);
  void handshake_failed(Conn& c, ErrorKind k, const std::string& msg);
  void lost(Conn& c, const std::string& why);  // connection ended unexpectedly
  void close_conn(Conn& c, ConnState final_state);
  // wss://: encrypts pending output and sends ciphertext; feeds received ciphertext through.
  void tls_flush(Conn& c);
  void tls_input(Conn& c, const uint8_t* data, size_t n);
  void mark_dirty(Conn& c);
  void flush(Conn& c);
  void send_buffered(Conn& c, std::string& buf, size_t& off);
  void flush_dirty();
  void update_flags(Phase p, uint64_t now);
  size_t node_slot(const Conn& c) const { return c.http ? run_.ws.size() + c.node : c.node; }

  Run& run_;
  int index_;
  int epfd_ = -1;
  int evfd_ = -1;
  std::thread thread_;
  std::vector<Conn> conns_;
  std::vector<uint32_t> dirty_;
  std::vector<uint8_t> scratch_;
  SSL_CTX* tls_ctx_ = nullptr;    // wss:// only
  std::vector<uint8_t> tls_buf_;  // decrypted input on its way to on_input
  size_t next_to_start_ = 0;
  size_t pending_ = 0;   // connecting or handshaking
  size_t resolved_ = 0;  // open or failed at least once
  size_t live_ = 0;      // with an fd
  uint64_t rng_;
  uint64_t last_drain_check_ = 0;
  Counters counters_;
};

}  // namespace ringcast::load

// One worker: a thread pinned to a core that owns one backend loop, its own SO_REUSEPORT listeners
// and every session it accepted. All session state is touched by this thread only.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "ringcast/engine/backend.h"
#include "ringcast/engine/flow_credit.h"
#include "ringcast/engine/timer_wheel.h"
#include "ringcast/engine/tls_context.h"
#include "ringcast/websocket/frame_reader.h"
#include "ringcast/websocket/http_service.h"
#include "ringcast/websocket/permessage_deflate.h"
#include "ringcast/websocket/router.h"
#include "ringcast/websocket/server_settings.h"
#include "ringcast/websocket/server_stats.h"
#include "ringcast/websocket/session.h"

namespace ringcast::websocket {

struct ListenerSpec {
  std::string host;
  uint16_t port;
  bool websocket;    // false: the health port, plain HTTP only
  bool tls = false;  // connections speak TLS (WorkerShared::tls)
};

class Worker;

// Work a higher layer (the hub) runs inside each worker's loop: draining the cross-core mailbox.
class LoopHooks {
 public:
  virtual ~LoopHooks() = default;
  // Once per loop pass, after I/O events and before output is flushed.
  virtual void on_pass() = 0;
  // Before the loop blocks: false if it must not block (work is pending).
  virtual bool prepare_sleep() = 0;
  virtual void end_sleep() = 0;
};

// What all workers share. Owned by the application; outlives the workers.
struct WorkerShared {
  std::vector<Worker*> workers;   // by index, for waking peers
  std::vector<LoopHooks*> hooks;  // by index; empty or nullptr entries mean none
  SettingsStore* settings = nullptr;
  Router* router = nullptr;
  HttpService* http = nullptr;
  ServerStats* stats = nullptr;
  std::vector<ListenerSpec> listeners;
  engine::BackendKind backend = engine::BackendKind::kIoUring;
  engine::BackendOptions backend_options;
  engine::TlsContext* tls = nullptr;  // certificates for listeners with `tls` set
  bool pin_threads = true;
  std::atomic<bool> stopping{false};
};

struct SendBatch {
  static constexpr int kMaxIov = 64;
  msghdr msg{};
  iovec iov[kMaxIov];
  SendBatch* next_free = nullptr;
};

class Worker final : public engine::BackendEvents, public engine::Waker {
 public:
  Worker(int index, int cpu, WorkerShared& shared);
  ~Worker() override;

  // Thread body. Opens the listeners, reports through started(), runs until stopped and drained.
  void run();
  // Blocks until run() has opened its listeners (true) or failed (false, error()).
  bool wait_started();
  const std::string& error() const { return error_; }
  // Thread-safe: makes the loop look at the shared stop flag, the settings and drained credits.
  void wake() override;
  // Test seam (fuzzers): instead of run(), drives this worker from the calling thread around an
  // injected backend; no listener is opened and no thread pinned. Connections come in through
  // on_accept, and each run_pass() is one turn of the loop (poll, timers, hub hooks, flush).
  void start_with(std::unique_ptr<engine::Backend> backend);
  void run_pass(int timeout_ms);
  int index() const { return index_; }
  // Sessions by id, on this worker only.
  Session* find_session(uint64_t id) const;
  // Every session of this worker (worker thread only; fn must not close sessions it is not
  // given, and may close the one it is given).
  template <typename Fn>
  void for_each_session(Fn&& fn) {
    for (Session* s = sessions_; s;) {
      Session* next = s->next_;
      fn(*s);
      s = next;
    }
  }
  // The deferred answer to the request `session` is waiting on (HttpService::handle); nothing if
  // the connection is gone. Worker thread only.
  void complete_http(uint64_t session, const HttpResponse& resp);
  // Asks the loop to wake peer worker `index` at the end of this pass (once per pass).
  void notify_peer(int index) { peers_to_notify_ |= 1ull << index; }
  // Input holds (see Session::hold_input). release_input(id) ignores a session that is gone.
  void hold_input(Session& s);
  void release_input(Session& s);
  void release_input(uint64_t session_id);
  // An ordered hold: like hold_input, but a later message whose handler's order_key() is `key` is
  // handled at once (it is ordered behind the write anyway); see MessageHandler::order_key.
  // Released in the order taken, by release_ordered. `bytes`: the write's size, which bounds how
  // much a connection may have in flight (outbound_cap) before its input waits after all.
  void hold_ordered(Session& s, const void* key, size_t bytes);
  void release_ordered(uint64_t session_id, size_t bytes);
  // Paces `s` by `frame` (see Session::pace).
  void pace(Session& s, engine::SharedFrame* frame);
  WorkerStats& stats() { return stats_; }
  const ServerSettings& settings() const { return *settings_; }
  engine::BackendKind backend_kind() const { return backend_kind_; }

  // Session operations (worker thread only).
  void send_frame(Session& s, engine::SharedFrame* f);
  void send_message(Session& s, Opcode op, std::span<const uint8_t> payload);
  void close_session(Session& s, uint16_t code, std::string_view reason);
  void set_message_deadline(Session& s, int64_t ms);
  void set_close_deadline(Session& s, int64_t ms, uint16_t code, const char* reason);
  int64_t now_ms() const { return now_ms_; }

  // BackendEvents.
  void on_accept(int listener_id, int fd, const sockaddr_storage& peer) override;
  void on_data(engine::Socket* s, std::span<const uint8_t> data) override;
  void on_read_end(engine::Socket* s, int err) override;
  void on_send_done(engine::Socket* s, int res) override;
  void on_closed(engine::Socket* s) override;
  void on_wake() override;
  void on_wakeup() override;

 private:
  void loop();
  // The configured backend (io_uring, else epoll), wrapped in TLS when a listener needs it
  // (worker_tls.cpp).
  std::unique_ptr<engine::Backend> make_backend(const engine::BackendOptions& options);
  void refresh_settings();
  bool take_message_token(Session& s);
  void begin_stop();
  void flush();
  void mark_dirty(Session& s);
  void enqueue(Session& s, engine::SharedFrame* f, uint8_t flags = 0);
  size_t capped_backlog(const Session& s) const;
  void unlink_item(Session& s, OutItem* it);
  void feed_ws(Session& s, std::span<const uint8_t> data);
  void stash_input(Session& s, std::span<const uint8_t> data);
  bool after_message(Session& s);  // false: stop decoding this session's input
  bool deliver_message(Session& s, Opcode op, std::span<uint8_t> payload);
  bool passes_holds(const Session& s) const;
  void defer_message(Session& s, Opcode op, std::span<const uint8_t> payload);
  bool hold_reply(Session& s, engine::SharedFrame* f);  // true: held until earlier writes land
  void flush_held_replies(Session& s);
  void drop_pipeline(Session& s);
  void run_resumes();
  void check_paced();
  void check_stalls();
  bool drop_oldest(Session& s, size_t incoming);
  template <typename Drop>
  uint64_t drop_queued(Session& s, Drop&& drop);
  bool enforce_cap(Session& s, size_t incoming);  // false: the session was closed
  void drop_unsent(Session& s);
  void notify_peers();
  void handle_http(Session& s, std::span<const uint8_t> data);
  // false: stop reading this buffer (upgraded)
  bool serve_request(Session& s, const HttpRequest& req, std::string_view body);
  void queue_response(Session& s, const HttpResponse& resp);
  void start_websocket(Session& s, const HttpRequest& req, Route* route);
  void handle_ws(Session& s, std::span<const uint8_t> data);
  bool on_chunk(Session& s, const FrameChunk& c);
  void handle_control(Session& s, uint8_t opcode, std::span<uint8_t> payload);
  // permessage-deflate (worker_deflate.cpp).
  bool on_compressed_chunk(Session& s, const FrameChunk& c);  // false: stop decoding
  // What `f` is for `s`: the shared compressed variant, a compressed copy of its own (owned set:
  // the caller releases it), or f itself.
  engine::SharedFrame* deflated_for(Session& s, engine::SharedFrame* f, bool& owned);
  void drop_inflater(Session& s);
  void fail(Session& s, uint16_t code, const char* reason);
  void rate_limit_close(Session& s);
  static void release_item_frame(OutItem* it);  // drops the item's frame reference
  void abort_session(Session& s);
  void shut_write(Session& s);
  void on_timer(Session& s);
  void schedule(Session& s, int64_t deadline_ms);
  void end_websocket(Session& s);
  void drop_queue(Session& s);
  OutItem* new_item();
  void free_item(OutItem* item);
  SendBatch* new_batch();
  void free_batch(SendBatch* b);
  std::string* take_buffer();
  void give_buffer(std::string*& b);
  void trim_idle_pools();  // once a second: spares the pools did not need go back to malloc

  int index_;
  int cpu_;
  WorkerShared& shared_;
  WorkerStats& stats_;
  std::unique_ptr<engine::Backend> backend_;
  engine::BackendKind backend_kind_ = engine::BackendKind::kIoUring;
  std::atomic<engine::Backend*> wake_target_{nullptr};
  std::shared_ptr<const ServerSettings> settings_;
  uint64_t settings_generation_ = ~0ull;
  engine::TimerWheel timers_;
  FrameReaderPool readers_;
  int64_t now_ms_ = 0;
  uint64_t next_session_id_;
  Session* sessions_ = nullptr;  // intrusive list head
  size_t session_count_ = 0;
  Session* dirty_head_ = nullptr;  // flush list, in the order sessions got output
  Session* dirty_tail_ = nullptr;
  OutItem* free_items_ = nullptr;
  SendBatch* free_batches_ = nullptr;
  std::vector<std::string*> free_buffers_;
  std::unique_ptr<MessageDeflater> deflater_;      // made on first use
  std::vector<MessageInflater*> spare_inflaters_;  // capped (kSpareInflaters)
  size_t inflaters_low_ = 0;                       // fewest spares since the last trim
  size_t free_item_count_ = 0;
  size_t free_batch_count_ = 0;
  size_t items_low_ = 0;  // fewest spares each pool held since the last trim
  size_t batches_low_ = 0;
  size_t buffers_low_ = 0;
  int64_t last_pool_trim_ms_ = 0;
  std::unordered_map<uint64_t, Session*> by_id_;
  std::vector<uint64_t> resumes_;  // sessions whose last input hold was released
  std::vector<uint64_t> resume_scratch_;
  std::vector<uint64_t> pace_waits_;   // sessions held until their credit drains
  std::vector<uint64_t> stall_watch_;  // sessions with uncapped output queued
  int64_t next_stall_check_ms_ = 0;
  uint64_t peers_to_notify_ = 0;
  int64_t queued_bytes_ = 0;  // published to stats once per pass
  uint32_t pass_ = 0;         // loop passes, for judging how long a send has been in flight
  LoopHooks* hooks_ = nullptr;
  bool stopping_ = false;
  int64_t drain_deadline_ms_ = 0;

  std::atomic<int> start_state_{0};  // 0 starting, 1 ok, -1 failed
  std::string error_;
};

}  // namespace ringcast::websocket

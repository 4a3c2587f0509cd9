// One client connection on one worker: an HTTP connection until it upgrades, then a WebSocket
// session. It lives and dies on the worker thread that accepted it. Its idle footprint is this
// object alone (a few hundred bytes): receive buffers, frame decoders, message assembly buffers and
// send batches are borrowed from the worker only while in use.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "ringcast/engine/backend.h"
#include "ringcast/engine/shared_frame.h"
#include "ringcast/engine/timer_wheel.h"
#include "ringcast/websocket/opcode.h"
#include "ringcast/websocket/utf8_validator.h"

namespace ringcast::websocket {

class Worker;
class FrameReader;
class MessageInflater;
struct Pipeline;
struct Route;
struct SendBatch;

// A queued reference to (part of) a shared frame.
struct OutItem {
  enum Flags : uint8_t {
    kKeep = 1,      // the HTTP response (the 101): never dropped, whatever follows it
    kUncapped = 2,  // a join snapshot or a paced frame: not slow-consumer backlog (see Worker)
    kFanout = 4,    // holds a pending delivery of a sampled fan-out (SharedFrame::fanout_done)
  };
  engine::SharedFrame* frame;
  uint32_t offset;
  uint32_t length;
  uint8_t flags;
  OutItem* next;
};

class Session : public engine::Socket {
 public:
  enum class State : uint8_t {
    kHttp,     // reading HTTP requests
    kOpen,     // WebSocket open
    kClosing,  // close frame sent or received; draining until the peer goes
    kDead,     // backend close requested; waiting for on_closed
  };

  uint64_t id() const { return id_; }
  Worker& worker() const { return *worker_; }
  State state() const { return state_; }
  bool open() const { return state_ == State::kOpen; }
  const Route* route() const { return route_; }
  size_t queued_bytes() const { return out_bytes_; }

  // Sending. All of these queue; bytes leave at the end of the current loop pass, batched per
  // socket.
  void send_message(Opcode op, std::span<const uint8_t> payload);
  void send_text(std::string_view text) {
    send_message(Opcode::kText, {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
  }
  // Queues a reference to an already encoded frame (shared by many recipients).
  void send_frame(engine::SharedFrame* frame);
  // Starts the close handshake with this code.
  void close(uint16_t code, std::string_view reason = {});
  // A first-message rule: close with 1000 unless a complete data message arrives within `ms`.
  // The next message (or another call) clears it; ms <= 0 cancels. Costs no timer of its own: it
  // shares the session's timer node with keep-alive pings.
  void close_unless_message_within(int64_t ms);
  // A deadline the handler sets (e.g. a login token's expiry): close with `code` and `reason` (a
  // string literal) once `ms` have passed. Another call moves it; ms < 0 cancels it. Shares the
  // session's timer node too.
  void close_after(int64_t ms, uint16_t code, const char* reason);

  // Input holds: while any is held, no further message of this session reaches its handler
  // (what was already received waits, and the socket is not read). A hold taken inside
  // on_message stops delivery right after that message. Used to keep a connection's order while
  // an earlier message's effect is still pending (a durable write, a join), and to pace a sender.
  void hold_input();
  void release_input();
  bool input_held() const { return holds_ > 0; }

  // Marks a frame this session's message produced for one-to-one relay or room fan-out as paced:
  // while the recipients have not taken more than the high-water mark of this session's frames,
  // its input is held (limits.slow_consumer = "pace"). Call before the frame is shared.
  void pace(engine::SharedFrame* frame);

  // Frames sent while a SnapshotScope is alive (a join's state, history replay) are what a joiner
  // must receive: they do not count as slow-consumer backlog. They are bounded by the room's own
  // limits, and a reader that makes no progress on them is closed after stall_timeout_ms.
  class SnapshotScope {
   public:
    explicit SnapshotScope(Session& s) : s_(s), was_(s.snapshot_) { s.snapshot_ = true; }
    ~SnapshotScope() { s_.snapshot_ = was_; }
    SnapshotScope(const SnapshotScope&) = delete;
    SnapshotScope& operator=(const SnapshotScope&) = delete;

   private:
    Session& s_;
    bool was_;
  };

  // Opaque per-session state owned by the handler (profile).
  void* user = nullptr;

 private:
  friend class Worker;

  Worker* worker_ = nullptr;
  uint64_t id_ = 0;
  State state_ = State::kHttp;
  bool websocket_port_ = true;
  bool dirty_ = false;              // in the worker's flush list
  bool close_after_flush_ = false;  // HTTP "Connection: close" or WebSocket close sent
  bool write_shut_ = false;         // FIN sent after our close frame
  bool close_sent_ = false;
  bool in_message_ = false;  // a fragmented data message is open
  bool ping_outstanding_ = false;
  bool counted_ws_ = false;        // admitted against connection limits
  bool discard_input_ = false;     // closing: inbound bytes are ignored
  bool snapshot_ = false;          // sends are uncapped (SnapshotScope)
  bool stall_watched_ = false;     // in the worker's stall watch list
  bool pace_waiting_ = false;      // input held until the recipients drain our frames
  bool passing_ = false;           // handling a message that passed ordered holds (see Pipeline)
  bool skip_token_ = false;        // the next message was counted against the rate limit already
  bool compressed_in_ = false;     // the message being received is compressed (RSV1)
  uint8_t deflate_bits_ = 0;       // permessage-deflate agreed: our window bits (9..15); 0 = off
  bool http_waiting_ = false;      // a deferred HTTP answer is pending: no further request is read
  bool http_keep_alive_ = true;    // that request's keep-alive
  bool http_head_ = false;         // that request was HEAD
  bool http_read_paused_ = false;  // reads paused until that answer is sent (buffer full)
  uint16_t holds_ = 0;             // input holds (hold_input)
  uint16_t close_code_ = 0;        // close_after()
  uint8_t message_opcode_ = 0;
  Utf8Validator utf8_;
  uint32_t out_bytes_ = 0;
  uint32_t uncapped_bytes_ = 0;  // queued bytes of kUncapped items
  uint16_t inflight_items_ = 0;  // queue items covered by the send in flight
  uint32_t inflight_bytes_ = 0;  // their bytes
  uint32_t send_pass_ = 0;       // loop pass in which that send was submitted
  uint64_t message_size_ = 0;
  uint32_t rate_tokens_ = UINT32_MAX;  // message-rate bucket, in thousandths of a message
  int64_t rate_refill_ms_ = 0;
  int64_t last_rx_ms_ = 0;
  int64_t ping_sent_ms_ = 0;
  int64_t message_deadline_ms_ = 0;     // close_unless_message_within(); 0 = none
  int64_t close_deadline_ms_ = 0;       // close_after(); 0 = none
  const char* close_reason_ = nullptr;  // close_after()'s reason
  int64_t progress_ms_ = 0;             // last time the kernel took bytes of uncapped output
  engine::TimerNode timer_;
  Session* next_dirty_ = nullptr;
  Session* prev_ = nullptr;  // worker's list of all sessions
  Session* next_ = nullptr;
  OutItem* out_head_ = nullptr;
  OutItem* out_tail_ = nullptr;
  SendBatch* sending_ = nullptr;          // the send in flight, if any
  FrameReader* reader_ = nullptr;         // only while a frame is partially received
  std::string* assembly_ = nullptr;       // only while a fragmented/large message is assembled
  std::string* http_buf_ = nullptr;       // only while an HTTP request head is incomplete
  std::string* held_in_ = nullptr;        // only while input is held: received, not yet decoded
  MessageInflater* inflater_ = nullptr;   // only while a compressed message is arriving
  engine::FlowCredit* credit_ = nullptr;  // only once this session has sent a paced frame
  Pipeline* pipe_ = nullptr;              // only while ordered holds or replies held by them exist
  Route* route_ = nullptr;
  std::array<uint8_t, 16> peer_ip_{};
};

}  // namespace ringcast::websocket

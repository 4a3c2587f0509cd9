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
struct Route;
struct SendBatch;

// A queued reference to (part of) a shared frame.
struct OutItem {
  engine::SharedFrame* frame;
  uint32_t offset;
  uint32_t length;
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
  bool counted_ws_ = false;     // admitted against connection limits
  bool discard_input_ = false;  // closing: inbound bytes are ignored
  uint8_t message_opcode_ = 0;
  Utf8Validator utf8_;
  uint32_t out_bytes_ = 0;
  uint16_t inflight_items_ = 0;  // queue items covered by the send in flight
  uint32_t inflight_bytes_ = 0;  // their bytes
  uint32_t send_pass_ = 0;       // loop pass in which that send was submitted
  uint64_t message_size_ = 0;
  uint32_t rate_tokens_ = UINT32_MAX;  // message-rate bucket, in thousandths of a message
  int64_t rate_refill_ms_ = 0;
  int64_t last_rx_ms_ = 0;
  int64_t ping_sent_ms_ = 0;
  int64_t message_deadline_ms_ = 0;  // close_unless_message_within(); 0 = none
  engine::TimerNode timer_;
  Session* next_dirty_ = nullptr;
  Session* prev_ = nullptr;  // worker's list of all sessions
  Session* next_ = nullptr;
  OutItem* out_head_ = nullptr;
  OutItem* out_tail_ = nullptr;
  SendBatch* sending_ = nullptr;     // the send in flight, if any
  FrameReader* reader_ = nullptr;    // only while a frame is partially received
  std::string* assembly_ = nullptr;  // only while a fragmented/large message is assembled
  std::string* http_buf_ = nullptr;  // only while an HTTP request head is incomplete
  Route* route_ = nullptr;
  std::array<uint8_t, 16> peer_ip_{};
};

}  // namespace ringcast::websocket

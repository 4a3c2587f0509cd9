// The worker's receiving side of WebSocket frames: header checks, message assembly and UTF-8
// validation, control frames (split from worker.cpp, which keeps the loop, sending and timers).
#include "ringcast/websocket/close_code.h"
#include "ringcast/websocket/worker.h"

namespace ringcast::websocket {

bool Worker::on_chunk(Session& s, const FrameChunk& c) {
  if (s.state_ == Session::State::kDead) return false;
  if (s.state_ == Session::State::kClosing) {
    // After our close frame only the peer's close matters; everything else is discarded.
    if (c.frame_end && c.opcode == static_cast<uint8_t>(Opcode::kClose) && s.write_shut_) {
      abort_session(s);  // both close frames exchanged and ours is out: done
      return false;
    }
    return true;
  }
  const size_t max_size = settings_->limits.max_message_size;
  if (c.frame_start) {
    // RSV1 marks a compressed message: only on its first frame, only if agreed (RFC 7692 §6).
    if (c.rsv && !(c.rsv == 4 && s.deflate_bits_ && !is_control(c.opcode) &&
                   c.opcode != static_cast<uint8_t>(Opcode::kContinuation)))
      return fail(s, kCloseProtocolError, "reserved bits set"), false;
    if (!is_known_opcode(c.opcode)) return fail(s, kCloseProtocolError, "unknown opcode"), false;
    if (!c.masked) return fail(s, kCloseProtocolError, "client frames must be masked"), false;
    // A ping costs a pong: pings share the data messages' budget, or a client could make the
    // server write without limit.
    if (c.opcode == static_cast<uint8_t>(Opcode::kPing) && !take_message_token(s))
      return rate_limit_close(s), false;
    if (!is_control(c.opcode)) {
      if (c.opcode == static_cast<uint8_t>(Opcode::kContinuation)) {
        if (!s.in_message_) return fail(s, kCloseProtocolError, "unexpected continuation"), false;
      } else {
        if (s.in_message_) return fail(s, kCloseProtocolError, "expected continuation"), false;
        if (s.skip_token_)  // a deferred message decoded again: counted the first time
          s.skip_token_ = false;
        else if (!take_message_token(s))
          return rate_limit_close(s), false;
        else
          WorkerMetrics::add(stats_.metrics.messages_in);
        s.in_message_ = true;
        s.message_opcode_ = c.opcode;
        s.message_size_ = 0;
        s.utf8_.reset();
        s.compressed_in_ = c.rsv == 4;
      }
      // Compressed input is bounded by the inflated size (on_compressed_chunk); this bound on
      // the wire bytes leaves room for data that does not compress.
      if (s.message_size_ + c.payload_length >
          max_size + (s.compressed_in_ ? max_size / 64 + 64 : 0)) {
        return fail(s, kCloseMessageTooBig, "message too big"), false;
      }
    }
  }
  if (is_control(c.opcode)) {
    if (c.frame_start && c.frame_end) {
      handle_control(s, c.opcode, c.data);
    } else {
      // A control payload (<= 125 bytes) split across reads: collect it.
      if (c.frame_start) {
        if (!s.assembly_) s.assembly_ = take_buffer();
      }
      // Control frames may interleave a fragmented message, so they use the tail of the buffer.
      std::string& a = *s.assembly_;
      a.append(reinterpret_cast<const char*>(c.data.data()), c.data.size());
      if (c.frame_end) {
        size_t len = c.payload_length;
        std::string ctrl = a.substr(a.size() - len);
        a.resize(a.size() - len);
        if (a.empty() && !s.in_message_) give_buffer(s.assembly_);
        handle_control(s, c.opcode, {reinterpret_cast<uint8_t*>(ctrl.data()), ctrl.size()});
      }
    }
    return s.state_ == Session::State::kOpen;
  }
  // Data frame chunk.
  if (c.data.empty() && !c.frame_end) return true;  // a header ahead of its payload
  if (s.compressed_in_) return on_compressed_chunk(s, c);
  s.message_size_ += c.data.size();
  bool text = s.message_opcode_ == static_cast<uint8_t>(Opcode::kText);
  if (text && !s.utf8_.feed(c.data.data(), c.data.size())) {
    return fail(s, kCloseInvalidPayload, "invalid UTF-8"), false;
  }
  bool message_end = c.frame_end && c.fin;
  if (message_end && text && !s.utf8_.complete()) {
    return fail(s, kCloseInvalidPayload, "invalid UTF-8"), false;
  }
  auto op = static_cast<Opcode>(s.message_opcode_);
  if (c.frame_start && message_end && !s.assembly_) {
    // Whole message in one chunk: hand the reader's buffer over without copying.
    s.in_message_ = false;
    s.message_deadline_ms_ = 0;
    return deliver_message(s, op, c.data);
  }
  if (!s.assembly_) s.assembly_ = take_buffer();
  s.assembly_->append(reinterpret_cast<const char*>(c.data.data()), c.data.size());
  if (message_end) {
    s.in_message_ = false;
    s.message_deadline_ms_ = 0;
    std::string* a = s.assembly_;
    bool go = deliver_message(s, op, {reinterpret_cast<uint8_t*>(a->data()), a->size()});
    if (s.assembly_ == a) give_buffer(s.assembly_);
    return go;
  }
  return s.state_ == Session::State::kOpen;
}

void Worker::handle_control(Session& s, uint8_t opcode, std::span<uint8_t> payload) {
  switch (static_cast<Opcode>(opcode)) {
    case Opcode::kPing:
      send_message(s, Opcode::kPong, payload);
      break;
    case Opcode::kPong:
      s.ping_outstanding_ = false;
      break;
    case Opcode::kClose: {
      uint16_t code = kCloseNormal;
      if (payload.size() == 1) return fail(s, kCloseProtocolError, "bad close frame");
      if (payload.size() >= 2) {
        code = static_cast<uint16_t>(payload[0] << 8 | payload[1]);
        if (!valid_close_code_on_wire(code)) return fail(s, kCloseProtocolError, "bad close code");
        if (!is_valid_utf8(payload.data() + 2, payload.size() - 2)) {
          return fail(s, kCloseProtocolError, "bad close reason");
        }
      }
      close_session(s, code, {});
      break;
    }
    default:
      break;
  }
}

}  // namespace ringcast::websocket

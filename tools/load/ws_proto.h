// Minimal client side of RFC 6455: upgrade request/response, masked frame encoding and a
// reassembling parser for (unmasked) server frames that copes with frames split across reads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace ringcast::load {

namespace opcode {
inline constexpr uint8_t kContinuation = 0x0;
inline constexpr uint8_t kText = 0x1;
inline constexpr uint8_t kBinary = 0x2;
inline constexpr uint8_t kClose = 0x8;
inline constexpr uint8_t kPing = 0x9;
inline constexpr uint8_t kPong = 0xA;
}  // namespace opcode

std::string base64_encode(const uint8_t* data, size_t n);

// base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")).
std::string websocket_accept(std::string_view key);

// "GET target HTTP/1.1" upgrade request; `host` is the Host header value. `deflate` offers
// permessage-deflate (RFC 7692).
std::string upgrade_request(std::string_view host, std::string_view target, std::string_view key,
                            bool deflate = false);

enum class HandshakeStatus { kIncomplete, kOk, kFailed };

// Parses the server's reply head from `data`. On kOk, `consumed` is the length of the head (bytes
// after it already belong to the WebSocket stream). On kFailed, `error` says why (status line,
// missing/wrong Sec-WebSocket-Accept, bad Upgrade/Connection headers).
// `deflate_agreed` (if given) says whether the server agreed permessage-deflate.
HandshakeStatus parse_upgrade_response(std::string_view data, std::string_view expected_accept,
                                       size_t& consumed, std::string& error,
                                       bool* deflate_agreed = nullptr);

// A compressed (RSV1) server message inflated (no context takeover, as ringcast agrees it) into
// a per-thread buffer valid until the next call; nullptr if it does not inflate.
const std::string* inflate_message(const uint8_t* data, size_t n);

// Appends one masked client frame (FIN set unless `fin` is false) to `out`.
void append_frame(std::string& out, uint8_t op, const uint8_t* payload, size_t n, uint32_t mask,
                  bool fin = true);

// Reassembly state of a fragmented data message.
struct FragmentState {
  std::string buf;
  uint8_t opcode = 0;
  bool active = false;
  bool deflate = false;     // permessage-deflate agreed: RSV1 marks a compressed message
  bool compressed = false;  // the message being reassembled is compressed
};

// Largest message the client accepts (declared frame length or reassembled size).
inline constexpr uint64_t kMaxClientMessage = uint64_t{64} << 20;

// Consumes every complete frame at the start of [data, data + n). For each complete data message
// (reassembled if fragmented) and each control frame it calls
// bool on_message(opcode, const uint8_t* payload, size_t length); control frames may interleave
// with the fragments of a data message. When on_message returns false, parsing stops after that
// frame. Returns the number of bytes consumed (an incomplete frame is left
// for the next call), or -1 on a protocol violation with `error` set.
template <class F>
long consume_frames(const uint8_t* data, size_t n, FragmentState& st, F&& on_message,
                    const char** error) {
  size_t pos = 0;
  while (n - pos >= 2) {
    const uint8_t* p = data + pos;
    bool fin = p[0] & 0x80;
    uint8_t op = p[0] & 0x0F;
    const bool rsv1 = (p[0] & 0x70) == 0x40;
    if ((p[0] & 0x70) && !(rsv1 && st.deflate && (op == opcode::kText || op == opcode::kBinary))) {
      *error = "server frame with RSV bits set";
      return -1;
    }
    if (p[1] & 0x80) {
      *error = "masked server frame";
      return -1;
    }
    uint64_t len = p[1] & 0x7F;
    size_t head = 2;
    if (len == 126) {
      if (n - pos < 4) break;
      len = (uint64_t{p[2]} << 8) | p[3];
      head = 4;
    } else if (len == 127) {
      if (n - pos < 10) break;
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
      head = 10;
      if (len >> 63) {
        *error = "frame length with most significant bit set";
        return -1;
      }
    }
    bool control = op & 0x08;
    if (control) {
      if (op != opcode::kClose && op != opcode::kPing && op != opcode::kPong) {
        *error = "unknown control opcode";
        return -1;
      }
      if (len > 125 || !fin) {
        *error = "control frame too long or fragmented";
        return -1;
      }
    } else if (op != opcode::kContinuation && op != opcode::kText && op != opcode::kBinary) {
      *error = "unknown data opcode";
      return -1;
    }
    if (len > kMaxClientMessage) {
      *error = "server message too large";
      return -1;
    }
    if (n - pos - head < len) break;
    const uint8_t* payload = p + head;
    size_t plen = static_cast<size_t>(len);
    pos += head + plen;
    if (control) {
      if (!on_message(op, payload, plen)) break;
    } else if (op == opcode::kContinuation) {
      if (!st.active) {
        *error = "continuation frame without a started message";
        return -1;
      }
      if (st.buf.size() + plen > kMaxClientMessage) {
        *error = "server message too large";
        return -1;
      }
      st.buf.append(reinterpret_cast<const char*>(payload), plen);
      if (fin) {
        st.active = false;
        const uint8_t* msg = reinterpret_cast<const uint8_t*>(st.buf.data());
        size_t mlen = st.buf.size();
        if (st.compressed) {
          const std::string* plain = inflate_message(msg, mlen);
          if (!plain) {
            *error = "compressed message does not inflate";
            return -1;
          }
          msg = reinterpret_cast<const uint8_t*>(plain->data());
          mlen = plain->size();
        }
        bool go_on = on_message(st.opcode, msg, mlen);
        st.buf.clear();
        if (!go_on) break;
      }
    } else {
      if (st.active) {
        *error = "new data frame inside a fragmented message";
        return -1;
      }
      if (fin) {
        if (rsv1) {
          const std::string* plain = inflate_message(payload, plen);
          if (!plain) {
            *error = "compressed message does not inflate";
            return -1;
          }
          if (!on_message(op, reinterpret_cast<const uint8_t*>(plain->data()), plain->size()))
            break;
        } else if (!on_message(op, payload, plen)) {
          break;
        }
      } else {
        st.active = true;
        st.compressed = rsv1;
        st.opcode = op;
        st.buf.assign(reinterpret_cast<const char*>(payload), plen);
      }
    }
  }
  return static_cast<long>(pos);
}

}  // namespace ringcast::load

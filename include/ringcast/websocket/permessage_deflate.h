// permessage-deflate (RFC 7692), the way a broadcast server can afford it: both directions
// without context takeover, so each message is compressed or inflated on its own. A broadcast
// frame is then compressed once and shared by every recipient, and a connection keeps no zlib
// state between messages: an inflater is leased from its worker only while a compressed message
// is arriving.
#pragma once

#include <zlib.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ringcast/engine/shared_frame.h"
#include "ringcast/websocket/http_request.h"

namespace ringcast::websocket {

struct DeflateAgreement {
  uint8_t server_window_bits = 15;  // what our compressed messages may use (9..15)
  std::string response;             // the Sec-WebSocket-Extensions value of the 101
};

// The first acceptable permessage-deflate offer among the request's Sec-WebSocket-Extensions
// headers, or nullopt (compression off for this connection). Offers with unknown or repeated
// parameters or invalid values are declined, as RFC 7692 §7.1 requires; so are offers limiting
// server_max_window_bits to 8, which zlib cannot produce.
std::optional<DeflateAgreement> negotiate_deflate(const HttpRequest& req);

// One worker's compressor: no allocation per message once warm.
class MessageDeflater {
 public:
  explicit MessageDeflater(int level) : level_(level) {}
  ~MessageDeflater();
  MessageDeflater(const MessageDeflater&) = delete;
  MessageDeflater& operator=(const MessageDeflater&) = delete;
  // The whole message as one compressed frame (RSV1 set), or nullptr when compressing does not
  // make it smaller.
  engine::SharedFrame* compress(uint8_t opcode, std::span<const uint8_t> payload, int window_bits);

 private:
  z_stream* stream(int window_bits);
  int level_;
  std::array<z_stream*, 8> streams_{};  // by window bits 8..15, made on first use
  std::vector<uint8_t> scratch_;
};

// Inflates one message, fed frame by frame; bounded: never produces more than `max` bytes.
class MessageInflater {
 public:
  enum class Result { kOk, kTooBig, kBad };
  MessageInflater();
  ~MessageInflater();
  MessageInflater(const MessageInflater&) = delete;
  MessageInflater& operator=(const MessageInflater&) = delete;
  // Appends what `in` inflates to to `out` (which stays at most `max` bytes).
  Result feed(std::span<const uint8_t> in, std::string& out, size_t max);
  // The message's last frame was fed: flushes the tail (RFC 7692 §7.2.2) and resets for reuse.
  Result finish(std::string& out, size_t max);
  void reset();

 private:
  z_stream zs_{};
  bool ended_ = false;  // the peer's stream had a final block: later bytes are ignored
};

}  // namespace ringcast::websocket

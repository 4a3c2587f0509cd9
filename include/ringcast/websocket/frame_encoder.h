// Server-to-client frame encoding with wslay. Server frames are unmasked, so an encoded frame is
// the same bytes for every recipient and can be shared by reference.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "ringcast/engine/shared_frame.h"
#include "ringcast/websocket/opcode.h"

namespace ringcast::websocket {

// Size of a server frame header for this payload length.
constexpr size_t frame_header_size(size_t payload) {
  return payload < 126 ? 2 : payload < 65536 ? 4 : 10;
}

// Appends one complete frame to `out` at offset out->size(); out must have room for
// frame_header_size(payload.size()) + payload.size() more bytes.
void append_frame(engine::SharedFrame* out, Opcode op, std::span<const uint8_t> payload);

// A new SharedFrame (one reference, owned by the caller) holding one frame.
engine::SharedFrame* encode_frame(Opcode op, std::span<const uint8_t> payload);
inline engine::SharedFrame* encode_frame(Opcode op, std::string_view text) {
  return encode_frame(op, {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

// Close frame with status code and (truncated to fit 125 bytes) reason.
engine::SharedFrame* encode_close(uint16_t code, std::string_view reason);

}  // namespace ringcast::websocket

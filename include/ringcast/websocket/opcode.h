// RFC 6455 frame opcodes.
#pragma once

#include <cstdint>

namespace ringcast::websocket {

enum class Opcode : uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

inline bool is_control(uint8_t op) {
  return op & 0x8;
}
inline bool is_known_opcode(uint8_t op) {
  return op <= 2 || (op >= 8 && op <= 10);
}

}  // namespace ringcast::websocket

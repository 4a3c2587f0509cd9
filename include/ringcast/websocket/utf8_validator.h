// Incremental UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF) that
// carries its state across fragments and receive buffers, as RFC 6455 requires for text messages.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ringcast::websocket {

class Utf8Validator {
 public:
  // Feeds n bytes; returns false as soon as the input cannot be valid UTF-8.
  bool feed(const uint8_t* p, size_t n);
  // True when the bytes so far end on a character boundary.
  bool complete() const { return need_ == 0; }
  void reset() {
    need_ = 0;
    lo_ = 0x80;
    hi_ = 0xBF;
  }

 private:
  uint8_t need_ = 0;               // continuation bytes still expected
  uint8_t lo_ = 0x80, hi_ = 0xBF;  // allowed range of the next continuation byte
};

// One-shot check.
inline bool is_valid_utf8(const uint8_t* p, size_t n) {
  Utf8Validator v;
  return v.feed(p, n) && v.complete();
}

}  // namespace ringcast::websocket

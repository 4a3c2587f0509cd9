#include "ringcast/websocket/utf8_validator.h"

#include <cstring>

namespace ringcast::websocket {

bool Utf8Validator::feed(const uint8_t* p, size_t n) {
  size_t i = 0;
  while (i < n) {
    if (need_ == 0) {
      // ASCII fast path, 8 bytes at a time.
      while (i + 8 <= n) {
        uint64_t w;
        std::memcpy(&w, p + i, 8);
        if (w & 0x8080808080808080ull) break;
        i += 8;
      }
      if (i >= n) break;
      uint8_t c = p[i++];
      if (c < 0x80) continue;
      lo_ = 0x80;
      hi_ = 0xBF;
      if (c >= 0xC2 && c <= 0xDF) {
        need_ = 1;
      } else if (c == 0xE0) {
        need_ = 2;
        lo_ = 0xA0;
      } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
        need_ = 2;
      } else if (c == 0xED) {
        need_ = 2;
        hi_ = 0x9F;  // excludes UTF-16 surrogates
      } else if (c == 0xF0) {
        need_ = 3;
        lo_ = 0x90;
      } else if (c >= 0xF1 && c <= 0xF3) {
        need_ = 3;
      } else if (c == 0xF4) {
        need_ = 3;
        hi_ = 0x8F;  // nothing above U+10FFFF
      } else {
        return false;
      }
    } else {
      uint8_t c = p[i++];
      if (c < lo_ || c > hi_) return false;
      lo_ = 0x80;
      hi_ = 0xBF;
      --need_;
    }
  }
  return true;
}

}  // namespace ringcast::websocket

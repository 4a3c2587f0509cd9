// Message payloads: a small header of integer fields followed by padding derived from a salt, so a
// receiver can verify every byte without remembering what was sent.
//
// Binary messages store fields little-endian (u32: 4 bytes, u64: 8 bytes) and pad with bytes of a
// salt-dependent pattern. Text messages (valid UTF-8, pure ASCII) store fields as fixed-width
// lowercase hex (u32: 8 chars, u64: 16 chars) and pad with letters 'a'..'p'.
//
//   echo / relay:  seq (u64, bit 63 = "reflected by relay peer"), send time ns (u64)
//   broadcast:     publisher id (u32), seq (u64), send time ns (u64)
#pragma once

#include <cstddef>
#include <cstdint>

namespace ringcast::load {

class PayloadWriter {
 public:
  PayloadWriter(uint8_t* buf, bool text) : p_(buf), text_(text) {}
  void u32(uint32_t v) { put(v, 4); }
  void u64(uint64_t v) { put(v, 8); }
  size_t offset() const { return off_; }

 private:
  void put(uint64_t v, int bytes) {
    if (text_) {
      static constexpr char kHex[] = "0123456789abcdef";
      for (int i = 2 * bytes - 1; i >= 0; --i) {
        p_[off_ + static_cast<size_t>(i)] = static_cast<uint8_t>(kHex[v & 15]);
        v >>= 4;
      }
      off_ += 2 * static_cast<size_t>(bytes);
    } else {
      for (int i = 0; i < bytes; ++i) p_[off_++] = static_cast<uint8_t>(v >> (8 * i));
    }
  }
  uint8_t* p_;
  bool text_;
  size_t off_ = 0;
};

class PayloadReader {
 public:
  PayloadReader(const uint8_t* buf, size_t n, bool text) : p_(buf), n_(n), text_(text) {}
  // False if the field does not fit or (text) is not lowercase hex.
  bool u32(uint32_t& v) {
    uint64_t x;
    if (!get(x, 4)) return false;
    v = static_cast<uint32_t>(x);
    return true;
  }
  bool u64(uint64_t& v) { return get(v, 8); }
  size_t offset() const { return off_; }

 private:
  bool get(uint64_t& v, int bytes) {
    size_t w = text_ ? 2 * static_cast<size_t>(bytes) : static_cast<size_t>(bytes);
    if (off_ > n_ || n_ - off_ < w) return false;
    v = 0;
    if (text_) {
      for (size_t i = 0; i < w; ++i) {
        uint8_t c = p_[off_ + i];
        uint64_t d;
        if (c >= '0' && c <= '9') {
          d = c - '0';
        } else if (c >= 'a' && c <= 'f') {
          d = c - 'a' + 10u;
        } else {
          return false;
        }
        v = (v << 4) | d;
      }
    } else {
      for (size_t i = 0; i < w; ++i) v |= uint64_t{p_[off_ + i]} << (8 * i);
    }
    off_ += w;
    return true;
  }
  const uint8_t* p_;
  size_t n_;
  bool text_;
  size_t off_ = 0;
};

inline uint64_t payload_salt(uint64_t a, uint64_t b) {
  uint64_t x = a * 0x9E3779B97F4A7C15ull + b;
  x ^= x >> 29;
  return x * 0xBF58476D1CE4E5B9ull;
}

inline uint8_t pad_byte(uint64_t salt, size_t i, bool text) {
  uint64_t v = (salt >> 8) + i * 7u;
  return text ? static_cast<uint8_t>('a' + (v & 15)) : static_cast<uint8_t>(v ^ (salt & 0xFF));
}

inline void fill_padding(uint8_t* p, size_t from, size_t n, uint64_t salt, bool text) {
  for (size_t i = from; i < n; ++i) p[i] = pad_byte(salt, i, text);
}

// Index of the first wrong padding byte, or n if all are right.
inline size_t check_padding(const uint8_t* p, size_t from, size_t n, uint64_t salt, bool text) {
  for (size_t i = from; i < n; ++i)
    if (p[i] != pad_byte(salt, i, text)) return i;
  return n;
}

inline constexpr uint64_t kReflectedBit = uint64_t{1} << 63;

}  // namespace ringcast::load

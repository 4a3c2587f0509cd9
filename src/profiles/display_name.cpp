#include "ringcast/profiles/display_name.h"

#include <cstdint>

namespace ringcast::profiles {

namespace {

bool forbidden(uint32_t cp) {
  if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) return true;       // C0, DEL, C1
  if (cp == 0x061C || cp == 0x200E || cp == 0x200F) return true;  // ALM, LRM, RLM
  if (cp >= 0x202A && cp <= 0x202E) return true;                  // LRE RLE PDF LRO RLO
  if (cp >= 0x2066 && cp <= 0x2069) return true;                  // LRI RLI FSI PDI
  return false;
}

}  // namespace

bool is_display_safe(std::string_view name) {
  const auto* p = reinterpret_cast<const uint8_t*>(name.data());
  const size_t n = name.size();
  for (size_t i = 0; i < n;) {
    uint8_t c = p[i];
    if (c < 0x80) {
      if (forbidden(c)) return false;
      ++i;
      continue;
    }
    // Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
    size_t len;
    uint32_t cp;
    uint32_t min;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      uint8_t d = p[i + k];
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    if (forbidden(cp)) return false;
    i += len;
  }
  return true;
}

}  // namespace ringcast::profiles

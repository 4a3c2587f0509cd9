// RapidJSON 1.1.0 (Debian 12) misreads a zero written with a large exponent under
// kParseFullPrecisionFlag: "0e196" becomes a garbage number (its DiyFp path normalises a zero
// significand: clz(0)), and "0e400" is refused as too big, where Python's json.loads reads 0.0
// for both. Rewriting the exponent digits of such numbers to '0' keeps the text's length and
// validity and gives exactly the value Python reads (0.0 or -0.0).
#pragma once

#include <cstddef>
#include <string_view>

namespace ringcast::profiles {
namespace detail {

// Numbers outside strings whose significand is all zeros and whose exponent is not: counted,
// and with kWrite their exponent digits become '0'.
template <bool kWrite>
size_t zero_exponent_scan(char* t, size_t n) {
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  size_t changed = 0;
  bool in_string = false;
  for (size_t i = 0; i < n; ++i) {
    char c = t[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
      continue;
    }
    if (c != '-' && !digit(c)) continue;
    // A number token: [-] digits [. digits] [(e|E) [+|-] digits]
    size_t j = i + (c == '-' ? 1 : 0);
    bool zero = true;
    while (j < n && (digit(t[j]) || t[j] == '.')) zero &= t[j] == '0' || t[j] == '.', ++j;
    if (j < n && (t[j] == 'e' || t[j] == 'E')) {
      ++j;
      if (j < n && (t[j] == '+' || t[j] == '-')) ++j;
      bool rewrote = false;
      for (; j < n && digit(t[j]); ++j) {
        if (zero && t[j] != '0') {
          if constexpr (kWrite) t[j] = '0';
          rewrote = true;
        }
      }
      changed += rewrote;
    }
    i = j - 1;
  }
  return changed;
}

}  // namespace detail

// Rewrites, in place, the exponent digits of every number outside strings whose significand is
// all zeros ("0e196" -> "0e000", "-0.00E+400" -> "-0.00E+000"). Returns how many it changed.
// One pass, no allocation; `t` need not be valid JSON.
inline size_t zero_exponents_of_zeros(char* t, size_t n) {
  return detail::zero_exponent_scan<true>(t, n);
}

// True when zero_exponents_of_zeros would change something (the text is only read).
inline bool has_zero_with_exponent(std::string_view t) {
  return detail::zero_exponent_scan<false>(const_cast<char*>(t.data()), t.size()) != 0;
}

}  // namespace ringcast::profiles

#include "ringcast/profiles/python_str.h"

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace ringcast::profiles {

namespace {

template <typename T>
void append_int(std::string& out, T v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// Python's str.isprintable() is false for these (categories Cc, Cf, Zs except space, Zl, Zp, Co,
// surrogates). Unassigned code points (Cn) are not tracked: they print as themselves.
bool python_printable(uint32_t c) {
  if (c < 0x20 || c == 0x7f) return false;
  if (c < 0x7f) return true;
  if (c <= 0xa0 || c == 0xad) return false;
  if ((c >= 0x600 && c <= 0x605) || c == 0x61c || c == 0x6dd || c == 0x70f || c == 0x890 ||
      c == 0x891 || c == 0x8e2 || c == 0x1680 || c == 0x180e)
    return false;
  if ((c >= 0x2000 && c <= 0x200f) || (c >= 0x2028 && c <= 0x202f) ||
      (c >= 0x205f && c <= 0x2064) || (c >= 0x2066 && c <= 0x206f) || c == 0x3000)
    return false;
  if ((c >= 0xd800 && c <= 0xf8ff) || c == 0xfeff || (c >= 0xfff9 && c <= 0xfffb)) return false;
  if (c == 0x110bd || c == 0x110cd || (c >= 0x13430 && c <= 0x1343f) ||
      (c >= 0x1bca0 && c <= 0x1bca3) || (c >= 0x1d173 && c <= 0x1d17a) || c == 0xe0001 ||
      (c >= 0xe0020 && c <= 0xe007f) || c >= 0xf0000)
    return false;
  return true;
}

// Decodes one UTF-8 sequence at s[i] (input was validated); returns its length.
size_t decode_utf8(const unsigned char* s, size_t n, size_t i, uint32_t& cp) {
  unsigned char b = s[i];
  size_t len = b < 0x80 ? 1 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4;
  if (i + len > n) {
    cp = b;
    return 1;
  }
  if (len == 1) {
    cp = b;
  } else if (len == 2) {
    cp = ((b & 0x1fu) << 6) | (s[i + 1] & 0x3fu);
  } else if (len == 3) {
    cp = ((b & 0x0fu) << 12) | ((s[i + 1] & 0x3fu) << 6) | (s[i + 2] & 0x3fu);
  } else {
    cp = ((b & 0x07u) << 18) | ((s[i + 1] & 0x3fu) << 12) | ((s[i + 2] & 0x3fu) << 6) |
         (s[i + 3] & 0x3fu);
  }
  return len;
}

// repr() of a str.
void append_repr_string(std::string& out, const char* data, size_t n) {
  bool has_single = std::memchr(data, '\'', n) != nullptr;
  bool has_double = std::memchr(data, '"', n) != nullptr;
  char quote = has_single && !has_double ? '"' : '\'';
  out.push_back(quote);
  const auto* s = reinterpret_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    size_t len = decode_utf8(s, n, i, cp);
    char buf[16];
    if (cp == static_cast<uint32_t>(quote) || cp == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(cp));
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (python_printable(cp)) {
      out.append(data + i, len);
    } else if (cp <= 0xff) {
      std::snprintf(buf, sizeof buf, "\\x%02x", cp);
      out += buf;
    } else if (cp <= 0xffff) {
      std::snprintf(buf, sizeof buf, "\\u%04x", cp);
      out += buf;
    } else {
      std::snprintf(buf, sizeof buf, "\\U%08x", cp);
      out += buf;
    }
    i += len;
  }
  out.push_back(quote);
}

void append_python(std::string& out, const rapidjson::Value& v, bool repr) {
  switch (v.GetType()) {
    case rapidjson::kNullType:
      out += "None";
      return;
    case rapidjson::kFalseType:
      out += "False";
      return;
    case rapidjson::kTrueType:
      out += "True";
      return;
    case rapidjson::kStringType:
      if (repr)
        append_repr_string(out, v.GetString(), v.GetStringLength());
      else
        out.append(v.GetString(), v.GetStringLength());
      return;
    case rapidjson::kNumberType:
      if (v.IsUint64())
        append_int(out, v.GetUint64());
      else if (v.IsInt64())
        append_int(out, v.GetInt64());
      else
        append_python_float(out, v.GetDouble());
      return;
    case rapidjson::kArrayType: {
      out.push_back('[');
      bool first = true;
      for (const auto& e : v.GetArray()) {
        if (!first) out += ", ";
        first = false;
        append_python(out, e, true);
      }
      out.push_back(']');
      return;
    }
    case rapidjson::kObjectType: {
      out.push_back('{');
      bool first = true;
      for (const auto& m : v.GetObject()) {
        if (!first) out += ", ";
        first = false;
        append_repr_string(out, m.name.GetString(), m.name.GetStringLength());
        out += ": ";
        append_python(out, m.value, true);
      }
      out.push_back('}');
      return;
    }
  }
}

}  // namespace

void append_python_float(std::string& out, double d) {
  // Shortest round-trip digits, then Python's layout: positional for exponents -4..15 (always with
  // a fractional part), otherwise d.ddde+XX with at least two exponent digits.
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(r.ptr - buf));
  bool negative = !sci.empty() && sci.front() == '-';
  if (negative) sci.remove_prefix(1);
  size_t epos = sci.find('e');
  std::string_view mant = sci.substr(0, epos);
  int exp = 0;
  std::from_chars(sci.data() + epos + 1 + (sci[epos + 1] == '+' ? 1 : 0), sci.data() + sci.size(),
                  exp);
  std::string digits;
  for (char c : mant)
    if (c != '.') digits.push_back(c);
  if (negative) out.push_back('-');
  if (exp >= -4 && exp < 16) {
    if (exp >= 0) {
      size_t int_len = static_cast<size_t>(exp) + 1;
      if (digits.size() <= int_len) {
        out += digits;
        out.append(int_len - digits.size(), '0');
        out += ".0";
      } else {
        out.append(digits, 0, int_len);
        out.push_back('.');
        out.append(digits, int_len, std::string::npos);
      }
    } else {
      out += "0.";
      out.append(static_cast<size_t>(-exp - 1), '0');
      out += digits;
    }
    return;
  }
  out.push_back(digits[0]);
  if (digits.size() > 1) {
    out.push_back('.');
    out.append(digits, 1, std::string::npos);
  }
  char ebuf[16];
  std::snprintf(ebuf, sizeof ebuf, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
  out += ebuf;
}

void append_python_str(std::string& out, const rapidjson::Value& value) {
  append_python(out, value, false);
}

}  // namespace ringcast::profiles

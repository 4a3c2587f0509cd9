#include "ringcast/profiles/python_text.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <unordered_map>

namespace ringcast::profiles {

void append_py_float(std::string& out, double d) {
  if (std::isnan(d)) return void(out += "nan");
  if (std::isinf(d)) return void(out += d < 0 ? "-inf" : "inf");
  // Shortest round-trip digits in scientific form ("1.2345e+02"), then laid out like float_repr.
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(r.ptr - buf));
  bool neg = sci.front() == '-';
  if (neg) sci.remove_prefix(1);
  size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e))
    if (c != '.') digits += c;
  int exp = std::atoi(std::string(sci.substr(e + 1)).c_str());  // value = 0.d1d2.. * 10^(exp+1)
  if (neg) out += '-';
  int point = exp + 1;  // digits before the decimal point
  if (exp < -4 || exp >= 16) {
    out += digits[0];
    if (digits.size() > 1) {
      out += '.';
      out.append(digits, 1);
    }
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += eb;
  } else if (point <= 0) {
    out += "0.";
    out.append(static_cast<size_t>(-point), '0');
    out += digits;
  } else if (static_cast<size_t>(point) >= digits.size()) {
    out += digits;
    out.append(static_cast<size_t>(point) - digits.size(), '0');
    out += ".0";
  } else {
    out.append(digits, 0, static_cast<size_t>(point));
    out += '.';
    out.append(digits, static_cast<size_t>(point));
  }
}

namespace {

// Characters Python's str.isprintable() rejects among those likely to appear (C0/C1 controls,
// separators other than the ASCII space, format characters, private use).
bool py_printable(uint32_t c) {
  if (c < 0x20 || c == 0x7f) return false;
  if (c >= 0x80 && c <= 0xa0) return false;
  if (c == 0xad || c == 0x1680 || c == 0x180e || c == 0x3000 || c == 0xfeff) return false;
  if ((c >= 0x600 && c <= 0x605) || c == 0x61c || c == 0x6dd || c == 0x70f) return false;
  if ((c >= 0x2000 && c <= 0x200f) || (c >= 0x2028 && c <= 0x202f)) return false;
  if (c >= 0x205f && c <= 0x206f) return false;
  if ((c >= 0xe000 && c <= 0xf8ff) || (c >= 0xfff9 && c <= 0xfffb)) return false;
  if (c >= 0xf0000) return false;  // private use planes
  return true;
}

uint32_t decode_utf8(std::string_view s, size_t& i) {
  auto b = static_cast<uint8_t>(s[i]);
  int n = b < 0x80 ? 0 : b < 0xe0 ? 1 : b < 0xf0 ? 2 : 3;
  uint32_t c = n == 0 ? b : n == 1 ? (b & 0x1f) : n == 2 ? (b & 0x0f) : (b & 0x07);
  for (int k = 0; k < n && i + 1 < s.size(); ++k)
    c = (c << 6) | (static_cast<uint8_t>(s[++i]) & 0x3f);
  ++i;
  return c;
}

}  // namespace

void append_py_str_repr(std::string& out, std::string_view s) {
  bool has_single = s.find('\'') != std::string_view::npos;
  bool has_double = s.find('"') != std::string_view::npos;
  char q = has_single && !has_double ? '"' : '\'';
  out += q;
  for (size_t i = 0; i < s.size();) {
    size_t start = i;
    uint32_t c = decode_utf8(s, i);
    char esc[16];
    if (c == static_cast<uint32_t>(q) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (!py_printable(c)) {
      if (c < 0x100)
        std::snprintf(esc, sizeof esc, "\\x%02x", c);
      else if (c < 0x10000)
        std::snprintf(esc, sizeof esc, "\\u%04x", c);
      else
        std::snprintf(esc, sizeof esc, "\\U%08x", c);
      out += esc;
    } else {
      out.append(s.substr(start, i - start));
    }
  }
  out += q;
}

void append_py_repr(std::string& out, const rapidjson::Value& v) {
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
      append_py_str_repr(out, {v.GetString(), v.GetStringLength()});
      return;
    case rapidjson::kNumberType: {
      char buf[32];
      std::to_chars_result r{};
      if (v.IsUint64())
        r = std::to_chars(buf, buf + sizeof buf, v.GetUint64());
      else if (v.IsInt64())
        r = std::to_chars(buf, buf + sizeof buf, v.GetInt64());
      else
        return append_py_float(out, v.GetDouble());
      out.append(buf, r.ptr);
      return;
    }
    case rapidjson::kArrayType: {
      out += '[';
      bool first = true;
      for (const auto& e : v.GetArray()) {
        if (!first) out += ", ";
        first = false;
        append_py_repr(out, e);
      }
      out += ']';
      return;
    }
    case rapidjson::kObjectType: {
      // A dict from json.loads: a repeated key keeps its first position and takes the last value.
      std::unordered_map<std::string_view, const rapidjson::Value*> last;
      for (const auto& m : v.GetObject())
        last[{m.name.GetString(), m.name.GetStringLength()}] = &m.value;
      out += '{';
      bool first = true;
      for (const auto& m : v.GetObject()) {
        auto it = last.find({m.name.GetString(), m.name.GetStringLength()});
        if (it == last.end() || !it->second) continue;  // printed at its first position
        if (!first) out += ", ";
        first = false;
        append_py_str_repr(out, it->first);
        out += ": ";
        append_py_repr(out, *it->second);
        it->second = nullptr;
      }
      out += '}';
      return;
    }
  }
}

void append_py_str(std::string& out, const rapidjson::Value& v) {
  if (v.IsString())
    out.append(v.GetString(), v.GetStringLength());
  else
    append_py_repr(out, v);
}

}  // namespace ringcast::profiles

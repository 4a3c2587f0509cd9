#include "ringcast/profiles/python_json.h"

#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ringcast::profiles {

using rapidjson::Value;

namespace {

template <typename T>
void append_int(std::string& out, T v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// Python's str.isprintable() is false for these (categories Cc, Cf, Zs except space, Zl, Zp, Co,
// Cs). Unassigned code points (Cn) are tracked only inside these ranges: others print as
// themselves.
bool py_printable(uint32_t c) {
  if (c < 0x20 || c == 0x7f) return false;
  if (c < 0x7f) return true;
  if (c <= 0xa0 || c == 0xad) return false;
  if ((c >= 0x600 && c <= 0x605) || c == 0x61c || c == 0x6dd || c == 0x70f || c == 0x890 ||
      c == 0x891 || c == 0x8e2 || c == 0x1680 || c == 0x180e)
    return false;
  if ((c >= 0x2000 && c <= 0x200f) || (c >= 0x2028 && c <= 0x202f) ||
      (c >= 0x205f && c <= 0x206f) || c == 0x3000)
    return false;
  if ((c >= 0xd800 && c <= 0xf8ff) || c == 0xfeff || (c >= 0xfff9 && c <= 0xfffb)) return false;
  if (c == 0x110bd || c == 0x110cd || (c >= 0x13430 && c <= 0x1343f) ||
      (c >= 0x1bca0 && c <= 0x1bca3) || (c >= 0x1d173 && c <= 0x1d17a) || c == 0xe0001 ||
      (c >= 0xe0020 && c <= 0xe007f) || c >= 0xf0000)
    return false;
  return true;
}

// Decodes one UTF-8 sequence at s[i] (the text was validated); returns its length. A sequence cut
// short by the end of the text is taken byte by byte.
size_t decode_utf8(std::string_view s, size_t i, uint32_t& cp) {
  auto b = static_cast<uint8_t>(s[i]);
  size_t len = b < 0x80 ? 1 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4;
  if (i + len > s.size()) len = 1;
  if (len == 1) {
    cp = b;
    return 1;
  }
  cp = len == 2 ? (b & 0x1fu) : len == 3 ? (b & 0x0fu) : (b & 0x07u);
  for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3fu);
  return len;
}

std::string_view text_of(const Value& v) {
  return {v.GetString(), v.GetStringLength()};
}

}  // namespace

void append_py_float(std::string& out, double d) {
  if (std::isnan(d)) return void(out += "nan");
  if (std::isinf(d)) return void(out += d < 0 ? "-inf" : "inf");
  // Shortest round-trip digits in scientific form ("1.2345e+02"), then Python's layout:
  // positional for exponents -4..15 (always with a fractional part), otherwise d.ddde+XX with at
  // least two exponent digits.
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(r.ptr - buf));
  bool negative = sci.front() == '-';
  if (negative) sci.remove_prefix(1);
  size_t epos = sci.find('e');
  char digits[24];
  size_t nd = 0;
  for (char c : sci.substr(0, epos))
    if (c != '.') digits[nd++] = c;
  int exp = 0;
  std::from_chars(sci.data() + epos + 1 + (sci[epos + 1] == '+' ? 1 : 0), sci.data() + sci.size(),
                  exp);
  if (negative) out.push_back('-');
  if (exp < -4 || exp >= 16) {
    out.push_back(digits[0]);
    if (nd > 1) {
      out.push_back('.');
      out.append(digits + 1, nd - 1);
    }
    char ebuf[16];
    std::snprintf(ebuf, sizeof ebuf, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += ebuf;
  } else if (exp < 0) {
    out += "0.";
    out.append(static_cast<size_t>(-exp - 1), '0');
    out.append(digits, nd);
  } else if (size_t whole = static_cast<size_t>(exp) + 1; nd <= whole) {
    out.append(digits, nd);
    out.append(whole - nd, '0');
    out += ".0";
  } else {
    out.append(digits, whole);
    out.push_back('.');
    out.append(digits + whole, nd - whole);
  }
}

void append_py_str_repr(std::string& out, std::string_view s) {
  bool has_single = s.find('\'') != std::string_view::npos;
  bool has_double = s.find('"') != std::string_view::npos;
  char quote = has_single && !has_double ? '"' : '\'';
  out.push_back(quote);
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    size_t len = decode_utf8(s, i, cp);
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
    } else if (py_printable(cp)) {
      out.append(s.substr(i, len));
    } else {
      const char* fmt = cp <= 0xff ? "\\x%02x" : cp <= 0xffff ? "\\u%04x" : "\\U%08x";
      std::snprintf(buf, sizeof buf, fmt, cp);
      out += buf;
    }
    i += len;
  }
  out.push_back(quote);
}

void append_py_repr(std::string& out, const Value& v) {
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
      append_py_str_repr(out, text_of(v));
      return;
    case rapidjson::kNumberType:
      if (v.IsUint64())
        append_int(out, v.GetUint64());
      else if (v.IsInt64())
        append_int(out, v.GetInt64());
      else
        append_py_float(out, v.GetDouble());
      return;
    case rapidjson::kArrayType: {
      out.push_back('[');
      bool first = true;
      for (const auto& e : v.GetArray()) {
        if (!first) out += ", ";
        first = false;
        append_py_repr(out, e);
      }
      out.push_back(']');
      return;
    }
    case rapidjson::kObjectType: {
      out.push_back('{');
      bool first = true;
      py_for_each_member(v, [&](std::string_view name, const Value& value) {
        if (!first) out += ", ";
        first = false;
        append_py_str_repr(out, name);
        out += ": ";
        append_py_repr(out, value);
      });
      out.push_back('}');
      return;
    }
  }
}

void append_py_str(std::string& out, const Value& v) {
  if (v.IsString())
    out += text_of(v);
  else
    append_py_repr(out, v);
}

bool py_truthy(const Value* v) {
  if (!v) return false;
  switch (v->GetType()) {
    case rapidjson::kNullType:
    case rapidjson::kFalseType:
      return false;
    case rapidjson::kTrueType:
      return true;
    case rapidjson::kStringType:
      return v->GetStringLength() > 0;
    case rapidjson::kArrayType:
      return !v->Empty();
    case rapidjson::kObjectType:
      return v->MemberCount() > 0;
    case rapidjson::kNumberType:
      if (v->IsUint64()) return v->GetUint64() != 0;
      if (v->IsInt64()) return v->GetInt64() != 0;
      return v->GetDouble() != 0.0;  // NaN is true
  }
  return false;
}

const Value* py_get(const Value& obj, std::string_view name) {
  const Value* found = nullptr;
  for (const auto& m : obj.GetObject())
    if (text_of(m.name) == name) found = &m.value;
  return found;
}

bool py_hashable(const Value& v) {
  return !v.IsArray() && !v.IsObject();
}

void append_py_key(std::string& out, const Value& v) {
  if (v.IsString()) {
    out.push_back('s');
    out += text_of(v);
    return;
  }
  // Numbers (booleans are 0 and 1): "n" and the value's exact decimal text, integers without a
  // fraction. 1e308 has 309 digits; the longest non-integer (5e-324) about 330.
  char buf[400];
  std::to_chars_result r{};
  if (v.IsBool()) {
    r = std::to_chars(buf, buf + sizeof buf, v.GetBool() ? 1 : 0);
  } else if (v.IsUint64()) {
    r = std::to_chars(buf, buf + sizeof buf, v.GetUint64());
  } else if (v.IsInt64()) {
    r = std::to_chars(buf, buf + sizeof buf, v.GetInt64());
  } else if (v.IsNumber()) {
    double d = v.GetDouble();
    if (std::isnan(d)) {
      static std::atomic<uint64_t> nans{0};
      out.push_back('x');
      append_int(out, nans.fetch_add(1, std::memory_order_relaxed));
      return;
    }
    if (std::isinf(d)) {
      out += d > 0 ? "ninf" : "n-inf";
      return;
    }
    if (d == 0) d = 0;  // -0.0 == 0
    if (std::trunc(d) == d)
      r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::fixed, 0);  // exact integer
    else
      r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::fixed);  // shortest
  } else {
    out.push_back('u');  // null (None): its own key
    return;
  }
  out.push_back('n');
  out.append(buf, r.ptr);
}

}  // namespace ringcast::profiles

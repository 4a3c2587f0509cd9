// Python semantics of a parsed JSON value. The seed servers are Python: they read messages with
// json.loads and build replies with str()/f-strings, dict.get() and `if value:`. A profile that
// must behave like them asks here: str() and repr() of a value (None, True, 1.0, 1e+16,
// ['a', {'k': 2}]), repr() of a float, truthiness, dict.get() on an object with repeated keys (the
// last one wins, at the first one's position) and dict-key equality (1 == 1.0 == True).
#pragma once

#include <rapidjson/document.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

namespace ringcast::profiles {

// str(v): a string as it is, everything else as repr().
void append_py_str(std::string& out, const rapidjson::Value& v);
// repr(v) of the value json.loads would give (a dict keeps a repeated key once: first position,
// last value).
void append_py_repr(std::string& out, const rapidjson::Value& v);
// repr(float) (= str(float)): shortest round-trip digits, exponent form below 1e-4 and from 1e16,
// nan/inf/-inf as Python prints them.
void append_py_float(std::string& out, double d);
// repr(str) of UTF-8 text: quotes chosen as Python does, non-printable characters escaped.
void append_py_str_repr(std::string& out, std::string_view s);

// bool(v); absent (nullptr) is None, so false. NaN is true.
bool py_truthy(const rapidjson::Value* v);

// dict.get(name) on the dict json.loads makes of `obj` (an object): the last member of that name.
// The one member lookup of every profile (the native protocol and JWT claims included): rapidjson's
// FindMember returns the first of repeated keys, so profile code never calls it.
const rapidjson::Value* py_get(const rapidjson::Value& obj, std::string_view name);

// Every key of `obj` once, in order of first appearance, with its last value (the dict json.loads
// makes): fn(std::string_view name, const rapidjson::Value& value). No allocation up to 32 members.
template <typename Fn>
void py_for_each_member(const rapidjson::Value& obj, Fn&& fn) {
  auto name_of = [](const rapidjson::Value& v) {
    return std::string_view(v.GetString(), v.GetStringLength());
  };
  auto m = obj.MemberBegin();
  const size_t n = obj.MemberCount();
  if (n <= 32) {
    for (size_t i = 0; i < n; ++i) {
      std::string_view name = name_of(m[i].name);
      bool seen = false;
      for (size_t j = 0; j < i && !seen; ++j) seen = name_of(m[j].name) == name;
      if (seen) continue;
      size_t last = i;
      for (size_t k = i + 1; k < n; ++k)
        if (name_of(m[k].name) == name) last = k;
      fn(name, m[last].value);
    }
    return;
  }
  std::unordered_map<std::string_view, size_t> last;  // big objects only
  last.reserve(n);
  for (size_t i = 0; i < n; ++i) last[name_of(m[i].name)] = i;
  for (size_t i = 0; i < n; ++i) {
    auto it = last.find(name_of(m[i].name));
    if (it->second == SIZE_MAX) continue;  // given at its first position
    fn(it->first, m[it->second].value);
    it->second = SIZE_MAX;
  }
}

// hash(v) would not raise: not a list or dict.
bool py_hashable(const rapidjson::Value& v);
// Appends a text that is equal for two hashable values exactly when they are the same dict key in
// Python: 1, 1.0 and true are one key, "1" is another; every NaN is a new key (nan != nan, and
// json.loads makes a new float object each time).
void append_py_key(std::string& out, const rapidjson::Value& v);

}  // namespace ringcast::profiles

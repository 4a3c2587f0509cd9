// A nesting bound checked before parsing: rapidjson's writer (and a recursive parse) use the C
// stack once per level, so a message of 400k '[' must be refused, not parsed.
#pragma once

#include <cstddef>
#include <string_view>

namespace ringcast::profiles {

// Deepest array/object nesting a profile accepts in one message.
inline constexpr size_t kMaxJsonDepth = 256;

// True when arrays/objects in `t` nest deeper than `limit` (string contents skipped). One pass,
// no allocation; `t` need not be valid JSON.
inline bool nested_deeper_than(std::string_view t, size_t limit = kMaxJsonDepth) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < t.size(); ++i) {
    char c = t[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if ((c == ']' || c == '}') && depth) {
      --depth;
    }
  }
  return false;
}

}  // namespace ringcast::profiles

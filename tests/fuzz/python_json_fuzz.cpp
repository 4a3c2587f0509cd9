// The Python-semantics helpers the seed profiles answer with (str, repr, truthiness, dict.get with
// repeated keys, dict-key identity), on any JSON a client can send (after the same nesting bound
// the profiles apply), plus repr(float) on arbitrary doubles, which must round-trip.
#include <rapidjson/document.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "ringcast/profiles/json_depth.h"
#include "ringcast/profiles/python_json.h"
#include "ringcast/websocket/utf8_validator.h"

using namespace ringcast::profiles;

namespace {

// An invariant of the code under test; a failure names its line.
#define require(ok)                                                 \
  do {                                                              \
    if (!(ok)) {                                                    \
      std::fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #ok); \
      std::abort();                                                 \
    }                                                               \
  } while (0)

bool utf8(const std::string& s) {
  return ringcast::websocket::is_valid_utf8(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

void walk(const rapidjson::Value& v, int depth) {
  std::string out;
  append_py_str(out, v);
  out.clear();
  append_py_repr(out, v);
  require(utf8(out));
  (void)py_truthy(&v);
  if (py_hashable(v)) {
    out.clear();
    append_py_key(out, v);
  }
  if (v.IsObject()) {
    (void)py_get(v, "type");
    (void)py_get(v, "id");
    size_t seen = 0;
    py_for_each_member(v, [&](std::string_view, const rapidjson::Value& m) {
      ++seen;
      if (depth < 8) walk(m, depth + 1);
    });
    require(seen <= v.MemberCount());
  } else if (v.IsArray() && depth < 8) {
    for (const auto& e : v.GetArray()) walk(e, depth + 1);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  if (size >= 8) {
    double d;
    std::memcpy(&d, data, 8);
    std::string out;
    append_py_float(out, d);
    if (std::isfinite(d)) {
      // repr(float) is the shortest text that reads back as the same double.
      char* end = nullptr;
      double back = std::strtod(out.c_str(), &end);
      require(end == out.c_str() + out.size() && back == d &&
              std::signbit(back) == std::signbit(d));
    }
  }
  if (utf8(text)) {
    std::string out;
    append_py_str_repr(out, text);
    require(utf8(out) && out.size() >= 2);
  }
  if (nested_deeper_than(text)) return 0;  // what every profile refuses before parsing
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseNanAndInfFlag |
            rapidjson::kParseValidateEncodingFlag>(text.data(), text.size());
  if (doc.HasParseError()) return 0;
  walk(doc, 0);
  return 0;
}

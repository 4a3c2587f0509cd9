// Python's str() and repr() of a parsed JSON value. The seed servers are Python and build some of
// their texts with f-strings ("Unknown message type: {t}"), so a reply quoting a client's value
// must print it the way Python would: None, True, 1.0, 1e+16, ['a', {'k': 2}].
#pragma once

#include <rapidjson/document.h>

#include <string>

namespace ringcast::profiles {

// str(v): a string as it is, everything else as repr().
void append_py_str(std::string& out, const rapidjson::Value& v);
// repr(v) of the value json.loads would give (dict keeps its first key position, last value).
void append_py_repr(std::string& out, const rapidjson::Value& v);
// repr(float): shortest round-trip digits, exponent form below 1e-4 and from 1e16.
void append_py_float(std::string& out, double d);
// repr(str) of UTF-8 text: quotes chosen as Python does, non-printable characters escaped.
void append_py_str_repr(std::string& out, std::string_view s);

}  // namespace ringcast::profiles

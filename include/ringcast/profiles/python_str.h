// Python's str() of a parsed JSON value, for seed protocols whose real server builds text from
// client values with str()/f-strings (the live map's marker ids): strings as they are, integers in
// decimal, floats as Python's repr (shortest round-trip: `1.5`, `1704110400.5`, `1e+16`, `1e-05`),
// True/False/None, lists and dicts as Python prints them (`[1, 'a']`, `{'k': None}`).
#pragma once

#include <rapidjson/document.h>

#include <string>

namespace ringcast::profiles {

// Appends str(value) to out.
void append_python_str(std::string& out, const rapidjson::Value& value);
// Appends Python's repr() of a float (finite values: JSON has no others).
void append_python_float(std::string& out, double d);

}  // namespace ringcast::profiles

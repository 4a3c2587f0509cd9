#include "ringcast/profiles/python_str.h"

#include <gtest/gtest.h>

namespace {

std::string str_of(const char* json) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseFullPrecisionFlag>(json);
  EXPECT_FALSE(d.HasParseError()) << json;
  std::string out;
  ringcast::profiles::append_python_str(out, d);
  return out;
}

std::string float_repr(double v) {
  std::string out;
  ringcast::profiles::append_python_float(out, v);
  return out;
}

TEST(PythonStr, Scalars) {
  EXPECT_EQ(str_of("\"abc\""), "abc");
  EXPECT_EQ(str_of("\"caf\\u00e9 'x'\""), "caf\xc3\xa9 'x'");
  EXPECT_EQ(str_of("1704110400"), "1704110400");
  EXPECT_EQ(str_of("-42"), "-42");
  EXPECT_EQ(str_of("18446744073709551615"), "18446744073709551615");
  EXPECT_EQ(str_of("true"), "True");
  EXPECT_EQ(str_of("false"), "False");
  EXPECT_EQ(str_of("null"), "None");
}

TEST(PythonStr, FloatsAsPythonRepr) {
  EXPECT_EQ(str_of("1.5"), "1.5");
  EXPECT_EQ(str_of("1704110400.5"), "1704110400.5");
  EXPECT_EQ(str_of("1e16"), "1e+16");
  EXPECT_EQ(str_of("1.0"), "1.0");
  EXPECT_EQ(str_of("-0.0"), "-0.0");
  EXPECT_EQ(str_of("0.1"), "0.1");
  EXPECT_EQ(str_of("0.0001"), "0.0001");
  EXPECT_EQ(str_of("0.00001"), "1e-05");
  EXPECT_EQ(str_of("1.5e-7"), "1.5e-07");
  EXPECT_EQ(str_of("123456789012345678901234567890"), "1.2345678901234568e+29");
  EXPECT_EQ(float_repr(1e15), "1000000000000000.0");
  EXPECT_EQ(float_repr(9999999999999998.0), "9999999999999998.0");
  EXPECT_EQ(float_repr(1e22), "1e+22");
  EXPECT_EQ(float_repr(1.7976931348623157e308), "1.7976931348623157e+308");
  EXPECT_EQ(float_repr(5e-324), "5e-324");
  EXPECT_EQ(float_repr(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(float_repr(450.0), "450.0");
  EXPECT_EQ(float_repr(-2.5e100), "-2.5e+100");
}

TEST(PythonStr, Containers) {
  EXPECT_EQ(str_of("[1, \"a\", null, true, 1.5]"), "[1, 'a', None, True, 1.5]");
  EXPECT_EQ(str_of("{\"k\": \"v\", \"n\": [ ]}"), "{'k': 'v', 'n': []}");
  EXPECT_EQ(str_of("[\"it's\"]"), "[\"it's\"]");
  EXPECT_EQ(str_of("[\"a'b\\\"c\"]"), "['a\\'b\"c']");
  EXPECT_EQ(str_of("[\"t\\tn\\nb\\\\\"]"), "['t\\tn\\nb\\\\']");
  EXPECT_EQ(str_of("[\"\\u0001\\u00a0\\u00e9\\u2028\"]"), "['\\x01\\xa0\xc3\xa9\\u2028']");
  EXPECT_EQ(str_of("{}"), "{}");
}

}  // namespace

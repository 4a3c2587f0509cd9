#include "ringcast/profiles/python_text.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <string>

using namespace ringcast::profiles;

namespace {
std::string py_float(double d) {
  std::string s;
  append_py_float(s, d);
  return s;
}
std::string py_str(const char* json) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseNanAndInfFlag>(json);
  EXPECT_FALSE(d.HasParseError()) << json;
  std::string s;
  append_py_str(s, d);
  return s;
}
}  // namespace

TEST(PythonText, FloatReprMatchesPython) {
  EXPECT_EQ(py_float(1.0), "1.0");
  EXPECT_EQ(py_float(-2.5), "-2.5");
  EXPECT_EQ(py_float(0.0), "0.0");
  EXPECT_EQ(py_float(-0.0), "-0.0");
  EXPECT_EQ(py_float(0.1), "0.1");
  EXPECT_EQ(py_float(0.0001), "0.0001");
  EXPECT_EQ(py_float(0.00001), "1e-05");
  EXPECT_EQ(py_float(1.5e-7), "1.5e-07");
  EXPECT_EQ(py_float(123456789.0), "123456789.0");
  EXPECT_EQ(py_float(1e15), "1000000000000000.0");
  EXPECT_EQ(py_float(1e16), "1e+16");
  EXPECT_EQ(py_float(1.5e20), "1.5e+20");
  EXPECT_EQ(py_float(1e300), "1e+300");
  EXPECT_EQ(py_float(1.0 / 3), "0.3333333333333333");
}

TEST(PythonText, StrAndReprOfJsonValues) {
  EXPECT_EQ(py_str("\"booth_001\""), "booth_001");
  EXPECT_EQ(py_str("null"), "None");
  EXPECT_EQ(py_str("true"), "True");
  EXPECT_EQ(py_str("false"), "False");
  EXPECT_EQ(py_str("5"), "5");
  EXPECT_EQ(py_str("-7"), "-7");
  EXPECT_EQ(py_str("2.0"), "2.0");
  EXPECT_EQ(py_str("NaN"), "nan");
  EXPECT_EQ(py_str("-Infinity"), "-inf");
  EXPECT_EQ(py_str("[]"), "[]");
  EXPECT_EQ(py_str("{}"), "{}");
  EXPECT_EQ(py_str("[1, \"a\", null, [true]]"), "[1, 'a', None, [True]]");
  EXPECT_EQ(py_str("{\"k\": \"it's\", \"q\": \"say \\\"hi\\\"\"}"),
            "{'k': \"it's\", 'q': 'say \"hi\"'}");
  EXPECT_EQ(py_str("[\"both ' and \\\"\"]"), "['both \\' and \"']");
  EXPECT_EQ(py_str("[\"tab\\tnl\\n\\u0001\\\\\"]"), "['tab\\tnl\\n\\x01\\\\']");
  EXPECT_EQ(py_str("[\"\\u00e9\\u00a0\\u2028\"]"), "['\xc3\xa9\\xa0\\u2028']");
  // a repeated key keeps its first position and takes its last value, as json.loads does
  EXPECT_EQ(py_str("{\"a\": 1, \"b\": 2, \"a\": 3}"), "{'a': 3, 'b': 2}");
}

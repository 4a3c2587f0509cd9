#include "ringcast/profiles/python_json.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <string>
#include <utility>

using namespace ringcast::profiles;

namespace {
// The value JSON text parses to, as the profiles parse it (full precision; NaN and Infinity as
// Python's json.loads accepts them), passed to f.
template <typename F>
auto with_json(const char* json, F f) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseFullPrecisionFlag | rapidjson::kParseNanAndInfFlag>(json);
  EXPECT_FALSE(d.HasParseError()) << json;
  return f(static_cast<const rapidjson::Value&>(d));
}
std::string py_str(const char* json) {
  return with_json(json, [](const rapidjson::Value& v) {
    std::string s;
    append_py_str(s, v);
    return s;
  });
}
std::string key_of(const char* json) {
  return with_json(json, [](const rapidjson::Value& v) {
    std::string s;
    append_py_key(s, v);
    return s;
  });
}
bool truthy_of(const char* json) {
  return with_json(json, [](const rapidjson::Value& v) { return py_truthy(&v); });
}
std::string py_float(double d) {
  std::string s;
  append_py_float(s, d);
  return s;
}
}  // namespace

TEST(PythonJson, FloatReprMatchesPython) {
  const std::pair<double, const char*> cases[] = {
      {1.0, "1.0"},
      {-2.5, "-2.5"},
      {0.0, "0.0"},
      {-0.0, "-0.0"},
      {0.1, "0.1"},
      {0.0001, "0.0001"},
      {0.00001, "1e-05"},
      {1.5e-7, "1.5e-07"},
      {123456789.0, "123456789.0"},
      {450.0, "450.0"},
      {1e15, "1000000000000000.0"},
      {9999999999999998.0, "9999999999999998.0"},
      {1e16, "1e+16"},
      {1.5e20, "1.5e+20"},
      {1e22, "1e+22"},
      {-2.5e100, "-2.5e+100"},
      {1e300, "1e+300"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
      {5e-324, "5e-324"},
      {1.0 / 3, "0.3333333333333333"},
      {0.1 + 0.2, "0.30000000000000004"},
  };
  for (const auto& [d, want] : cases) EXPECT_EQ(py_float(d), want) << d;
}

// str() of JSON text: {json, what Python prints}.
using StrCase = std::pair<const char*, const char*>;

TEST(PythonJson, StrOfScalars) {
  const StrCase cases[] = {
      {"\"booth_001\"", "booth_001"},
      {"\"abc\"", "abc"},
      {"\"caf\\u00e9 'x'\"", "caf\xc3\xa9 'x'"},
      {"null", "None"},
      {"true", "True"},
      {"false", "False"},
      {"5", "5"},
      {"-7", "-7"},
      {"-42", "-42"},
      {"1704110400", "1704110400"},
      {"18446744073709551615", "18446744073709551615"},
      // floats as Python's repr
      {"2.0", "2.0"},
      {"1.0", "1.0"},
      {"-0.0", "-0.0"},
      {"1.5", "1.5"},
      {"1704110400.5", "1704110400.5"},
      {"1e16", "1e+16"},
      {"0.1", "0.1"},
      {"0.0001", "0.0001"},
      {"0.00001", "1e-05"},
      {"1.5e-7", "1.5e-07"},
      {"123456789012345678901234567890", "1.2345678901234568e+29"},
      {"NaN", "nan"},
      {"-Infinity", "-inf"},
  };
  for (const auto& [json, want] : cases) EXPECT_EQ(py_str(json), want) << json;
}

TEST(PythonJson, StrOfContainers) {
  const StrCase cases[] = {
      {"[]", "[]"},
      {"{}", "{}"},
      {"[1, \"a\", null, [true]]", "[1, 'a', None, [True]]"},
      {"[1, \"a\", null, true, 1.5]", "[1, 'a', None, True, 1.5]"},
      {"{\"k\": \"v\", \"n\": [ ]}", "{'k': 'v', 'n': []}"},
      // quotes as Python picks them
      {"{\"k\": \"it's\", \"q\": \"say \\\"hi\\\"\"}", "{'k': \"it's\", 'q': 'say \"hi\"'}"},
      {"[\"it's\"]", "[\"it's\"]"},
      {"[\"both ' and \\\"\"]", "['both \\' and \"']"},
      {"[\"a'b\\\"c\"]", "['a\\'b\"c']"},
      // escapes
      {"[\"tab\\tnl\\n\\u0001\\\\\"]", "['tab\\tnl\\n\\x01\\\\']"},
      {"[\"t\\tn\\nb\\\\\"]", "['t\\tn\\nb\\\\']"},
      {"[\"\\u00e9\\u00a0\\u2028\"]", "['\xc3\xa9\\xa0\\u2028']"},
      {"[\"\\u0001\\u00a0\\u00e9\\u2028\"]", "['\\x01\\xa0\xc3\xa9\\u2028']"},
      // a repeated key keeps its first position and takes its last value, as json.loads does
      {"{\"a\": 1, \"b\": 2, \"a\": 3}", "{'a': 3, 'b': 2}"},
  };
  for (const auto& [json, want] : cases) EXPECT_EQ(py_str(json), want) << json;
}

TEST(PythonJson, ReprOfStringsEscapesWhatPythonCannotPrint) {
  // str.isprintable() is false for format characters (Cf), surrogates and unassigned U+2065
  EXPECT_EQ(py_str("[\"\\u2065\\u0890\\ufeff\"]"), "['\\u2065\\u0890\\ufeff']");
  EXPECT_EQ(py_str("[\"\\ud834\\udd73 \\ud83d\\ude00\"]"), "['\\U0001d173 \xf0\x9f\x98\x80']");
}

TEST(PythonJson, ReprOfLargeObjectsKeepsFirstPositionLastValue) {
  std::string json = "{";
  for (int i = 0; i < 40; ++i)
    json += "\"k" + std::to_string(i) + "\": " + std::to_string(i) + ", ";
  json += "\"k0\": \"last\"}";
  std::string s = py_str(json.c_str());
  EXPECT_EQ(s.substr(0, 20), "{'k0': 'last', 'k1':");
  EXPECT_EQ(s.find("'k0'", 2), std::string::npos);
}

TEST(PythonJson, Truthiness) {
  EXPECT_FALSE(py_truthy(nullptr));
  for (const char* f : {"null", "false", "0", "-0", "0.0", "-0.0", "\"\"", "[]", "{}"})
    EXPECT_FALSE(truthy_of(f)) << f;
  for (const char* t : {"true", "1", "-1", "0.5", "18446744073709551615", "NaN", "-Infinity",
                        "\"0\"", "\" \"", "[0]", "{\"a\": null}"})
    EXPECT_TRUE(truthy_of(t)) << t;
}

TEST(PythonJson, GetTakesTheLastOfRepeatedKeys) {
  rapidjson::Document d;
  d.Parse("{\"a\": 1, \"b\": 2, \"a\": 3}");
  ASSERT_NE(py_get(d, "a"), nullptr);
  EXPECT_EQ(py_get(d, "a")->GetInt(), 3);
  EXPECT_EQ(py_get(d, "b")->GetInt(), 2);
  EXPECT_EQ(py_get(d, "c"), nullptr);
  std::string order;
  py_for_each_member(d, [&](std::string_view name, const rapidjson::Value& v) {
    order += std::string(name) + "=" + std::to_string(v.GetInt()) + ";";
  });
  EXPECT_EQ(order, "a=3;b=2;");
}

TEST(PythonJson, DictKeysUnderPythonEquality) {
  // 1 == 1.0 == True, 0 == -0.0 == False; "1" is another key
  EXPECT_EQ(key_of("1"), key_of("1.0"));
  EXPECT_EQ(key_of("1"), key_of("true"));
  EXPECT_EQ(key_of("0"), key_of("-0.0"));
  EXPECT_EQ(key_of("0"), key_of("false"));
  EXPECT_NE(key_of("1"), key_of("\"1\""));
  EXPECT_NE(key_of("1"), key_of("1.5"));
  EXPECT_NE(key_of("1.5"), key_of("\"1.5\""));
  EXPECT_EQ(key_of("1.5"), key_of("15e-1"));
  EXPECT_EQ(key_of("-7"), key_of("-7.0"));
  EXPECT_EQ(key_of("18446744073709551615"), key_of("18446744073709551615"));
  EXPECT_NE(key_of("18446744073709551615"), key_of("18446744073709551614"));
  // 2**63 as an integer and as a float are one key; so are 2**64 and 1.8446744073709552e19
  EXPECT_EQ(key_of("9223372036854775808"), key_of("9.223372036854775808e18"));
  EXPECT_EQ(key_of("18446744073709551616"), key_of("1.8446744073709552e19"));
  // extremes fit (exact digits, no truncation)
  EXPECT_EQ(key_of("1e308").size(), 1u + 309u);
  EXPECT_NE(key_of("5e-324"), key_of("1e-323"));
  EXPECT_NE(key_of("1e-300"), key_of("2e-300"));
  EXPECT_EQ(key_of("Infinity"), key_of("Infinity"));
  EXPECT_NE(key_of("Infinity"), key_of("-Infinity"));
  EXPECT_NE(key_of("NaN"), key_of("NaN"));  // every NaN is a new key
  EXPECT_TRUE(py_hashable(rapidjson::Value(1)));
  EXPECT_FALSE(py_hashable(rapidjson::Value(rapidjson::kArrayType)));
  EXPECT_FALSE(py_hashable(rapidjson::Value(rapidjson::kObjectType)));
}

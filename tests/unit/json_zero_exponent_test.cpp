#include "ringcast/profiles/json_zero_exponent.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cmath>
#include <string>

using ringcast::profiles::has_zero_with_exponent;
using ringcast::profiles::zero_exponents_of_zeros;

namespace {

// What the profiles do: rewrite, then parse with full precision.
double parse_number(std::string text) {
  zero_exponents_of_zeros(text.data(), text.size());
  rapidjson::Document d;
  d.Parse<rapidjson::kParseFullPrecisionFlag>(text.c_str());
  EXPECT_FALSE(d.HasParseError()) << text;
  return d.IsNumber() ? d.GetDouble() : NAN;
}

}  // namespace

TEST(JsonZeroExponent, ZerosReadAsPythonReadsThem) {
  // Before the rewrite RapidJSON 1.1.0 read these as garbage (0e196 -> 4.8e52) or refused 0E+400.
  for (const char* t : {"0e196", "0.000e100", "0E+400", "0e-400", "0.0e300", "0e23"}) {
    double d = parse_number(t);
    EXPECT_EQ(d, 0.0) << t;
    EXPECT_FALSE(std::signbit(d)) << t;
  }
  double neg = parse_number("-0.00e150");
  EXPECT_EQ(neg, 0.0);
  EXPECT_TRUE(std::signbit(neg));
}

TEST(JsonZeroExponent, OnlyZeroSignificandsOutsideStringsChange) {
  std::string t = R"({"a":0e196,"b":"0e196","c":[10e5,0.5e3,-0E+4],"d":"\"0e9","e":1e300})";
  EXPECT_TRUE(has_zero_with_exponent(t));
  EXPECT_EQ(zero_exponents_of_zeros(t.data(), t.size()), 2u);
  EXPECT_EQ(t, R"({"a":0e000,"b":"0e196","c":[10e5,0.5e3,-0E+0],"d":"\"0e9","e":1e300})");
  EXPECT_FALSE(has_zero_with_exponent(t));
  std::string plain = R"([0, 0.0, -0, 1e5, "x", 0e0, true])";
  EXPECT_FALSE(has_zero_with_exponent(plain));
  EXPECT_EQ(zero_exponents_of_zeros(plain.data(), plain.size()), 0u);
  EXPECT_EQ(plain, R"([0, 0.0, -0, 1e5, "x", 0e0, true])");
}

#include "ringcast/websocket/utf8_validator.h"

#include <gtest/gtest.h>

#include <string>

using ringcast::websocket::is_valid_utf8;
using ringcast::websocket::Utf8Validator;

namespace {
bool valid(const std::string& s) {
  return is_valid_utf8(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
}  // namespace

TEST(Utf8Validator, AcceptsAsciiAndMultibyte) {
  EXPECT_TRUE(valid(""));
  EXPECT_TRUE(valid("hello, world 0123456789"));
  EXPECT_TRUE(valid("\xC2\xA9"));          // ©
  EXPECT_TRUE(valid("\xE2\x82\xAC"));      // €
  EXPECT_TRUE(valid("\xF0\x9F\x98\x80"));  // 😀
  EXPECT_TRUE(valid("\xF4\x8F\xBF\xBF"));  // U+10FFFF
  EXPECT_TRUE(valid("\xED\x9F\xBF"));      // U+D7FF, just below the surrogates
}

TEST(Utf8Validator, RejectsInvalidSequences) {
  EXPECT_FALSE(valid("\x80"));              // lone continuation
  EXPECT_FALSE(valid("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(valid("\xC1\xBF"));          // overlong
  EXPECT_FALSE(valid("\xE0\x80\xAF"));      // overlong 3-byte
  EXPECT_FALSE(valid("\xF0\x80\x80\xAF"));  // overlong 4-byte
  EXPECT_FALSE(valid("\xED\xA0\x80"));      // surrogate U+D800
  EXPECT_FALSE(valid("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(valid("\xF5\x80\x80\x80"));
  EXPECT_FALSE(valid("\xFF"));
  EXPECT_FALSE(valid("\xE2\x82"));  // truncated
  EXPECT_FALSE(valid("abcdefgh\xE2\x28\xA1"));
}

TEST(Utf8Validator, CarriesStateAcrossFragments) {
  const std::string s =
      "ab\xF0\x9F\x98\x80"
      "cd\xE2\x82\xAC";
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    Utf8Validator v;
    ASSERT_TRUE(v.feed(reinterpret_cast<const uint8_t*>(s.data()), cut)) << cut;
    ASSERT_TRUE(v.feed(reinterpret_cast<const uint8_t*>(s.data()) + cut, s.size() - cut)) << cut;
    EXPECT_TRUE(v.complete()) << cut;
  }
  Utf8Validator v;
  ASSERT_TRUE(v.feed(reinterpret_cast<const uint8_t*>("\xF0\x9F"), 2));
  EXPECT_FALSE(v.complete());  // a message may not end mid-character
  EXPECT_FALSE(v.feed(reinterpret_cast<const uint8_t*>("A"), 1));
}

TEST(Utf8Validator, LongAsciiFastPathStillFindsLateError) {
  std::string s(1000, 'a');
  EXPECT_TRUE(valid(s));
  s[997] = '\xC3';
  EXPECT_FALSE(valid(s));  // truncated at end
  s[998] = '\xA9';
  EXPECT_TRUE(valid(s));
}

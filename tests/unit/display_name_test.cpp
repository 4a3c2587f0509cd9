#include "ringcast/profiles/display_name.h"

#include <gtest/gtest.h>

#include <string>

#include "ringcast/profiles/chatroom_names.h"

using ringcast::profiles::is_display_safe;

TEST(DisplayName, OrdinaryNamesPass) {
  for (const char* name : {"", "BraveOtter", "Big-heartedLynx", "booth_001", "Zoë", "Ελένη", "أحمد",
                           "名前", "player one", "😀", "a\u00A0b"})
    EXPECT_TRUE(is_display_safe(name)) << name;
}

TEST(DisplayName, ControlCharactersAreRefused) {
  EXPECT_FALSE(is_display_safe(std::string("a\0b", 3)));
  for (int c = 1; c < 0x20; ++c) EXPECT_FALSE(is_display_safe(std::string("a") + char(c))) << c;
  EXPECT_FALSE(is_display_safe("a\x7F"));
  for (unsigned c = 0x80; c <= 0x9F; ++c) {  // C1, as UTF-8 (C2 80 .. C2 9F)
    std::string s = "a";
    s += char(0xC2);
    s += char(c);
    EXPECT_FALSE(is_display_safe(s)) << c;
  }
  EXPECT_TRUE(is_display_safe("a\u00A0"));  // the first code point after C1
}

TEST(DisplayName, BidiFormattingCharactersAreRefused) {
  for (const char* bad : {"\u202A", "\u202B", "\u202C", "\u202D", "\u202E", "\u2066", "\u2067",
                          "\u2068", "\u2069", "\u200E", "\u200F", "\u061C"}) {
    EXPECT_FALSE(is_display_safe(std::string("admin") + bad)) << bad;
    EXPECT_FALSE(is_display_safe(bad)) << bad;
  }
  // Neighbours stay allowed: zero-width joiner (emoji sequences), U+2029, U+206A.
  for (const char* ok : {"\u200D", "\u2029", "\u206A", "\u2065", "\u2070", "\u061B"})
    EXPECT_TRUE(is_display_safe(ok)) << ok;
}

TEST(DisplayName, InvalidUtf8IsRefused) {
  for (const char* bad : {"\xC0\xAF", "\xE0\x80\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xFF",
                          "\xC3", "\xE2\x80", "\x80"})
    EXPECT_FALSE(is_display_safe(bad)) << bad;
}

TEST(DisplayName, EveryGeneratedChatroomNameIsSafe) {
  for (auto adjective : ringcast::profiles::chatroom_adjectives())
    for (auto animal : ringcast::profiles::chatroom_animals())
      EXPECT_TRUE(is_display_safe(std::string(adjective) + std::string(animal)));
}

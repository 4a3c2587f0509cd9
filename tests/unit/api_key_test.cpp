#include "ringcast/app/api_key.h"

#include <gtest/gtest.h>

using ringcast::app::api_key_allows;

TEST(ApiKey, NoKeysConfiguredRefusesEverything) {
  EXPECT_FALSE(api_key_allows({}, "apikey anything-at-all-here"));
  EXPECT_FALSE(api_key_allows({}, std::nullopt));
}

TEST(ApiKey, MatchesAnyConfiguredKey) {
  std::vector<std::string> keys = {"first-key-0123456789", "second-key-0123456789"};
  EXPECT_TRUE(api_key_allows(keys, "apikey first-key-0123456789"));
  EXPECT_TRUE(api_key_allows(keys, "apikey second-key-0123456789"));
  EXPECT_TRUE(api_key_allows(keys, "ApiKey  second-key-0123456789 "));
}

TEST(ApiKey, RefusesWrongSchemePrefixesAndNearMisses) {
  std::vector<std::string> keys = {"first-key-0123456789"};
  EXPECT_FALSE(api_key_allows(keys, std::nullopt));
  EXPECT_FALSE(api_key_allows(keys, ""));
  EXPECT_FALSE(api_key_allows(keys, "apikey"));
  EXPECT_FALSE(api_key_allows(keys, "apikey "));
  EXPECT_FALSE(api_key_allows(keys, "Bearer first-key-0123456789"));
  EXPECT_FALSE(api_key_allows(keys, "apikeyfirst-key-0123456789"));
  EXPECT_FALSE(api_key_allows(keys, "apikey first-key-012345678"));
  EXPECT_FALSE(api_key_allows(keys, "apikey first-key-01234567890"));
  EXPECT_FALSE(api_key_allows(keys, "apikey FIRST-KEY-0123456789"));
}

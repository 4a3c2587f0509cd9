#include "ringcast/hub/retained_state.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using ringcast::hub::RetainedState;

std::vector<std::string> keys(const RetainedState& s) {
  std::vector<std::string> out;
  s.for_each([&](std::string_view k, std::string_view v) {
    out.push_back(std::string(k) + "=" + std::string(v));
  });
  return out;
}

TEST(RetainedState, InsertionOrderReplacedKeyKeepsItsPlace) {
  RetainedState s;
  s.set("b", "1");
  s.set("a", "2");
  s.set("c", "3");
  s.set("b", "4");  // replaced in place
  EXPECT_EQ(keys(s), (std::vector<std::string>{"b=4", "a=2", "c=3"}));
  EXPECT_TRUE(s.erase("b"));
  EXPECT_FALSE(s.erase("b"));
  s.set("b", "5");  // back, at the end
  EXPECT_EQ(keys(s), (std::vector<std::string>{"a=2", "c=3", "b=5"}));
  EXPECT_EQ(s.size(), 3u);
  ASSERT_NE(s.find("c"), nullptr);
  EXPECT_EQ(*s.find("c"), "3");
  EXPECT_EQ(s.find("zz"), nullptr);
}

TEST(RetainedState, ReservedOrdersPlaceLateAppliedKeys) {
  RetainedState s;
  uint64_t first = s.reserve_order();   // e.g. a write waiting for its commit
  uint64_t second = s.reserve_order();  // applied at once (write-behind)
  s.set("late", "x", second);
  s.set("early", "y", first);
  EXPECT_EQ(keys(s), (std::vector<std::string>{"early=y", "late=x"}));
  s.set("next", "z");
  EXPECT_EQ(keys(s).back(), "next=z");
}

TEST(RetainedState, KeysWithNulBytes) {
  RetainedState s;
  std::string k1("a\0b", 3), k2("a\0c", 3);
  s.set(k1, "1");
  s.set(k2, "2");
  EXPECT_EQ(s.size(), 2u);
  EXPECT_TRUE(s.contains(k1));
  EXPECT_TRUE(s.erase(k2));
  EXPECT_FALSE(s.contains(k2));
}

TEST(RetainedState, ManyKeysStayIndexed) {
  RetainedState s;
  // Appended, not "k" + std::to_string(i): that trips GCC 12's false -Wrestrict at -O3.
  auto key = [](int i) { return std::string("k").append(std::to_string(i)); };
  for (int i = 0; i < 1000; ++i) s.set(key(i), std::to_string(i));
  for (int i = 0; i < 1000; i += 2) EXPECT_TRUE(s.erase(key(i)));
  for (int i = 1; i < 1000; i += 2) EXPECT_EQ(*s.find(key(i)), std::to_string(i));
  std::vector<std::string> got = keys(s);
  ASSERT_EQ(got.size(), 500u);
  EXPECT_EQ(got.front(), "k1=1");
  EXPECT_EQ(got.back(), "k999=999");
}

}  // namespace

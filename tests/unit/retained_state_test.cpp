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

// ---- key limits ------------------------------------------------------------------------------

// Writes applied at once (no store, or write-behind): the check is the state as it is.
TEST(RetainedStateLimits, NewKeysPastTheLimitAreRefusedReplacementsPass) {
  RetainedState s;
  for (const char* k : {"m:a", "m:b", "m:c"}) {
    ASSERT_TRUE(s.admits(k, "m:", 3, true)) << k;
    s.set(k, "1");
  }
  EXPECT_FALSE(s.admits("m:d", "m:", 3, true));
  EXPECT_TRUE(s.admits("m:a", "m:", 3, true));  // replacing a stored key is always allowed
  EXPECT_TRUE(s.admits("p:x", "p:", 1, true));  // another prefix counts on its own
  s.set("p:x", "1");
  EXPECT_FALSE(s.admits("p:y", "p:", 1, true));
  EXPECT_EQ(s.count("m:"), 3u);
  EXPECT_EQ(s.count("p:"), 1u);
  EXPECT_EQ(s.count(""), 4u);  // every key
  EXPECT_TRUE(s.erase("m:b"));
  EXPECT_EQ(s.count("m:"), 2u);
  EXPECT_TRUE(s.admits("m:d", "m:", 3, true));
  EXPECT_TRUE(s.admits("anything", "m:", 0, true));  // 0: no limit
}

// A room restored from the store has keys before any limit is checked: the first check counts.
TEST(RetainedStateLimits, CountsWhatWasThereBeforeTheFirstCheck) {
  RetainedState s;
  for (int i = 0; i < 5; ++i) s.set("m:" + std::to_string(i), "x");
  s.set("p:1", "x");
  EXPECT_EQ(s.count("m:"), 5u);
  EXPECT_FALSE(s.admits("m:new", "m:", 5, false));
  EXPECT_TRUE(s.admits("m:new", "m:", 6, false));
}

// Writes that wait for their commit count as done: a burst in flight cannot pass the limit.
TEST(RetainedStateLimits, PendingWritesCountAsApplied) {
  RetainedState s;
  ASSERT_TRUE(s.admits("a", "", 2, false));
  s.pend("a", true);
  ASSERT_TRUE(s.admits("b", "", 2, false));
  s.pend("b", true);
  EXPECT_FALSE(s.admits("c", "", 2, false));
  EXPECT_TRUE(s.admits("a", "", 2, false));  // a second write of a pending key adds nothing
  s.pend("a", true);
  EXPECT_EQ(s.pending(), 3u);
  // Applied in order, each after its commit.
  s.set("a", "1");
  s.settle("a");
  EXPECT_FALSE(s.admits("c", "", 2, false));
  s.set("b", "1");
  s.settle("b");
  s.set("a", "2");
  s.settle("a");
  EXPECT_EQ(s.pending(), 0u);
  EXPECT_EQ(s.count(""), 2u);
  EXPECT_FALSE(s.admits("c", "", 2, false));
  EXPECT_FALSE(s.admits("c", "", 2, true));
}

// A delete in flight makes room for a later add (as a client sending remove-then-add expects),
// but only for writes applied after it, not for one applied at once.
TEST(RetainedStateLimits, PendingDeleteMakesRoomForLaterWrites) {
  RetainedState s;
  s.set("a", "1");
  s.set("b", "1");
  ASSERT_FALSE(s.admits("c", "", 2, false));
  s.pend("a", false);
  EXPECT_TRUE(s.admits("c", "", 2, false));
  EXPECT_FALSE(s.admits("c", "", 2, true));  // now: a is still there
  s.pend("c", true);
  EXPECT_FALSE(s.admits("d", "", 2, false));
  EXPECT_FALSE(s.admits("a", "", 2, false));  // a is going: re-adding it is an add
  ASSERT_TRUE(s.erase("a"));
  s.settle("a");
  ASSERT_TRUE(s.fits("c", "", 2));
  s.set("c", "1");
  s.settle("c");
  EXPECT_EQ(s.count(""), 2u);
  EXPECT_EQ(s.pending(), 0u);
}

// The store refused the delete that made room: the add admitted behind it no longer fits, and
// fits() (checked before applying) says so, so the limit holds even then.
TEST(RetainedStateLimits, StoreFailureIsCaughtBeforeApplying) {
  RetainedState s;
  s.set("a", "1");
  s.set("b", "1");
  s.pend("a", false);
  ASSERT_TRUE(s.admits("c", "", 2, false));
  s.pend("c", true);
  s.settle("a");  // refused by the store: not applied
  EXPECT_FALSE(s.fits("c", "", 2));
  s.settle("c");  // the caller takes c back
  EXPECT_EQ(s.count(""), 2u);
  EXPECT_EQ(s.pending(), 0u);
  EXPECT_FALSE(s.admits("c", "", 2, false));
  EXPECT_TRUE(s.fits("a", "", 2));  // there: a replacement
}

// A counter made while writes are pending counts them too.
TEST(RetainedStateLimits, CounterMadeWhileWritesArePending) {
  RetainedState s;
  s.set("m:1", "x");
  s.pend("m:2", true);
  s.pend("m:1", false);
  EXPECT_EQ(s.count("m:"), 1u);
  EXPECT_TRUE(s.admits("m:3", "m:", 2, false));  // m:2 comes, m:1 goes: one stays
  s.pend("m:3", true);
  EXPECT_FALSE(s.admits("m:4", "m:", 2, false));
  s.set("m:2", "x");
  s.settle("m:2");
  ASSERT_TRUE(s.erase("m:1"));
  s.settle("m:1");
  s.set("m:3", "x");
  s.settle("m:3");
  EXPECT_EQ(s.count("m:"), 2u);
  EXPECT_FALSE(s.admits("m:4", "m:", 2, true));
}

// Many keys, limit at the edge: the count stays exact through adds, replacements and removals.
TEST(RetainedStateLimits, ExactUnderChurn) {
  RetainedState s;
  constexpr size_t kMax = 50;
  size_t accepted = 0;
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 80; ++i) {
      std::string k = "k:" + std::to_string(round * 7 + i);
      if (s.admits(k, "k:", kMax, true)) {
        if (!s.contains(k)) ++accepted;
        s.set(k, "v");
      }
      ASSERT_LE(s.count("k:"), kMax);
    }
    for (int i = 0; i < 30; ++i) s.erase("k:" + std::to_string(round * 7 + i));
  }
  EXPECT_GT(accepted, kMax);
  EXPECT_LE(s.size(), kMax);
  EXPECT_EQ(s.count("k:"), s.size());
}

}  // namespace

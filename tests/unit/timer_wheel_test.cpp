#include "ringcast/engine/timer_wheel.h"

#include <gtest/gtest.h>

#include <vector>

using ringcast::engine::TimerNode;
using ringcast::engine::TimerWheel;

TEST(TimerWheel, FiresInDeadlineOrderAcrossTurns) {
  TimerWheel wheel(0, 10, 16);  // one turn = 160 ms
  TimerNode a, b, c;
  a.owner = &a;
  wheel.schedule(&a, 50);
  wheel.schedule(&b, 500);  // several turns ahead
  wheel.schedule(&c, 25);
  EXPECT_EQ(wheel.size(), 3u);
  std::vector<TimerNode*> fired;
  auto fire = [&](TimerNode* n) { fired.push_back(n); };
  wheel.advance(20, fire);
  EXPECT_TRUE(fired.empty());
  wheel.advance(60, fire);
  EXPECT_EQ(fired, (std::vector<TimerNode*>{&c, &a}));
  for (int64_t t = 70; t < 500; t += 30) wheel.advance(t, fire);
  EXPECT_EQ(fired.size(), 2u);
  wheel.advance(510, fire);
  EXPECT_EQ(fired.size(), 3u);
  EXPECT_EQ(fired.back(), &b);
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimerWheel, CancelAndReschedule) {
  TimerWheel wheel(1000, 10, 64);
  TimerNode a;
  wheel.schedule(&a, 1100);
  wheel.schedule(&a, 1300);  // moving a timer keeps one entry
  EXPECT_EQ(wheel.size(), 1u);
  int fired = 0;
  wheel.advance(1200, [&](TimerNode*) { ++fired; });
  EXPECT_EQ(fired, 0);
  wheel.cancel(&a);
  EXPECT_EQ(wheel.size(), 0u);
  wheel.advance(1400, [&](TimerNode*) { ++fired; });
  EXPECT_EQ(fired, 0);
  wheel.cancel(&a);  // cancelling twice is harmless
}

TEST(TimerWheel, NextTimeout) {
  TimerWheel wheel(0, 10, 64);
  EXPECT_EQ(wheel.next_timeout_ms(0), -1);
  TimerNode a;
  wheel.schedule(&a, 95);
  int64_t t = wheel.next_timeout_ms(0);
  EXPECT_GE(t, 90);
  EXPECT_LE(t, 100);
  wheel.schedule(&a, -5);  // overdue fires on the next advance
  EXPECT_LE(wheel.next_timeout_ms(0), 10);
  int fired = 0;
  wheel.advance(10, [&](TimerNode* n) {
    ++fired;
    wheel.schedule(n, 100);  // rescheduling from inside the callback is allowed
  });
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(wheel.size(), 1u);
}

TEST(TimerWheel, NextTimeoutSeesEarlierTimerAfterCaching) {
  TimerWheel wheel(0, 10, 1024);
  TimerNode far, near;
  wheel.schedule(&far, 5000);
  int64_t t1 = wheel.next_timeout_ms(0);
  EXPECT_GE(t1, 4990);
  wheel.schedule(&near, 50);  // earlier than what was cached
  int64_t t2 = wheel.next_timeout_ms(0);
  EXPECT_GE(t2, 50);
  EXPECT_LE(t2, 60);
  int fired = 0;
  wheel.advance(60, [&](TimerNode* n) {
    EXPECT_EQ(n, &near);
    ++fired;
  });
  EXPECT_EQ(fired, 1);
  int64_t t3 = wheel.next_timeout_ms(60);  // the cache has passed: rescanned
  EXPECT_GE(t3, 4930);
  EXPECT_LE(t3, 4950);
}

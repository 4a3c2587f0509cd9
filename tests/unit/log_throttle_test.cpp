#include <gtest/gtest.h>

#include "ringcast/engine/log.h"

using ringcast::log::Throttle;

TEST(LogThrottle, OneLinePerIntervalWithACountOfTheRest) {
  Throttle t(1000);
  uint64_t held = 99;
  ASSERT_TRUE(t.allow(5000, held));
  EXPECT_EQ(held, 0u);
  for (int i = 0; i < 400000; ++i) ASSERT_FALSE(t.allow(5000 + i % 1000, held));
  ASSERT_TRUE(t.allow(6000, held));
  EXPECT_EQ(held, 400000u);
  EXPECT_FALSE(t.allow(6999, held));
  ASSERT_TRUE(t.allow(9000, held));
  EXPECT_EQ(held, 1u);
}

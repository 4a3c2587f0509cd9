#include "ringcast/websocket/origin_policy.h"

#include <gtest/gtest.h>

using namespace ringcast::websocket;

namespace {
OriginPolicy seed_policy() {
  OriginPolicy p;
  std::string err;
  EXPECT_TRUE(
      p.set({"https://wizzyworks-frontend.vercel.app", "http://localhost:3000-3001",
             "http://127.0.0.1:3000-3001", "http://localhost:8000", "http://127.0.0.1:8000"},
            true, err))
      << err;
  return p;
}
}  // namespace

TEST(OriginPolicy, SeedDefaults) {
  OriginPolicy p = seed_policy();
  EXPECT_TRUE(p.allows(std::nullopt));  // no Origin header: non-browser client
  EXPECT_TRUE(p.allows("https://wizzyworks-frontend.vercel.app"));
  EXPECT_TRUE(p.allows("https://WizzyWorks-Frontend.vercel.app:443"));
  EXPECT_TRUE(p.allows("http://localhost:3000"));
  EXPECT_TRUE(p.allows("http://localhost:3001"));
  EXPECT_TRUE(p.allows("http://127.0.0.1:3000"));
  EXPECT_TRUE(p.allows("http://127.0.0.1:8000"));
  EXPECT_FALSE(p.allows("http://localhost:3002"));
  EXPECT_FALSE(p.allows("http://localhost:2999"));
  EXPECT_FALSE(p.allows("http://localhost"));
  EXPECT_FALSE(p.allows("https://localhost:3000"));  // scheme matters
  EXPECT_FALSE(p.allows("https://evil.example.com"));
  EXPECT_FALSE(p.allows("https://wizzyworks-frontend.vercel.app.evil.com"));
  EXPECT_FALSE(p.allows("null"));
  EXPECT_FALSE(p.allows(""));
}

TEST(OriginPolicy, WildcardAndDisabled) {
  OriginPolicy p;
  std::string err;
  ASSERT_TRUE(p.set({"*"}, true, err));
  EXPECT_TRUE(p.allows("https://anything.example"));
  ASSERT_TRUE(p.set({}, false, err));
  EXPECT_TRUE(p.allows("https://evil.example.com"));
  ASSERT_TRUE(p.set({}, true, err));
  EXPECT_FALSE(p.allows("https://evil.example.com"));
}

TEST(OriginPolicy, RejectsMalformedPatterns) {
  OriginPolicy p;
  std::string err;
  EXPECT_FALSE(p.set({"localhost:3000"}, true, err));
  EXPECT_FALSE(err.empty());
  EXPECT_FALSE(p.set({"http://localhost:3001-3000"}, true, err));
  EXPECT_FALSE(p.set({"http://localhost:99999"}, true, err));
  EXPECT_FALSE(p.set({"http://host/path"}, true, err));
  EXPECT_TRUE(p.set({"http://[::1]:8080"}, true, err));
  EXPECT_TRUE(p.allows("http://[::1]:8080"));
}

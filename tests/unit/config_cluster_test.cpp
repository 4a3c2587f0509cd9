// The [cluster] section: keys, defaults, ranges and the checks validate_config makes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "ringcast/app/config.h"

using namespace ringcast::app;

namespace {

class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    char tmpl[] = "/tmp/ringcast-cluster-config-XXXXXX";
    int fd = mkstemp(tmpl);
    path_ = tmpl;
    ::close(fd);
    std::ofstream(path_) << text;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Loads and validates `text`; the ConfigError's message, or "" when it is accepted.
std::string error_of(const std::string& text, Config* out = nullptr) {
  TempFile f(text);
  Config cfg;
  try {
    load_config_file(f.path(), cfg);
    validate_config(cfg);
  } catch (const ConfigError& e) {
    return e.what();
  }
  if (out) *out = cfg;
  return "";
}

}  // namespace

TEST(ConfigCluster, OffByDefault) {
  Config cfg;
  EXPECT_FALSE(cfg.cluster.enabled());
  EXPECT_EQ(cfg.cluster.max_queue_bytes, int64_t{64} << 20);
  EXPECT_EQ(cfg.cluster.node_ttl_ms, 5000);
  EXPECT_NO_THROW(validate_config(cfg));
  Config other;
  EXPECT_EQ(error_of("[server]\nthreads = 2\n", &other), "");
  EXPECT_FALSE(other.cluster.enabled());
}

TEST(ConfigCluster, ReadsEveryKey) {
  Config cfg;
  ASSERT_EQ(error_of(R"([cluster]
redis = "redis://ringcast:s3cret@redis.internal:6380/2"
node_id = "node-a"
max_queue_bytes = 1048576
node_ttl_ms = 2500
)",
                     &cfg),
            "");
  EXPECT_TRUE(cfg.cluster.enabled());
  EXPECT_EQ(cfg.cluster.redis, "redis://ringcast:s3cret@redis.internal:6380/2");
  EXPECT_EQ(cfg.cluster.node_id, "node-a");
  EXPECT_EQ(cfg.cluster.max_queue_bytes, 1048576);
  EXPECT_EQ(cfg.cluster.node_ttl_ms, 2500);
}

TEST(ConfigCluster, RedisAloneKeepsTheDefaults) {
  Config cfg;
  ASSERT_EQ(error_of("[cluster]\nredis = \"unix:/run/redis/redis.sock?db=1\"\n", &cfg), "");
  EXPECT_TRUE(cfg.cluster.enabled());
  EXPECT_TRUE(cfg.cluster.node_id.empty());  // hostname:port at start
  EXPECT_EQ(cfg.cluster.max_queue_bytes, int64_t{64} << 20);
  EXPECT_EQ(cfg.cluster.node_ttl_ms, 5000);
  // Non-ASCII node ids are fine, and 255 bytes is the longest.
  EXPECT_EQ(error_of("[cluster]\nredis = \"redis://h\"\nnode_id = \"n\u00f6de-\u2713\"\n"), "");
  EXPECT_EQ(
      error_of("[cluster]\nredis = \"redis://h\"\nnode_id = \"" + std::string(255, 'n') + "\"\n"),
      "");
}

TEST(ConfigCluster, BadUrlIsAConfigErrorWithoutThePassword) {
  std::string msg = error_of("[cluster]\nredis = \"redis://:Pw0rdSECRET@h:99999/0\"\n");
  EXPECT_NE(msg.find("cluster.redis"), std::string::npos) << msg;
  EXPECT_NE(msg.find("port"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("SECRET"), std::string::npos) << msg;
  msg = error_of("[cluster]\nredis = \"http://u:Pw0rdSECRET@h\"\n");
  EXPECT_NE(msg.find("must start with redis:// or unix:"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("SECRET"), std::string::npos) << msg;
  msg = error_of("[cluster]\nredis = \"unix:relative.sock?password=Pw0rdSECRET\"\n");
  EXPECT_NE(msg.find("absolute socket path"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("SECRET"), std::string::npos) << msg;
}

TEST(ConfigCluster, NodeIdNeedsRedis) {
  EXPECT_EQ(error_of("[cluster]\nnode_id = \"a\"\n"), "cluster.node_id: needs cluster.redis");
  // An empty redis is "no cluster" too.
  EXPECT_EQ(error_of("[cluster]\nredis = \"\"\nnode_id = \"a\"\n"),
            "cluster.node_id: needs cluster.redis");
  // The other keys alone are harmless (a cluster switched off by emptying redis).
  EXPECT_EQ(error_of("[cluster]\nmax_queue_bytes = 1048576\nnode_ttl_ms = 2000\n"), "");
}

TEST(ConfigCluster, NodeIdWithoutControlCharacters) {
  for (const char* bad : {"a\\u0001b", "a\\nb", "a\\tb", "a\\u007fb", "a\\u202eb"}) {
    std::string msg =
        error_of(std::string("[cluster]\nredis = \"redis://h\"\nnode_id = \"") + bad + "\"\n");
    EXPECT_NE(msg.find("cluster.node_id: at most 255 bytes, without control characters"),
              std::string::npos)
        << bad << ": " << msg;
  }
  std::string msg =
      error_of("[cluster]\nredis = \"redis://h\"\nnode_id = \"" + std::string(256, 'n') + "\"\n");
  EXPECT_NE(msg.find("cluster.node_id: at most 255 bytes"), std::string::npos) << msg;
}

TEST(ConfigCluster, TypesAndRanges) {
  struct Case {
    const char* body;
    const char* expect;
  };
  for (const Case& c : {
           Case{"redis = 6379", "'cluster.redis' must be a string"},
           Case{"redis = \"redis://h\"\nnode_id = 7", "'cluster.node_id' must be a string"},
           Case{"redis = \"redis://h\"\nmax_queue_bytes = 65535",
                "'cluster.max_queue_bytes' must be between 65536 and 1099511627776"},
           Case{"redis = \"redis://h\"\nmax_queue_bytes = \"1MiB\"",
                "'cluster.max_queue_bytes' must be an integer"},
           Case{"redis = \"redis://h\"\nmax_queue_bytes = 1099511627777",
                "'cluster.max_queue_bytes' must be between"},
           Case{"redis = \"redis://h\"\nnode_ttl_ms = 999",
                "'cluster.node_ttl_ms' must be between 1000 and 86400000"},
           Case{"redis = \"redis://h\"\nnode_ttl_ms = 86400001", "'cluster.node_ttl_ms' must be"},
           Case{"redis = \"redis://h\"\nnode_ttl = 2000", "unknown key 'cluster.node_ttl'"},
       }) {
    std::string msg = error_of(std::string("[cluster]\n") + c.body + "\n");
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.body << ": " << msg;
  }
  // The bounds themselves are accepted.
  Config cfg;
  ASSERT_EQ(error_of("[cluster]\nredis = \"redis://h\"\nmax_queue_bytes = 65536\n"
                     "node_ttl_ms = 1000\n",
                     &cfg),
            "");
  EXPECT_EQ(cfg.cluster.max_queue_bytes, 65536);
  EXPECT_EQ(cfg.cluster.node_ttl_ms, 1000);
}

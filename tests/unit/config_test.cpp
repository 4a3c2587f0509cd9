#include "ringcast/app/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "ringcast/app/cli.h"
#include "ringcast/app/jwt_loader.h"

using namespace ringcast::app;

namespace {
class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    char tmpl[] = "/tmp/ringcast-config-XXXXXX";
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

std::string error_of(const std::string& text) {
  TempFile f(text);
  Config cfg;
  try {
    load_config_file(f.path(), cfg);
    validate_config(cfg);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Config, DefaultsAreSafe) {
  Config cfg;
  EXPECT_NO_THROW(validate_config(cfg));
  EXPECT_EQ(cfg.port, 8765);
  EXPECT_EQ(cfg.http_port, 8000);
  EXPECT_EQ(cfg.limits.max_message_size, 1u << 20);
  EXPECT_TRUE(cfg.origin_check);
}

TEST(Config, ReadsEveryKnownKey) {
  TempFile f(R"([server]
host = "127.0.0.1"
port = 9000
http_port = 0
threads = 2
backend = "epoll"
log_level = "debug"
[limits]
max_message_size = 2048
ping_interval_ms = 300
outbound_cap = 65536
[origins]
check = false
allowed = ["http://a.example:1-2"]
[api]
env = "LOCAL DEV"
keys = ["0123456789abcdef-key"]
max_body_bytes = 4096
)");
  Config cfg;
  load_config_file(f.path(), cfg);
  validate_config(cfg);
  EXPECT_EQ(cfg.host, "127.0.0.1");
  EXPECT_EQ(cfg.port, 9000);
  EXPECT_EQ(cfg.http_port, 0);
  EXPECT_EQ(cfg.threads, 2);
  EXPECT_EQ(cfg.backend, "epoll");
  EXPECT_EQ(cfg.limits.max_message_size, 2048u);
  EXPECT_EQ(cfg.limits.ping_interval_ms, 300);
  EXPECT_EQ(cfg.limits.outbound_cap, 65536u);
  EXPECT_FALSE(cfg.origin_check);
  ASSERT_EQ(cfg.allowed_origins.size(), 1u);
  EXPECT_EQ(cfg.api_env, "LOCAL DEV");
  ASSERT_EQ(cfg.api_keys.size(), 1u);
  EXPECT_EQ(cfg.api_keys[0], "0123456789abcdef-key");
  EXPECT_EQ(cfg.api_max_body_bytes, 4096u);
}

TEST(Config, ShortApiKeysAreRefused) {
  Config cfg;
  cfg.api_keys = {"short"};
  EXPECT_THROW(validate_config(cfg), ConfigError);
  cfg.api_keys = {"0123456789abcdef with space"};
  EXPECT_THROW(validate_config(cfg), ConfigError);
  cfg.api_keys = {"0123456789abcdef"};
  EXPECT_NO_THROW(validate_config(cfg));
}

TEST(Config, ErrorsNameKeyAndLine) {
  std::string e = error_of("[server]\nport = 1\nbogus = 3\n");
  EXPECT_NE(e.find("server.bogus"), std::string::npos) << e;
  EXPECT_NE(e.find(":3"), std::string::npos) << e;

  e = error_of("[server]\n\nport = \"eighty\"\n");
  EXPECT_NE(e.find("server.port"), std::string::npos) << e;
  EXPECT_NE(e.find(":3"), std::string::npos) << e;

  e = error_of("[limits]\nmax_message_size = 1\n");
  EXPECT_NE(e.find("limits.max_message_size"), std::string::npos) << e;

  e = error_of("[nosuch]\nx = 1\n");
  EXPECT_NE(e.find("nosuch"), std::string::npos) << e;

  e = error_of("[server]\nport = \n");
  EXPECT_NE(e.find(":2"), std::string::npos) << e;  // TOML syntax error with its line

  e = error_of("[server]\nbackend = \"kqueue\"\n");
  EXPECT_NE(e.find("server.backend"), std::string::npos) << e;

  e = error_of("[origins]\nallowed = [\"nonsense\"]\n");
  EXPECT_NE(e.find("origins.allowed"), std::string::npos) << e;
}

// Found by fuzz.config: a float too large for an integer was converted before its type was
// checked, which is undefined behaviour (UBSan stops the sanitizer build here).
TEST(Config, FloatForIntegerKeyIsRefused) {
  for (const char* value : {"655e36", "-1e300", "inf", "nan", "2.5"}) {
    std::string e = error_of(std::string("[limits]\noutbound_cap = ") + value + "\n");
    EXPECT_NE(e.find("'limits.outbound_cap' must be an integer"), std::string::npos)
        << value << ": " << e;
  }
}

TEST(Config, FlagsOverrideFile) {
  TempFile f("[server]\nport = 9000\nthreads = 4\n");
  std::string path = f.path();
  const char* argv[] = {"ringcast", "--config", path.c_str(), "--port=9100", "--backend", "epoll"};
  Config cfg;
  parse_command_line(6, const_cast<char**>(argv), cfg);
  EXPECT_EQ(cfg.port, 9100);
  EXPECT_EQ(cfg.threads, 4);
  EXPECT_EQ(cfg.backend, "epoll");
}

TEST(Config, BadFlagsThrow) {
  Config cfg;
  const char* unknown[] = {"ringcast", "--frobnicate"};
  EXPECT_THROW(parse_command_line(2, const_cast<char**>(unknown), cfg), ConfigError);
  const char* bad_port[] = {"ringcast", "--port", "70000"};
  EXPECT_THROW(parse_command_line(3, const_cast<char**>(bad_port), cfg), ConfigError);
  const char* missing[] = {"ringcast", "--threads"};
  EXPECT_THROW(parse_command_line(2, const_cast<char**>(missing), cfg), ConfigError);
}

// SIGHUP judges "changed" on effective values: the file re-read with the same flags re-applied.
TEST(Config, ReloadComparesEffectiveValues) {
  TempFile f("[server]\nport = 9000\nthreads = 4\nlog_level = \"warn\"\n");
  std::string path = f.path();
  const char* argv[] = {"ringcast",  "--config", path.c_str(), "--port", "9100",
                        "--threads", "2",        "--data-dir", "/tmp/x"};
  Config running;
  parse_command_line(9, const_cast<char**>(argv), running);
  ASSERT_EQ(running.port, 9100);
  Config again = effective_config(running.flags);
  EXPECT_EQ(again.port, 9100);
  EXPECT_EQ(again.threads, 2);
  EXPECT_EQ(again.data_dir, "/tmp/x");
  EXPECT_EQ(again.log_level, "warn");
  EXPECT_TRUE(restart_only_changes(running, again).empty());

  std::ofstream(path) << "[server]\nport = 9001\nhttp_port = 8100\n[store]\ndurability = "
                         "\"relaxed\"\npersistent_rooms = [\"a*\"]\n";
  Config edited = effective_config(running.flags);
  EXPECT_EQ(edited.port, 9100);  // still the flag's
  auto changed = restart_only_changes(running, edited);
  EXPECT_EQ(changed, (std::vector<std::string>{"server.http_port", "store.persistent_rooms",
                                               "store.durability"}));
}

TEST(Config, FlowControlKeys) {
  using SC = ringcast::websocket::Limits::SlowConsumer;
  {
    Config cfg;
    EXPECT_EQ(cfg.limits.slow_consumer, SC::kClose);       // rooms: close by default
    EXPECT_EQ(cfg.limits.relay_slow_consumer, SC::kPace);  // one-to-one relays: pace
    EXPECT_EQ(cfg.limits.stall_timeout_ms, 10000);
  }
  TempFile f(
      "[limits]\nslow_consumer = \"pace\"\nrelay_slow_consumer = \"close\"\n"
      "stall_timeout_ms = 2500\n");
  Config cfg;
  load_config_file(f.path(), cfg);
  EXPECT_EQ(cfg.limits.slow_consumer, SC::kPace);
  EXPECT_EQ(cfg.limits.relay_slow_consumer, SC::kClose);
  EXPECT_EQ(cfg.limits.stall_timeout_ms, 2500);
  EXPECT_NE(
      error_of("[limits]\nrelay_slow_consumer = \"drop_oldest\"\n").find("relay_slow_consumer"),
      std::string::npos);
  EXPECT_NE(error_of("[limits]\nslow_consumer = \"later\"\n").find(":2"), std::string::npos);
  EXPECT_NE(error_of("[limits]\nstall_timeout_ms = 5\n").find("stall_timeout_ms"),
            std::string::npos);
}

TEST(Config, RoomLimits) {
  Config defaults;
  EXPECT_EQ(defaults.max_rooms, 100000u);
  EXPECT_EQ(defaults.max_rooms_per_connection, 100u);
  EXPECT_EQ(defaults.history_ttl_s, 86400);
  TempFile f("[hub]\nmax_rooms = 500\nmax_rooms_per_connection = 3\nhistory_ttl_s = 0\n");
  Config cfg;
  load_config_file(f.path(), cfg);
  validate_config(cfg);
  EXPECT_EQ(cfg.max_rooms, 500u);
  EXPECT_EQ(cfg.max_rooms_per_connection, 3u);
  EXPECT_EQ(cfg.history_ttl_s, 0);
  std::string e = error_of("[hub]\nmax_rooms = 0\n");
  EXPECT_NE(e.find("hub.max_rooms"), std::string::npos) << e;
  e = error_of("[hub]\nmax_rooms_per_connection = 0\n");
  EXPECT_NE(e.find("hub.max_rooms_per_connection"), std::string::npos) << e;
  e = error_of("[hub]\nhistory_ttl_s = -1\n");
  EXPECT_NE(e.find("hub.history_ttl_s"), std::string::npos) << e;
}

TEST(Config, StateLimits) {
  Config defaults;
  EXPECT_EQ(defaults.max_state_keys, 1000u);
  EXPECT_EQ(defaults.max_state_value_bytes, 65536u);
  TempFile f("[hub]\nmax_state_keys = 25\nmax_state_value_bytes = 100\n");
  Config cfg;
  load_config_file(f.path(), cfg);
  validate_config(cfg);
  EXPECT_EQ(cfg.max_state_keys, 25u);
  EXPECT_EQ(cfg.max_state_value_bytes, 100u);
  std::string e = error_of("[hub]\nmax_state_keys = 0\n");
  EXPECT_NE(e.find("hub.max_state_keys"), std::string::npos) << e;
  e = error_of("[hub]\nmax_state_value_bytes = 0\n");
  EXPECT_NE(e.find("hub.max_state_value_bytes"), std::string::npos) << e;
  e = error_of("[hub]\nmax_state_keys = 20000000\n");
  EXPECT_NE(e.find("hub.max_state_keys"), std::string::npos) << e;
}

TEST(Config, JwtSection) {
  Config defaults;
  EXPECT_EQ(defaults.jwt.leeway_s, 60);
  EXPECT_TRUE(defaults.jwt.public_key_file.empty());
  EXPECT_TRUE(defaults.jwt.audience.empty());
  EXPECT_EQ(load_jwt_verifier(defaults.jwt), nullptr);  // no key: no JWT logs in

  TempFile f(R"([jwt]
public_key_file = "/etc/ringcast/jwt.pem"
hs256_secret = "s3cret"
audience = "heavenland-api"
issuer = "https://id.example"
leeway_s = 5
)");
  Config cfg;
  load_config_file(f.path(), cfg);
  EXPECT_EQ(cfg.jwt.public_key_file, "/etc/ringcast/jwt.pem");
  EXPECT_EQ(cfg.jwt.hs256_secret, "s3cret");
  EXPECT_EQ(cfg.jwt.audience, std::vector<std::string>{"heavenland-api"});
  EXPECT_EQ(cfg.jwt.issuer, "https://id.example");
  EXPECT_EQ(cfg.jwt.leeway_s, 5);

  TempFile list("[jwt]\naudience = [\"a\", \"b\"]\n");
  Config cfg2;
  load_config_file(list.path(), cfg2);
  EXPECT_EQ(cfg2.jwt.audience, (std::vector<std::string>{"a", "b"}));

  EXPECT_NE(error_of("[jwt]\naudience = 5\n").find("jwt.audience"), std::string::npos);
  EXPECT_NE(error_of("[jwt]\nleeway_s = -1\n").find("jwt.leeway_s"), std::string::npos);
  EXPECT_NE(error_of("[jwt]\nkeyfile = \"x\"\n").find("jwt.keyfile"), std::string::npos);
}

TEST(Config, JwtKeyFileMustBeUsable) {
  Config::Jwt jwt;
  jwt.public_key_file = "/nonexistent/ringcast-jwt.pem";
  try {
    load_jwt_verifier(jwt);
    ADD_FAILURE() << "a missing key file must be a configuration error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("jwt.public_key_file"), std::string::npos) << e.what();
  }
  TempFile garbage("not a key\n");
  jwt.public_key_file = garbage.path();
  EXPECT_THROW(load_jwt_verifier(jwt), ConfigError);
  // An HS256 secret alone is a usable configuration.
  jwt.public_key_file.clear();
  jwt.hs256_secret = "s3cret";
  auto v = load_jwt_verifier(jwt);
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->policy().leeway_s, 60);
}

TEST(Config, TlsKeys) {
  Config defaults;
  EXPECT_FALSE(defaults.tls_enabled());
  EXPECT_FALSE(defaults.http_port_tls);
  TempFile f(
      "[tls]\ncert = \"/etc/ringcast/cert.pem\"\nkey = \"/etc/ringcast/key.pem\"\n"
      "ca = \"/etc/ringcast/ca.pem\"\nhttp_port_tls = true\n");
  Config cfg;
  load_config_file(f.path(), cfg);
  validate_config(cfg);  // files are opened at start-up, not here
  EXPECT_TRUE(cfg.tls_enabled());
  EXPECT_EQ(cfg.tls_cert, "/etc/ringcast/cert.pem");
  EXPECT_EQ(cfg.tls_key, "/etc/ringcast/key.pem");
  EXPECT_EQ(cfg.tls_ca, "/etc/ringcast/ca.pem");
  EXPECT_TRUE(cfg.http_port_tls);
  std::string e = error_of("[tls]\ncert = \"c.pem\"\n");
  EXPECT_NE(e.find("cert and key"), std::string::npos) << e;
  e = error_of("[tls]\nca = \"ca.pem\"\n");
  EXPECT_NE(e.find("tls.ca"), std::string::npos) << e;
  e = error_of("[tls]\nhttp_port_tls = true\n");
  EXPECT_NE(e.find("tls.http_port_tls"), std::string::npos) << e;
  e = error_of("[tls]\nhttp_port_tls = 1\n");
  EXPECT_NE(e.find("tls.http_port_tls"), std::string::npos) << e;
  e = error_of("[tls]\ncipher = \"x\"\n");
  EXPECT_NE(e.find("tls.cipher"), std::string::npos) << e;
  // Turning TLS on or off, or moving the health port to TLS, needs a restart; new file names
  // are picked up by SIGHUP.
  Config other = cfg;
  other.tls_cert = "/elsewhere.pem";
  EXPECT_TRUE(restart_only_changes(cfg, other).empty());
  other.http_port_tls = false;
  EXPECT_EQ(restart_only_changes(cfg, other), std::vector<std::string>{"tls.http_port_tls"});
  EXPECT_EQ(restart_only_changes(cfg, defaults).front(), "tls.cert");
}

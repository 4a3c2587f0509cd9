// Where the cluster's Redis is: "redis://[[user]:password@]host[:port][/db]" or
// "unix:/path/to/redis.sock[?db=N&user=U&password=P]". The password is kept for AUTH only: what
// is logged or shown is redacted().
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace ringcast::cluster {

struct RedisUrlError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct RedisUrl {
  std::string host;  // empty for a unix socket
  int port = 6379;
  std::string unix_path;  // set for a unix socket
  int db = 0;
  std::string user;      // empty: AUTH with the password alone (the "default" user)
  std::string password;  // empty: no AUTH

  bool is_unix() const { return !unix_path.empty(); }
  // The address without credentials, for logs and /health.
  std::string redacted() const;
};

// Throws RedisUrlError with a message that never contains the password.
RedisUrl parse_redis_url(std::string_view url);

}  // namespace ringcast::cluster

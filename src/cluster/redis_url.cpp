#include "ringcast/cluster/redis_url.h"

#include <charconv>

namespace ringcast::cluster {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Credentials may carry reserved characters percent-encoded (RFC 3986), as redis-cli accepts.
std::string percent_decode(std::string_view s, const char* what) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    int hi = i + 2 < s.size() ? hex_value(s[i + 1]) : -1;
    int lo = i + 2 < s.size() ? hex_value(s[i + 2]) : -1;
    if (hi < 0 || lo < 0)
      throw RedisUrlError(std::string("cluster.redis: bad percent-encoding in the ") + what);
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

int parse_int(std::string_view s, int lo, int hi, const char* what) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v < lo || v > hi)
    // The text is not repeated: a mistyped URL can carry a piece of the password here.
    throw RedisUrlError(std::string("cluster.redis: ") + what + " must be a number from " +
                        std::to_string(lo) + " to " + std::to_string(hi) +
                        " (percent-encode '/', '@', '&' and '%' in credentials)");
  return v;
}

constexpr int kMaxDb = 1 << 20;  // Redis's own limit is its `databases` setting

}  // namespace

std::string RedisUrl::redacted() const {
  std::string auth = password.empty() ? "" : (user.empty() ? ":***@" : user + ":***@");
  if (is_unix()) return "unix:" + unix_path + (db ? "?db=" + std::to_string(db) : "");
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return "redis://" + auth + h + ":" + std::to_string(port) + "/" + std::to_string(db);
}

RedisUrl parse_redis_url(std::string_view url) {
  RedisUrl r;
  if (url.starts_with("unix:")) {
    std::string_view rest = url.substr(5);
    size_t q = rest.find('?');
    std::string_view path = rest.substr(0, q);
    if (path.empty() || path[0] != '/')
      throw RedisUrlError("cluster.redis: unix: needs an absolute socket path (unix:/path)");
    r.unix_path = std::string(path);
    if (q != std::string_view::npos) {
      std::string_view query = rest.substr(q + 1);
      while (!query.empty()) {
        size_t amp = query.find('&');
        std::string_view kv = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        size_t eq = kv.find('=');
        if (eq == std::string_view::npos)
          throw RedisUrlError("cluster.redis: unix: query parameters are name=value");
        std::string_view k = kv.substr(0, eq), v = kv.substr(eq + 1);
        if (k == "db")
          r.db = parse_int(v, 0, kMaxDb, "db");
        else if (k == "user")
          r.user = percent_decode(v, "user");
        else if (k == "password")
          r.password = percent_decode(v, "password");
        else
          throw RedisUrlError(  // not named: an unencoded '&' in a password lands here
              "cluster.redis: unknown unix: parameter (db, user and password are known; "
              "percent-encode '&' and '%' in credentials)");
      }
    }
    if (!r.user.empty() && r.password.empty())
      throw RedisUrlError("cluster.redis: a user needs a password");
    return r;
  }
  if (!url.starts_with("redis://"))
    throw RedisUrlError("cluster.redis: must start with redis:// or unix:");
  std::string_view rest = url.substr(8);
  // Credentials end at the last '@': a password with an unencoded '/' stays a password.
  size_t at = rest.rfind('@');
  std::string_view cred;
  if (at != std::string_view::npos) {
    cred = rest.substr(0, at);
    rest = rest.substr(at + 1);
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    std::string_view db = rest.substr(slash + 1);
    if (!db.empty()) r.db = parse_int(db, 0, kMaxDb, "the database number");
  }
  if (at != std::string_view::npos) {
    size_t colon = cred.find(':');
    if (colon == std::string_view::npos) {
      // "redis://secret@host": redis-cli and most clients read a lone credential as a password.
      r.password = percent_decode(cred, "password");
    } else {
      r.user = percent_decode(cred.substr(0, colon), "user");
      r.password = percent_decode(cred.substr(colon + 1), "password");
    }
    if (r.password.empty())
      throw RedisUrlError("cluster.redis: empty password after '@' (leave out the credentials)");
  }
  std::string_view host = authority;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos)
      throw RedisUrlError("cluster.redis: unterminated [IPv6] host");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') throw RedisUrlError("cluster.redis: expected ':port' after ']'");
      r.port = parse_int(after.substr(1), 1, 65535, "the port");
    }
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    r.port = parse_int(authority.substr(colon + 1), 1, 65535, "the port");
  }
  if (host.empty()) throw RedisUrlError("cluster.redis: missing host (redis://HOST:PORT/DB)");
  for (char c : host)
    if (static_cast<unsigned char>(c) <= ' ' || c == '/' || c == '?' || c == '#')
      throw RedisUrlError("cluster.redis: bad character in the host");
  r.host = std::string(host);
  return r;
}

}  // namespace ringcast::cluster

// Origin allow-list for WebSocket upgrades and CORS. Entries are exact origins
// ("https://app.example.com"), origins with a port range ("http://localhost:3000-3001"), or "*".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringcast::websocket {

struct OriginPattern {
  std::string scheme;  // lower case
  std::string host;    // lower case
  uint16_t port_lo = 0, port_hi = 0;
  bool any = false;
};

// Parses one allow-list entry; nullopt if malformed.
std::optional<OriginPattern> parse_origin_pattern(std::string_view entry);

class OriginPolicy {
 public:
  OriginPolicy() = default;
  // Fails (returns false, sets error) on the first malformed entry.
  bool set(const std::vector<std::string>& entries, bool check, std::string& error);
  // True if a request with this Origin header value may connect. Callers pass nullopt when the
  // request has no Origin header (non-browser clients), which is always allowed.
  bool allows(std::optional<std::string_view> origin) const;
  bool checking() const { return check_; }

 private:
  bool check_ = true;
  std::vector<OriginPattern> patterns_;
};

}  // namespace ringcast::websocket

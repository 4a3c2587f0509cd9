#include "ringcast/websocket/origin_policy.h"

#include <cctype>
#include <charconv>

namespace ringcast::websocket {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

uint16_t default_port(std::string_view scheme) {
  return scheme == "https" ? 443 : 80;
}

bool parse_port(std::string_view s, uint16_t& out) {
  if (s.empty() || s.size() > 5) return false;
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v == 0 || v > 65535) return false;
  out = static_cast<uint16_t>(v);
  return true;
}

// Splits "scheme://host[:portspec]"; portspec is returned raw.
bool split_origin(std::string_view s, std::string_view& scheme, std::string_view& host,
                  std::string_view& port) {
  size_t sep = s.find("://");
  if (sep == std::string_view::npos || sep == 0) return false;
  scheme = s.substr(0, sep);
  std::string_view rest = s.substr(sep + 3);
  if (rest.empty() || rest.find('/') != std::string_view::npos) return false;
  port = {};
  if (rest.front() == '[') {  // IPv6 literal
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return false;
    host = rest.substr(0, close + 1);
    rest = rest.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port = rest.substr(1);
    }
  } else {
    size_t colon = rest.rfind(':');
    host = rest.substr(0, colon);
    if (colon != std::string_view::npos) port = rest.substr(colon + 1);
  }
  if (host.empty()) return false;
  for (char c : scheme)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.')
      return false;
  return true;
}

}  // namespace

std::optional<OriginPattern> parse_origin_pattern(std::string_view entry) {
  OriginPattern p;
  if (entry == "*") {
    p.any = true;
    return p;
  }
  std::string_view scheme, host, port;
  if (!split_origin(entry, scheme, host, port)) return std::nullopt;
  p.scheme = lower(scheme);
  p.host = lower(host);
  if (port.empty()) {
    p.port_lo = p.port_hi = default_port(p.scheme);
  } else if (size_t dash = port.find('-'); dash != std::string_view::npos) {
    if (!parse_port(port.substr(0, dash), p.port_lo) ||
        !parse_port(port.substr(dash + 1), p.port_hi) || p.port_lo > p.port_hi)
      return std::nullopt;
  } else {
    if (!parse_port(port, p.port_lo)) return std::nullopt;
    p.port_hi = p.port_lo;
  }
  return p;
}

bool OriginPolicy::set(const std::vector<std::string>& entries, bool check, std::string& error) {
  std::vector<OriginPattern> parsed;
  for (const auto& e : entries) {
    auto p = parse_origin_pattern(e);
    if (!p) {
      error = "invalid origin pattern '" + e + "' (expected scheme://host[:port[-port]] or *)";
      return false;
    }
    parsed.push_back(std::move(*p));
  }
  patterns_ = std::move(parsed);
  check_ = check;
  return true;
}

bool OriginPolicy::allows(std::optional<std::string_view> origin) const {
  if (!check_ || !origin) return true;
  std::string_view scheme, host, port_text;
  if (!split_origin(*origin, scheme, host, port_text)) return false;
  std::string s = lower(scheme), h = lower(host);
  uint16_t port = 0;
  if (port_text.empty()) {
    port = default_port(s);
  } else if (!parse_port(port_text, port)) {
    return false;
  }
  for (const auto& p : patterns_) {
    if (p.any) return true;
    if (p.scheme == s && p.host == h && port >= p.port_lo && port <= p.port_hi) return true;
  }
  return false;
}

}  // namespace ringcast::websocket

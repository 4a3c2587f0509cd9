// Bounded HTTP/1.x request-head parser. Works on the connection's buffer in place: every field is a
// view into it, so nothing is copied or allocated while parsing.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace ringcast::websocket {

struct HttpHeader {
  std::string_view name;
  std::string_view value;
};

struct HttpRequest {
  static constexpr size_t kMaxHeaders = 64;

  std::string_view method;
  std::string_view target;  // as sent: path plus optional query
  std::string_view path;    // target without the query
  std::string_view query;   // after '?', without it
  int version_minor = 1;    // HTTP/1.<minor>
  HttpHeader headers[kMaxHeaders];
  size_t header_count = 0;
  size_t head_length = 0;  // bytes up to and including the blank line

  // Case-insensitive lookup of the first header with this name.
  std::optional<std::string_view> header(std::string_view name) const;
  // How many header lines carry this name (case-insensitive).
  size_t header_count_of(std::string_view name) const;
  // True if a comma-separated header (e.g. Connection) contains token, case-insensitively.
  bool header_has_token(std::string_view name, std::string_view token) const;
  // Keep-alive semantics of HTTP/1.0 and 1.1.
  bool keep_alive() const;
};

enum class ParseStatus { kIncomplete, kComplete, kBad, kTooLarge };

// Parses one request head from the start of `buf`. kTooLarge when no complete head fits in
// max_head_bytes; kBad on any syntax error, and (RFC 7230 §5.4) on more than one Host header or
// an HTTP/1.1 request without one (the caller answers 400).
ParseStatus parse_http_request(std::string_view buf, size_t max_head_bytes, HttpRequest& out);

bool iequals(std::string_view a, std::string_view b);

// Returns the query parameter's raw value, or nullopt.
std::optional<std::string_view> query_param(std::string_view query, std::string_view name);

}  // namespace ringcast::websocket

// Minimal client side of HTTP/1.1 for the http-publish scenario: keep-alive POST requests and a
// parser for the server's responses, in order, split across reads or several in one read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ringcast::load {

// Largest response head and body the client accepts (the API answers a few hundred bytes).
inline constexpr size_t kMaxHttpHead = 16 * 1024;
inline constexpr size_t kMaxHttpBody = 1024 * 1024;

struct HttpResponseView {
  int status = 0;
  bool close = false;     // "Connection: close": the server ends the connection after it
  std::string_view body;  // points into the parsed buffer
  size_t consumed = 0;    // head + body length
};

enum class HttpParse { kIncomplete, kOk, kFailed };

// Parses one response at the start of `data`. Needs Content-Length (or a status without a body:
// 1xx, 204, 304); chunked bodies and heads over kMaxHttpHead fail. On kFailed, `error` says why.
HttpParse parse_http_response(std::string_view data, HttpResponseView& out, std::string& error);

// The fixed part of a keep-alive JSON POST, up to and including "Content-Length: ".
std::string http_post_prefix(std::string_view host, std::string_view target,
                             std::string_view authorization);

}  // namespace ringcast::load

// Builds a complete HTTP/1.1 response into a SharedFrame so it leaves through the same send queue
// as WebSocket frames.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ringcast/engine/shared_frame.h"

namespace ringcast::websocket {

std::string_view status_text(int status);

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool head_only = false;  // HEAD request: headers (with the body's length) but no body
  bool keep_alive = true;
  bool deferred = false;  // HttpService: the answer comes later (see HttpService::handle)

  void add_header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
  // Serialises status line, headers (Content-Length, Connection included) and body.
  engine::SharedFrame* encode() const;
};

// Small JSON error body: {"error":"<message>"}.
HttpResponse json_error(int status, std::string_view message);

}  // namespace ringcast::websocket

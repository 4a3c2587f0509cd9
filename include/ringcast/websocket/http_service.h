// Plain HTTP requests (no Upgrade) are answered by the application through this interface; the
// worker adds CORS headers and answers OPTIONS preflights itself.
#pragma once

#include "ringcast/websocket/http_request.h"
#include "ringcast/websocket/http_response.h"

namespace ringcast::websocket {

// Where a request came from, for services whose answer depends on it.
struct HttpContext {
  bool websocket_port = false;  // the WebSocket listener (else the health/API listener)
  bool loopback_peer = false;   // the client connected from 127.0.0.0/8 or ::1
};

class HttpService {
 public:
  virtual ~HttpService() = default;
  // Called on a worker thread; must be thread-safe.
  virtual HttpResponse handle(const HttpRequest& req, const HttpContext& ctx) = 0;
};

}  // namespace ringcast::websocket

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
  int worker = 0;               // the worker (core) the connection lives on
  uint64_t session = 0;         // the connection, for a deferred answer (Worker::complete_http)
  std::string_view body;        // the request body (Content-Length bytes; empty if none)
};

class HttpService {
 public:
  virtual ~HttpService() = default;
  // Called on a worker thread; must be thread-safe and must not block. An answer that needs work
  // elsewhere (another core, the store) returns a response with `deferred` set and hands the real
  // one to Worker::complete_http on worker `ctx.worker` later: the connection reads no further
  // request until then, so answers keep the order of the requests.
  virtual HttpResponse handle(const HttpRequest& req, const HttpContext& ctx) = 0;
};

}  // namespace ringcast::websocket

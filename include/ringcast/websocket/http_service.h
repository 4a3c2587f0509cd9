// Plain HTTP requests (no Upgrade) are answered by the application through this interface; the
// worker adds CORS headers and answers OPTIONS preflights itself.
#pragma once

#include "ringcast/websocket/http_request.h"
#include "ringcast/websocket/http_response.h"

namespace ringcast::websocket {

class HttpService {
 public:
  virtual ~HttpService() = default;
  // Called on a worker thread; must be thread-safe.
  virtual HttpResponse handle(const HttpRequest& req, bool websocket_port) = 0;
};

}  // namespace ringcast::websocket

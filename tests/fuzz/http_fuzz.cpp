// HTTP request heads and the WebSocket handshake checks: parse_http_request over a buffer holding
// any number of pipelined requests (as Worker::handle_http walks it), then every accessor and the
// upgrade validation on each complete head.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ringcast/websocket/handshake.h"
#include "ringcast/websocket/http_request.h"

using namespace ringcast::websocket;

namespace {

// An invariant of the code under test; a failure names its line.
#define require(ok)                                                 \
  do {                                                              \
    if (!(ok)) {                                                    \
      std::fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #ok); \
      std::abort();                                                 \
    }                                                               \
  } while (0)

// Every view points into the request head (an absolute-form target without a path becomes the
// literal "/").
bool inside(std::string_view part, std::string_view whole) {
  return part.empty() || part == "/" ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The first byte picks the head limit, so small limits (and kTooLarge) are reached too.
  if (size == 0) return 0;
  const size_t max_head = 64 + size_t{data[0]} * 64;
  std::string copy(reinterpret_cast<const char*>(data + 1), size - 1);  // exact-size heap copy
  std::string_view buf(copy);
  size_t consumed = 0;
  for (int i = 0; i < 64 && consumed < buf.size(); ++i) {
    std::string_view view = buf.substr(consumed);
    HttpRequest req;
    ParseStatus st = parse_http_request(view, max_head, req);
    if (st != ParseStatus::kComplete) break;
    require(req.head_length > 0 && req.head_length <= view.size() && req.head_length <= max_head);
    require(req.header_count <= HttpRequest::kMaxHeaders);
    std::string_view head = view.substr(0, req.head_length);
    require(inside(req.method, head) && inside(req.target, head) && inside(req.path, head) &&
            inside(req.query, head));
    for (size_t h = 0; h < req.header_count; ++h)
      require(inside(req.headers[h].name, head) && inside(req.headers[h].value, head));
    (void)req.keep_alive();
    (void)req.header_has_token("Connection", "upgrade");
    (void)req.header("Origin");
    (void)query_param(req.query, "echo");
    (void)query_param(req.query, "");
    if (wants_upgrade(req)) {
      int refuse = check_upgrade(req);
      require(refuse == 0 || refuse == 400 || refuse == 426);
      if (refuse == 0) {
        // What Worker::start_websocket relies on.
        auto key = req.header("Sec-WebSocket-Key");
        require(key.has_value() && valid_websocket_key(*key));
        require(websocket_accept(*key).size() == 28);
      }
    }
    consumed += req.head_length;
  }
  (void)valid_websocket_key(buf);
  return 0;
}

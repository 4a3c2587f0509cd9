// Maps request paths of the WebSocket port to handlers: exact paths and "prefix/" mounts
// (e.g. /raw/<room>). Built at start-up, read-only afterwards, shared by all workers.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ringcast/websocket/message_handler.h"

namespace ringcast::websocket {

struct Route {
  std::string path;  // "/echo", or "/raw/" for a prefix mount
  bool prefix = false;
  MessageHandler* handler = nullptr;
  std::atomic<int64_t> connections{0};  // open WebSocket sessions on this route
};

class Router {
 public:
  void add(std::string path, bool prefix, MessageHandler* handler);
  // Longest match: exact routes first, then the longest prefix mount. nullptr if none.
  Route* match(std::string_view path) const;
  const std::vector<std::unique_ptr<Route>>& routes() const { return routes_; }

 private:
  std::vector<std::unique_ptr<Route>> routes_;
};

}  // namespace ringcast::websocket

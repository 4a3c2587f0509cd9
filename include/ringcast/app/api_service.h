// The server API: HTTP/JSON calls from application backends (docs/server-api.md). Publishes go
// through the hub like a client's, so they get the room's order, history and durability; every
// answer that needs another core or the store is deferred (Worker::complete_http), so a loop
// thread never waits.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ringcast/hub/hub.h"
#include "ringcast/websocket/http_request.h"
#include "ringcast/websocket/http_response.h"
#include "ringcast/websocket/http_service.h"

namespace ringcast::app {

class ApiService {
 public:
  static constexpr size_t kMaxBroadcastRooms = 1000;
  static constexpr size_t kMaxListedRooms = 100000;
  static constexpr size_t kMaxHistoryLimit = 1000;

  ApiService(hub::HubSystem& hubs, std::string node_id);
  // [api] keys (start and SIGHUP). No key: the API answers 404 "off".
  void set_keys(std::vector<std::string> keys);
  // True for the paths this service owns: /api/... except the seed's /api/version.
  static bool owns(std::string_view path);
  websocket::HttpResponse handle(const websocket::HttpRequest& req,
                                 const websocket::HttpContext& ctx);

 private:
  websocket::HttpResponse publish(const websocket::HttpContext& ctx, bool many);
  websocket::HttpResponse disconnect(const websocket::HttpContext& ctx);
  websocket::HttpResponse list_rooms(const websocket::HttpRequest& req,
                                     const websocket::HttpContext& ctx);
  websocket::HttpResponse room_query(const websocket::HttpRequest& req,
                                     const websocket::HttpContext& ctx, std::string room,
                                     bool history);
  hub::HubSystem& hubs_;
  const std::string node_id_;
  mutable std::mutex keys_mutex_;  // taken once per request, never on the message path
  std::shared_ptr<const std::vector<std::string>> keys_;
};

}  // namespace ringcast::app

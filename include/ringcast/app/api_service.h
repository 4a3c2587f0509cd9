// The server API: HTTP/JSON calls from application backends (docs/server-api.md). Publishes go
// through the hub like a client's, so they get the room's order, history and durability; every
// answer that needs another core or the store is deferred (Worker::complete_http), so a loop
// thread never waits.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "ringcast/hub/cluster_bus.h"
#include "ringcast/hub/hub.h"
#include "ringcast/websocket/http_request.h"
#include "ringcast/websocket/http_response.h"
#include "ringcast/websocket/http_service.h"

namespace ringcast::app {

// In a cluster, GET /api/rooms and POST /api/disconnect also ask every other node, over the
// bus's queries (api_cluster.cpp), and answer for the whole cluster.
class ApiService final : public hub::ClusterQueries {
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

  // hub::ClusterQueries (api_cluster.cpp).
  void cluster_query(hub::Hub& hub, std::string_view from, uint64_t ticket,
                     std::string_view query) override;
  void cluster_answers(hub::Hub& hub, uint64_t ticket, const std::vector<std::string_view>& answers,
                       size_t asked) override;

  // What the cluster-wide answers are made of.
  struct RoomInfo {
    std::vector<uint32_t> members;             // this node's, per core
    uint64_t elsewhere = 0;                    // on the other nodes
    std::map<std::string, uint64_t> per_node;  // the other nodes' members, by node id
    uint64_t seq = 0;
    size_t history = 0, state_keys = 0;
  };
  using RoomTable = std::map<std::string, RoomInfo>;
  struct DisconnectTarget {
    uint64_t session = 0;  // or
    std::string user;
    uint16_t code = 1008;
    std::string reason;
  };
  struct Tally {
    size_t closed = 0;
    std::vector<std::string> nodes;  // that answered, this one first
    size_t missing = 0;              // asked, but no answer in time
    bool degraded = false;           // Redis unreachable: the others could not be asked
  };

 private:
  websocket::HttpResponse publish(const websocket::HttpContext& ctx, bool many);
  websocket::HttpResponse disconnect(const websocket::HttpContext& ctx);
  websocket::HttpResponse list_rooms(const websocket::HttpRequest& req,
                                     const websocket::HttpContext& ctx);
  websocket::HttpResponse room_query(const websocket::HttpRequest& req,
                                     const websocket::HttpContext& ctx, std::string room,
                                     bool history);
  void disconnect_here(int origin, std::shared_ptr<const DisconnectTarget> t,
                       std::function<void(size_t)> done);
  void disconnect_everywhere(int origin, DisconnectTarget t,
                             std::function<void(const Tally&)> done);
  void rooms_here(int origin, std::function<void(RoomTable&)> done);
  void rooms_everywhere(int origin, std::function<void(const RoomTable&, const Tally&)> done);
  using Answers = std::function<void(const std::vector<std::string_view>&, size_t asked)>;
  // Asks the other nodes (on `core`); single node: answered at once, nobody asked.
  void ask(int core, std::string query, Answers done);

  hub::HubSystem& hubs_;
  const std::string node_id_;
  mutable std::mutex keys_mutex_;  // taken once per request, never on the message path
  std::shared_ptr<const std::vector<std::string>> keys_;
  std::vector<std::unordered_map<uint64_t, Answers>> waiting_;  // per core: its queries
  std::atomic<uint64_t> next_ticket_{1};
};

}  // namespace ringcast::app

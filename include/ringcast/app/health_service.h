// HTTP endpoints of both ports: /health, /api, /api/version.
#pragma once

#include <chrono>
#include <mutex>
#include <string>

#include "ringcast/app/api_service.h"
#include "ringcast/app/config.h"
#include "ringcast/cluster/redis_bus.h"
#include "ringcast/engine/backend.h"
#include "ringcast/engine/tls_context.h"
#include "ringcast/profiles/health_fields.h"
#include "ringcast/websocket/http_service.h"
#include "ringcast/websocket/router.h"
#include "ringcast/websocket/server_stats.h"

namespace ringcast::app {

class HealthService final : public websocket::HttpService {
 public:
  HealthService(const Config& cfg, const websocket::Router& router,
                const websocket::ServerStats& stats, engine::BackendKind backend);
  websocket::HttpResponse handle(const websocket::HttpRequest& req,
                                 const websocket::HttpContext& ctx) override;
  // The JSON body of /health (also used by tests).
  std::string health_json() const;
  // Picks up reloadable values (api env strings).
  void update(const Config& cfg);
  // A profile's extra /health fields. Call before the listeners open.
  void add_fields(const profiles::HealthFields* fields) { fields_.push_back(fields); }
  // The room registry whose size /health reports as "rooms". Call before the listeners open.
  void set_rooms(const hub::RoomRegistry* rooms) { rooms_ = rooms; }
  // TLS session counters, reported as "tls" when TLS is configured. Call before the listeners open.
  void set_tls(const engine::TlsCounters* tls) { tls_ = tls; }
  // The server API, which answers /api/... (all but /api/version). Call before listeners open.
  void set_api(ApiService* api) { api_ = api; }
  // The cluster link, reported as "cluster" ([cluster] only). Call before the listeners open.
  void set_cluster(const cluster::RedisBus* bus) { cluster_ = bus; }

 private:
  mutable std::mutex mutex_;  // guards the strings below; /health is not a hot path
  Config cfg_;
  const websocket::Router& router_;
  const websocket::ServerStats& stats_;
  engine::BackendKind backend_;
  std::vector<const profiles::HealthFields*> fields_;
  const hub::RoomRegistry* rooms_ = nullptr;
  const engine::TlsCounters* tls_ = nullptr;
  ApiService* api_ = nullptr;
  const cluster::RedisBus* cluster_ = nullptr;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace ringcast::app

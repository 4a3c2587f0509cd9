// Operator endpoints on both ports: GET /metrics (Prometheus text format 0.0.4, unauthenticated
// like /health), GET /dashboard (a self-contained live page) and GET /dashboard/data (its JSON).
// The dashboard data needs `Authorization: apikey <key>` when [api] keys are set; without keys
// the page and its data answer loopback peers only. Other requests go to the next service.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "ringcast/app/config.h"
#include "ringcast/engine/backend.h"
#include "ringcast/hub/hub.h"
#include "ringcast/store/sqlite_room_store.h"
#include "ringcast/websocket/http_service.h"
#include "ringcast/websocket/router.h"
#include "ringcast/websocket/server_stats.h"

namespace ringcast::app {

class MetricsService final : public websocket::HttpService {
 public:
  MetricsService(const Config& cfg, const websocket::Router& router,
                 const websocket::ServerStats& stats, hub::HubSystem& hubs,
                 const store::SqliteRoomStore* store, engine::BackendKind backend,
                 websocket::HttpService& next);
  websocket::HttpResponse handle(const websocket::HttpRequest& req,
                                 const websocket::HttpContext& ctx) override;
  // Picks up reloadable values ([api] keys).
  void update(const Config& cfg);

  std::string metrics_text() const;    // the /metrics body
  std::string dashboard_json() const;  // the /dashboard/data body

 private:
  // nullopt: allowed; else the refusal to send.
  std::optional<websocket::HttpResponse> refuse_dashboard(const websocket::HttpRequest& req,
                                                          const websocket::HttpContext& ctx,
                                                          bool data) const;

  mutable std::mutex mutex_;  // guards keys_; taken per dashboard request, never per message
  std::vector<std::string> keys_;
  const websocket::Router& router_;
  const websocket::ServerStats& stats_;
  hub::HubSystem& hubs_;
  const store::SqliteRoomStore* store_;
  engine::BackendKind backend_;
  websocket::HttpService& next_;
  double start_unix_;
};

// The dashboard page (HTML, CSS and JS in one document).
extern const char* const kDashboardHtml;

}  // namespace ringcast::app

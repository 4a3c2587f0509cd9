#include "ringcast/app/health_service.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace ringcast::app {

HealthService::HealthService(const Config& cfg, const websocket::Router& router,
                             const websocket::ServerStats& stats, engine::BackendKind backend)
    : cfg_(cfg), router_(router), stats_(stats), backend_(backend) {}

void HealthService::update(const Config& cfg) {
  std::lock_guard lock(mutex_);
  cfg_ = cfg;
}

std::string HealthService::health_json() const {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  double uptime =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  std::lock_guard lock(mutex_);
  w.StartObject();
  w.Key("status");
  w.String("healthy");
  w.Key("version");
  w.String(RINGCAST_VERSION);
  w.Key("uptime_seconds");
  w.Double(static_cast<int64_t>(uptime * 1000) / 1000.0);
  w.Key("backend");
  w.String(engine::backend_name(backend_).data());
  w.Key("threads");
  w.Int(static_cast<int>(stats_.workers().size()));
  w.Key("websocket_port");
  w.Int(cfg_.port);
  int64_t total = 0, ws = 0;
  for (const auto& ws_stats : stats_.workers()) {
    total += ws_stats.connections.load(std::memory_order_relaxed);
    ws += ws_stats.websockets.load(std::memory_order_relaxed);
  }
  w.Key("connections");
  w.StartObject();
  w.Key("total");
  w.Int64(total);
  w.Key("websocket");
  w.Int64(ws);
  w.Key("per_path");
  w.StartObject();
  for (const auto& r : router_.routes()) {
    std::string key = r->prefix ? r->path + "*" : r->path;
    w.Key(key.c_str());
    w.Int64(r->connections.load(std::memory_order_relaxed));
  }
  w.EndObject();
  w.Key("per_thread");
  w.StartArray();
  for (const auto& ws_stats : stats_.workers()) w.Int64(ws_stats.connections.load());
  w.EndArray();
  w.EndObject();
  if (rooms_) {
    w.Key("rooms");
    w.Uint64(rooms_->size());
  }
  uint64_t closes = 0, dropped = 0;
  int64_t queued = 0;
  for (const auto& ws_stats : stats_.workers()) {
    queued += ws_stats.queued_bytes.load(std::memory_order_relaxed);
    closes += ws_stats.slow_consumer_closes.load(std::memory_order_relaxed);
    dropped += ws_stats.dropped_messages.load(std::memory_order_relaxed);
  }
  std::vector<std::pair<std::string, std::string>> extra;
  for (const auto* f : fields_) f->append_health(extra);
  for (const auto& [key, json] : extra) {
    w.Key(key.c_str());
    w.RawValue(json.data(), json.size(), rapidjson::kObjectType);
  }
  if (cluster_) {
    cluster::ClusterStatus cs = cluster_->status();
    w.Key("cluster");
    w.StartObject();
    w.Key("node_id");
    w.String(cluster_->options().node_id.c_str());
    w.Key("redis");
    w.String(cs.connected ? "ok" : "degraded");
    w.Key("nodes_seen");
    w.Uint64(cs.nodes_seen);
    w.Key("rooms_subscribed");
    w.Uint64(cs.rooms_subscribed);
    w.Key("published");
    w.Uint64(cs.published);
    w.Key("received");
    w.Uint64(cs.received);
    w.Key("dropped");
    w.Uint64(cs.dropped);
    w.Key("reconnects");
    w.Uint64(cs.reconnects);
    w.EndObject();
  }
  if (tls_) {
    w.Key("tls");
    w.StartObject();
    w.Key("ktls");
    w.Int64(tls_->ktls.load(std::memory_order_relaxed));
    w.Key("userspace");
    w.Int64(tls_->userspace.load(std::memory_order_relaxed));
    w.Key("handshake_failures");
    w.Uint64(tls_->handshake_failures.load(std::memory_order_relaxed));
    w.EndObject();
  }
  w.Key("slow_consumers");
  w.StartObject();
  w.Key("closed");
  w.Uint64(closes);
  w.Key("dropped_messages");
  w.Uint64(dropped);
  w.Key("queued_bytes");
  w.Int64(queued);
  w.EndObject();
  w.EndObject();
  return buf.GetString();
}

websocket::HttpResponse HealthService::handle(const websocket::HttpRequest& req,
                                              const websocket::HttpContext& ctx) {
  if (api_ && ApiService::owns(req.path)) return api_->handle(req, ctx);
  websocket::HttpResponse r;
  if (req.method != "GET" && req.method != "HEAD") {
    r = websocket::json_error(405, "method not allowed");
    r.add_header("Allow", "GET, HEAD, OPTIONS");
    return r;
  }
  if (req.path == "/health" || req.path == "/") {
    r.body = health_json();
    r.add_header("Cache-Control", "no-store");
  } else if (req.path == "/api" || req.path == "/api/") {
    r.body.clear();
    r.add_header("Access-Control-Allow-Origin", "*");
  } else if (req.path == "/api/version") {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    std::lock_guard lock(mutex_);
    w.StartObject();
    w.Key("api");
    w.String(cfg_.api_version.c_str());
    w.Key("env");
    w.String(cfg_.api_env.c_str());
    w.Key("desc");
    w.String(cfg_.api_desc.c_str());
    w.EndObject();
    r.body = buf.GetString();
    r.add_header("Access-Control-Allow-Origin", "*");
  } else {
    r = websocket::json_error(404, "not found");
  }
  return r;
}

}  // namespace ringcast::app

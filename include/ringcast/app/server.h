// The daemon: builds the routes and workers from the configuration, runs them, and turns signals
// into a drain (SIGTERM/SIGINT) or a live reload (SIGHUP).
#pragma once

#include <memory>
#include <thread>
#include <vector>

#include "ringcast/app/config.h"
#include "ringcast/app/health_service.h"
#include "ringcast/app/metrics_service.h"
#include "ringcast/cluster/redis_bus.h"
#include "ringcast/hub/hub.h"
#include "ringcast/profiles/echo_profile.h"
#include "ringcast/profiles/jwt_verifier.h"
#include "ringcast/profiles/native_profile.h"
#include "ringcast/profiles/raw_profile.h"
#include "ringcast/store/sqlite_room_store.h"
#include "ringcast/websocket/worker.h"

namespace ringcast::app {

class Server {
 public:
  explicit Server(Config cfg);
  ~Server();
  // Runs until a stop signal has been handled; returns the process exit code. Must be called from
  // the main thread with SIGTERM, SIGINT and SIGHUP blocked (see block_signals()).
  int run();

  // Blocks the signals the server handles, in the calling thread and every thread it starts later.
  static void block_signals();

 private:
  std::string node_id() const;
  bool start_workers();
  // Warns when max_connections cannot fit in RLIMIT_NOFILE.
  void check_descriptor_budget(int threads) const;
  void mount_seed_profiles();
  void stop_workers();
  void reload();
  engine::BackendKind choose_backend();

  Config cfg_;
  websocket::Router router_;
  std::unique_ptr<websocket::ServerStats> stats_;
  std::unique_ptr<engine::TlsContext> tls_;  // only with [tls] cert and key
  std::unique_ptr<websocket::SettingsStore> settings_;
  std::unique_ptr<ApiService> api_;
  std::unique_ptr<HealthService> health_;
  std::unique_ptr<MetricsService> metrics_;  // /metrics and /dashboard, in front of health_
  websocket::WorkerShared shared_;
  std::unique_ptr<hub::HubSystem> hubs_;
  std::unique_ptr<store::SqliteRoomStore> store_;  // only when some rooms are persistent
  std::unique_ptr<cluster::RedisBus> cluster_;     // only with [cluster] redis
  profiles::TokenTable tokens_;
  profiles::JwtVerifierSlot jwt_;  // [jwt]; replaced on SIGHUP
  profiles::EchoProfile echo_;
  std::unique_ptr<profiles::RawProfile> raw_;
  std::unique_ptr<profiles::NativeProfile> native_;
  // Seed profiles (bridge, chatroom, livemap, gamechat, relayer), in mount order.
  std::vector<std::unique_ptr<websocket::MessageHandler>> seed_profiles_;
  std::vector<std::unique_ptr<websocket::Worker>> workers_;
  std::vector<std::thread> threads_;
};

}  // namespace ringcast::app

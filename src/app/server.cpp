#include "ringcast/app/server.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "ringcast/app/cli.h"
#include "ringcast/app/jwt_loader.h"
#include "ringcast/app/sd_notify.h"
#include "ringcast/engine/listen_socket.h"
#include "ringcast/engine/log.h"
#include "ringcast/profiles/bridge_profile.h"
#include "ringcast/profiles/chatroom_profile.h"
#include "ringcast/profiles/gamechat_profile.h"
#include "ringcast/profiles/livemap_profile.h"
#include "ringcast/profiles/relayer_profile.h"

namespace ringcast::app {
std::string Server::node_id() const {
  if (!cfg_.cluster.node_id.empty()) return cfg_.cluster.node_id;
  // What the server API and the cluster name this node by: hostname and WebSocket port.
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "localhost");
  return std::string(host) + ":" + std::to_string(cfg_.port);
}

namespace {

std::vector<hub::HistoryRule> history_rules(const Config& cfg) {
  std::vector<hub::HistoryRule> rules;
  // Seed profiles keep their rooms under their own name prefix; their history size comes first.
  rules.push_back({"gamechat:*", static_cast<size_t>(cfg.gamechat.history_limit)});
  rules.push_back({"chatroom:*", 0});  // chat is delivered, never replayed
  for (const auto& [pattern, size] : cfg.history_rules) rules.push_back({pattern, size});
  return rules;
}

engine::TlsFiles tls_files(const Config& cfg) {
  return {cfg.tls_cert, cfg.tls_key, cfg.tls_ca};
}

hub::RoomLimits room_limits(const Config& cfg) {
  hub::RoomLimits l;
  l.max_rooms = cfg.max_rooms;
  l.max_rooms_per_connection = cfg.max_rooms_per_connection;
  l.history_ttl_ms = cfg.history_ttl_s * 1000;
  l.max_state_keys = cfg.max_state_keys;
  l.max_state_value_bytes = cfg.max_state_value_bytes;
  return l;
}

class NullEvents final : public engine::BackendEvents {
  void on_accept(int, int, const sockaddr_storage&) override {}
  void on_data(engine::Socket*, std::span<const uint8_t>) override {}
  void on_read_end(engine::Socket*, int) override {}
  void on_send_done(engine::Socket*, int) override {}
  void on_closed(engine::Socket*) override {}
  void on_wake() override {}
};

std::vector<int> usable_cpus() {
  cpu_set_t set;
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    for (int i = 0; i < CPU_SETSIZE; ++i)
      if (CPU_ISSET(i, &set)) cpus.push_back(i);
  }
  if (cpus.empty()) cpus.push_back(0);
  return cpus;
}

}  // namespace

void Server::block_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // Over a file-size limit a write must fail (the store turns that into error replies), not kill
  // the process.
  signal(SIGXFSZ, SIG_IGN);
}

Server::Server(Config cfg) : cfg_(std::move(cfg)) {}

Server::~Server() = default;

engine::BackendKind Server::choose_backend() {
  if (cfg_.backend == "epoll") return engine::BackendKind::kEpoll;
  // Probe once here so an unavailable io_uring is reported once, not once per worker.
  NullEvents events;
  engine::BackendOptions probe_opts;
  probe_opts.ring_entries = 8;
  probe_opts.recv_buffer_count = 8;
  probe_opts.recv_buffer_size = 4096;
  std::string why;
  if (engine::make_io_uring_backend(events, probe_opts, why)) return engine::BackendKind::kIoUring;
  if (cfg_.backend == "io_uring") {
    RC_ERROR("io_uring was requested but is unavailable: %s", why.c_str());
    throw std::runtime_error("io_uring unavailable");
  }
  RC_WARN("io_uring unavailable (%s); using the epoll backend", why.c_str());
  return engine::BackendKind::kEpoll;
}

// Each enabled seed profile on its configured path; profiles that report /health fields register
// them here.
void Server::mount_seed_profiles() {
  if (cfg_.bridge.mount.enabled) {
    auto bridge =
        std::make_unique<profiles::BridgeProfile>(*hubs_, cfg_.bridge.first_message_timeout_ms);
    router_.add(cfg_.bridge.mount.path, false, bridge.get());
    health_->add_fields(bridge.get());
    seed_profiles_.push_back(std::move(bridge));
  }
  if (cfg_.relayer.mount.enabled) {
    auto relayer = std::make_unique<profiles::RelayerProfile>(*hubs_);
    router_.add(cfg_.relayer.mount.path, false, relayer.get());
    seed_profiles_.push_back(std::move(relayer));
  }
  if (cfg_.gamechat.mount.enabled) {
    auto chat = std::make_unique<profiles::GamechatProfile>(
        *hubs_, tokens_, jwt_, gamechat_secret_verifier(cfg_.gamechat.hs256_secret));
    router_.add(cfg_.gamechat.mount.path, false, chat.get());
    seed_profiles_.push_back(std::move(chat));
  }
  if (cfg_.chatroom.mount.enabled) {
    using profiles::ChatroomProfile;
    const auto& c = cfg_.chatroom;
    const auto max_chars = static_cast<size_t>(c.max_message_chars);
    auto text = std::make_unique<ChatroomProfile>(*hubs_, ChatroomProfile::Variant::kText, c.env,
                                                  max_chars);
    router_.add(c.mount.path, false, text.get());
    seed_profiles_.push_back(std::move(text));
    if (!c.json_path.empty()) {
      auto json = std::make_unique<ChatroomProfile>(*hubs_, ChatroomProfile::Variant::kJson, c.env,
                                                    max_chars);
      router_.add(c.json_path, false, json.get());
      seed_profiles_.push_back(std::move(json));
    }
  }
  if (cfg_.livemap.mount.enabled) {
    auto livemap = std::make_unique<profiles::LivemapProfile>(*hubs_, livemap_limits(cfg_));
    router_.add(cfg_.livemap.mount.path, false, livemap.get());
    seed_profiles_.push_back(std::move(livemap));
  }
}

void Server::check_descriptor_budget(int threads) const {
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) != 0 || nofile.rlim_cur == RLIM_INFINITY) return;
  // Beyond one per connection: per worker its listeners, ring or epoll fd, eventfd and reserve
  // descriptor; the store's database files; stdio, the journal and some slack for HTTP
  // connections that have not upgraded yet.
  const uint64_t overhead = 32 + static_cast<uint64_t>(threads) * 6;
  const uint64_t limit = nofile.rlim_cur;
  const uint64_t wanted = cfg_.limits.max_connections + overhead;
  if (wanted > limit) {
    RC_WARN(
        "max_connections = %zu needs about %lu file descriptors but RLIMIT_NOFILE allows %lu "
        "(about %lu connections); past that new connections get 503. Raise the limit "
        "(LimitNOFILE=, ulimit -n) or lower [limits] max_connections",
        cfg_.limits.max_connections, static_cast<unsigned long>(wanted),
        static_cast<unsigned long>(limit),
        static_cast<unsigned long>(limit > overhead ? limit - overhead : 0));
  }
}

bool Server::start_workers() {
  std::vector<int> cpus = usable_cpus();
  int n = cfg_.threads > 0 ? cfg_.threads : static_cast<int>(cpus.size());
  check_descriptor_budget(n);
  stats_ = std::make_unique<websocket::ServerStats>(n);
  settings_ = std::make_unique<websocket::SettingsStore>(make_settings(cfg_));
  hubs_ = std::make_unique<hub::HubSystem>(n, cfg_.history_size, history_rules(cfg_));
  hubs_->set_limits(room_limits(cfg_));
  tokens_.set(cfg_.tokens);
  jwt_.set(load_jwt_verifier(cfg_.jwt));  // a bad key file at start is a configuration error
  std::vector<std::string> persistent = cfg_.persistent_rooms;
  if (cfg_.livemap.mount.enabled && cfg_.livemap.persistent) persistent.push_back("livemap:*");
  if (cfg_.gamechat.mount.enabled && cfg_.gamechat.persistent) persistent.push_back("gamechat:*");
  // In a cluster Redis keeps history and state for every node (docs/cluster.md): no SQLite.
  if (!persistent.empty() && !cfg_.cluster.enabled()) {
    store::StoreOptions so;
    so.data_dir = cfg_.data_dir;
    so.persistent_rooms = persistent;
    so.strict = cfg_.durability == "strict";
    store_ = std::make_unique<store::SqliteRoomStore>(so, n);
    try {
      store_->open();
      store_->restore(hubs_->rooms());  // before any listener opens
    } catch (const store::StoreError& e) {
      RC_ERROR("%s", e.what());
      return false;
    }
    hubs_->set_store(store_.get());
  }
  if (cfg_.cluster.enabled()) {
    cluster::ClusterOptions co;
    co.redis = cluster::parse_redis_url(cfg_.cluster.redis);  // validated with the config
    co.node_id = node_id();
    co.max_queue_bytes = static_cast<size_t>(cfg_.cluster.max_queue_bytes);
    co.node_ttl_ms = cfg_.cluster.node_ttl_ms;
    // Keys live in the selected database but pub/sub channels are server-wide: clusters on one
    // Redis told apart by the database number get their own channel (and key) prefix.
    if (co.redis.db) co.prefix = "rc" + std::to_string(co.redis.db) + ":";
    cluster_ = std::make_unique<cluster::RedisBus>(std::move(co), *hubs_);
    hubs_->set_cluster(cluster_.get());
  }
  raw_ = std::make_unique<profiles::RawProfile>(*hubs_);
  native_ = std::make_unique<profiles::NativeProfile>(*hubs_, tokens_, jwt_);
  router_.add("/echo", false, &echo_);
  router_.add(std::string(profiles::RawProfile::kPrefix), true, raw_.get());
  router_.add("/ws", false, native_.get());
  shared_.backend = choose_backend();
  health_ = std::make_unique<HealthService>(cfg_, router_, *stats_, shared_.backend);
  health_->set_rooms(&hubs_->rooms());
  api_ = std::make_unique<ApiService>(*hubs_, node_id());
  api_->set_keys(cfg_.api_keys);
  health_->set_api(api_.get());
  mount_seed_profiles();
  shared_.settings = settings_.get();
  shared_.router = &router_;
  metrics_ = std::make_unique<MetricsService>(cfg_, router_, *stats_, *hubs_, store_.get(),
                                              shared_.backend, *health_);
  shared_.http = metrics_.get();
  shared_.stats = stats_.get();
  if (cfg_.tls_enabled()) {
    tls_ = std::make_unique<engine::TlsContext>();
    std::string error;
    if (!tls_->load(tls_files(cfg_), error)) {
      RC_ERROR("%s", error.c_str());
      return false;
    }
    shared_.tls = tls_.get();
    health_->set_tls(&tls_->counters);
    metrics_->set_tls(&tls_->counters);
  }
  if (cluster_) health_->set_cluster(cluster_.get());
  shared_.listeners.push_back({cfg_.host, cfg_.port, true, cfg_.tls_enabled()});
  if (cfg_.http_port)
    shared_.listeners.push_back({cfg_.host, cfg_.http_port, false, cfg_.http_port_tls});
  for (const auto& spec : shared_.listeners) {
    std::string error;
    if (!engine::port_is_free(spec.host, spec.port, error)) {
      RC_ERROR("%s (is another server running?)", error.c_str());
      return false;
    }
  }
  shared_.pin_threads = n <= static_cast<int>(cpus.size());
  for (int i = 0; i < n; ++i) {
    workers_.push_back(std::make_unique<websocket::Worker>(i, cpus[i % cpus.size()], shared_));
    shared_.workers.push_back(workers_.back().get());
    hubs_->hub(i).attach_worker(workers_.back().get());
    shared_.hooks.push_back(&hubs_->hub(i));
  }
  if (store_) store_->start([this](int core) { workers_[core]->wake(); });
  if (cluster_) cluster_->start([this](int core) { workers_[core]->wake(); });
  bool ok = true;
  for (auto& w : workers_) {
    threads_.emplace_back([worker = w.get()] { worker->run(); });
    if (!w->wait_started()) {
      RC_ERROR("%s", w->error().c_str());
      ok = false;
      break;
    }
  }
  return ok;
}

void Server::stop_workers() {
  shared_.stopping.store(true, std::memory_order_release);
  for (auto& w : workers_) w->wake();
  // Workers exit once their sessions are gone or the drain time is up; a worker that is still
  // running well after that is stuck, and the process must not hang on it.
  auto limit = std::chrono::steady_clock::now() +
               std::chrono::milliseconds(cfg_.limits.drain_timeout_ms + 3000);
  std::atomic<size_t> done{0};
  std::thread joiner([this, &done] {
    for (auto& t : threads_) {
      t.join();
      done.fetch_add(1);
    }
  });
  while (done.load() < threads_.size() && std::chrono::steady_clock::now() < limit) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (done.load() < threads_.size()) {
    RC_ERROR("workers did not stop within the drain time; exiting");
    std::_Exit(1);
  }
  joiner.join();
  threads_.clear();
}

void Server::reload() {
  if (cfg_.config_path.empty()) {
    RC_INFO("SIGHUP: no config file to reload");
    return;
  }
  Config next = cfg_;
  Config fresh;
  try {
    // What a start with the same command line would get now: the flags still override the file,
    // so a setting given as a flag is not "changed" by a file that says otherwise.
    fresh = effective_config(cfg_.flags);
    std::vector<std::string> ignored = restart_only_changes(cfg_, fresh);
    if (!ignored.empty()) {
      std::string names;
      for (const auto& n : ignored) names += (names.empty() ? "" : ", ") + n;
      RC_WARN("SIGHUP: %s changed, which needs a restart; keeping the running value until then",
              names.c_str());
    }
    next.limits = fresh.limits;
    next.compression = fresh.compression;  // applies to connections opened from then on
    next.origin_check = fresh.origin_check;
    next.allowed_origins = fresh.allowed_origins;
    next.log_level = fresh.log_level;
    next.api_env = fresh.api_env;
    next.api_version = fresh.api_version;
    next.api_desc = fresh.api_desc;
    next.api_keys = fresh.api_keys;  // key rotation without a restart
    next.api_max_body_bytes = fresh.api_max_body_bytes;
    next.tokens = fresh.tokens;
    next.history_size = fresh.history_size;
    next.history_rules = fresh.history_rules;
    next.max_rooms = fresh.max_rooms;
    next.max_rooms_per_connection = fresh.max_rooms_per_connection;
    next.history_ttl_s = fresh.history_ttl_s;
    next.max_state_keys = fresh.max_state_keys;
    next.max_state_value_bytes = fresh.max_state_value_bytes;
    if (tls_ && fresh.tls_enabled()) {
      // New handshakes use the new pair; open connections keep theirs. A bad pair keeps the
      // old one (and the old file names, so the next SIGHUP tries the new files again).
      std::string error;
      if (tls_->load(tls_files(fresh), error)) {
        next.tls_cert = fresh.tls_cert;
        next.tls_key = fresh.tls_key;
        next.tls_ca = fresh.tls_ca;
        RC_INFO("SIGHUP: TLS certificate reloaded from %s", fresh.tls_cert.c_str());
      } else {
        RC_ERROR("SIGHUP: keeping the current TLS certificate: %s", error.c_str());
      }
    }
  } catch (const ConfigError& e) {
    RC_ERROR("SIGHUP: keeping the old configuration: %s", e.what());
    return;
  }
  // The JWT keys: a key file that cannot be used now keeps the keys in force (and the rest of
  // [jwt] with them); everything else still reloads.
  std::shared_ptr<const profiles::JwtVerifier> jwt;
  bool jwt_ok = false;
  try {
    jwt = load_jwt_verifier(fresh.jwt);
    next.jwt = fresh.jwt;
    jwt_ok = true;
  } catch (const ConfigError& e) {
    RC_ERROR("SIGHUP: keeping the JWT keys in force: %s", e.what());
  }
  cfg_ = next;
  if (jwt_ok) jwt_.set(std::move(jwt));
  log::set_level(*log::parse_level(cfg_.log_level));
  settings_->publish(make_settings(cfg_));
  health_->update(cfg_);
  api_->set_keys(cfg_.api_keys);
  metrics_->update(cfg_);
  tokens_.set(cfg_.tokens);
  hubs_->rooms().set_rules(cfg_.history_size, history_rules(cfg_));  // applies to new rooms
  hubs_->set_limits(room_limits(cfg_));  // rooms that exist stay; new ones are counted
  for (auto& w : workers_) w->wake();
  RC_INFO("configuration reloaded from %s", cfg_.config_path.c_str());
}

int Server::run() {
  log::set_level(*log::parse_level(cfg_.log_level));
  // Every connection is a descriptor: take all the kernel allows us (systemd sets LimitNOFILE).
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    rlim_t soft = nofile.rlim_cur;
    nofile.rlim_cur = nofile.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &nofile) != 0) {
      RC_WARN("could not raise the open-file limit from %lu to %lu: %s",
              static_cast<unsigned long>(soft), static_cast<unsigned long>(nofile.rlim_max),
              std::strerror(errno));
    }
  }
  bool ok = false;
  try {
    ok = start_workers();
  } catch (const std::exception& e) {
    RC_ERROR("start-up failed: %s", e.what());
  }
  if (!ok) {
    if (!threads_.empty()) stop_workers();
    if (cluster_) cluster_->stop();
    if (store_) store_->stop();
    return 1;
  }
  RC_INFO("ringcast %s listening on %s:%u (http %s), %zu threads, backend %s", RINGCAST_VERSION,
          cfg_.host.c_str(), cfg_.port,
          cfg_.http_port ? (cfg_.host + ":" + std::to_string(cfg_.http_port)).c_str() : "off",
          workers_.size(), engine::backend_name(shared_.backend).data());
  sd_notify_send("READY=1\nSTATUS=serving");

  uint64_t watchdog_usec = sd_watchdog_usec();
  std::vector<uint64_t> last_passes(workers_.size(), ~0ull);
  std::vector<std::chrono::steady_clock::time_point> last_progress(
      workers_.size(), std::chrono::steady_clock::now());
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  while (true) {
    timespec wait{};
    uint64_t wait_us = watchdog_usec ? watchdog_usec / 2 : 1000000;
    wait.tv_sec = static_cast<time_t>(wait_us / 1000000);
    wait.tv_nsec = static_cast<long>((wait_us % 1000000) * 1000);
    siginfo_t info{};
    int sig = sigtimedwait(&set, &info, &wait);
    if (sig == SIGTERM || sig == SIGINT) {
      RC_INFO("%s: closing connections (drain up to %d ms)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
              cfg_.limits.drain_timeout_ms);
      sd_notify_send("STOPPING=1");
      break;
    }
    if (sig == SIGHUP) {
      sd_notify_send("RELOADING=1");
      reload();
      sd_notify_send("READY=1");
      continue;
    }
    if (watchdog_usec) {
      // Pet the watchdog only while every worker loop is turning. Idle workers still pass at
      // least once a second, so a count unchanged for several seconds means a stuck loop.
      auto now = std::chrono::steady_clock::now();
      bool alive = true;
      for (size_t i = 0; i < workers_.size(); ++i) {
        uint64_t passes = stats_->worker(static_cast<int>(i)).loop_passes.load();
        if (passes != last_passes[i]) {
          last_passes[i] = passes;
          last_progress[i] = now;
        } else if (now - last_progress[i] > std::chrono::seconds(3)) {
          alive = false;
        }
      }
      if (alive)
        sd_notify_send("WATCHDOG=1");
      else
        RC_ERROR("a worker loop has not turned for 3 s; withholding the watchdog ping");
    }
  }
  stop_workers();
  if (cluster_) cluster_->stop();
  if (store_) store_->stop();
  RC_INFO("stopped");
  return 0;
}

}  // namespace ringcast::app

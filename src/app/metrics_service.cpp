#include "ringcast/app/metrics_service.h"

#include <dirent.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "ringcast/app/api_key.h"

namespace ringcast::app {

namespace {

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

int64_t mono_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// utime + stime of /proc/<path>/stat, in seconds (0 if unreadable).
double cpu_seconds_of(const std::string& stat_path) {
  std::ifstream f(stat_path);
  std::string line;
  if (!std::getline(f, line)) return 0;
  size_t paren = line.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream rest(line.substr(paren + 2));
  std::string field;
  uint64_t utime = 0, stime = 0;
  // After "pid (comm) ": state is field 3; utime and stime are fields 14 and 15.
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  static const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return static_cast<double>(utime + stime) / ticks;
}

double worker_cpu_seconds(const websocket::WorkerStats& w) {
  int tid = w.metrics.tid.load(std::memory_order_relaxed);
  if (tid <= 0) return 0;
  return cpu_seconds_of("/proc/self/task/" + std::to_string(tid) + "/stat");
}

struct ProcessSample {
  double rss_bytes = 0, vm_bytes = 0, cpu_seconds = 0, open_fds = 0, max_fds = 0;
};

ProcessSample process_sample() {
  ProcessSample p;
  static const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    unsigned long size = 0, resident = 0;
    if (std::fscanf(f, "%lu %lu", &size, &resident) == 2) {
      p.vm_bytes = static_cast<double>(size) * page;
      p.rss_bytes = static_cast<double>(resident) * page;
    }
    std::fclose(f);
  }
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) == 0) {
    p.cpu_seconds = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                    static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  }
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') p.open_fds += 1;
    closedir(d);
    p.open_fds -= 1;  // the directory stream itself
  }
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) p.max_fds = static_cast<double>(nofile.rlim_cur);
  return p;
}

// Prometheus text format 0.0.4.
class Exposition {
 public:
  void family(const char* name, const char* type, const char* help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void sample(std::string_view name, std::string_view labels, double v) {
    char num[64];
    std::snprintf(num, sizeof num, "%.17g", v);
    emit(name, labels, num);
  }
  void sample(std::string_view name, std::string_view labels, uint64_t v) {
    emit(name, labels, std::to_string(v));
  }
  void sample(std::string_view name, std::string_view labels, int64_t v) {
    emit(name, labels, std::to_string(v));
  }
  // Histograms of several writers (one per worker), summed; `scale` turns units into seconds.
  void histogram(const char* name, const char* help,
                 const std::vector<const engine::Histogram*>& parts, double scale) {
    family(name, "histogram", help);
    if (parts.empty()) return;
    const engine::Histogram& shape = *parts.front();
    uint64_t cumulative = 0;
    double sum = 0;
    std::string bucket = std::string(name) + "_bucket";
    for (size_t i = 0; i <= shape.bounds(); ++i) {
      for (const auto* h : parts) cumulative += h->count_in(i);
      std::string le = "le=\"";
      if (i == shape.bounds()) {
        le += "+Inf";
      } else {
        char num[64];
        std::snprintf(num, sizeof num, "%g", static_cast<double>(shape.bound(i)) * scale);
        le += num;
      }
      le += '"';
      sample(bucket, le, cumulative);
    }
    for (const auto* h : parts) sum += static_cast<double>(h->sum()) * scale;
    sample(std::string(name) + "_sum", "", sum);
    sample(std::string(name) + "_count", "", cumulative);
  }
  std::string take() { return std::move(out_); }

 private:
  void emit(std::string_view name, std::string_view labels, const std::string& value) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      out_ += labels;
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }
  std::string out_;
};

// A label value, escaped as the text format asks (\\, \" and \n).
std::string label(std::string_view key, std::string_view value) {
  std::string s(key);
  s += "=\"";
  for (char c : value) {
    if (c == '\\' || c == '"') s += '\\';
    if (c == '\n') {
      s += "\\n";
      continue;
    }
    s += c;
  }
  s += '"';
  return s;
}

std::string route_label(const websocket::Route& r) {
  return r.prefix ? r.path + "*" : r.path;
}

uint64_t sum_of(const websocket::ServerStats& stats,
                const std::atomic<uint64_t> websocket::WorkerMetrics::*field) {
  uint64_t n = 0;
  for (const auto& w : stats.workers()) n += (w.metrics.*field).load(std::memory_order_relaxed);
  return n;
}

void write_histogram(rapidjson::Writer<rapidjson::StringBuffer>& w,
                     const std::vector<const engine::Histogram*>& parts, double scale) {
  w.StartObject();
  if (!parts.empty()) {
    const engine::Histogram& shape = *parts.front();
    w.Key("bounds");
    w.StartArray();
    for (size_t i = 0; i < shape.bounds(); ++i)
      w.Double(static_cast<double>(shape.bound(i)) * scale);
    w.EndArray();
    w.Key("counts");
    w.StartArray();
    for (size_t i = 0; i <= shape.bounds(); ++i) {
      uint64_t n = 0;
      for (const auto* h : parts) n += h->count_in(i);
      w.Uint64(n);
    }
    w.EndArray();
  }
  w.EndObject();
}

}  // namespace

MetricsService::MetricsService(const Config& cfg, const websocket::Router& router,
                               const websocket::ServerStats& stats, hub::HubSystem& hubs,
                               const store::SqliteRoomStore* store, engine::BackendKind backend,
                               websocket::HttpService& next)
    : keys_(cfg.api_keys),
      router_(router),
      stats_(stats),
      hubs_(hubs),
      store_(store),
      backend_(backend),
      next_(next),
      start_unix_(unix_now()) {}

void MetricsService::update(const Config& cfg) {
  std::lock_guard lock(mutex_);
  keys_ = cfg.api_keys;
}

std::string MetricsService::metrics_text() const {
  Exposition x;
  const auto& workers = stats_.workers();
  auto per_worker = [&](const char* name, const char* type, const char* help, auto get) {
    x.family(name, type, help);
    for (size_t i = 0; i < workers.size(); ++i)
      x.sample(name, label("worker", std::to_string(i)), get(workers[i], i));
  };
  x.family("ringcast_build_info", "gauge", "Version and I/O backend of the running server.");
  x.sample(
      "ringcast_build_info",
      label("version", RINGCAST_VERSION) + "," + label("backend", engine::backend_name(backend_)),
      uint64_t{1});
  per_worker("ringcast_connections", "gauge", "Open TCP connections (HTTP and WebSocket).",
             [](const websocket::WorkerStats& w, size_t) {
               return w.connections.load(std::memory_order_relaxed);
             });
  per_worker("ringcast_websocket_connections", "gauge", "Open WebSocket sessions.",
             [](const websocket::WorkerStats& w, size_t) {
               return w.websockets.load(std::memory_order_relaxed);
             });
  x.family("ringcast_websocket_connections_by_path", "gauge",
           "Open WebSocket sessions per mounted path (prefix mounts end in *).");
  for (const auto& r : router_.routes())
    x.sample("ringcast_websocket_connections_by_path", label("path", route_label(*r)),
             r->connections.load(std::memory_order_relaxed));
  using M = websocket::WorkerMetrics;
  auto counter = [&](const char* name, const char* help, const std::atomic<uint64_t> M::*field) {
    per_worker(name, "counter", help, [field](const websocket::WorkerStats& w, size_t) {
      return (w.metrics.*field).load(std::memory_order_relaxed);
    });
  };
  counter("ringcast_messages_received_total", "WebSocket data messages received.", &M::messages_in);
  counter("ringcast_received_bytes_total", "Bytes read from client sockets.", &M::bytes_in);
  counter("ringcast_messages_sent_total",
          "WebSocket frames queued to clients (data, control and close frames).", &M::frames_out);
  counter("ringcast_sent_bytes_total", "Bytes written to client sockets.", &M::bytes_out);
  counter("ringcast_rate_limit_closes_total",
          "Connections closed (1008) for exceeding max_messages_per_second.",
          &M::rate_limit_closes);

  x.family("ringcast_upgrades_refused_total", "counter",
           "WebSocket upgrade requests answered with an HTTP error, by reason.");
  for (size_t r = 0; r < static_cast<size_t>(websocket::RefusedUpgrade::kCount); ++r) {
    uint64_t n = 0;
    for (const auto& w : workers) n += w.metrics.refused[r].load(std::memory_order_relaxed);
    x.sample(
        "ringcast_upgrades_refused_total",
        label("reason", websocket::refused_upgrade_name(static_cast<websocket::RefusedUpgrade>(r))),
        n);
  }
  x.family("ringcast_closes_sent_total", "counter",
           "WebSocket close frames sent, by close code (codes 3000-4999 grouped by thousand).");
  for (size_t slot = 0; slot < websocket::kCloseCodeSlots; ++slot) {
    uint64_t n = 0;
    for (const auto& w : workers) n += w.metrics.closes_sent[slot].load(std::memory_order_relaxed);
    // Codes never seen stay out, except the ones an operator watches for.
    const auto code = websocket::close_code_slot_label(slot);
    bool watched =
        code == "1000" || code == "1001" || code == "1008" || code == "1011" || code == "1013";
    if (n || watched) x.sample("ringcast_closes_sent_total", label("code", code), n);
  }
  per_worker("ringcast_slow_consumer_closes_total", "counter",
             "Connections closed (1013) because they did not read their output in time.",
             [](const websocket::WorkerStats& w, size_t) {
               return w.slow_consumer_closes.load(std::memory_order_relaxed);
             });
  per_worker("ringcast_slow_consumer_dropped_messages_total", "counter",
             "Queued messages dropped for slow consumers (slow_consumer = \"drop_oldest\").",
             [](const websocket::WorkerStats& w, size_t) {
               return w.dropped_messages.load(std::memory_order_relaxed);
             });
  per_worker("ringcast_queued_bytes", "gauge", "Outbound bytes queued, not yet sent.",
             [](const websocket::WorkerStats& w, size_t) {
               return w.queued_bytes.load(std::memory_order_relaxed);
             });
  per_worker("ringcast_mailbox_depth", "gauge",
             "Cross-core envelopes waiting for the worker's hub.",
             [this](const websocket::WorkerStats&, size_t i) {
               return static_cast<uint64_t>(hubs_.hub(static_cast<int>(i)).mailbox_depth());
             });
  per_worker("ringcast_worker_cpu_seconds_total", "counter",
             "CPU time (user + system) of the worker thread.",
             [](const websocket::WorkerStats& w, size_t) { return worker_cpu_seconds(w); });
  x.family("ringcast_rooms", "gauge", "Rooms that exist (with members, history or state).");
  x.sample("ringcast_rooms", "", static_cast<uint64_t>(hubs_.rooms().size()));

  std::vector<const engine::Histogram*> fanout;
  for (const auto& w : workers) fanout.push_back(&w.metrics.fanout_ns);
  x.histogram("ringcast_fanout_seconds",
              "Broadcast fan-out latency, from the publish received (on the publisher's core; "
              "for sequenced rooms the hop to the home core and a strict commit included) until "
              "the last recipient's send completed; sampled, at most one broadcast per core per "
              "millisecond.",
              fanout, 1e-9);
  std::vector<const engine::Histogram*> commit, batch;
  if (store_) {
    commit.push_back(&store_->commit_latency_ns());
    batch.push_back(&store_->commit_batch_size());
  }
  x.histogram("ringcast_store_commit_seconds", "Durable store group commit latency.", commit, 1e-9);
  x.histogram("ringcast_store_commit_batch_size", "Writes per durable store group commit.", batch,
              1.0);
  x.family("ringcast_store_commit_failures_total", "counter",
           "Durable store group commits that failed (their writes were refused).");
  x.sample("ringcast_store_commit_failures_total", "", store_ ? store_->failures() : uint64_t{0});
  if (tls_) {
    x.family("ringcast_tls_sessions", "gauge",
             "Open TLS sessions by where their sending side is encrypted.");
    x.sample("ringcast_tls_sessions", label("mode", "ktls"),
             tls_->ktls.load(std::memory_order_relaxed));
    x.sample("ringcast_tls_sessions", label("mode", "userspace"),
             tls_->userspace.load(std::memory_order_relaxed));
    x.family("ringcast_tls_handshake_failures_total", "counter", "TLS handshakes that failed.");
    x.sample("ringcast_tls_handshake_failures_total", "",
             tls_->handshake_failures.load(std::memory_order_relaxed));
  }

  ProcessSample p = process_sample();
  x.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  x.sample("process_resident_memory_bytes", "", p.rss_bytes);
  x.family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
  x.sample("process_virtual_memory_bytes", "", p.vm_bytes);
  x.family("process_cpu_seconds_total", "counter", "Total user and system CPU time in seconds.");
  x.sample("process_cpu_seconds_total", "", p.cpu_seconds);
  x.family("process_open_fds", "gauge", "Open file descriptors.");
  x.sample("process_open_fds", "", p.open_fds);
  x.family("process_max_fds", "gauge", "File descriptor limit.");
  x.sample("process_max_fds", "", p.max_fds);
  x.family("process_start_time_seconds", "gauge", "Start time since the Unix epoch in seconds.");
  x.sample("process_start_time_seconds", "", start_unix_);
  return x.take();
}

std::string MetricsService::dashboard_json() const {
  hubs_.want_room_samples(mono_ms());
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  const auto& workers = stats_.workers();
  using M = websocket::WorkerMetrics;
  w.StartObject();
  w.Key("version");
  w.String(RINGCAST_VERSION);
  w.Key("backend");
  w.String(engine::backend_name(backend_).data());
  w.Key("time");
  w.Double(unix_now());
  w.Key("uptime_seconds");
  w.Double(unix_now() - start_unix_);
  int64_t conns = 0, ws = 0, queued = 0;
  uint64_t closed = 0, dropped = 0;
  w.Key("workers");
  w.StartArray();
  for (size_t i = 0; i < workers.size(); ++i) {
    const auto& s = workers[i];
    conns += s.connections.load(std::memory_order_relaxed);
    ws += s.websockets.load(std::memory_order_relaxed);
    queued += s.queued_bytes.load(std::memory_order_relaxed);
    closed += s.slow_consumer_closes.load(std::memory_order_relaxed);
    dropped += s.dropped_messages.load(std::memory_order_relaxed);
    w.StartObject();
    w.Key("connections");
    w.Int64(s.connections.load(std::memory_order_relaxed));
    w.Key("websockets");
    w.Int64(s.websockets.load(std::memory_order_relaxed));
    w.Key("messages_in");
    w.Uint64(s.metrics.messages_in.load(std::memory_order_relaxed));
    w.Key("messages_out");
    w.Uint64(s.metrics.frames_out.load(std::memory_order_relaxed));
    w.Key("bytes_in");
    w.Uint64(s.metrics.bytes_in.load(std::memory_order_relaxed));
    w.Key("bytes_out");
    w.Uint64(s.metrics.bytes_out.load(std::memory_order_relaxed));
    w.Key("cpu_seconds");
    w.Double(worker_cpu_seconds(s));
    w.Key("mailbox_depth");
    w.Uint64(hubs_.hub(static_cast<int>(i)).mailbox_depth());
    w.Key("queued_bytes");
    w.Int64(s.queued_bytes.load(std::memory_order_relaxed));
    w.EndObject();
  }
  w.EndArray();
  w.Key("connections");
  w.Int64(conns);
  w.Key("websockets");
  w.Int64(ws);
  w.Key("messages_in");
  w.Uint64(sum_of(stats_, &M::messages_in));
  w.Key("messages_out");
  w.Uint64(sum_of(stats_, &M::frames_out));
  w.Key("rate_limit_closes");
  w.Uint64(sum_of(stats_, &M::rate_limit_closes));
  w.Key("paths");
  w.StartObject();
  for (const auto& r : router_.routes()) {
    std::string key = route_label(*r);
    w.Key(key.c_str());
    w.Int64(r->connections.load(std::memory_order_relaxed));
  }
  w.EndObject();
  w.Key("slow_consumers");
  w.StartObject();
  w.Key("closed");
  w.Uint64(closed);
  w.Key("dropped_messages");
  w.Uint64(dropped);
  w.Key("queued_bytes");
  w.Int64(queued);
  w.EndObject();
  w.Key("rooms");
  w.Uint64(hubs_.rooms().size());
  // Per-core samples merged by name: members add up; each core delivers a room's message once,
  // so the busiest core's count stands for the room.
  std::map<std::string, std::pair<uint64_t, uint64_t>> rooms;
  for (int c = 0; c < hubs_.cores(); ++c) {
    for (auto& r : hubs_.hub(c).room_samples()) {
      auto& [members, messages] = rooms[r.name];
      members += r.members;
      messages = std::max(messages, r.messages);
    }
  }
  w.Key("top_rooms");
  w.StartArray();
  for (const auto& [name, v] : rooms) {
    w.StartObject();
    w.Key("name");
    w.String(name.data(), static_cast<rapidjson::SizeType>(name.size()));
    w.Key("members");
    w.Uint64(v.first);
    w.Key("messages");
    w.Uint64(v.second);
    w.EndObject();
  }
  w.EndArray();
  std::vector<const engine::Histogram*> fanout;
  for (const auto& s : workers) fanout.push_back(&s.metrics.fanout_ns);
  w.Key("fanout_seconds");
  write_histogram(w, fanout, 1e-9);
  w.Key("store_commit_seconds");
  if (store_)
    write_histogram(w, {&store_->commit_latency_ns()}, 1e-9);
  else
    w.Null();
  w.EndObject();
  return buf.GetString();
}

std::optional<websocket::HttpResponse> MetricsService::refuse_dashboard(
    const websocket::HttpRequest& req, const websocket::HttpContext& ctx, bool data) const {
  std::lock_guard lock(mutex_);
  if (keys_.empty()) {
    // No keys configured: nothing to authenticate with, so only this machine may look.
    if (!ctx.loopback_peer)
      return websocket::json_error(403, "the dashboard answers loopback clients only");
    return std::nullopt;
  }
  // With keys the page itself is public (it holds no data and asks for the key).
  if (data && !api_key_allows(keys_, req.header("Authorization"))) {
    auto r = websocket::json_error(401, "missing or wrong API key");
    r.add_header("WWW-Authenticate", "apikey");
    return r;
  }
  return std::nullopt;
}

websocket::HttpResponse MetricsService::handle(const websocket::HttpRequest& req,
                                               const websocket::HttpContext& ctx) {
  websocket::HttpResponse r;
  const bool mine = req.path == "/metrics" || req.path == "/dashboard" ||
                    req.path == "/dashboard/" || req.path == "/dashboard/data";
  if (mine && req.method != "GET" && req.method != "HEAD") {
    r = websocket::json_error(405, "method not allowed");
    r.add_header("Allow", "GET, HEAD, OPTIONS");
    return r;
  }
  if (req.path == "/metrics") {
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics_text();
    r.add_header("Cache-Control", "no-store");
    return r;
  }
  if (req.path == "/dashboard" || req.path == "/dashboard/") {
    if (auto refused = refuse_dashboard(req, ctx, false)) return *refused;
    r.content_type = "text/html; charset=utf-8";
    r.body = kDashboardHtml;
    r.add_header("Cache-Control", "no-store");
    // Everything is inline; nothing may load from elsewhere.
    r.add_header("Content-Security-Policy",
                 "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                 "connect-src 'self'; img-src 'self' data:");
    r.add_header("X-Content-Type-Options", "nosniff");
    return r;
  }
  if (req.path == "/dashboard/data") {
    if (auto refused = refuse_dashboard(req, ctx, true)) return *refused;
    r.body = dashboard_json();
    r.add_header("Cache-Control", "no-store");
    return r;
  }
  return next_.handle(req, ctx);
}

}  // namespace ringcast::app

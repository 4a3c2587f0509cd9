#include "load/runner.h"

#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>

#include "load/engine.h"
#include "load/report.h"
#include "load/workloads.h"

namespace ringcast::load {

namespace {

std::atomic<int> g_signal{0};

void on_signal(int sig) {
  g_signal.store(sig);
}

bool resolve(const Url& u, sockaddr_storage& addr, socklen_t& addr_len, std::string& err) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(u.port);
  int rc = getaddrinfo(u.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0 || !res) {
    err = "cannot resolve '" + u.host + "': " + gai_strerror(rc);
    return false;
  }
  std::memcpy(&addr, res->ai_addr, res->ai_addrlen);
  addr_len = static_cast<socklen_t>(res->ai_addrlen);
  freeaddrinfo(res);
  return true;
}

// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now in force.
uint64_t raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : rl.rlim_cur;
}

std::string fmt_us(uint64_t ns) {
  char b[32];
  double us = static_cast<double>(ns) / 1000.0;
  if (us >= 100000)
    std::snprintf(b, sizeof b, "%.0fms", us / 1000.0);
  else
    std::snprintf(b, sizeof b, "%.0fus", us);
  return b;
}

const char* phase_label(Phase p) {
  switch (p) {
    case Phase::kConnect:
      return "connect";
    case Phase::kRun:
      return "run";
    case Phase::kDrain:
      return "drain";
    case Phase::kHold:
      return "hold";
    case Phase::kClose:
      return "close";
    case Phase::kDone:
      return "done";
  }
  return "?";
}

class Controller {
 public:
  Controller(const Options& o, Run& run, std::vector<std::unique_ptr<Worker>>& workers)
      : o_(o), run_(run), workers_(workers), t_begin_(now_ns()), next_progress_(t_begin_ + kSec) {}

  void set_phase(Phase p) {
    run_.phase.store(static_cast<int>(p), std::memory_order_release);
    for (auto& w : workers_) w->wake();
  }

  // Sleeps until `deadline` or until done() is true (checked every 10 ms), printing a progress line
  // every second. Returns false if interrupted by a signal.
  template <class Done>
  bool wait(uint64_t deadline, Done&& done) {
    for (;;) {
      if (g_signal.load()) return false;
      uint64_t now = now_ns();
      if (now >= next_progress_) {
        progress(now);
        next_progress_ += kSec * (1 + (now - next_progress_) / kSec);
      }
      if (done() || now >= deadline) return true;
      uint64_t until = std::min({deadline, next_progress_, now + 10'000'000});
      std::this_thread::sleep_for(std::chrono::nanoseconds(until - now));
    }
  }

  void progress(uint64_t now) {
    uint64_t open = 0, failed = 0, sent = 0, recv = 0, errors = 0;
    Histogram iv;
    for (auto& w : workers_) {
      auto& c = w->counters();
      open += c.open.load(std::memory_order_relaxed);
      failed += c.failed.load(std::memory_order_relaxed);
      sent += c.sent.load(std::memory_order_relaxed);
      recv += c.received.load(std::memory_order_relaxed);
      for (auto& e : c.errors) errors += e.load(std::memory_order_relaxed);
      std::lock_guard lock(w->interval_mu);
      iv.merge(w->interval);
      w->interval.reset();
    }
    double dt = static_cast<double>(now - last_progress_t_) / 1e9;
    if (last_progress_t_ == 0) dt = static_cast<double>(now - t_begin_) / 1e9;
    Phase p = run_.current();
    if (o_.quiet) {
      last_sent_ = sent, last_recv_ = recv, last_progress_t_ = now;
      return;
    }
    char line[320];
    int n = std::snprintf(line, sizeof line, "[%6.1fs] %-7s open %llu/%llu", (now - t_begin_) / 1e9,
                          phase_label(p), static_cast<unsigned long long>(open),
                          static_cast<unsigned long long>(o_.total_connections()));
    std::string s(line, static_cast<size_t>(n));
    if (failed) s += " failed " + std::to_string(failed);
    if (o_.scenario == Scenario::kConnect) {
      if (iv.count())
        s += "  +" + std::to_string(iv.count()) + " handshakes, p50 " + fmt_us(iv.percentile(50)) +
             " p99 " + fmt_us(iv.percentile(99));
    } else if (p != Phase::kConnect) {
      std::snprintf(line, sizeof line, "  sent %.0f/s  recv %.0f/s",
                    dt > 0 ? static_cast<double>(sent - last_sent_) / dt : 0,
                    dt > 0 ? static_cast<double>(recv - last_recv_) / dt : 0);
      s += line;
      if (iv.count())
        s += "  p50 " + fmt_us(iv.percentile(50)) + " p99 " + fmt_us(iv.percentile(99)) + " max " +
             fmt_us(iv.max());
    }
    s += "  errors " + std::to_string(errors);
    std::fprintf(stderr, "%s\n", s.c_str());
    last_sent_ = sent, last_recv_ = recv, last_progress_t_ = now;
  }

  static constexpr uint64_t kSec = 1'000'000'000;

 private:
  const Options& o_;
  Run& run_;
  std::vector<std::unique_ptr<Worker>>& workers_;
  uint64_t t_begin_;
  uint64_t next_progress_;
  uint64_t last_progress_t_ = 0, last_sent_ = 0, last_recv_ = 0;
};

std::string seconds_text(double s) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", s);
  return b;
}

uint64_t secs(double s) {
  return static_cast<uint64_t>(s * 1e9);
}

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return false;
  f << text;
  return static_cast<bool>(f.flush());
}

// The URLs separated by spaces.
std::string url_list(const std::vector<Url>& urls) {
  std::string s;
  for (const Url& u : urls) {
    // Appended piecewise: "literal" + string trips GCC 12's false -Wrestrict at -O3.
    if (!s.empty()) s += ' ';
    s += u.str();
  }
  return s;
}

bool resolve_all(const std::vector<Url>& urls, std::vector<Run::Endpoint>& out, std::string& err) {
  out.resize(urls.size());
  for (size_t i = 0; i < urls.size(); ++i)
    if (!resolve(urls[i], out[i].addr, out[i].len, err)) return false;
  return true;
}

// Connections planned, opened, failed and closed per URL (WebSocket URLs, then API URLs).
std::vector<UrlStats> per_url_of(const Options& o, const Workload& wl, uint64_t total,
                                 std::vector<std::unique_ptr<Worker>>& workers) {
  std::vector<UrlStats> v(o.urls.size() + o.apis.size());
  for (size_t i = 0; i < o.urls.size(); ++i) v[i].url = o.urls[i].str();
  for (size_t i = 0; i < o.apis.size(); ++i) v[o.urls.size() + i].url = o.apis[i].str();
  for (uint64_t g = 0; g < total; ++g)
    ++v[(wl.is_http(g) ? o.urls.size() : 0) + wl.node(g)].connections;
  for (auto& w : workers)
    for (size_t i = 0; i < v.size(); ++i) {
      v[i].opened += w->node_opened[i];
      v[i].failed += w->node_failed[i];
      v[i].closed += w->node_lost[i];
    }
  return v;
}

std::vector<std::pair<std::string, std::string>> settings_of(const Options& o) {
  auto d = [](double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v);
    return std::string(b);
  };
  std::vector<std::pair<std::string, std::string>> s = {
      {"threads", std::to_string(o.threads)},
      {"duration", d(o.duration)},
      {"source_addrs", std::to_string(o.source_addrs)}};
  switch (o.scenario) {
    case Scenario::kEcho:
      s.push_back({"connections", std::to_string(o.connections)});
      break;
    case Scenario::kBroadcast:
      s.push_back({"subscribers", std::to_string(o.subscribers)});
      s.push_back({"publishers", std::to_string(o.publishers)});
      s.push_back({"publisher_echo", o.publisher_echo ? "true" : "false"});
      break;
    case Scenario::kRelay:
      s.push_back({"pairs", std::to_string(o.pairs)});
      break;
    case Scenario::kHttpPublish:
      s.push_back({"subscribers", std::to_string(o.subscribers)});
      s.push_back({"publishers", std::to_string(o.publishers)});
      s.push_back({"flow", flow_name(o.flow)});
      s.push_back({"room", o.room});
      s.push_back({"api", url_list(o.apis)});  // the key is left out on purpose
      break;
    case Scenario::kConnect:
      s.push_back({"connections", std::to_string(o.connections)});
      s.push_back({"hold", d(o.hold)});
      break;
  }
  s.push_back({"rate", d(o.rate)});
  if (o.scenario != Scenario::kConnect) {
    s.push_back({"size", std::to_string(o.size)});
    s.push_back({"text", o.text ? "true" : "false"});
    s.push_back({"pipeline", std::to_string(o.pipeline)});
    s.push_back({"drain", d(o.drain)});
  }
  return s;
}

}  // namespace

int run_load(const Options& given) {
  // Options built by hand (not by parse_args) may leave the URL lists empty.
  Options o = given;
  if (o.urls.empty()) o.urls = {o.url};
  if (o.scenario == Scenario::kHttpPublish && o.apis.empty()) o.apis = {o.api};
  if (o.scenario != Scenario::kHttpPublish) o.apis.clear();
  uint64_t total = o.total_connections();
  uint64_t limit = raise_fd_limit();
  uint64_t need = total + 16 + 2 * static_cast<uint64_t>(o.threads);
  if (need > limit) {
    std::fprintf(stderr,
                 "ringcast-load: %llu connections need about %llu file descriptors, the limit is "
                 "%llu (raise the hard limit: ulimit -Hn / LimitNOFILE)\n",
                 static_cast<unsigned long long>(total), static_cast<unsigned long long>(need),
                 static_cast<unsigned long long>(limit));
    return 1;
  }
  Run run(o);
  std::string err;
  if (!resolve_all(o.urls, run.ws, err) || !resolve_all(o.apis, run.api, err)) {
    std::fprintf(stderr, "ringcast-load: %s\n", err.c_str());
    return 1;
  }
  if (o.source_addrs > 1) {
    for (const auto* eps : {&run.ws, &run.api})
      for (const auto& ep : *eps)
        if (ep.addr.ss_family != AF_INET) {
          std::fprintf(stderr, "ringcast-load: --source-addrs needs IPv4 (loopback) targets\n");
          return 1;
        }
  }
  if (o.source_addrs > 1 && total / o.source_addrs > 28000)
    std::fprintf(stderr,
                 "ringcast-load: warning: %llu connections per source address may exhaust "
                 "ephemeral ports\n",
                 static_cast<unsigned long long>(total / o.source_addrs));

  auto workload = make_workload(o, run);
  run.workload = workload.get();

  // Workers block the signals; the controller thread handles SIGINT/SIGTERM by ending the run
  // early.
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < o.threads; ++i)
    workers.push_back(std::make_unique<Worker>(run, i, o.threads, total));
  run.t_connect_start.store(now_ns());
  for (auto& w : workers) w->start();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  Controller ctl(o, run, workers);
  std::vector<std::string> failures;
  auto all = [&](auto flag) {
    return [&workers, flag] {
      for (auto& w : workers)
        if (!((*w).*flag).load(std::memory_order_acquire)) return false;
      return true;
    };
  };
  auto sum = [&](auto member) {
    uint64_t s = 0;
    for (auto& w : workers) s += (w->counters().*member).load();
    return s;
  };

  if (!o.quiet)
    std::fprintf(stderr, "ringcast-load %s: %llu connections to %s%s%s, %d threads\n",
                 scenario_name(o.scenario), static_cast<unsigned long long>(total),
                 url_list(o.urls).c_str(), o.scenario == Scenario::kHttpPublish ? " and " : "",
                 o.scenario == Scenario::kHttpPublish ? url_list(o.apis).c_str() : "", o.threads);
  // Connect phase.
  uint64_t t_connect = now_ns();
  double connect_limit = o.scenario == Scenario::kConnect ? o.duration : o.connect_timeout;
  bool interrupted = !ctl.wait(t_connect + secs(connect_limit), all(&Worker::connect_done));
  uint64_t opened = sum(&Counters::opened), failed = sum(&Counters::failed);
  if (!interrupted && opened + failed < total)
    failures.push_back("only " + std::to_string(opened) + " of " + std::to_string(total) +
                       " connections opened within " + seconds_text(connect_limit) + " s");
  if (failed) failures.push_back(std::to_string(failed) + " connections failed to open");

  double measured = 0;
  if (interrupted) {
    failures.push_back("interrupted by signal");
  } else if (failures.empty()) {
    if (o.scenario == Scenario::kConnect) {
      measured = static_cast<double>(now_ns() - t_connect) / 1e9;
      ctl.set_phase(Phase::kHold);
      if (!ctl.wait(now_ns() + secs(o.hold), [] { return false; }))
        failures.push_back("interrupted by signal");
    } else {
      uint64_t start = now_ns() + 1'000'000;
      run.t_run_start.store(start);
      run.t_run_end.store(start + secs(o.duration));
      ctl.set_phase(Phase::kRun);
      bool ok = ctl.wait(start + secs(o.duration), [] { return false; });
      uint64_t end = std::min(now_ns(), start + secs(o.duration));
      measured = static_cast<double>(end - start) / 1e9;
      if (!ok) {
        failures.push_back("interrupted by signal");
        run.t_run_end.store(end);
      }
      ctl.set_phase(Phase::kDrain);
      g_signal.store(0);  // a second signal cuts the drain short too
      ctl.wait(now_ns() + secs(o.drain), all(&Worker::drained));
    }
  }
  ctl.set_phase(Phase::kClose);
  g_signal.store(0);
  ctl.wait(now_ns() + 2 * Controller::kSec, all(&Worker::closed));
  ctl.set_phase(Phase::kDone);
  for (auto& w : workers) w->join();

  Results r;
  r.scenario = scenario_name(o.scenario);
  r.url = o.url.str();
  r.settings = settings_of(o);
  if (o.urls.size() > 1 || o.apis.size() > 1) {
    r.settings.push_back({"urls", url_list(o.urls)});
    r.per_url = per_url_of(o, *workload, total, workers);
  }
  workload->finish(workers, measured, r);
  for (int k = 0; k < static_cast<int>(ErrorKind::kCount); ++k) {
    uint64_t n = 0;
    for (auto& w : workers) n += w->counters().errors[k].load();
    r.errors.push_back({error_kind_name(static_cast<ErrorKind>(k)), n});
  }
  for (auto& f : r.failures) failures.push_back(f);
  r.failures = failures;
  uint64_t check_errors = 0;
  for (auto& [kind, n] : r.errors)
    if (kind != "connect" && kind != "handshake") check_errors += n;
  if (check_errors) r.failures.push_back(std::to_string(check_errors) + " errors during the run");
  r.metrics.push_back(Metric{"bytes_sent", "bytes sent (wire)",
                             static_cast<double>(sum(&Counters::bytes_sent)), "bytes"});
  r.metrics.push_back(Metric{"bytes_received", "bytes received (wire)",
                             static_cast<double>(sum(&Counters::bytes_received)), "bytes"});

  std::fputs(format_table(r).c_str(), stdout);
  std::fflush(stdout);
  int status = r.passed() ? 0 : 1;
  if (!o.json_path.empty() && !write_file(o.json_path, format_json(r))) {
    std::fprintf(stderr, "ringcast-load: cannot write %s: %s\n", o.json_path.c_str(),
                 std::strerror(errno));
    status = 1;
  }
  if (!o.plot_path.empty() && !write_file(o.plot_path, format_svg(r))) {
    std::fprintf(stderr, "ringcast-load: cannot write %s: %s\n", o.plot_path.c_str(),
                 std::strerror(errno));
    status = 1;
  }
  return status;
}

}  // namespace ringcast::load

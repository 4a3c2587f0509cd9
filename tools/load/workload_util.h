// Helpers the scenario workloads share (workloads.cpp, round_trip_workload.cpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "load/workloads.h"

namespace ringcast::load::workload_util {

inline std::string append_param(std::string target, const std::string& param) {
  return target + (target.find('?') == std::string::npos ? "?" : "&") + param;
}

inline void add_metric(Results& r, std::string key, std::string label, double v, std::string unit) {
  r.metrics.push_back(Metric{std::move(key), std::move(label), v, std::move(unit)});
}

inline LatencySeries merged(std::vector<std::unique_ptr<Worker>>& workers, int series,
                            std::string key, std::string label) {
  LatencySeries s{std::move(key), std::move(label), {}};
  for (auto& w : workers) s.hist.merge(w->hist[series]);
  return s;
}

// Finds `"key": <unsigned integer>` in JSON text we produced (keys unique, values plain digits).
inline bool json_uint(const uint8_t* data, size_t n, std::string_view key, uint64_t& out) {
  std::string_view text(reinterpret_cast<const char*>(data), n);
  size_t pos = text.find(key);
  if (pos == std::string_view::npos) return false;
  pos += key.size();
  while (pos < n && (text[pos] == ' ' || text[pos] == ':')) ++pos;
  if (pos >= n || text[pos] < '0' || text[pos] > '9') return false;
  uint64_t v = 0;
  while (pos < n && text[pos] >= '0' && text[pos] <= '9') v = v * 10 + uint64_t(text[pos++] - '0');
  out = v;
  return true;
}

inline uint8_t data_opcode(const Options& o) {
  return o.text ? opcode::kText : opcode::kBinary;
}

// Fixed-rate schedule of one worker: message j is due at start + offset + j * period and goes to
// senders[j % senders.size()], so every sender gets an evenly spaced share of the total rate.
// Latency is measured from this intended time (coordinated omission correction): a late send
// does not hide the time it waited.
struct Schedule {
  double period_ns = 0;
  uint64_t offset_ns = 0;
  uint64_t j = 0;
  void init(double total_rate, uint64_t total_senders, size_t my_senders, int worker) {
    period_ns = 1e9 * static_cast<double>(total_senders) /
                (total_rate * static_cast<double>(std::max<size_t>(my_senders, 1)));
    offset_ns = static_cast<uint64_t>(1e9 / total_rate * worker) %
                std::max<uint64_t>(1, static_cast<uint64_t>(period_ns));
    j = 0;
  }
  // Calls send(conn_index_in_senders, intended_time) for every due message; returns the next due
  // time (UINT64_MAX once the schedule reaches `end`).
  template <class F>
  uint64_t run(uint64_t start, uint64_t end, uint64_t now, size_t n, F&& send) {
    if (n == 0) return UINT64_MAX;
    for (int batch = 0; batch < 4096; ++batch) {
      uint64_t t = start + offset_ns + static_cast<uint64_t>(static_cast<double>(j) * period_ns);
      if (t >= end) return UINT64_MAX;
      if (t > now) return t;
      send(static_cast<size_t>(j % n), t);
      ++j;
    }
    return now;  // more are due: come back after servicing the sockets
  }
};

// The echo and relay scenarios (round_trip_workload.cpp).
std::unique_ptr<ScenarioWorkload> make_round_trip(const Options& o, Run& run, bool relay);

}  // namespace ringcast::load::workload_util

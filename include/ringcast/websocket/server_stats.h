// Counters shared by all workers, read by /health. Updated on connection events, not per message.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "ringcast/websocket/worker_metrics.h"

namespace ringcast::websocket {

struct alignas(64) WorkerStats {
  std::atomic<int64_t> connections{0};  // every open TCP connection of the worker
  std::atomic<int64_t> websockets{0};
  std::atomic<uint64_t> loop_passes{0};  // heartbeat for the systemd watchdog
  std::atomic<uint64_t> slow_consumer_closes{0};
  std::atomic<uint64_t> dropped_messages{0};  // slow-consumer drops under the drop-oldest policy
  std::atomic<int64_t> queued_bytes{0};       // outbound bytes queued on this worker
  WorkerMetrics metrics;                      // traffic counters for /metrics
};

class ServerStats {
 public:
  explicit ServerStats(int workers) : workers_(workers) {}
  WorkerStats& worker(int i) { return workers_[i]; }
  const std::vector<WorkerStats>& workers() const { return workers_; }

  // Admission of a WebSocket session against the total and per-IP limits (0 = unlimited).
  bool admit(const std::array<uint8_t, 16>& ip, size_t max_total, size_t max_per_ip);
  void leave(const std::array<uint8_t, 16>& ip);
  int64_t websockets_total() const { return total_ws_.load(std::memory_order_relaxed); }

 private:
  struct IpHash {
    size_t operator()(const std::array<uint8_t, 16>& a) const noexcept {
      uint64_t h = 1469598103934665603ull;
      for (uint8_t b : a) h = (h ^ b) * 1099511628211ull;
      return h;
    }
  };
  std::vector<WorkerStats> workers_;
  std::atomic<int64_t> total_ws_{0};
  std::mutex ip_mutex_;  // taken once per upgrade and once per close, never per message
  std::unordered_map<std::array<uint8_t, 16>, uint32_t, IpHash> per_ip_;
};

}  // namespace ringcast::websocket

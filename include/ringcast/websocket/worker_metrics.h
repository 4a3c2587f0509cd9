// Per-worker traffic counters for /metrics. Only the owning worker thread writes them, each with
// a relaxed load and store of its own counter (no read-modify-write, nothing shared between
// cores on the hot path); a scrape reads every worker's counters and sums them.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include "ringcast/engine/histogram.h"

namespace ringcast::websocket {

// Why an upgrade request was answered with an HTTP error instead of 101.
enum class RefusedUpgrade : uint8_t {
  kBadRequest,       // 400: not a valid WebSocket handshake
  kVersion,          // 426: unsupported Sec-WebSocket-Version
  kNoRoute,          // 404: no endpoint at the path
  kOrigin,           // 403: origin not allowed
  kShuttingDown,     // 503: the server is draining
  kConnectionLimit,  // 503: max_connections or max_connections_per_ip
  kCount
};
std::string_view refused_upgrade_name(RefusedUpgrade r);

// Close codes the server sends, one slot each: 1000-1014, then 3000-3999, 4000-4999, the rest.
inline constexpr size_t kCloseCodeSlots = 18;
size_t close_code_slot(uint16_t code);
std::string_view close_code_slot_label(size_t slot);  // "1000" .. "1014", "3xxx", "4xxx", "other"

struct WorkerMetrics {
  std::atomic<uint64_t> messages_in{0};  // WebSocket data messages received (counted once)
  std::atomic<uint64_t> bytes_in{0};     // bytes read from sockets
  std::atomic<uint64_t> frames_out{0};   // WebSocket frames queued to clients
  std::atomic<uint64_t> bytes_out{0};    // bytes the kernel took from us
  std::atomic<uint64_t> rate_limit_closes{0};
  std::array<std::atomic<uint64_t>, static_cast<size_t>(RefusedUpgrade::kCount)> refused{};
  std::array<std::atomic<uint64_t>, kCloseCodeSlots> closes_sent{};
  // Broadcast fan-out latency (sampled), observed on the core whose recipient finished last.
  engine::Histogram fanout_ns{engine::kLatencyBoundsNs};
  std::atomic<int> tid{0};  // the worker thread, for its CPU time in /proc

  // Owner thread only.
  static void add(std::atomic<uint64_t>& c, uint64_t n = 1) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void refuse(int status, bool stopping);
  void close_sent(uint16_t code) { add(closes_sent[close_code_slot(code)]); }
};

}  // namespace ringcast::websocket

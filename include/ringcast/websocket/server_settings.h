// Settings the WebSocket layer reads on every loop pass. They can change at run time (SIGHUP), so
// workers hold an immutable snapshot and pick up a new one when the generation moves.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

#include "ringcast/websocket/origin_policy.h"

namespace ringcast::websocket {

struct Limits {
  size_t max_message_size = 1 << 20;
  size_t max_connections = 100000;
  size_t max_connections_per_ip = 0;  // 0 = unlimited
  size_t max_header_bytes = 8192;
  int handshake_timeout_ms = 10000;
  int idle_timeout_ms = 60000;
  int ping_interval_ms = 20000;
  int ping_timeout_ms = 20000;
  int drain_timeout_ms = 5000;
  size_t outbound_cap = 1 << 20;
  // Rooms (raw fan-out): over the outbound cap, close with 1013, drop the oldest queued messages
  // and count them, or pace: hold the sender while its frames wait in recipients' queues.
  // Sequenced rooms (history, state, presence) pace nothing: "pace" closes there like "close".
  enum class SlowConsumer { kClose, kDropOldest, kPace } slow_consumer = SlowConsumer::kClose;
  // One-to-one relays (bridge, relayer, native direct sends): kPace or kClose.
  SlowConsumer relay_slow_consumer = SlowConsumer::kPace;
  // A recipient holding uncapped output (paced frames, a join snapshot) that the kernel takes
  // nothing of for this long is closed with 1013 and stops holding its senders.
  int stall_timeout_ms = 10000;
  // Data messages (and pings) a client may send per second, with bursts of up to message_burst
  // (0: the rate); over it the connection is closed with 1008. 0 = unlimited.
  uint32_t max_messages_per_second = 0;
  uint32_t message_burst = 0;
};

// permessage-deflate ([compression]).
struct Compression {
  bool enabled = false;          // off by default: compression costs latency and CPU
  size_t threshold_bytes = 128;  // smaller messages go uncompressed
  int level = 1;                 // zlib level 1..9
  bool operator==(const Compression&) const = default;
};

struct ServerSettings {
  Limits limits;
  OriginPolicy origins;
  Compression compression;
  size_t max_body_bytes = 1 << 20;  // HTTP request bodies ([api] max_body_bytes); 413 above
};

class SettingsStore {
 public:
  explicit SettingsStore(std::shared_ptr<const ServerSettings> initial)
      : current_(std::move(initial)) {}
  void publish(std::shared_ptr<const ServerSettings> next) {
    std::lock_guard lock(mutex_);
    current_ = std::move(next);
    generation_.fetch_add(1, std::memory_order_release);
  }
  std::shared_ptr<const ServerSettings> get() const {
    std::lock_guard lock(mutex_);
    return current_;
  }
  // Cheap check done once per loop pass.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const ServerSettings> current_;
  std::atomic<uint64_t> generation_{0};
};

}  // namespace ringcast::websocket

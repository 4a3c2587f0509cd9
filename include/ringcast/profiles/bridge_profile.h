// `/` (seed 000, WizzyWorks fireworks): many phone web-app clients and one camera bridge share one
// endpoint, told apart by their first message. Clients get small reusable numeric ids (smallest
// free first, across all cores); their messages go unchanged to the current bridge; the bridge's
// messages go to the client named by their "id". The protocol: docs/profiles/bridge.md.
//
// Routing never takes a lock: the current bridge's session id is one atomic, and client id ->
// session id is a table of atomics readable from any core. Only allocating and freeing ids (a
// connection's first and last message) takes the allocator's mutex.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <queue>
#include <vector>

#include "ringcast/hub/hub.h"
#include "ringcast/profiles/health_fields.h"
#include "ringcast/websocket/message_handler.h"

namespace ringcast::profiles {

// In a cluster ([cluster], docs/cluster.md) the ids and the bridge are cluster-wide: allocations
// go through Redis (the client's input waits for its id), and the bus reports every change of
// the table and of the bridge (ClusterDirectory), so routing stays a lookup of atomics.
class BridgeProfile final : public websocket::MessageHandler,
                            public HealthFields,
                            public hub::ClusterDirectory {
 public:
  // first_message_timeout_ms <= 0: no first-message deadline.
  BridgeProfile(hub::HubSystem& hubs, int64_t first_message_timeout_ms);
  ~BridgeProfile() override;

  void on_open(websocket::Session& s, const websocket::HttpRequest& req) override;
  void on_message(websocket::Session& s, websocket::Opcode op, std::span<uint8_t> payload) override;
  void on_close(websocket::Session& s) override;
  void append_health(std::vector<std::pair<std::string, std::string>>& out) const override;
  // hub::ClusterDirectory
  void directory_id(uint64_t id, uint64_t session) override;
  void directory_owner(uint64_t session) override;
  void directory_reset() override;
  void directory_allocated(hub::Hub& hub, uint64_t session, uint64_t id) override;

  // Client ids above this are never handed out (the connection is refused with 1013).
  static constexpr uint32_t kMaxClientId = (1u << 24) - 1;

 private:
  static constexpr uint32_t kChunkBits = 12;  // 4096 ids per table chunk
  static constexpr uint32_t kChunkSize = 1u << kChunkBits;
  static constexpr uint32_t kChunks = (kMaxClientId >> kChunkBits) + 1;
  struct Chunk {
    std::atomic<uint64_t> session[kChunkSize];
  };

  uint32_t allocate_id(uint64_t session);  // 0 if none is left
  void release_id(uint32_t id);
  std::atomic<uint64_t>* slot(uint32_t id) const;  // nullptr if its chunk was never needed
  std::atomic<uint64_t>& slot_made(uint32_t id);   // its chunk made if needed (under ids_mutex_)
  uint64_t session_of(uint64_t id) const;          // any core; 0 = no such client

  void on_first(websocket::Session& s, websocket::Opcode op, std::span<const uint8_t> payload);
  void from_client(websocket::Session& s, websocket::Opcode op, std::span<const uint8_t> payload);
  void from_bridge(websocket::Session& s, websocket::Opcode op, std::span<const uint8_t> payload);

  hub::HubSystem& hubs_;
  int64_t first_message_timeout_ms_;

  std::mutex ids_mutex_;  // allocation only
  std::priority_queue<uint32_t, std::vector<uint32_t>, std::greater<>> free_ids_;
  uint32_t next_id_ = 1;
  std::unique_ptr<std::atomic<Chunk*>[]> chunks_;

  std::atomic<uint64_t> bridge_{0};  // the current bridge's session id; 0 = none
  std::atomic<int64_t> clients_{0};
};

}  // namespace ringcast::profiles

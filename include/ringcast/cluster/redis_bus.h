// Several ringcast nodes as one hub, over Redis (docs/cluster.md). One bus thread per node owns
// two hiredis connections: commands (publishes, heartbeats) and sharded pub/sub (SSUBSCRIBE to the
// rooms this node has members in). Cores hand it work through per-core lock-free rings and get
// arrivals back the same way, so no loop thread ever waits on Redis.
//
// Raw rooms: a frame published on one node is delivered locally at once and sent to the room's
// channel; every other node that has members decodes it once and fans it out through the
// existing cross-core path. Each node's messages go through one connection in order, so each
// publisher's order holds on every node.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ringcast/cluster/redis_url.h"
#include "ringcast/engine/spsc_ring.h"
#include "ringcast/hub/cluster_bus.h"

namespace ringcast::hub {
class HubSystem;
}

namespace ringcast::cluster {

struct ClusterOptions {
  RedisUrl redis;
  std::string node_id;                        // shown in /health and the node list
  size_t max_queue_bytes = size_t{64} << 20;  // outbound to Redis, per node (see docs)
  int64_t node_ttl_ms = 5000;                 // a node unseen this long is gone
  std::string prefix = "rc:";                 // Redis key and channel prefix
};

// What /health and /metrics show; any thread.
struct ClusterStatus {
  bool connected = false;
  uint64_t nodes_seen = 0;
  uint64_t rooms_subscribed = 0;
  uint64_t published = 0;  // frames sent to Redis
  uint64_t received = 0;   // frames from other nodes
  uint64_t dropped = 0;    // outbound frames dropped (Redis down or the queue full)
  uint64_t reconnects = 0;
};

class RedisBus final : public hub::ClusterBus {
 public:
  RedisBus(ClusterOptions opts, hub::HubSystem& hubs);
  ~RedisBus() override;
  RedisBus(const RedisBus&) = delete;
  RedisBus& operator=(const RedisBus&) = delete;

  // Starts the bus thread; `wake(core)` must make that core's loop run its hooks soon (any
  // thread). Returns at once: Redis being down is not an error (the node serves its own clients
  // and reconnects).
  void start(std::function<void(int core)> wake);
  void stop();

  ClusterStatus status() const;
  const ClusterOptions& options() const { return opts_; }

  // hub::ClusterBus, on the cores' loops.
  uint64_t instance() const override { return instance_; }
  bool connected() const override { return connected_.load(std::memory_order_relaxed); }
  void mirror(int core, hub::SharedRoom& room, bool on) override;
  void mirror_floor(int core, hub::SharedRoom& room, uint64_t seq, uint64_t ev) override;
  bool send_event(int core, hub::SharedRoom& room, engine::SharedFrame* args) override;
  void send_remote(int core, uint64_t session, engine::SharedFrame* frame) override;
  void set_directory(hub::ClusterDirectory* d) override { directory_ = d; }
  hub::ClusterDirectory* directory() const override { return directory_; }
  void directory_allocate(int core, uint64_t session) override;
  void directory_release(int core, uint64_t id, uint64_t session) override;
  void directory_owner(int core, uint64_t session, bool on) override;
  void add_journal(hub::ClusterJournal* j) override { journals_.push_back(j); }
  hub::ClusterJournal* journal(uint32_t index) const override {
    return index < journals_.size() ? journals_[index] : nullptr;
  }
  void journal_call(int core, hub::ClusterJournal& j, char op, uint64_t session,
                    std::initializer_list<std::string_view> fields, bool reply) override;
  uint64_t member_session(std::string_view member) override;
  void note(hub::ClusterJournal& j, uint64_t session, std::string_view note) override;
  void send_local(uint64_t session, engine::SharedFrame* frame) override;
  void set_queries(hub::ClusterQueries* q) override { queries_ = q; }
  hub::ClusterQueries* queries() const override { return queries_; }
  void query(int core, uint64_t ticket, std::string_view query) override;
  void query_answer(int core, std::string_view from, uint64_t ticket,
                    std::string_view answer) override;
  void publish_direct(int core, hub::SharedRoom& room, engine::SharedFrame* frame) override;
  void room_members(int core, hub::SharedRoom& room, bool active) override;
  void poll(int core, hub::Hub& hub) override;
  bool has_arrivals(int core) const override;

 private:
  struct Item {
    hub::SharedRoom* room = nullptr;       // counted reference
    engine::SharedFrame* frame = nullptr;  // counted reference (may be null for arrivals)
    // out: 0 a raw frame, 1 an event, 2 a send, 3 a directory change, 4 a journal call (token: the
    // journal, ev: op | reply << 8, n: the session), 5 a query (token: the core, n: the ticket),
    // 6 a query's answer (frame: the asking node's instance, then the answer; n: the ticket);
    // in: a hub::ClusterArrival
    uint8_t kind = 0;
    uint32_t token = 0;  // kDone, kFailed: which event of the home core
    uint64_t ev = 0, n = 0;
  };
  struct alignas(engine::kCacheLine) Lane {
    Lane(size_t cap) : out(cap), in(cap) {}
    engine::SpscRing<Item> out;  // core -> bus
    engine::SpscRing<Item> in;   // bus -> core (arrivals for rooms homed on this core)
    size_t out_bytes = 0;        // core only: bytes pushed to `out`
    bool pushed = false;         // core only: pushed during this pass
    alignas(engine::kCacheLine) std::atomic<size_t> taken_bytes{0};  // bus: bytes taken off `out`
    std::atomic<uint64_t> dropped{0};                                // core: over the cap
  };
  struct Control {
    hub::SharedRoom* room;  // counted reference
    bool active;
    bool mirror;         // a sequenced room's mirror (else a raw room's members)
    bool floor = false;  // mirror_floor: only the floors below change
    uint64_t seq_floor = 0, ev_floor = 0;
  };
  class Thread;

  void release_item(Item& it);
  void directory_push(int core, uint32_t op, uint64_t session, uint64_t id);

  ClusterOptions opts_;
  hub::HubSystem& hubs_;
  uint64_t instance_ = 0;  // random per process: skips this node's own messages
  std::vector<std::unique_ptr<Lane>> lanes_;
  std::mutex control_mutex_;  // room membership changes: rare next to messages
  std::vector<Control> control_;
  int event_fd_ = -1;
  std::atomic<bool> bus_sleeping_{false};
  std::atomic<uint32_t> bus_sync_{0};
  std::atomic<bool> stopping_{false};
  std::function<void(int)> wake_;
  hub::ClusterDirectory* directory_ = nullptr;
  std::vector<hub::ClusterJournal*> journals_;
  hub::ClusterQueries* queries_ = nullptr;
  std::unique_ptr<Thread> thread_state_;
  std::thread thread_;

  // Status, written by the bus thread.
  std::atomic<bool> connected_{false};
  std::atomic<uint64_t> nodes_seen_{0};
  std::atomic<uint64_t> rooms_subscribed_{0};
  std::atomic<uint64_t> published_{0};
  std::atomic<uint64_t> received_{0};
  std::atomic<uint64_t> bus_dropped_{0};
  std::atomic<uint64_t> reconnects_{0};
};

}  // namespace ringcast::cluster

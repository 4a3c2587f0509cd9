// The durable store: room history and retained state in SQLite (WAL, synchronous=FULL) under the
// data directory. Loop threads never touch the disk: each home core queues its writes on its own
// lock-free ring; one store thread commits whatever has accumulated as one transaction (a group
// commit: while one commit syncs, the next group forms), then hands every write's result back to
// its core, whose loop runs the continuation (fan-out, acknowledgement, or an error reply).
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ringcast/engine/histogram.h"
#include "ringcast/engine/spsc_ring.h"
#include "ringcast/hub/room.h"
#include "ringcast/hub/room_store.h"

namespace ringcast::store {

struct StoreOptions {
  std::string data_dir = "./data";
  std::vector<std::string> persistent_rooms;  // name patterns: exact or "prefix*"; "*" = all
  bool strict = true;                         // false: "relaxed", deliver before the commit
  size_t max_group = 1024;                    // writes per transaction at most
};

// Thrown when the store cannot be opened or fails its integrity check at start-up.
struct StoreError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class SqliteRoomStore final : public hub::RoomStore {
 public:
  SqliteRoomStore(StoreOptions opts, int cores);
  ~SqliteRoomStore() override;

  // Opens (creating if needed) and checks the database; throws StoreError with a clear message.
  void open();
  // Loads every stored room into the registry (history, sequence numbers, state). Call before any
  // worker runs; rooms restored are kept for the life of the process.
  void restore(hub::RoomRegistry& rooms);
  // Starts the store thread. `wake(core)` must make that core's loop run poll() soon (thread-safe).
  void start(std::function<void(int core)> wake);
  void stop();

  bool persistent(const hub::SharedRoom& room) const override;
  bool acknowledge_after_commit() const override { return opts_.strict; }
  void append(const hub::SharedRoom& room, const hub::HistoryRecord& rec, Done done) override;
  void put_state(const hub::SharedRoom& room, std::string_view key,
                 std::optional<std::string_view> value, uint64_t order, Done done) override;
  bool poll(int core) override;
  bool has_completions(int core) const override;

  // For /health and tests.
  uint64_t commits() const { return commits_.load(std::memory_order_relaxed); }
  uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }
  // Group commits (written by the store thread, read by /metrics): how long each took and how
  // many writes it carried.
  const engine::Histogram& commit_latency_ns() const { return commit_latency_ns_; }
  const engine::Histogram& commit_batch_size() const { return commit_batch_size_; }
  static constexpr uint64_t kBatchBounds[] = {1,   2,   4,   8,    16,   32,  64,
                                              128, 256, 512, 1024, 2048, 4096};
  std::string path() const;

 private:
  struct Op;
  struct PerCore;
  void submit(int core, Op* op);
  void run();
  bool commit(std::vector<Op*>& group);
  void exec(const char* sql);

  StoreOptions opts_;
  int cores_;
  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_message_ = nullptr;
  sqlite3_stmt* trim_messages_ = nullptr;
  sqlite3_stmt* upsert_room_ = nullptr;
  sqlite3_stmt* upsert_state_ = nullptr;
  sqlite3_stmt* delete_state_ = nullptr;
  std::vector<std::unique_ptr<PerCore>> per_core_;
  std::function<void(int)> wake_;
  std::thread thread_;
  std::atomic<bool> running_{false};
  int event_fd_ = -1;  // loops -> store thread
  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> failures_{0};
  engine::Histogram commit_latency_ns_{engine::kLatencyBoundsNs};
  engine::Histogram commit_batch_size_{kBatchBounds};
};

}  // namespace ringcast::store

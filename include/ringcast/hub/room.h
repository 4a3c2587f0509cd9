// A room as the whole process sees it. Any core may hold a reference; the data below the line is
// owned by the room's home core (chosen by hashing the name), which orders every publish and
// membership change of the room, so sequence numbers, history and retained state need no lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ringcast/engine/shared_frame.h"
#include "ringcast/hub/history.h"
#include "ringcast/hub/retained_state.h"

namespace ringcast::hub {

struct Identity {
  std::string user_id;
  std::string nickname;
  std::string role;
};

struct PresenceEntry {
  uint64_t session;
  Identity identity;
};

class SharedRoom;
struct ClusterRoom;  // a sequenced room's mirror state on its home core (hub_cluster.cpp)
// Encodes a room's retained state for a joiner, on the home core, in the profile's own shape:
// appends frames to `out` (sent to the joiner before any later event of the room).
using SnapshotFormatter = void (*)(const SharedRoom& room, std::vector<engine::FrameRef>& out);

class SharedRoom {
 public:
  SharedRoom(std::string name, int home, int cores, size_t history)
      : name_(std::move(name)), home_(home), history_(history), core_members_(cores, 0) {}
  ~SharedRoom() {
    if (cluster) cluster_free(cluster);
  }
  SharedRoom(const SharedRoom&) = delete;
  SharedRoom& operator=(const SharedRoom&) = delete;

  const std::string& name() const { return name_; }
  int home() const { return home_; }

  // Raw rooms fan out from the publisher's core using this mask of cores with members.
  std::atomic<uint64_t>& member_cores() { return member_cores_; }

  void add_ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  // Only from a holder of a reference, or from the registry (which checks for zero).
  bool try_add_ref() {
    int32_t r = refs_.load(std::memory_order_relaxed);
    while (r > 0)
      if (refs_.compare_exchange_weak(r, r + 1, std::memory_order_acq_rel)) return true;
    return false;
  }
  int32_t release_ref() { return refs_.fetch_sub(1, std::memory_order_acq_rel) - 1; }

  // ---- home core only ----
  uint64_t seq = 0;
  // Holds a self-reference because it has content worth keeping without members: history
  // records or retained state (see Hub: pin/unpin). Every other reference is a member, a query
  // or something in flight, so a room with none of these is freed.
  bool pinned = false;
  uint32_t pin_index = UINT32_MAX;  // its place in the home hub's list of pinned rooms
  engine::SharedFrame* (*presence_formatter)(const SharedRoom&, const PresenceEntry&,
                                             bool) = nullptr;
  HistoryRing& history() { return history_; }
  const HistoryRing& history() const { return history_; }
  RetainedState& state() { return state_; }
  const RetainedState& state() const { return state_; }
  uint32_t state_pending = 0;
  ClusterRoom* cluster = nullptr;  // [cluster] only: created on first use, freed by cluster_free
  void (*cluster_free)(ClusterRoom*) = nullptr;  // state writes waiting
                                                 // for their commit (strict durability)
  // The last join snapshot, reused by joiners while the state is unchanged (a reconnect storm
  // encodes it once).
  struct SnapshotCache {
    SnapshotFormatter formatter = nullptr;
    uint64_t version = 0;
    std::vector<engine::FrameRef> frames;
  } snapshot_cache;
  std::vector<int32_t>& core_members() { return core_members_; }
  std::vector<PresenceEntry>& presence() { return presence_; }
  const std::vector<PresenceEntry>& presence() const { return presence_; }

 private:
  const std::string name_;
  const int home_;
  std::atomic<uint64_t> member_cores_{0};
  std::atomic<int32_t> refs_{1};
  HistoryRing history_;
  RetainedState state_;                // key -> JSON value text, in insertion order
  std::vector<int32_t> core_members_;  // members per core
  std::vector<PresenceEntry> presence_;
};

// How much history a room keeps, by room-name pattern ("prefix*" or exact; first match wins).
struct HistoryRule {
  std::string pattern;
  size_t size;
};

// All rooms by name. Looked up when a session joins or first publishes to a room, never per
// message: sessions and envelopes carry the pointer. A room lives while it is referenced and is
// freed (on whichever core drops the last reference) once it is not.
class RoomRegistry {
 public:
  static constexpr size_t kDefaultMaxRooms = 100000;

  RoomRegistry(int cores, size_t default_history, std::vector<HistoryRule> rules = {});
  ~RoomRegistry();

  // A referenced room, created if needed; nullptr if it does not exist and max_rooms() rooms
  // already do (unless enforce_limit is false: start-up restore and the seed profiles' own rooms).
  SharedRoom* acquire(std::string_view name, bool enforce_limit = true);
  // A referenced room if it exists, else nullptr (never creates one).
  SharedRoom* find(std::string_view name);
  void release(SharedRoom* room);
  size_t size() const;
  // A referenced pointer to every room (release each through release()), for listings.
  std::vector<SharedRoom*> snapshot();
  size_t history_for(std::string_view name) const;
  void set_rules(size_t default_history, std::vector<HistoryRule> rules);
  void set_max_rooms(size_t n);
  size_t max_rooms() const;

 private:
  size_t history_for_locked(std::string_view name) const;

  int cores_;
  mutable std::mutex mutex_;
  size_t default_history_;
  size_t max_rooms_ = kDefaultMaxRooms;
  std::vector<HistoryRule> rules_;
  std::unordered_map<std::string, SharedRoom*> rooms_;
};

// Bounds on what clients can make the hub keep ([hub] in docs/engine-contract.md).
struct RoomLimits {
  size_t max_rooms = RoomRegistry::kDefaultMaxRooms;
  size_t max_rooms_per_connection = 100;
  int64_t history_ttl_ms = int64_t{86400} * 1000;  // 0: in-memory history never expires
  // Native retained state (state.set): keys per room, bytes per value (the profiles' own rooms
  // have their own limits).
  size_t max_state_keys = 1000;
  size_t max_state_value_bytes = 64 * 1024;
  bool operator==(const RoomLimits&) const = default;
};

// RAII reference to a room.
class RoomRef {
 public:
  RoomRef() = default;
  RoomRef(RoomRegistry* reg, SharedRoom* room) : reg_(reg), room_(room) {}  // adopts a reference
  RoomRef(const RoomRef& o) : reg_(o.reg_), room_(o.room_) {
    if (room_) room_->add_ref();
  }
  RoomRef(RoomRef&& o) noexcept : reg_(o.reg_), room_(o.room_) { o.room_ = nullptr; }
  RoomRef& operator=(RoomRef o) noexcept {
    std::swap(reg_, o.reg_);
    std::swap(room_, o.room_);
    return *this;
  }
  ~RoomRef() {
    if (room_) reg_->release(room_);
  }
  SharedRoom* get() const { return room_; }
  SharedRoom* operator->() const { return room_; }
  explicit operator bool() const { return room_ != nullptr; }

 private:
  RoomRegistry* reg_ = nullptr;
  SharedRoom* room_ = nullptr;
};

}  // namespace ringcast::hub

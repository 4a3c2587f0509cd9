// The hub: rooms, presence, history, retained state, endpoints and direct sends across cores.
// One Hub per worker core runs inside that worker's loop (as its LoopHooks); HubSystem ties them
// together with the cross-core mailbox and the shared registries.
//
// Two fan-out paths:
//  - direct (raw rooms): the publisher's core encodes the frame once and sends one reference to
//    each core that has members (an atomic core mask); members on the same core never leave it.
//  - sequenced (rooms with history, presence or state): the publish goes to the room's home core,
//    which assigns the sequence number, records history and fans out; joins and leaves pass
//    through the home core too, so membership changes are ordered with publishes.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ringcast/engine/mailbox.h"
#include "ringcast/hub/cluster_bus.h"
#include "ringcast/hub/endpoint_registry.h"
#include "ringcast/hub/envelope.h"
#include "ringcast/hub/room.h"
#include "ringcast/hub/room_store.h"
#include "ringcast/websocket/session.h"
#include "ringcast/websocket/worker.h"

namespace ringcast::hub {

class HubSystem;
struct JoinTask;

// One room as one core sees it, for the dashboard's top rooms.
struct RoomSample {
  std::string name;
  uint32_t members = 0;   // members on this core
  uint64_t messages = 0;  // frames this core delivered to the room's members here
};

// Builds a presence event frame for a room (profile-specific shape); nullptr for none.
using PresenceFormatter = engine::SharedFrame* (*)(const SharedRoom& room, const PresenceEntry& who,
                                                   bool joined);

struct JoinOptions {
  bool presence = false;                        // receive presence events of this room
  bool member_list = true;                      // with presence: JoinResult.members is filled
  PresenceFormatter presence_events = nullptr;  // how this room announces joins and leaves
  std::optional<uint64_t> since;                // replay every recorded message with seq > since
  size_t replay = 0;                            // or: replay the last N messages
  Identity identity;                            // shown to others in presence lists
  SnapshotFormatter snapshot = nullptr;  // set: JoinResult::snapshot instead of JoinResult::state
};

// What a joiner gets back, on its own core, once the home core has added it.
struct JoinResult {
  uint64_t seq = 0;                    // the room's sequence number at the time of the join
  std::vector<PresenceEntry> members;  // filled when presence was asked
  std::vector<std::pair<std::string, std::string>> state;  // retained state snapshot
  std::vector<engine::FrameRef> replay;                    // event frames, oldest first
  std::vector<engine::FrameRef> snapshot;                  // JoinOptions::snapshot's frames
};

using JoinCallback = std::function<void(websocket::Session&, JoinResult&)>;

enum class JoinStatus : uint8_t {
  kJoined,         // on its way: the callback runs once the join is in effect
  kAlreadyJoined,  // s is in the room already (nothing is called)
  kRoomLimit,      // the room does not exist and [hub] max_rooms rooms do
  kTooManyRooms,   // s is in [hub] max_rooms_per_connection rooms already
};

// How a retained-state change is delivered (see Hub::set_state).
struct StateOptions {
  bool echo = true;  // false: the event does not go to the writer
  // Persistent rooms under strict durability normally deliver a change only after its commit;
  // true delivers at once and writes behind (for high-rate, last-value-wins streams). Use one
  // mode per key: a write-behind could otherwise be applied before an earlier strict write.
  bool write_behind = false;
  engine::SharedFrame* event = nullptr;       // the event, already encoded: used instead of the
                                              // formatter (not sent if a delete finds nothing)
  engine::SharedFrame* reply_ok = nullptr;    // to the writer once the change is in effect
  engine::SharedFrame* reply_fail = nullptr;  // to the writer if the store refused it
  // Limits, checked on the home core in order with the room's other writes (0: no limit). A
  // set of a key the room does not have is refused when the room already has `max_keys` keys
  // starting with the key's first `key_prefix` bytes (writes still waiting for their commit
  // count as done); replacing a key that is there always passes. A set whose value is over
  // `max_value_bytes` is refused. Refused: nothing changes, no event, and the writer gets
  // `reply_refused` (key limit) or `reply_too_large` (value size); deletes are never refused.
  uint32_t max_keys = 0;
  uint16_t key_prefix = 0;
  size_t max_value_bytes = 0;
  engine::SharedFrame* reply_refused = nullptr;
  engine::SharedFrame* reply_too_large = nullptr;
};

class Hub final : public websocket::LoopHooks {
 public:
  Hub(HubSystem& system, int core);
  ~Hub() override;
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  int core() const { return core_; }
  HubSystem& system() { return system_; }
  websocket::Worker& worker() const { return *worker_; }
  void attach_worker(websocket::Worker* w) { worker_ = w; }

  // ---- direct rooms (raw) ----
  // Adds s to the room on this core and marks the core as having members. Empty if the room
  // would be new and the room limit is reached.
  RoomRef join_direct(websocket::Session& s, std::string_view room);
  void leave_direct(websocket::Session& s, SharedRoom* room);
  // Sends `frame` (already encoded) to every member of the room on every core, except `exclude`.
  // `origin` (may be null) is the session whose input caused this; it is paused if a mailbox ring
  // is full, so backpressure reaches the producer instead of growing memory.
  void fanout_direct(SharedRoom* room, engine::SharedFrame* frame, uint64_t exclude,
                     websocket::Session* origin = nullptr);
  // A raw-room frame that arrived from another node: to this node's members only. Call on the
  // room's home core (the cluster bus hands arrivals there, keeping each publisher's order).
  void fanout_from_cluster(SharedRoom* room, engine::SharedFrame* frame);

  // ---- sequenced rooms ----
  // Joins through the room's home core; `done` runs on this core when the join is in effect
  // (not at all if the session is gone by then). Anything but kJoined calls nothing. Until then
  // the session's input is held: a later message (a publish, a ping) is handled only after the
  // join, so neither its effect nor its reply overtakes the join's (the seeds are sequential).
  JoinStatus join(websocket::Session& s, std::string_view room, JoinOptions opts,
                  JoinCallback done);
  // False if s is not in the room.
  bool leave(websocket::Session& s, std::string_view room);
  // The room if s has joined it (join acknowledged), else nullptr.
  SharedRoom* joined_room(const websocket::Session& s, std::string_view room) const;
  // Rooms s belongs to, in join order.
  std::vector<SharedRoom*> rooms_of(const websocket::Session& s) const;
  // Publishes `payload` (the raw bytes to record) to a joined room: the home core assigns the
  // sequence number, records it (unless record is false) and sends formatter(room, record) to
  // every member (except the sender when echo is false). `user` is recorded as the sender's name.
  // `reply_ok` (if not null) goes to the publisher once the message is in effect, `reply_fail`
  // if the store refuses it: both in the profile's own shape. A publish that can be answered
  // (a reply, or the sender's own copy with echo) holds the session's input (ordered, see
  // Worker::hold_ordered) until that is sent, so a later message's reply never overtakes it; the
  // same goes for set_state's replies. A profile that lets pipelined writes pass gives them an
  // order_key.
  void publish(websocket::Session& s, SharedRoom* room, std::span<const uint8_t> payload,
               std::string_view user, EventFormatter formatter, bool echo, bool record = true,
               engine::SharedFrame* reply_ok = nullptr, engine::SharedFrame* reply_fail = nullptr);
  // Retained state: set (value = JSON text) or delete (value = nullopt) a key, then send
  // formatter(...) (or opts.event) to every member. Runs on the home core, ordered with joins,
  // publishes and broadcasts of the room. The writer need not be a member. Deleting a key that
  // is not there changes and sends nothing (reply_ok still goes out). No allocation per call
  // once warm unless the room is persistent or the key is new.
  void set_state(websocket::Session& s, SharedRoom* room, std::string_view key,
                 std::optional<std::string_view> value, StateFormatter formatter,
                 const StateOptions& opts);
  void set_state(websocket::Session& s, SharedRoom* room, std::string key,
                 std::optional<std::string> value, StateFormatter formatter,
                 engine::SharedFrame* reply_ok = nullptr,
                 engine::SharedFrame* reply_fail = nullptr) {
    StateOptions opts;
    opts.reply_ok = reply_ok;
    opts.reply_fail = reply_fail;
    set_state(s, room, std::string_view(key),
              value ? std::optional<std::string_view>(*value) : std::nullopt, formatter, opts);
  }
  // Sends an encoded frame to every member of a sequenced room (except s when echo is false),
  // through the home core: ordered with the room's joins and state changes, not recorded. The
  // sender need not be a member.
  void broadcast(websocket::Session& s, SharedRoom* room, engine::SharedFrame* frame, bool echo);
  // Reads the room on its home core and runs `fn` there; `reply` gets the result on this core.
  void query(SharedRoom* room, std::function<std::string(SharedRoom&)> fn,
             std::function<void(std::string)> reply);
  // Replaces s's presence identity in the room (its place in the member list is kept), then sends
  // `announce` (if not null) to every member that receives presence events, s included. Runs on
  // the home core, in order with the room's joins, leaves and publishes; nothing if s has left.
  void set_identity(websocket::Session& s, SharedRoom* room, Identity identity,
                    engine::SharedFrame* announce = nullptr);

  // ---- server API ----
  // Publishes `payload` to a sequenced room for a sender that is not a session of the room (the
  // server API): the same sequencing, history and durability as publish(). Call on the room's
  // home core (post there first); `done` runs on it once the message is in effect, with its
  // sequence number, or with nullopt if the store refused it.
  void publish_at_home(SharedRoom* room, std::span<const uint8_t> payload, std::string_view user,
                       uint64_t sender, EventFormatter formatter,
                       std::function<void(std::optional<uint64_t>)> done);
  // Each room with members on this core and how many (raw and sequenced alike).
  template <typename Fn>
  void for_each_local_room(Fn&& fn) const {
    for (const auto& [room, lr] : local_) {
      size_t n = 0;
      for (const auto& m : lr.members) n += m.session != nullptr;
      if (n) fn(*room, n);
    }
  }

  // ---- cluster ----
  // What the bus hands this home core for a room (see ClusterBus); `frame` may be null.
  void cluster_arrival(ClusterArrival kind, SharedRoom* room, engine::SharedFrame* frame,
                       ClusterReceipt receipt = {});

  // ---- direct sends ----
  // Delivers an encoded frame to a session on any core; dropped if the session is gone.
  void send_to(uint64_t session_id, engine::SharedFrame* frame);
  static int core_of(uint64_t session_id) { return static_cast<int>(session_id >> 48); }

  // ---- cross-core work ----
  void post(int core, Task* task);
  template <typename Fn>
  void post_fn(int core, Fn&& fn);

  // Leaves every room; call from the profile's on_close.
  void session_closed(websocket::Session& s);

  // LoopHooks.
  void on_pass() override;
  bool prepare_sleep() override;
  void end_sleep() override;

  // The busiest rooms on this core (by members and by messages), refreshed once a second while
  // someone asked within the last few seconds (want_room_samples); any thread.
  std::vector<RoomSample> room_samples() const;
  // Envelopes waiting in the mailbox for this core; any thread, approximate.
  size_t mailbox_depth() const;

  // Tests and /health.
  size_t local_rooms() const { return local_.size(); }
  size_t pinned_rooms() const { return pinned_.size(); }

 private:
  struct LocalMember {
    websocket::Session* session;
    bool presence;
  };
  struct LocalRoom {
    std::vector<LocalMember> members;
    uint64_t delivered = 0;  // frames delivered here (for the dashboard's top rooms)
    int iterating = 0;       // deliveries in progress: removals only null the entry
    bool has_holes = false;
  };
  struct Membership {
    RoomRef room;
    bool direct = false;       // raw room
    bool acked = false;        // sequenced: join in effect
    bool holds_input = false;  // sequenced: the join holds the session's input until acked
    bool presence = false;
  };
  friend class HubSystem;
  friend struct JoinTask;
  friend struct JoinedTask;
  friend struct LeaveTask;
  friend struct HubClusterAccess;

  void send(int core, const Envelope& e, websocket::Session* origin = nullptr);
  // Holds s's input until the write being sent is in effect (see publish, set_state): a durable
  // one until its commit, and one that will be answered (`answered`) until its answer is sent.
  // `key` is the ordered hold's key (see MessageHandler::order_key): the room, or for write-behind
  // state (applied at once, so it may overtake a write waiting for its commit) &room->state().
  bool hold_for_write(websocket::Session& s, SharedRoom* room, size_t bytes, bool answered,
                      const void* key);
  void release_hold(uint64_t session, size_t bytes);
  void retry_overflow();
  void dispatch(Envelope& e);
  void deliver_local(SharedRoom* room, engine::SharedFrame* frame, uint64_t exclude,
                     bool presence_only);
  // start_ns: when what is fanned out was received (0: now), for the fan-out latency sample.
  // [cluster] sequenced rooms (hub_cluster.cpp): each change goes out as an event and takes
  // effect when it comes back in the room's cluster-wide order.
  void cluster_join(std::unique_ptr<JoinTask> task);
  void cluster_leave(SharedRoom* room, uint64_t session);
  void cluster_publish(Envelope& e);
  void cluster_publish_at_home(SharedRoom* room, std::span<const uint8_t> payload,
                               std::string_view user, EventFormatter formatter,
                               std::function<void(std::optional<uint64_t>)> done);
  void cluster_state(Envelope& e);
  void cluster_broadcast(Envelope& e);
  void cluster_identity(SharedRoom* room, uint64_t session, Identity identity,
                        engine::FrameRef announce);
  void remove_presence(SharedRoom* room, uint64_t session);
  // Runs `run` on the room's mirror: at once if it is live (or Redis is unreachable), else
  // once its snapshot is in.
  void cluster_query(SharedRoom* room, std::function<void()> run);
  // This core's last member of a room is gone: clears its member bit (raw rooms).
  void direct_room_left(SharedRoom* room);
  void fanout_direct_here(SharedRoom* room, engine::SharedFrame* frame, uint64_t exclude,
                          websocket::Session* origin);
  void fanout_home(SharedRoom* room, engine::SharedFrame* frame, uint64_t exclude,
                   bool presence_only, int64_t start_ns = 0);
  void home_publish(Envelope& e);
  void commit_publish(SharedRoom* room, HistoryRecord rec, bool echo, bool record,
                      int64_t received_ns = 0);
  void home_state(Envelope& e);
  void apply_state(SharedRoom* room, std::string_view key, std::optional<std::string_view> value,
                   uint64_t order, engine::SharedFrame* event, StateFormatter formatter,
                   uint64_t sender, bool echo, engine::SharedFrame* reply_ok);
  void add_local(SharedRoom* room, websocket::Session& s, bool presence);
  void remove_local(SharedRoom* room, websocket::Session& s);
  Membership* find_membership(uint64_t session, const SharedRoom* room);
  Membership* find_membership(uint64_t session, std::string_view room);
  // Home core: a room with content keeps itself alive (pin) until it has none (unpin; may free
  // it at once, so the caller must not touch the room after unpin unless it holds a reference).
  void pin(SharedRoom* room);
  void unpin(SharedRoom* room);
  // Home core: pinned rooms whose content has nothing to keep it any more.
  void maybe_unpin(SharedRoom* room);
  void expire_history();
  // Starts tracking frame's fan-out latency if this core has not sampled one this millisecond.
  // start_ns: when the fan-out's message was received (0: now).
  bool sample_fanout(engine::SharedFrame* frame, int64_t start_ns = 0);
  void refresh_room_samples();

  HubSystem& system_;
  int core_;
  websocket::Worker* worker_ = nullptr;
  std::unordered_map<SharedRoom*, LocalRoom> local_;
  std::unordered_map<uint64_t, std::vector<Membership>> memberships_;
  std::vector<std::deque<Envelope>> overflow_;  // per target core, when its ring is full
  size_t overflow_count_ = 0;
  std::deque<Envelope> self_queue_;  // envelopes for this core, run in on_pass
  std::vector<uint64_t> paused_;     // sessions whose reads wait for overflow to drain
  uint64_t touched_ = 0;             // cores sent to during this pass
  std::vector<SharedRoom*> pinned_;  // rooms homed here that hold a self-reference
  size_t expire_cursor_ = 0;         // where the next history expiry sweep resumes
  int64_t next_expiry_ms_ = 0;
  int64_t last_fanout_sample_ms_ = -1;
  int64_t next_room_sample_ms_ = 0;
  std::vector<std::pair<const SharedRoom*, const LocalRoom*>> sample_scratch_;
  mutable std::mutex samples_mutex_;  // taken once a second by this core and by readers
  std::vector<RoomSample> samples_;
};

class HubSystem {
 public:
  HubSystem(int cores, size_t default_history, std::vector<HistoryRule> rules = {});
  // Where history and retained state are kept (default: memory only). Set before workers start.
  void set_store(RoomStore* store) { store_ = store; }
  RoomStore& store() { return *store_; }
  // The other nodes ([cluster]); null on a single node. Set before workers start.
  void set_cluster(ClusterBus* bus) { cluster_ = bus; }
  ClusterBus* cluster() const { return cluster_; }
  ~HubSystem();
  int cores() const { return static_cast<int>(hubs_.size()); }
  Hub& hub(int core) { return *hubs_[core]; }
  Hub& hub_of(const websocket::Session& s) { return *hubs_[s.worker().index()]; }
  RoomRegistry& rooms() { return rooms_; }
  EndpointRegistry& endpoints() { return endpoints_; }
  // Live (SIGHUP): applies to rooms and joins from now on.
  void set_limits(const RoomLimits& limits);
  size_t max_rooms_per_connection() const {
    return max_rooms_per_connection_.load(std::memory_order_relaxed);
  }
  int64_t history_ttl_ms() const { return history_ttl_ms_.load(std::memory_order_relaxed); }
  size_t max_state_keys() const { return max_state_keys_.load(std::memory_order_relaxed); }
  size_t max_state_value_bytes() const {
    return max_state_value_bytes_.load(std::memory_order_relaxed);
  }
  engine::Mailbox<Envelope>& mailbox() { return mailbox_; }
  const engine::Mailbox<Envelope>& mailbox() const { return mailbox_; }
  // The dashboard reads room samples: hubs build them only while this is recent.
  void want_room_samples(int64_t now_ms) {
    samples_wanted_ms_.store(now_ms, std::memory_order_relaxed);
  }
  int64_t room_samples_wanted_ms() const {
    return samples_wanted_ms_.load(std::memory_order_relaxed);
  }

 private:
  RoomRegistry rooms_;
  EndpointRegistry endpoints_;
  engine::Mailbox<Envelope> mailbox_;
  std::vector<std::unique_ptr<Hub>> hubs_;
  MemoryRoomStore memory_store_;
  RoomStore* store_ = &memory_store_;
  ClusterBus* cluster_ = nullptr;
  std::atomic<size_t> max_rooms_per_connection_{RoomLimits{}.max_rooms_per_connection};
  std::atomic<int64_t> history_ttl_ms_{RoomLimits{}.history_ttl_ms};
  std::atomic<size_t> max_state_keys_{RoomLimits{}.max_state_keys};
  std::atomic<size_t> max_state_value_bytes_{RoomLimits{}.max_state_value_bytes};
  std::atomic<int64_t> samples_wanted_ms_{-1};
};

template <typename Fn>
void Hub::post_fn(int core, Fn&& fn) {
  struct FnTask final : Task {
    explicit FnTask(Fn&& f) : f(std::forward<Fn>(f)) {}
    void run(Hub& h) override { f(h); }
    std::decay_t<Fn> f;
  };
  post(core, new FnTask(std::forward<Fn>(fn)));
}

}  // namespace ringcast::hub

// Private to the hub: a sequenced room's mirror state in a cluster and the wire format of its
// events (hub_cluster.cpp sends them, hub_cluster_apply.cpp applies what comes back).
#pragma once

#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "membership_tasks.h"
#include "ringcast/hub/hub.h"
#include "ringcast/websocket/frame_encoder.h"

namespace ringcast::hub {

// An event body starts with who caused it (member: 16 hex digits of the node instance, 16 of
// the session) and the home core's token for it (8 hex digits); the rest depends on the kind.
constexpr size_t kMemberLen = 32;
constexpr size_t kBodyHead = kMemberLen + 8;

enum EventFlags : uint8_t { kEcho = 1, kHasEvent = 2 };

struct ClusterRoom {
  enum class Phase : uint8_t { kOff, kLoading, kLive };
  struct Op {
    uint32_t token = 0;
    char kind = 0;
    uint64_t session = 0;
    engine::FrameRef ok, fail, refused, frame;
    bool held = false;
    size_t bytes = 0;
    int64_t received_ns = 0;
    std::function<void(std::optional<uint64_t>)> done;  // server API publishes
    std::unique_ptr<JoinTask> join;
    uint64_t ev = 0, n = 0;  // where Redis put it, once its receipt came
  };
  Phase phase = Phase::kOff;
  bool stale = false;  // the connection dropped since the last snapshot
  uint64_t ev = 0;     // the last event applied
  uint64_t seq_at_loss = 0;
  uint32_t next_token = 1;
  RoomRef self;                                // keeps the room while mirrored
  std::vector<engine::FrameRef> early;         // events that came before the snapshot
  std::deque<Op> ops;                          // this core's events on their way, in send order
  std::vector<std::function<void()>> queries;  // reads waiting for the snapshot
  // This node's members that left but whose leave has not come back yet: if Redis lost it (it
  // went down with the leave on its way), the next snapshot still lists them and the leave is
  // sent again, and they are never re-announced.
  std::vector<uint64_t> leaving;
  // Joins waiting for the mirror to be live: sent after the snapshot, so a join is never inside
  // the snapshot it waits for (its place in the order would be lost, and with it the presence
  // events of members who joined after it).
  std::vector<std::unique_ptr<JoinTask>> waiting_joins;
};

// The hub internals the cluster path uses (a friend of Hub).
struct HubClusterAccess {
  static void commit_publish(Hub& h, SharedRoom* r, HistoryRecord rec, bool echo, bool record,
                             int64_t ns) {
    h.commit_publish(r, std::move(rec), echo, record, ns);
  }
  static void fanout_home(Hub& h, SharedRoom* r, engine::SharedFrame* f, uint64_t exclude,
                          bool presence_only) {
    h.fanout_home(r, f, exclude, presence_only);
  }
  static void apply_state(Hub& h, SharedRoom* r, std::string_view key,
                          std::optional<std::string_view> value, uint64_t order,
                          engine::SharedFrame* event, StateFormatter f, uint64_t sender, bool echo,
                          engine::SharedFrame* ok) {
    h.apply_state(r, key, value, order, event, f, sender, echo, ok);
  }
  static void release_hold(Hub& h, uint64_t session, size_t bytes) {
    h.release_hold(session, bytes);
  }
  static void remove_presence(Hub& h, SharedRoom* r, uint64_t session) {
    h.remove_presence(r, session);
  }
  static void pin(Hub& h, SharedRoom* r) {
    if (!r->pinned) h.pin(r);
  }
  static void unpin(Hub& h, SharedRoom* r) {
    if (r->pinned) h.unpin(r);
  }
};

namespace cluster_wire {

inline void put_hex(std::string& out, uint64_t v, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; --i) out.push_back(kHex[(v >> (i * 4)) & 15]);
}

inline uint64_t get_hex(std::string_view s) {
  uint64_t v = 0;
  for (char c : s) v = v * 16 + static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
  return v;
}

template <typename T>
inline void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

inline void put_str16(std::string& out, std::string_view s) {
  uint16_t n = static_cast<uint16_t>(std::min<size_t>(s.size(), 65535));
  put(out, n);
  out.append(s.substr(0, n));
}

// Reads what put()/put_str16() wrote; a short read leaves ok false.
struct Reader {
  std::string_view s;
  bool ok = true;
  template <typename T>
  T get() {
    T v{};
    if (s.size() < sizeof v) {
      ok = false;
      return v;
    }
    std::memcpy(&v, s.data(), sizeof v);
    s.remove_prefix(sizeof v);
    return v;
  }
  std::string_view bytes(size_t n) {
    if (s.size() < n) {
      ok = false;
      n = s.size();
    }
    std::string_view r = s.substr(0, n);
    s.remove_prefix(n);
    return r;
  }
  std::string_view str16() { return bytes(get<uint16_t>()); }
  std::string_view str32() { return bytes(get<uint32_t>()); }
};

inline void put_identity(std::string& out, const Identity& id) {
  put_str16(out, id.user_id);
  put_str16(out, id.nickname);
  put_str16(out, id.role);
}

inline Identity get_identity(Reader& r) {
  Identity id;
  id.user_id = std::string(r.str16());
  id.nickname = std::string(r.str16());
  id.role = std::string(r.str16());
  return id;
}

// The message payload of an encoded frame, with its opcode (0: none).
inline void put_frame(std::string& out, const engine::SharedFrame* f) {
  if (!f || !f->message_opcode()) {
    out.push_back(0);
    return;
  }
  out.push_back(static_cast<char>(f->message_opcode()));
  auto p = f->message_payload();
  out.append(reinterpret_cast<const char*>(p.data()), p.size());
}

inline engine::SharedFrame* get_frame(std::string_view rest) {
  if (rest.empty() || rest[0] == 0) return nullptr;
  auto op = static_cast<websocket::Opcode>(rest[0]);
  rest.remove_prefix(1);
  return websocket::encode_frame(op, {reinterpret_cast<const uint8_t*>(rest.data()), rest.size()});
}

// The session id a member of another node goes by here: outside every core's range (so sends
// to it go nowhere), the same for every event of that member.
inline uint64_t remote_session(std::string_view member) {
  return remote_session_id(member);
}

inline int64_t wall_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace cluster_wire

using namespace cluster_wire;

// An event's body and the script's bookkeeping fields (see RedisBus::send_event).
struct EventArgs {
  std::string body, field, value;
};

// An event as Redis published it: "<kind><ev>,<n>,<member><token><rest>".
struct Event {
  char kind = 0;
  uint64_t ev = 0;
  uint64_t n = 0;  // a message's sequence number, a new state key's order
  std::string_view member;
  uint64_t instance = 0;
  uint64_t session = 0;
  uint32_t token = 0;
  std::string_view rest;
};

bool parse_event(std::string_view msg, Event& e);

ClusterRoom& cluster_of(SharedRoom* room);
std::string member_of(uint64_t instance, uint64_t session);
// Starts mirroring the room unless it is on (its events then come back to this node).
void activate(Hub& hub, ClusterBus& bus, SharedRoom* room);
// Stops mirroring a room this node no longer needs.
void maybe_deactivate(Hub& hub, ClusterBus& bus, SharedRoom* room);
// Sends one event (queuing `op`, if given, to be finished when it comes back); false if Redis is
// not reachable (nothing queued).
bool send_event(Hub& hub, ClusterBus& bus, SharedRoom* room, char kind, EventArgs& a,
                ClusterRoom::Op* op, uint64_t session);

}  // namespace ringcast::hub

// The hub's link to the other nodes of a cluster (implemented over Redis by cluster::RedisBus).
// Set only when [cluster] is configured: a single node never calls here.
//
// Raw rooms: frames go out as they are published and come back from other nodes (fanout).
// Sequenced rooms: the home core sends each change of the room (publish, join, leave, state...)
// as an event; Redis orders the events of a room for all nodes, keeps the room's sequence number,
// history, presence and state, and every node that mirrors the room applies the events in that
// order (docs/cluster.md).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <vector>

#include "ringcast/engine/shared_frame.h"

namespace ringcast::hub {

class Hub;
class SharedRoom;

// What the bus hands a room's home core.
enum class ClusterArrival : uint8_t {
  kDirect,        // a raw-room frame from another node
  kEvent,         // a sequenced room's event, in the room's order ("<kind><ev>,<n>,<body>")
  kSnapshot,      // the room as Redis has it, to start (or restart) the mirror
  kDone,          // Redis applied an event of this node (ev 0: it changed nothing)
  kFailed,        // an event of this node was refused, or its outcome is unknown
  kLost,          // the connection dropped: the mirror is stale until the next snapshot
  kSend,          // a frame another node sent to session `receipt.n` here (no room)
  kAllocated,     // the directory gave session `receipt.ev` the id `receipt.n` (0: refused)
  kJournalReply,  // journal `receipt.token` answered session `receipt.n`'s call (ev 1: refused)
  kJournalNote,   // journal `receipt.token` has a note for session `receipt.n` (journal_note)
  kQuery,         // another node asks this one (ClusterQueries::cluster_query)
  kQueryDone,     // the answers to query `receipt.n`, of `receipt.ev` nodes asked
};

// The id a member of another node goes by on this node (in presence lists, as a message's
// sender): outside every core's range, the same for every event of that member. `member` is the
// node instance and session as 32 hex digits. Sends to it go through that node's channel.
inline uint64_t remote_session_id(std::string_view member) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (char c : member) {
    h ^= static_cast<uint8_t>(c);
    h *= 1099511628211ull;
  }
  return (uint64_t{0xFFFF} << 48) | (h & ((uint64_t{1} << 48) - 1));
}
inline bool is_remote_session(uint64_t id) {
  return (id >> 48) == 0xFFFF;
}

// kDone / kFailed: which event of the home core (its token), and where Redis put it.
struct ClusterReceipt {
  uint32_t token = 0;
  uint64_t ev = 0;  // the event's place in the room's order; 0: it changed nothing
  uint64_t n = 0;   // a message's sequence number
};

// The bridge profile's cluster-wide numbered clients and single bridge (docs/cluster.md), kept in
// Redis; the bus tells the profile every change. Sessions are local ids or remote_session_id()s.
class ClusterDirectory {
 public:
  virtual ~ClusterDirectory() = default;
  // On the bus thread: `id` belongs to `session` now (0: it is free again).
  virtual void directory_id(uint64_t id, uint64_t session) = 0;
  // On the bus thread: the current bridge (0: none).
  virtual void directory_owner(uint64_t session) = 0;
  // On the bus thread: forget every id (a full listing follows).
  virtual void directory_reset() = 0;
  // On the session's core: its allocation came back (id 0: refused, Redis unreachable).
  virtual void directory_allocated(Hub& hub, uint64_t session, uint64_t id) = 0;
};

class ClusterBus;

// A profile's own cluster-wide directory (the relayer's booths and scanners), kept in Redis by the
// profile's Lua script and mirrored by every node. The script changes the directory atomically and
// emits each change as a record; every node applies the records in the one order Redis gave them
// (a gap makes it reload the whole directory). A caller's answer reaches its core only once this
// node's mirror shows the call's change, so what a session does next sees it.
//
// The script is the body of a function; RedisBus wraps it (docs/cluster.md "Journals"). It sees
// `base` (its key prefix: every key it uses starts with it), `op` (ARGV[1]), `member` (ARGV[2]:
// the caller as 32 hex digits, or a dead node's instance as 16 for op 'x'), ARGV[3..] (the
// call's fields), `emit(record)`, and `f(s)` (a field: "<length>:<s>"). It returns a string
// (the answer). Two ops are the bus's own: 's' returns the whole directory as a list of records
// (applied after journal_reset) and 'x' removes every member of a dead node, emitting a record
// for each change.
// Reads a record's next field (written by the script's f(): "<length>:<bytes>") off `rest`.
inline bool next_journal_field(std::string_view& rest, std::string_view& out) {
  size_t colon = rest.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 10) return false;
  size_t n = 0;
  for (char c : rest.substr(0, colon)) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<size_t>(c - '0');
  }
  if (rest.size() - colon - 1 < n) return false;
  out = rest.substr(colon + 1, n);
  rest.remove_prefix(colon + 1 + n);
  return true;
}

class ClusterJournal {
 public:
  virtual ~ClusterJournal() = default;
  virtual std::string_view journal_name() const = 0;  // in keys and channels: [a-z]+
  virtual const char* journal_script() const = 0;
  // On the bus thread, in order: one record. `listing`: part of a full listing (no one is told).
  virtual void journal_record(ClusterBus& bus, std::string_view record, bool listing) = 0;
  // On the bus thread: a full listing follows (begin) or has been applied (end).
  virtual void journal_reset(ClusterBus& bus, bool begin) = 0;
  // On the session's core: the answer to its call; refused: Redis was unreachable, or the
  // connection dropped before the answer (the call may or may not have been applied).
  virtual void journal_reply(Hub& hub, uint64_t session, std::string_view answer, bool refused) = 0;
  // On the session's core: a note the profile sent it from the bus thread (note()).
  virtual void journal_note(Hub& hub, uint64_t session, std::string_view note) = 0;
};

// Questions to every other node, for the server API's cluster-wide answers (the rooms of the
// cluster, a disconnect wherever the session is).
class ClusterQueries {
 public:
  virtual ~ClusterQueries() = default;
  // On core 0: node `from` (its instance, 16 hex digits) asks `query`; the answer goes back with
  // ClusterBus::query_answer.
  virtual void cluster_query(Hub& hub, std::string_view from, uint64_t ticket,
                             std::string_view query) = 0;
  // On the asking core: the answers that came, from `asked` nodes asked (fewer answers: some did
  // not answer within the bus's time limit, or Redis was unreachable).
  virtual void cluster_answers(Hub& hub, uint64_t ticket,
                               const std::vector<std::string_view>& answers, size_t asked) = 0;
};

class ClusterBus {
 public:
  virtual ~ClusterBus() = default;
  // This process's random id among the nodes (events carry it: a node knows its own).
  virtual uint64_t instance() const = 0;
  // True while Redis is reachable (any thread).
  virtual bool connected() const = 0;
  // The id a session of this node goes by on the other nodes (see remote_session_id).
  uint64_t id_elsewhere(uint64_t session) const {
    static constexpr char kHex[] = "0123456789abcdef";
    char member[32];
    for (int i = 0; i < 16; ++i) {
      member[i] = kHex[(instance() >> ((15 - i) * 4)) & 15];
      member[16 + i] = kHex[(session >> ((15 - i) * 4)) & 15];
    }
    return remote_session_id({member, 32});
  }
  // The id a member (32 hex digits: node instance and session) goes by on this node: the session
  // itself if it is this node's, else its remote_session_id().
  uint64_t id_of_member(std::string_view member) const {
    if (member.size() != 32) return 0;
    uint64_t inst = 0, session = 0;
    for (size_t i = 0; i < 32; ++i) {
      char c = member[i];
      uint64_t d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : 16;
      if (d == 16) return 0;
      uint64_t& v = i < 16 ? inst : session;
      v = v * 16 + d;
    }
    return inst == instance() ? session : remote_session_id(member);
  }
  // On `core`'s loop: `frame` (encoded as sent to clients) also goes to the room's members on
  // the other nodes. Never blocks; past the outbound cap it is dropped and counted.
  virtual void publish_direct(int core, SharedRoom& room, engine::SharedFrame* frame) = 0;
  // On `core`'s loop: this core gained its first (active) or lost its last (inactive) local
  // member of a raw room. The node listens to a room only while some core has members.
  virtual void room_members(int core, SharedRoom& room, bool active) = 0;
  // On the room's home core: start (on) or stop mirroring a sequenced room. Starting subscribes
  // and then delivers a kSnapshot; events that follow arrive as kEvent.
  virtual void mirror(int core, SharedRoom& room, bool on) = 0;
  // On the room's home core, after kLost: the room's numbers this node has delivered up to. The
  // next snapshot raises Redis's to them if Redis lost the room (restarted without its data).
  virtual void mirror_floor(int core, SharedRoom& room, uint64_t seq, uint64_t ev) = 0;
  // On the room's home core: one event for Redis's event script (`args`: length-prefixed
  // fields, see RedisBus). False if Redis is not reachable now: the event is refused at once.
  virtual bool send_event(int core, SharedRoom& room, engine::SharedFrame* args) = 0;
  // On `core`'s loop: `frame` to a member of another node (an id from remote_session_id).
  // Dropped if that member is unknown here or Redis is unreachable.
  virtual void send_remote(int core, uint64_t session, engine::SharedFrame* frame) = 0;
  // The directory (set before the bus starts; null: none is kept).
  virtual void set_directory(ClusterDirectory* d) = 0;
  virtual ClusterDirectory* directory() const = 0;
  // On `core`'s loop: directory changes, applied in Redis and announced to every node.
  // allocate: the smallest free id for `session` (answered through kAllocated); release: `id`
  // if `session` still holds it; owner: `session` is the bridge now (on) or no longer (off).
  virtual void directory_allocate(int core, uint64_t session) = 0;
  virtual void directory_release(int core, uint64_t id, uint64_t session) = 0;
  virtual void directory_owner(int core, uint64_t session, bool on) = 0;
  // Journals (set before the bus starts; at most 255).
  virtual void add_journal(ClusterJournal* j) = 0;
  virtual ClusterJournal* journal(uint32_t index) const = 0;
  // On `core`'s loop: runs the journal's script with op `op` for `session` and `fields` (at most
  // 4). `reply`: the answer goes back to the session (journal_reply); else nobody waits for it
  // and, if Redis is unreachable, the call is kept and made once it is back (bounded).
  virtual void journal_call(int core, ClusterJournal& j, char op, uint64_t session,
                            std::initializer_list<std::string_view> fields, bool reply) = 0;
  // On the bus thread, from journal_record/journal_reset only: the id a member goes by here (a
  // local session's id, or remote_session_id()); a note or a frame for a session of this node,
  // handed to its core in order with everything else the bus hands it.
  virtual uint64_t member_session(std::string_view member) = 0;
  virtual void note(ClusterJournal& j, uint64_t session, std::string_view note) = 0;
  virtual void send_local(uint64_t session, engine::SharedFrame* frame) = 0;
  // The server API's questions to the other nodes (set before the bus starts).
  virtual void set_queries(ClusterQueries* q) = 0;
  virtual ClusterQueries* queries() const = 0;
  // On `core`'s loop: asks every other live node; the answers come back on `core` within
  // kQueryTimeoutMs (cluster_answers), `ticket` naming them.
  virtual void query(int core, uint64_t ticket, std::string_view query) = 0;
  // On `core`'s loop: this node's answer to `from`'s query `ticket`.
  virtual void query_answer(int core, std::string_view from, uint64_t ticket,
                            std::string_view answer) = 0;
  static constexpr int64_t kQueryTimeoutMs = 2000;
  // On `core`'s loop, once per pass: hands over what arrived for rooms homed on this core, and
  // wakes the bus if this pass gave it work.
  virtual void poll(int core, Hub& hub) = 0;
  // True if `core` has arrivals waiting (its loop must not sleep).
  virtual bool has_arrivals(int core) const = 0;
};

}  // namespace ringcast::hub

// The bus thread of cluster::RedisBus (private to src/cluster): its connections, the rooms it
// listens to, and what is waiting on Redis's answers.
#pragma once

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <sys/random.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ringcast/cluster/redis_bus.h"
#include "ringcast/cluster/redis_scripts.h"
#include "ringcast/hub/hub.h"

namespace ringcast::cluster {

namespace bus_detail {

inline constexpr size_t kLaneCapacity = 8192;
inline constexpr size_t kArrivalsPerPass = 4096;  // per core per loop pass, so I/O is not starved
inline constexpr uint8_t kKindDirect = 1;         // a raw-room frame
inline constexpr size_t kHeader = 1 + 8 + 1;      // kind, sender instance, WebSocket opcode
inline constexpr int64_t kHeartbeatMs = 1000;
inline constexpr int64_t kMaxBackoffMs = 5000;
// Unsent command bytes past which the bus stops taking frames off the rings.
inline constexpr size_t kMaxCommandBuffer = size_t{8} << 20;

inline int64_t mono_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline uint64_t random_u64() {
  uint64_t v = 0;
  if (getrandom(&v, sizeof v, 0) != static_cast<ssize_t>(sizeof v))
    v = static_cast<uint64_t>(mono_ms()) * 0x9E3779B97F4A7C15ull ^ static_cast<uint64_t>(getpid());
  return v;
}

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

inline std::string_view reply_str(const redisReply* r) {
  return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
               r->type == REDIS_REPLY_ERROR)
             ? std::string_view(r->str, r->len)
             : std::string_view{};
}

// Appends one command to `c`: the fixed words, then `more` (at most 12 words in all).
inline void append_command(redisContext* c, std::span<const std::string_view> fixed,
                           std::span<const std::string_view> more) {
  const char* argv[12];
  size_t lens[12];
  size_t n = 0;
  for (auto part : {fixed, more})
    for (std::string_view a : part) {
      if (n == std::size(argv)) break;
      argv[n] = a.data();
      lens[n++] = a.size();
    }
  redisAppendCommandArgv(c, static_cast<int>(n), argv, lens);
}

}  // namespace bus_detail

using namespace bus_detail;

// ---- the bus thread -----------------------------------------------------------------------------

class RedisBus::Thread {
 public:
  explicit Thread(RedisBus& bus) : bus_(bus), stash_(bus.lanes_.size()) {
    channel_prefix_ = bus_.opts_.prefix + "{";
    nodes_key_ = bus_.opts_.prefix + "nodes";
    static constexpr char kHex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; --i) instance_hex_.push_back(kHex[(bus_.instance_ >> (i * 4)) & 15]);
    inst_rooms_key_ = bus_.opts_.prefix + "inst:" + instance_hex_ + ":rooms";
    own_channel_ = bus_.opts_.prefix + "inst:{" + instance_hex_ + "}";
    dir_channel_ = bus_.opts_.prefix + "dir:{bridge}";
    ctl_channel_ = bus_.opts_.prefix + "ctl:{nodes}";
    dir_keys_[0] = dir_channel_ + ":ids";
    dir_keys_[1] = dir_channel_ + ":free";
    dir_keys_[2] = dir_channel_ + ":next";
    dir_keys_[3] = dir_channel_ + ":owner";
    directory_sha_ = script_sha1(kDirectoryScript);
    for (hub::ClusterJournal* j : bus_.journals_) {
      Journal jl;
      jl.j = j;
      jl.base = bus_.opts_.prefix + "j:{" + std::string(j->journal_name()) + "}";
      jl.script = journal_script(j->journal_script());
      jl.sha = script_sha1(jl.script.c_str());
      journals_.push_back(std::move(jl));
    }
    heartbeat_sha_ = script_sha1(kHeartbeatScript);
    event_sha_ = script_sha1(kEventScript);
    snapshot_sha_ = script_sha1(kSnapshotScript);
  }
  ~Thread() {
    drop_connection(false);
    for (auto& [name, r] : rooms_) bus_.hubs_.rooms().release(r.room);
    for (auto& q : stash_)
      for (Item& it : q) bus_.release_item(it);
    for (Item& it : journal_retry_) bus_.release_item(it);
  }
  void run();

 private:
  struct Room {
    hub::SharedRoom* room = nullptr;       // counted reference, held while listed
    int members = 0;                       // raw room: cores with local members
    bool mirrored = false;                 // sequenced room: its home core mirrors it
    int in_flight = 0;                     // (un)subscribe commands without their reply yet
    bool subscribed = false;               // confirmed by Redis
    uint64_t seq_floor = 0, ev_floor = 0;  // see ClusterBus::mirror_floor
    bool wanted() const { return members > 0 || mirrored; }
  };
  enum class Pending : uint8_t {
    kAuth,
    kSelect,
    kScript,
    kPublish,
    kHeartbeat,
    kEvent,
    kSnapshot,
    kAllocate,        // a directory allocation: answered to `session`'s core
    kDirectory,       // any other directory change
    kListing,         // the directory's listing
    kJournal,         // a journal call (token: the journal)
    kJournalListing,  // a journal's listing (token: the journal)
  };
  struct PendingReply {
    Pending what;
    hub::SharedRoom* room = nullptr;  // kEvent, kSnapshot: counted reference
    uint32_t token = 0;               // kEvent: the home core's token; kJournal*: the journal
    uint64_t session = 0;             // kAllocate, kJournal
    // kJournal: the call (op | reply << 8, and its fields: a counted reference), made again
    // after a reconnect if nobody waits for its answer.
    uint64_t ev = 0;
    engine::SharedFrame* args = nullptr;
  };
  // A profile's journal (hub::ClusterJournal) on this node.
  struct Journal {
    hub::ClusterJournal* j = nullptr;
    std::string base, sha, script;
    uint64_t applied = 0;  // the last record applied to the mirror
    bool loaded = false;   // a listing has been applied since (re)subscribing
    bool listing_sent = false;
    std::vector<std::pair<uint64_t, std::string>> early;  // records before the listing came
    struct Answer {
      uint64_t ver, session;
      std::string text;
    };
    std::deque<Answer> answers;  // waiting for the mirror to show their change
  };

  bool connect();
  redisContext* open_one(std::string& err);
  // Frees both connections; tell: hand each mirrored room a kLost (its mirror is stale).
  void drop_connection(bool tell = true);
  // Hands an arrival (taking the room reference and the frame) to the room's home core.
  void to_core(hub::SharedRoom* room, engine::SharedFrame* frame, hub::ClusterArrival kind,
               uint32_t token = 0, uint64_t ev = 0, uint64_t n = 0);
  void send_snapshot(Room& r);
  void send_event(Item& it);
  void deliver_snapshot(hub::SharedRoom* room, redisReply* r);
  void fail(const std::string& why);
  void apply_control();
  void take_outbound();
  void heartbeat(int64_t now);
  void subscribe(std::string_view name, Room& r, bool on);
  bool write_out(redisContext* c);
  bool read_in(redisContext* c);
  void handle_cmd_reply(redisReply* r);
  // Parses what the subscription connection has read, until a core's ring is full.
  bool pump_sub();
  void handle_sub_reply(redisReply* r);
  void arrival(std::string_view channel, std::string_view payload);
  void flush_stash();
  void wake_cores();
  bool lanes_have_work() const;
  std::string& channel(std::string_view room) {
    channel_.assign(channel_prefix_);
    channel_.append(room);
    channel_.push_back('}');
    return channel_;
  }

  RedisBus& bus_;
  redisContext* cmd_ = nullptr;
  redisContext* sub_ = nullptr;
  bool ok_ = false;  // the first heartbeat since connecting was answered
  std::deque<PendingReply> pending_;
  std::unordered_map<std::string, Room, StringHash, std::equal_to<>> rooms_;
  std::vector<std::deque<Item>> stash_;  // per core: arrivals its full ring could not take
  size_t stashed_ = 0;
  uint64_t wake_mask_ = 0;
  int64_t next_attempt_ms_ = 0;
  int64_t backoff_ms_ = 0;
  int64_t next_heartbeat_ms_ = 0;
  uint64_t failed_attempts_ = 0;
  bool reported_down_ = false;  // "log it once": one line per outage, one when it ends
  std::string channel_prefix_, nodes_key_, channel_, payload_;
  std::string instance_hex_, inst_rooms_key_, heartbeat_sha_, event_sha_, snapshot_sha_;
  std::string keys_[7];
  std::string own_channel_;
  // What the subscription connection's replies answer, in order: "" for AUTH, else the channel
  // of an (un)subscribe (an error reply names no channel).
  std::deque<std::string> sub_sent_;
  int64_t heartbeat_sent_ms_ = 0;  // the oldest heartbeat still unanswered (0: none)
  bool was_member_ = false;  // this node was in the node set at its last heartbeat  // this node's
                             // channel: sends to its sessions from other nodes
  // Members of other nodes by the id they go by here (hub::remote_session_id), learnt from the
  // join events and snapshots that pass through; forgotten when they leave.
  std::unordered_map<uint64_t, std::string> remote_members_;
  void learn_members(std::string_view event);
  void to_lane(int core, Item item);
  void send_remote(Item& it);
  void deliver_send(std::string_view payload);
  // The bridge directory (bus_thread_directory.cpp).
  std::string dir_channel_, dir_keys_[4], directory_sha_;
  void directory_op(Item& it);
  // The directory script with its keys, then `args` (at most 3).
  void directory_command(std::initializer_list<std::string_view> args);
  void directory_listing(redisReply* r);
  void directory_arrival(std::string_view payload);
  void allocated(uint64_t session, uint64_t id);
  uint64_t session_of(std::string_view member);
  std::vector<Control> control_scratch_;
  // Journals (bus_thread_journal.cpp).
  std::vector<Journal> journals_;
  std::deque<Item> journal_retry_;         // calls nobody waits for, made once Redis is back
  std::vector<std::string> expired_seen_;  // dead nodes whose journal cleanup this node ran
  void journal_op(Item& it);
  void journal_command(Journal& jl, char op, std::string_view member,
                       std::span<const std::string_view> fields);
  void journal_answer(uint32_t index, uint64_t session, std::string_view text, bool refused);
  void journal_reply(const PendingReply& p, redisReply* r);
  void journal_listing(uint32_t index, redisReply* r);
  void journal_arrival(uint32_t index, std::string_view payload);
  void journal_apply(Journal& jl, uint64_t ver, std::string_view record);
  void journal_release(Journal& jl);
  void journal_lost(PendingReply& p);
  void journal_expired(const redisReply* dead);
  void journal_subscribed(uint32_t index);
  int journal_of(std::string_view channel) const;
  // Queries to the other nodes (bus_thread_journal.cpp).
  struct Query {
    uint64_t ticket = 0;
    int core = 0;
    int64_t deadline_ms = 0;
    size_t asked = 0;
    std::vector<std::string> answers;
  };
  std::vector<Query> queries_;
  std::string ctl_channel_;
  void query_out(Item& it);
  void query_answer_out(Item& it);
  void query_arrival(std::string_view payload);   // on the control channel: a question
  void query_answered(std::string_view payload);  // on this node's channel: an answer
  void query_done(size_t i);
  int64_t query_deadlines(int64_t now);  // finishes late ones; ms until the next (-1: none)
  std::string member_of(uint64_t session) const;

 public:
  uint64_t session_of_member(std::string_view member) { return session_of(member); }
  void to_lane_public(int core, Item item) { to_lane(core, item); }
};

}  // namespace ringcast::cluster

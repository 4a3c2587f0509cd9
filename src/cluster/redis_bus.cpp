#include "ringcast/cluster/redis_bus.h"

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <string_view>
#include <unordered_map>

#include "bus_thread.h"
#include "ringcast/cluster/redis_scripts.h"
#include "ringcast/engine/log.h"
#include "ringcast/hub/hub.h"
#include "ringcast/websocket/frame_encoder.h"

namespace ringcast::cluster {

redisContext* RedisBus::Thread::open_one(std::string& err) {
  const RedisUrl& u = bus_.opts_.redis;
  timeval tv{1, 0};
  redisContext* c = u.is_unix() ? redisConnectUnixWithTimeout(u.unix_path.c_str(), tv)
                                : redisConnectWithTimeout(u.host.c_str(), u.port, tv);
  if (!c) {
    err = "out of memory";
    return nullptr;
  }
  if (c->err) {
    err = c->errstr;
    redisFree(c);
    return nullptr;
  }
  if (!u.is_unix()) redisEnableKeepAlive(c);
  // From here on the bus thread multiplexes both connections with poll(): hiredis's buffer
  // functions treat EAGAIN as "later" once the context is not marked blocking.
  fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
  c->flags &= ~REDIS_BLOCK;
  return c;
}

bool RedisBus::Thread::connect() {
  std::string err;
  cmd_ = open_one(err);
  if (cmd_) sub_ = open_one(err);
  if (!cmd_ || !sub_) {
    fail(err);
    return false;
  }
  const RedisUrl& u = bus_.opts_.redis;
  auto auth = [&u](redisContext* c) {
    if (u.password.empty()) return false;
    if (u.user.empty()) {
      const char* argv[] = {"AUTH", u.password.c_str()};
      size_t lens[] = {4, u.password.size()};
      redisAppendCommandArgv(c, 2, argv, lens);
    } else {
      const char* argv[] = {"AUTH", u.user.c_str(), u.password.c_str()};
      size_t lens[] = {4, u.user.size(), u.password.size()};
      redisAppendCommandArgv(c, 3, argv, lens);
    }
    return true;
  };
  if (auth(cmd_)) pending_.push_back({Pending::kAuth});
  if (auth(sub_)) sub_sent_.emplace_back();  // its reply is a status
  if (u.db) {
    redisAppendCommand(cmd_, "SELECT %d", u.db);
    pending_.push_back({Pending::kSelect});
  }
  // Loaded on every connection (a restarted Redis has none); EVALSHA follows in order.
  auto load = [this](std::string_view script) {
    const char* argv[] = {"SCRIPT", "LOAD", script.data()};
    size_t lens[] = {6, 4, script.size()};
    redisAppendCommandArgv(cmd_, 3, argv, lens);
    pending_.push_back({Pending::kScript});
  };
  for (const char* script : {kHeartbeatScript, kEventScript, kSnapshotScript, kDirectoryScript})
    load(script);
  for (Journal& jl : journals_) load(jl.script);
  ok_ = false;
  for (auto& [name, r] : rooms_)
    if (r.wanted()) subscribe(name, r, true);
  {
    const char* argv[] = {"SSUBSCRIBE", own_channel_.c_str()};
    size_t lens[] = {10, own_channel_.size()};
    redisAppendCommandArgv(sub_, 2, argv, lens);
    sub_sent_.push_back(own_channel_);
    if (bus_.directory_) {
      const char* dargv[] = {"SSUBSCRIBE", dir_channel_.c_str()};
      size_t dlens[] = {10, dir_channel_.size()};
      redisAppendCommandArgv(sub_, 2, dargv, dlens);
      sub_sent_.push_back(dir_channel_);
    }
    if (bus_.queries_) {
      const char* qargv[] = {"SSUBSCRIBE", ctl_channel_.c_str()};
      size_t qlens[] = {10, ctl_channel_.size()};
      redisAppendCommandArgv(sub_, 2, qargv, qlens);
      sub_sent_.push_back(ctl_channel_);
    }
    for (Journal& jl : journals_) {
      const char* jargv[] = {"SSUBSCRIBE", jl.base.c_str()};
      size_t jlens[] = {10, jl.base.size()};
      redisAppendCommandArgv(sub_, 2, jargv, jlens);
      sub_sent_.push_back(jl.base);
    }
  }
  next_heartbeat_ms_ = 0;  // at once: its answer says the connection works
  return true;
}

void RedisBus::Thread::drop_connection(bool tell) {
  heartbeat_sent_ms_ = 0;
  was_member_ = false;
  sub_sent_.clear();
  if (cmd_) redisFree(cmd_);
  if (sub_) redisFree(sub_);
  cmd_ = sub_ = nullptr;
  // Changes whose answer will not come: their outcome is unknown, so the home core reports them
  // refused (docs/cluster.md).
  for (PendingReply& p : pending_) {
    if (p.what == Pending::kEvent && tell) {
      p.room->add_ref();
      to_core(p.room, nullptr, hub::ClusterArrival::kFailed, p.token);
    }
    if (p.what == Pending::kAllocate && tell) allocated(p.session, 0);
    if (p.what == Pending::kJournal || p.what == Pending::kJournalListing) {
      if (tell) journal_lost(p);
      if (p.args) p.args->release();
    }
    if (p.room) bus_.hubs_.rooms().release(p.room);
  }
  pending_.clear();
  for (Journal& jl : journals_) {
    jl.loaded = false;
    jl.listing_sent = false;
    jl.early.clear();
  }
  expired_seen_.clear();
  // Queries waiting for answers get what came (the rest cannot come on this connection).
  if (tell)
    while (!queries_.empty()) query_done(0);
  queries_.clear();
  if (tell) {
    for (auto& [name, r] : rooms_) {
      if (!r.mirrored) continue;
      r.room->add_ref();
      to_core(r.room, nullptr, hub::ClusterArrival::kLost);
    }
    wake_cores();
  }
  ok_ = false;
  bus_.connected_.store(false, std::memory_order_relaxed);
  for (auto it = rooms_.begin(); it != rooms_.end();) {
    it->second.subscribed = false;
    it->second.in_flight = 0;
    if (!it->second.wanted()) {
      bus_.hubs_.rooms().release(it->second.room);
      it = rooms_.erase(it);
    } else {
      ++it;
    }
  }
  bus_.rooms_subscribed_.store(0, std::memory_order_relaxed);
}

void RedisBus::Thread::fail(const std::string& why) {
  drop_connection();
  ++failed_attempts_;
  if (!reported_down_) {
    reported_down_ = true;
    RC_WARN(
        "cluster: redis %s unavailable (%s): this node serves its own clients only (degraded) "
        "and reconnects with backoff",
        bus_.opts_.redis.redacted().c_str(), why.c_str());
  }
  backoff_ms_ = backoff_ms_ ? std::min(backoff_ms_ * 2, kMaxBackoffMs) : 100;
  // Jitter, so nodes that lost Redis together do not come back in lockstep.
  next_attempt_ms_ =
      mono_ms() + backoff_ms_ / 2 +
      static_cast<int64_t>(random_u64() % static_cast<uint64_t>(backoff_ms_ / 2 + 1));
}

void RedisBus::Thread::subscribe(std::string_view name, Room& r, bool on) {
  if (!sub_) return;
  const std::string& ch = channel(name);
  const char* argv[] = {on ? "SSUBSCRIBE" : "SUNSUBSCRIBE", ch.c_str()};
  size_t lens[] = {std::strlen(argv[0]), ch.size()};
  redisAppendCommandArgv(sub_, 2, argv, lens);
  sub_sent_.push_back(ch);
  ++r.in_flight;
}

void RedisBus::Thread::apply_control() {
  {
    std::lock_guard lock(bus_.control_mutex_);
    control_scratch_.swap(bus_.control_);
  }
  for (Control& c : control_scratch_) {
    const std::string& name = c.room->name();
    auto it = rooms_.find(std::string_view(name));
    if (c.floor) {
      if (it != rooms_.end()) {
        it->second.seq_floor = std::max(it->second.seq_floor, c.seq_floor);
        it->second.ev_floor = std::max(it->second.ev_floor, c.ev_floor);
      }
      bus_.hubs_.rooms().release(c.room);
      continue;
    }
    if (it == rooms_.end()) {
      if (!c.active) {  // cannot happen (each core's leave follows its join); be safe
        bus_.hubs_.rooms().release(c.room);
        continue;
      }
      it = rooms_.emplace(name, Room{}).first;
      it->second.room = c.room;  // keeps the reference
    } else {
      bus_.hubs_.rooms().release(c.room);
    }
    Room& r = it->second;
    bool before = r.wanted();
    if (c.mirror)
      r.mirrored = c.active;
    else
      r.members += c.active ? 1 : -1;
    if (c.mirror && c.active && r.subscribed && r.in_flight == 0) send_snapshot(r);
    if (!before && r.wanted()) subscribe(name, r, true);
    if (before && !r.wanted()) {
      if (r.subscribed || r.in_flight) {
        subscribe(name, r, false);
      } else {
        bus_.hubs_.rooms().release(r.room);
        rooms_.erase(it);
      }
    }
  }
  control_scratch_.clear();
}

void RedisBus::Thread::take_outbound() {
  for (auto& lane : bus_.lanes_) {
    size_t bytes = 0;
    lane->out.drain(SIZE_MAX, [&](Item& it) {
      if (it.frame) bytes += it.frame->size();
      if (it.kind == 3) return directory_op(it);
      if (it.kind == 4) return journal_op(it);
      if (it.kind == 5) return query_out(it);
      if (it.kind == 6) return query_answer_out(it);
      if (it.kind == 1) return send_event(it);
      if (it.kind == 2) return send_remote(it);
      // Redis down, or more unsent bytes than the cap: drop (raw rooms keep no history, and
      // the publisher's own node has delivered already).
      if (!cmd_ || !ok_ || cmd_->obuf == nullptr ||
          sdslen(cmd_->obuf) > std::min(kMaxCommandBuffer, bus_.opts_.max_queue_bytes / 2)) {
        bus_.bus_dropped_.fetch_add(1, std::memory_order_relaxed);
        bus_.release_item(it);
        return;
      }
      engine::SharedFrame* f = it.frame;
      uint8_t op = f->message_opcode();
      std::span<const uint8_t> body = op ? f->message_payload() : f->bytes();
      payload_.resize(kHeader + body.size());
      payload_[0] = static_cast<char>(kKindDirect);
      std::memcpy(payload_.data() + 1, &bus_.instance_, 8);
      payload_[9] = static_cast<char>(op);
      if (!body.empty()) std::memcpy(payload_.data() + kHeader, body.data(), body.size());
      const std::string& ch = channel(it.room->name());
      const char* argv[] = {"SPUBLISH", ch.c_str(), payload_.data()};
      size_t lens[] = {8, ch.size(), payload_.size()};
      redisAppendCommandArgv(cmd_, 3, argv, lens);
      pending_.push_back({Pending::kPublish});
      bus_.published_.fetch_add(1, std::memory_order_relaxed);
      bus_.release_item(it);
    });
    if (bytes) lane->taken_bytes.fetch_add(bytes, std::memory_order_release);
  }
  if (payload_.capacity() > (size_t{1} << 20)) payload_ = std::string();
}

void RedisBus::Thread::heartbeat(int64_t now) {
  if (cmd_ && heartbeat_sent_ms_ && now - heartbeat_sent_ms_ > bus_.opts_.node_ttl_ms) {
    // Redis takes the connection but does not answer (stopped, or swamped): by now the other
    // nodes count this one as gone. Reconnect rather than queue for it.
    fail("no answer for " + std::to_string(now - heartbeat_sent_ms_) + " ms");
    return;
  }
  if (!cmd_ || now < next_heartbeat_ms_) return;
  if (!heartbeat_sent_ms_) heartbeat_sent_ms_ = now;
  next_heartbeat_ms_ = now + kHeartbeatMs;
  std::string ttl = std::to_string(bus_.opts_.node_ttl_ms);
  const char* argv[] = {
      "EVALSHA",   heartbeat_sha_.c_str(),   "1", nodes_key_.c_str(), instance_hex_.c_str(),
      ttl.c_str(), bus_.opts_.prefix.c_str()};
  size_t lens[] = {7,          heartbeat_sha_.size(),   1, nodes_key_.size(), instance_hex_.size(),
                   ttl.size(), bus_.opts_.prefix.size()};
  redisAppendCommandArgv(cmd_, 7, argv, lens);
  pending_.push_back({Pending::kHeartbeat});
}

bool RedisBus::Thread::write_out(redisContext* c) {
  int done = 0;
  while (!done) {
    if (redisBufferWrite(c, &done) != REDIS_OK) {
      fail(c->errstr[0] ? c->errstr : "write failed");
      return false;
    }
    if (!done && c->obuf && sdslen(c->obuf) > 0) break;  // EAGAIN: wait for POLLOUT
  }
  return true;
}

bool RedisBus::Thread::read_in(redisContext* c) {
  if (redisBufferRead(c) != REDIS_OK) {
    fail(c->errstr[0] ? c->errstr : "connection closed");
    return false;
  }
  return true;
}

void RedisBus::Thread::handle_cmd_reply(redisReply* r) {
  if (pending_.empty()) return;
  PendingReply pr = pending_.front();
  pending_.pop_front();
  Pending what = pr.what;
  bool error = r->type == REDIS_REPLY_ERROR;
  switch (what) {
    case Pending::kScript:
      if (error) fail("SCRIPT LOAD refused: " + std::string(reply_str(r)));
      break;
    case Pending::kEvent: {
      if (error) {
        static log::Throttle throttle(10000);
        uint64_t held = 0;
        if (throttle.allow(mono_ms(), held))
          RC_WARN("cluster: redis refused a room event: %.*s (%llu more)", static_cast<int>(r->len),
                  r->str, static_cast<unsigned long long>(held));
      }
      // The script answers {ev, n} (0: it changed nothing): the home core needs the event's
      // place to finish it if a snapshot already had it (see Hub::cluster_arrival).
      uint64_t ev = 0, n = 0;
      if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
          r->element[0]->type == REDIS_REPLY_INTEGER &&
          r->element[1]->type == REDIS_REPLY_INTEGER) {
        ev = static_cast<uint64_t>(r->element[0]->integer);
        n = static_cast<uint64_t>(r->element[1]->integer);
      }
      if (pr.token) {
        to_core(pr.room, nullptr, error ? hub::ClusterArrival::kFailed : hub::ClusterArrival::kDone,
                pr.token, ev, n);
        return;  // the arrival took the reference
      }
      bus_.hubs_.rooms().release(pr.room);
      return;
    }
    case Pending::kAllocate:
      allocated(pr.session,
                !error && r->type == REDIS_REPLY_INTEGER ? static_cast<uint64_t>(r->integer) : 0);
      return;
    case Pending::kDirectory:
      return;
    case Pending::kListing:
      if (!error) directory_listing(r);
      return;
    case Pending::kJournal:
      return journal_reply(pr, r);
    case Pending::kJournalListing:
      return journal_listing(pr.token, r);
    case Pending::kSnapshot:
      if (error) {
        RC_WARN("cluster: room %s: snapshot refused: %.*s", pr.room->name().c_str(),
                static_cast<int>(r->len), r->str);
      } else if (auto it = rooms_.find(std::string_view(pr.room->name()));
                 it != rooms_.end() && it->second.mirrored) {
        deliver_snapshot(pr.room, r);
      }
      bus_.hubs_.rooms().release(pr.room);
      return;
    case Pending::kAuth:
    case Pending::kSelect:
      if (error)
        fail(std::string(what == Pending::kAuth ? "AUTH refused: " : "SELECT refused: ") +
             std::string(reply_str(r)));
      break;
    case Pending::kPublish:
      if (error) {
        bus_.bus_dropped_.fetch_add(1, std::memory_order_relaxed);
        static log::Throttle throttle(10000);
        uint64_t held = 0;
        if (throttle.allow(mono_ms(), held))
          RC_WARN("cluster: redis refused a publish: %.*s (%llu more)", static_cast<int>(r->len),
                  r->str, static_cast<unsigned long long>(held));
      }
      break;
    case Pending::kHeartbeat:
      if (error) {
        fail("heartbeat refused: " + std::string(reply_str(r)));
        break;
      }
      heartbeat_sent_ms_ = 0;
      // {nodes alive, 1 if this node had been dropped from the node set}.
      if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
          r->element[0]->type == REDIS_REPLY_INTEGER) {
        bus_.nodes_seen_.store(static_cast<uint64_t>(r->element[0]->integer),
                               std::memory_order_relaxed);
        bool dropped = r->element[1]->type == REDIS_REPLY_INTEGER && r->element[1]->integer == 1;
        if (dropped && was_member_ && ok_) {
          // The others took this node for dead (it stalled past node_ttl_ms) and made its members
          // leave: start over, so every room is reloaded and this node's members re-announced.
          fail("this node was expired by the others (stalled longer than node_ttl_ms)");
          break;
        }
        was_member_ = true;
        if (r->elements >= 3 && r->element[2]->type == REDIS_REPLY_ARRAY && !journals_.empty())
          journal_expired(r->element[2]);
      }
      if (!ok_) {
        ok_ = true;
        bus_.connected_.store(true, std::memory_order_relaxed);
        if (reported_down_) {
          bus_.reconnects_.fetch_add(1, std::memory_order_relaxed);
          RC_INFO(
              "cluster: redis %s reachable again after %llu failed attempts; %zu rooms "
              "re-subscribed",
              bus_.opts_.redis.redacted().c_str(),
              static_cast<unsigned long long>(failed_attempts_), rooms_.size());
        } else {
          RC_INFO("cluster: node %s connected to redis %s", bus_.opts_.node_id.c_str(),
                  bus_.opts_.redis.redacted().c_str());
        }
        reported_down_ = false;
        failed_attempts_ = 0;
        backoff_ms_ = 0;
      }
      break;
  }
}

bool RedisBus::Thread::pump_sub() {
  while (sub_ && stashed_ == 0) {
    void* out = nullptr;
    if (redisGetReplyFromReader(sub_, &out) != REDIS_OK) {
      fail(sub_->errstr[0] ? sub_->errstr : "protocol error");
      return false;
    }
    if (!out) break;
    Reply r(static_cast<redisReply*>(out));
    handle_sub_reply(r.get());
  }
  return sub_ != nullptr;
}

void RedisBus::Thread::handle_sub_reply(redisReply* r) {
  if (r->type == REDIS_REPLY_ERROR) {
    std::string what = sub_sent_.empty() ? std::string() : std::move(sub_sent_.front());
    if (!sub_sent_.empty()) sub_sent_.pop_front();
    if (what.empty()) {  // AUTH
      fail("subscription connection: " + std::string(reply_str(r)));
      return;
    }
    // One channel refused (an ACL without that channel, say): that room stays node-local, the
    // rest of the cluster keeps working. Logged at most every 10 s.
    static log::Throttle throttle(10000);
    uint64_t held = 0;
    if (throttle.allow(mono_ms(), held))
      RC_WARN("cluster: redis refused to subscribe %s: %.*s (%llu more)", what.c_str(),
              static_cast<int>(r->len), r->str, static_cast<unsigned long long>(held));
    std::string_view ch = what;
    if (ch.starts_with(channel_prefix_) && ch.ends_with('}')) {
      auto it =
          rooms_.find(ch.substr(channel_prefix_.size(), ch.size() - channel_prefix_.size() - 1));
      if (it != rooms_.end() && it->second.in_flight > 0) --it->second.in_flight;
    }
    return;
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 3) {  // AUTH's +OK
    if (!sub_sent_.empty() && sub_sent_.front().empty()) sub_sent_.pop_front();
    return;
  }
  std::string_view kind = reply_str(r->element[0]);
  std::string_view ch = reply_str(r->element[1]);
  if (kind == "smessage") {
    arrival(ch, reply_str(r->element[2]));
    return;
  }
  if (kind != "ssubscribe" && kind != "sunsubscribe") return;
  if (!sub_sent_.empty()) sub_sent_.pop_front();
  if (int j = journal_of(ch); j >= 0) {
    if (kind == "ssubscribe") journal_subscribed(static_cast<uint32_t>(j));
    return;
  }
  if (ch == dir_channel_ && kind == "ssubscribe" && cmd_) {
    // Listening: now the listing, so no change falls between the two.
    directory_command({"s"});
    pending_.push_back({Pending::kListing});
    return;
  }
  if (!ch.starts_with(channel_prefix_) || !ch.ends_with('}')) return;
  std::string_view name = ch.substr(channel_prefix_.size(), ch.size() - channel_prefix_.size() - 1);
  auto it = rooms_.find(name);
  if (it == rooms_.end()) return;
  Room& room = it->second;
  if (room.in_flight > 0) --room.in_flight;
  bool was = room.subscribed;
  room.subscribed = kind == "ssubscribe";
  if (room.subscribed != was)
    bus_.rooms_subscribed_.fetch_add(room.subscribed ? 1 : uint64_t(-1), std::memory_order_relaxed);
  // Subscribed first, then the snapshot: every event after it arrives on this connection.
  if (room.subscribed && room.mirrored && room.in_flight == 0) send_snapshot(room);
  if (!room.wanted() && room.in_flight == 0 && !room.subscribed) {
    bus_.hubs_.rooms().release(room.room);
    rooms_.erase(it);
  }
}

void RedisBus::Thread::arrival(std::string_view ch, std::string_view payload) {
  if (ch == own_channel_) return deliver_send(payload);
  if (ch == ctl_channel_) return query_arrival(payload);
  if (ch == dir_channel_) return directory_arrival(payload);
  if (int j = journal_of(ch); j >= 0) return journal_arrival(static_cast<uint32_t>(j), payload);
  if (!ch.starts_with(channel_prefix_) || !ch.ends_with('}') || payload.empty()) return;
  if (payload[0] >= 'a' && payload[0] <= 'z') {
    // A sequenced room's event: to its home core, which mirrors it (this node's own too).
    std::string_view name =
        ch.substr(channel_prefix_.size(), ch.size() - channel_prefix_.size() - 1);
    auto it = rooms_.find(name);
    if (it == rooms_.end() || !it->second.mirrored) return;
    engine::SharedFrame* f = engine::SharedFrame::allocate(payload.size());
    std::memcpy(f->data(), payload.data(), payload.size());
    f->set_size(payload.size());
    bus_.received_.fetch_add(1, std::memory_order_relaxed);
    it->second.room->add_ref();
    learn_members(payload);
    to_core(it->second.room, f, hub::ClusterArrival::kEvent);
    return;
  }
  if (payload.size() < kHeader) return;
  if (static_cast<uint8_t>(payload[0]) != kKindDirect) return;  // a newer node's message kind
  uint64_t sender = 0;
  std::memcpy(&sender, payload.data() + 1, 8);
  if (sender == bus_.instance_) return;  // delivered locally when published
  std::string_view name = ch.substr(channel_prefix_.size(), ch.size() - channel_prefix_.size() - 1);
  auto it = rooms_.find(name);
  if (it == rooms_.end() || it->second.members == 0) return;
  auto op = static_cast<uint8_t>(payload[9]);
  std::span<const uint8_t> body(reinterpret_cast<const uint8_t*>(payload.data()) + kHeader,
                                payload.size() - kHeader);
  engine::SharedFrame* f;
  if (op == static_cast<uint8_t>(websocket::Opcode::kText) ||
      op == static_cast<uint8_t>(websocket::Opcode::kBinary)) {
    f = websocket::encode_frame(static_cast<websocket::Opcode>(op), body);  // once per node
  } else {
    f = engine::SharedFrame::allocate(body.size());
    if (!body.empty()) std::memcpy(f->data(), body.data(), body.size());
    f->set_size(body.size());
  }
  bus_.received_.fetch_add(1, std::memory_order_relaxed);
  hub::SharedRoom* room = it->second.room;
  room->add_ref();
  to_core(room, f, hub::ClusterArrival::kDirect);
}

void RedisBus::Thread::to_core(hub::SharedRoom* room, engine::SharedFrame* frame,
                               hub::ClusterArrival kind, uint32_t token, uint64_t ev, uint64_t n) {
  Item item{room, frame, static_cast<uint8_t>(kind), token, ev, n};
  to_lane(room->home(), item);
}

void RedisBus::Thread::to_lane(int home, Item item) {
  // Behind anything stashed for the same core, to keep the order.
  if (!stash_[home].empty() || !bus_.lanes_[home]->in.push(item)) {
    stash_[home].push_back(item);
    ++stashed_;
  }
  wake_mask_ |= 1ull << home;
}

void RedisBus::Thread::flush_stash() {
  for (size_t c = 0; c < stash_.size() && stashed_; ++c) {
    auto& q = stash_[c];
    while (!q.empty() && bus_.lanes_[c]->in.push(q.front())) {
      q.pop_front();
      --stashed_;
      wake_mask_ |= 1ull << c;
    }
  }
}

void RedisBus::Thread::wake_cores() {
  while (wake_mask_) {
    int c = __builtin_ctzll(wake_mask_);
    wake_mask_ &= wake_mask_ - 1;
    if (bus_.wake_) bus_.wake_(c);
  }
}

bool RedisBus::Thread::lanes_have_work() const {
  for (const auto& l : bus_.lanes_)
    if (!l->out.empty()) return true;
  std::lock_guard lock(bus_.control_mutex_);
  return !bus_.control_.empty();
}

void RedisBus::Thread::run() {
  while (!bus_.stopping_.load(std::memory_order_acquire)) {
    int64_t now = mono_ms();
    if (!cmd_ && now >= next_attempt_ms_) connect();
    apply_control();
    take_outbound();
    heartbeat(now);
    if (cmd_ && !write_out(cmd_)) continue;
    if (sub_ && !write_out(sub_)) continue;
    flush_stash();
    if (sub_ && !pump_sub()) continue;
    wake_cores();

    // Sleep: announce it, then look once more (the cores' side of this is RedisBus::poll).
    int timeout = 1000;
    if (cmd_)
      timeout = static_cast<int>(std::clamp<int64_t>(next_heartbeat_ms_ - now, 0, 1000));
    else
      timeout = static_cast<int>(std::clamp<int64_t>(next_attempt_ms_ - now, 0, 1000));
    if (stashed_) timeout = std::min(timeout, 1);  // a core's ring is full: retry soon
    if (int64_t q = query_deadlines(now); q >= 0)
      timeout = std::min(timeout, static_cast<int>(std::min<int64_t>(q, 1000)));
    wake_cores();  // a late query's answers
    bus_.bus_sleeping_.store(true, std::memory_order_relaxed);
    bus_.bus_sync_.fetch_add(1, std::memory_order_acq_rel);
    if (lanes_have_work()) timeout = 0;
    pollfd fds[3];
    int n = 0;
    fds[n++] = {bus_.event_fd_, POLLIN, 0};
    int cmd_at = -1, sub_at = -1;
    if (cmd_) {
      cmd_at = n;
      fds[n++] = {cmd_->fd, static_cast<short>(POLLIN | (sdslen(cmd_->obuf) ? POLLOUT : 0)), 0};
    }
    if (sub_) {
      sub_at = n;
      // A full ring stops reading: Redis buffers for us (up to its pub/sub output limit).
      short ev = static_cast<short>((stashed_ ? 0 : POLLIN) | (sdslen(sub_->obuf) ? POLLOUT : 0));
      fds[n++] = {sub_->fd, ev, 0};
    }
    ::poll(fds, static_cast<nfds_t>(n), timeout);
    bus_.bus_sleeping_.store(false, std::memory_order_relaxed);
    if (fds[0].revents & POLLIN) {
      uint64_t v;
      [[maybe_unused]] ssize_t r = ::read(bus_.event_fd_, &v, sizeof v);
    }
    if (cmd_at >= 0 && (fds[cmd_at].revents & (POLLIN | POLLERR | POLLHUP))) {
      if (!read_in(cmd_)) continue;
      for (;;) {
        void* out = nullptr;
        if (redisGetReplyFromReader(cmd_, &out) != REDIS_OK) {
          fail(cmd_->errstr[0] ? cmd_->errstr : "protocol error");
          break;
        }
        if (!out) break;
        Reply r(static_cast<redisReply*>(out));
        handle_cmd_reply(r.get());
        if (!cmd_) break;
      }
      if (!cmd_) continue;
    }
    if (sub_ && sub_at >= 0 && (fds[sub_at].revents & (POLLIN | POLLERR | POLLHUP))) {
      if (!read_in(sub_)) continue;
      pump_sub();
    }
  }
}

// ---- RedisBus -----------------------------------------------------------------------------------

RedisBus::RedisBus(ClusterOptions opts, hub::HubSystem& hubs)
    : opts_(std::move(opts)), hubs_(hubs), instance_(random_u64()) {
  for (int i = 0; i < hubs.cores(); ++i) lanes_.push_back(std::make_unique<Lane>(kLaneCapacity));
  event_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

RedisBus::~RedisBus() {
  stop();
  for (auto& lane : lanes_) {
    lane->out.drain(SIZE_MAX, [this](Item& it) { release_item(it); });
    lane->in.drain(SIZE_MAX, [this](Item& it) { release_item(it); });
  }
  for (Control& c : control_) hubs_.rooms().release(c.room);
  if (event_fd_ >= 0) ::close(event_fd_);
}

void RedisBus::start(std::function<void(int)> wake) {
  wake_ = std::move(wake);
  thread_state_ = std::make_unique<Thread>(*this);
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "ringcast-redis");
    thread_state_->run();
  });
}

void RedisBus::stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true, std::memory_order_release);
  uint64_t one = 1;
  [[maybe_unused]] ssize_t r = ::write(event_fd_, &one, sizeof one);
  thread_.join();
  thread_state_.reset();
}

void RedisBus::release_item(Item& it) {
  if (it.frame) it.frame->release();
  if (it.room) hubs_.rooms().release(it.room);
  it = Item{};
}

ClusterStatus RedisBus::status() const {
  ClusterStatus s;
  s.connected = connected_.load(std::memory_order_relaxed);
  s.nodes_seen = s.connected ? nodes_seen_.load(std::memory_order_relaxed) : 0;
  s.rooms_subscribed = rooms_subscribed_.load(std::memory_order_relaxed);
  s.published = published_.load(std::memory_order_relaxed);
  s.received = received_.load(std::memory_order_relaxed);
  s.dropped = bus_dropped_.load(std::memory_order_relaxed);
  for (const auto& l : lanes_) s.dropped += l->dropped.load(std::memory_order_relaxed);
  s.reconnects = reconnects_.load(std::memory_order_relaxed);
  return s;
}

void RedisBus::publish_direct(int core, hub::SharedRoom& room, engine::SharedFrame* frame) {
  Lane& l = *lanes_[static_cast<size_t>(core)];
  // Half of max_queue_bytes for the rings (shared by the cores), half for the connection's buffer.
  const size_t cap = opts_.max_queue_bytes / 2 / lanes_.size();
  const size_t in_flight = l.out_bytes - l.taken_bytes.load(std::memory_order_acquire);
  if (!connected_.load(std::memory_order_relaxed) || in_flight + frame->size() > cap) {
    // Policy (docs/cluster.md): the other nodes' copy is dropped and counted, never queued
    // without bound; this node's members have it already.
    l.dropped.store(l.dropped.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return;
  }
  room.add_ref();
  frame->add_ref();
  if (!l.out.push(Item{&room, frame})) {
    Item it{&room, frame};
    release_item(it);
    l.dropped.store(l.dropped.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return;
  }
  l.out_bytes += frame->size();
  l.pushed = true;
}

void RedisBus::mirror_floor(int core, hub::SharedRoom& room, uint64_t seq, uint64_t ev) {
  (void)core;
  room.add_ref();
  {
    std::lock_guard lock(control_mutex_);
    control_.push_back({&room, true, true, true, seq, ev});
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t r = ::write(event_fd_, &one, sizeof one);
}

void RedisBus::mirror(int core, hub::SharedRoom& room, bool on) {
  (void)core;
  room.add_ref();
  {
    std::lock_guard lock(control_mutex_);
    control_.push_back({&room, on, true});
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t r = ::write(event_fd_, &one, sizeof one);
}

void RedisBus::directory_allocate(int core, uint64_t session) {
  directory_push(core, 1, session, 0);
}
void RedisBus::directory_release(int core, uint64_t id, uint64_t session) {
  directory_push(core, 2, session, id);
}
void RedisBus::directory_owner(int core, uint64_t session, bool on) {
  directory_push(core, on ? 3 : 4, session, 0);
}

void RedisBus::directory_push(int core, uint32_t op, uint64_t session, uint64_t id) {
  Lane& l = *lanes_[static_cast<size_t>(core)];
  // Not dropped silently: an allocation that cannot go out is answered "none" (the profile closes
  // the client with 1013), a release or owner change is redone by Redis's node expiry.
  if (!connected_.load(std::memory_order_relaxed) ||
      !l.out.push(Item{nullptr, nullptr, 3, op, session, id})) {
    if (op == 1) {
      if (directory_) {
        hub::Hub& h = hubs_.hub(core);
        directory_->directory_allocated(h, session, 0);
      }
    }
    return;
  }
  l.pushed = true;
}

bool RedisBus::send_event(int core, hub::SharedRoom& room, engine::SharedFrame* args) {
  if (!connected_.load(std::memory_order_relaxed)) return false;
  Lane& l = *lanes_[static_cast<size_t>(core)];
  // The same cap as raw frames: past it the change is refused (the profile's error reply).
  const size_t cap = opts_.max_queue_bytes / 2 / lanes_.size();
  if (l.out_bytes - l.taken_bytes.load(std::memory_order_acquire) + args->size() > cap)
    return false;
  room.add_ref();
  args->add_ref();
  // Events are not dropped for lack of room: a full ring means Redis is far behind, and the
  // change is refused like one made while Redis is unreachable.
  if (!l.out.push(Item{&room, args, 1})) {
    Item it{&room, args, 1};
    release_item(it);
    return false;
  }
  l.out_bytes += args->size();
  l.pushed = true;
  return true;
}

void RedisBus::send_remote(int core, uint64_t session, engine::SharedFrame* frame) {
  Lane& l = *lanes_[static_cast<size_t>(core)];
  if (!connected_.load(std::memory_order_relaxed)) {
    l.dropped.store(l.dropped.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return;
  }
  frame->add_ref();
  if (!l.out.push(Item{nullptr, frame, 2, 0, 0, session})) {
    frame->release();
    l.dropped.store(l.dropped.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return;
  }
  l.out_bytes += frame->size();
  l.pushed = true;
}

void RedisBus::room_members(int core, hub::SharedRoom& room, bool active) {
  (void)core;
  room.add_ref();
  {
    std::lock_guard lock(control_mutex_);
    control_.push_back({&room, active, false});
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t r = ::write(event_fd_, &one, sizeof one);
}

void RedisBus::poll(int core, hub::Hub& hub) {
  Lane& l = *lanes_[static_cast<size_t>(core)];
  l.in.drain(kArrivalsPerPass, [&](Item& it) {
    hub.cluster_arrival(static_cast<hub::ClusterArrival>(it.kind), it.room, it.frame,
                        {it.token, it.ev, it.n});
    release_item(it);
  });
  if (l.pushed) {
    l.pushed = false;
    // The same handshake as the mailbox: either the bus sees the item or this sees it asleep.
    bus_sync_.fetch_add(1, std::memory_order_acq_rel);
    if (bus_sleeping_.load(std::memory_order_relaxed)) {
      uint64_t one = 1;
      [[maybe_unused]] ssize_t r = ::write(event_fd_, &one, sizeof one);
    }
  }
}

bool RedisBus::has_arrivals(int core) const {
  return !lanes_[static_cast<size_t>(core)]->in.empty();
}

}  // namespace ringcast::cluster

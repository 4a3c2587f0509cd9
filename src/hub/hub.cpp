#include "ringcast/hub/hub.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <utility>

#include "membership_tasks.h"
#include "ringcast/engine/histogram.h"
#include "ringcast/engine/log.h"

namespace ringcast::hub {

namespace {

// An envelope carrying counted references to `room` and `frame` (both taken here).
Envelope counted_envelope(Envelope::Kind kind, SharedRoom* room, engine::SharedFrame* frame,
                          uint64_t session) {
  Envelope e;
  e.kind = kind;
  room->add_ref();
  frame->add_ref();
  e.room = room;
  e.frame = frame;
  e.session = session;
  return e;
}

constexpr size_t kExpiryPerSweep = 4096;  // pinned rooms looked at per sweep (once a second)
constexpr size_t kDrainPerRing = 4096;    // per ring per pass, so one busy peer can't starve I/O
constexpr size_t kSelfQueuePerPass = 65536;

size_t ring_capacity(int cores) {
  return cores <= 4 ? 16384 : cores <= 16 ? 4096 : 1024;
}

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A publish's payload frame, which the home core keeps as the history record:
// [user length][user (at most 255 bytes)][bytes].
engine::SharedFrame* pack_payload(std::string_view user, std::span<const uint8_t> payload) {
  size_t ulen = std::min<size_t>(user.size(), 255);
  engine::SharedFrame* f = engine::SharedFrame::allocate(1 + ulen + payload.size());
  f->data()[0] = static_cast<uint8_t>(ulen);
  if (ulen) std::memcpy(f->data() + 1, user.data(), ulen);
  if (!payload.empty()) std::memcpy(f->data() + 1 + ulen, payload.data(), payload.size());
  f->set_size(1 + ulen + payload.size());
  return f;
}

void release_envelope(RoomRegistry& rooms, Envelope& e) {
  if (e.frame) e.frame->release();
  if (e.reply_ok) e.reply_ok->release();
  if (e.reply_fail) e.reply_fail->release();
  if (e.room) rooms.release(e.room);
  if (e.kind == Envelope::Kind::kTask) {
    delete e.task;
  } else if (e.kind == Envelope::Kind::kState) {
    if ((e.flags & Envelope::kEvent) && e.event) e.event->release();
    if (e.reply_refused) e.reply_refused->release();
  }
  e = Envelope{};
}

}  // namespace

// ---- tasks that carry membership through the home core -----------------------------------------

void JoinedTask::run(Hub& hub) {
  Hub::Membership* m = hub.find_membership(session, room.get());
  websocket::Session* s = hub.worker().find_session(session);
  // Gone or left meanwhile: its leave is already on the way to the home core.
  if (!m || m->acked || !s || !s->open()) return;
  m->acked = true;
  const bool held = std::exchange(m->holds_input, false);
  hub.add_local(room.get(), *s, m->presence);
  if (done) done(*s, result);
  if (held) hub.worker().release_input(session);  // by id: done may have closed it
}

void JoinTask::run(Hub& hub) {
  if (hub.system().cluster()) {
    // In the cluster the join takes effect where Redis orders it among the room's events.
    auto task = std::make_unique<JoinTask>();
    task->room = std::move(room);
    task->session = session;
    task->from = from;
    task->opts = std::move(opts);
    task->done = std::move(done);
    hub.cluster_join(std::move(task));
    return;
  }
  join_here(hub, PresenceEntry{session, opts.identity});
}

void JoinTask::join_here(Hub& hub, PresenceEntry me) {
  SharedRoom* r = room.get();
  r->core_members()[from]++;
  if (opts.presence_events && !r->presence_formatter) r->presence_formatter = opts.presence_events;
  if (r->presence_formatter) {
    engine::SharedFrame* f = r->presence_formatter(*r, me, true);
    if (f) {
      hub.fanout_home(r, f, session, true);
      f->release();
    }
  }
  r->presence().push_back(std::move(me));
  auto reply = std::make_unique<JoinedTask>();
  reply->room = room;
  reply->session = session;
  reply->done = std::move(done);
  JoinResult& res = reply->result;
  res.seq = r->seq;
  if (opts.presence && opts.member_list) res.members = r->presence();
  if (opts.snapshot) {
    auto& cache = r->snapshot_cache;
    if (cache.formatter != opts.snapshot || cache.version != r->state().version()) {
      cache.frames.clear();
      opts.snapshot(*r, cache.frames);
      cache.formatter = opts.snapshot;
      cache.version = r->state().version();
    }
    res.snapshot = cache.frames;
  } else {
    r->state().for_each([&res](std::string_view k, std::string_view v) {
      res.state.emplace_back(std::string(k), std::string(v));
    });
  }
  auto keep = [&res](const HistoryRecord& rec) {
    if (rec.event) res.replay.push_back(rec.event);
  };
  if (opts.since)
    r->history().since(*opts.since, keep);
  else if (opts.replay)
    r->history().last(opts.replay, keep);
  if (from == hub.core()) {
    // The joiner is on this core: in effect now. Queued behind other work, an event of this
    // room fanned out meanwhile would find it not yet a local member and miss it.
    reply->run(hub);
    return;
  }
  hub.post(from, reply.release());
}

void LeaveTask::run(Hub& hub) {
  SharedRoom* r = room.get();
  r->core_members()[from]--;
  if (hub.system().cluster()) {
    hub.cluster_leave(r, session);
    return;
  }
  hub.remove_presence(r, session);
}

void Hub::remove_presence(SharedRoom* r, uint64_t session) {
  auto& p = r->presence();
  auto it = std::find_if(p.begin(), p.end(),
                         [&](const PresenceEntry& e) { return e.session == session; });
  if (it == p.end()) return;
  PresenceEntry gone = std::move(*it);
  p.erase(it);
  if (r->presence_formatter) {
    engine::SharedFrame* f = r->presence_formatter(*r, gone, false);
    if (f) {
      fanout_home(r, f, session, true);
      f->release();
    }
  }
}

// ---- HubSystem ----------------------------------------------------------------------------------

HubSystem::HubSystem(int cores, size_t default_history, std::vector<HistoryRule> rules)
    : rooms_(cores, default_history, std::move(rules)), mailbox_(cores, ring_capacity(cores)) {
  for (int i = 0; i < cores; ++i) hubs_.push_back(std::make_unique<Hub>(*this, i));
}

HubSystem::~HubSystem() {
  // Whatever is still in flight at shutdown holds references: give them back.
  for (int to = 0; to < cores(); ++to) {
    mailbox_.drain(to, SIZE_MAX, [this](Envelope& e) { release_envelope(rooms_, e); });
  }
  for (auto& h : hubs_) {
    for (auto& q : h->overflow_)
      for (auto& e : q) release_envelope(rooms_, e);
    for (auto& e : h->self_queue_) release_envelope(rooms_, e);
    h->overflow_.clear();
    h->self_queue_.clear();
    h->memberships_.clear();
  }
  hubs_.clear();
}

void HubSystem::set_limits(const RoomLimits& limits) {
  rooms_.set_max_rooms(limits.max_rooms);
  max_rooms_per_connection_.store(limits.max_rooms_per_connection, std::memory_order_relaxed);
  history_ttl_ms_.store(limits.history_ttl_ms, std::memory_order_relaxed);
  max_state_keys_.store(limits.max_state_keys, std::memory_order_relaxed);
  max_state_value_bytes_.store(limits.max_state_value_bytes, std::memory_order_relaxed);
}

// ---- Hub ----------------------------------------------------------------------------------------

Hub::Hub(HubSystem& system, int core)
    : system_(system), core_(core), overflow_(system.mailbox().cores()) {}

Hub::~Hub() = default;

void Hub::send(int core, const Envelope& e, websocket::Session* origin) {
  if (core == core_) {
    self_queue_.push_back(e);
    return;
  }
  if (overflow_[core].empty() && system_.mailbox().send(core_, core, e)) {
    touched_ |= 1ull << core;
    return;
  }
  // Ring full: keep order by queueing behind it, and stop reading from whoever produced this.
  overflow_[core].push_back(e);
  ++overflow_count_;
  if (origin && origin->open()) {
    worker_->hold_input(*origin);
    paused_.push_back(origin->id());
  }
}

void Hub::retry_overflow() {
  for (int c = 0; c < static_cast<int>(overflow_.size()); ++c) {
    auto& q = overflow_[c];
    while (!q.empty() && system_.mailbox().send(core_, c, q.front())) {
      q.pop_front();
      --overflow_count_;
      touched_ |= 1ull << c;
    }
  }
  if (overflow_count_ == 0 && !paused_.empty()) {
    for (uint64_t id : paused_)
      if (websocket::Session* s = worker_->find_session(id)) worker_->release_input(*s);
    paused_.clear();
  }
}

void Hub::post(int core, Task* task) {
  Envelope e;
  e.kind = Envelope::Kind::kTask;
  e.task = task;
  send(core, e);
}

void Hub::on_pass() {
  auto& rooms = system_.rooms();
  system_.store().poll(core_);
  ClusterBus* cluster = system_.cluster();
  for (size_t n = 0; !self_queue_.empty() && n < kSelfQueuePerPass; ++n) {
    Envelope e = self_queue_.front();
    self_queue_.pop_front();
    dispatch(e);
    release_envelope(rooms, e);
  }
  system_.mailbox().drain(core_, kDrainPerRing, [&](Envelope& e) {
    dispatch(e);
    release_envelope(rooms, e);
  });
  // Arrivals from other nodes fan out before this pass's cross-core sends are announced; what
  // this pass published goes to the bus now.
  if (cluster) cluster->poll(core_, *this);
  if (overflow_count_) retry_overflow();
  // Writes queued during this pass go to the store thread now, not when something next wakes us.
  system_.store().poll(core_);
  auto& mailbox = system_.mailbox();
  while (touched_) {
    int c = __builtin_ctzll(touched_);
    touched_ &= touched_ - 1;
    if (mailbox.needs_wake(c)) worker_->notify_peer(c);
  }
  if (!pinned_.empty() && worker_->now_ms() >= next_expiry_ms_) expire_history();
  if (worker_->now_ms() >= next_room_sample_ms_) refresh_room_samples();
}

void Hub::refresh_room_samples() {
  const int64_t now = worker_->now_ms();
  next_room_sample_ms_ = now + 1000;
  const int64_t wanted = system_.room_samples_wanted_ms();
  if (wanted < 0 || now - wanted > 5000) {
    // Nobody is watching: drop what a dashboard left behind, and do no work.
    if (!samples_.empty()) {
      std::lock_guard lock(samples_mutex_);
      samples_.clear();
      samples_.shrink_to_fit();
    }
    return;
  }
  // The top rooms by members and by messages; the rest of this core's rooms are left out, so a
  // once-a-second sample stays small however many rooms there are.
  constexpr size_t kTop = 10;
  auto& v = sample_scratch_;
  v.clear();
  for (const auto& [room, lr] : local_) v.emplace_back(room, &lr);
  std::vector<RoomSample> out;
  auto take_top = [&](auto by) {
    size_t n = std::min(kTop, v.size());
    std::partial_sort(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n), v.end(),
                      [&](const auto& a, const auto& b) { return by(*a.second) > by(*b.second); });
    for (size_t i = 0; i < n; ++i) {
      const auto& [room, lr] = v[i];
      bool seen = false;
      for (const auto& o : out) seen |= o.name == room->name();
      if (!seen)
        out.push_back({room->name(), static_cast<uint32_t>(lr->members.size()), lr->delivered});
    }
  };
  take_top([](const LocalRoom& lr) { return lr.members.size(); });
  take_top([](const LocalRoom& lr) { return lr.delivered; });
  v.clear();
  if (v.capacity() > 4096) v.shrink_to_fit();
  std::lock_guard lock(samples_mutex_);
  samples_ = std::move(out);
}

std::vector<RoomSample> Hub::room_samples() const {
  std::lock_guard lock(samples_mutex_);
  return samples_;
}

size_t Hub::mailbox_depth() const {
  return system_.mailbox().depth(core_);
}

bool Hub::prepare_sleep() {
  if (!self_queue_.empty() || overflow_count_) return false;
  if (system_.store().has_completions(core_)) return false;
  if (ClusterBus* c = system_.cluster(); c && c->has_arrivals(core_)) return false;
  return system_.mailbox().prepare_sleep(core_);
}

void Hub::end_sleep() {
  system_.mailbox().end_sleep(core_);
}

void Hub::dispatch(Envelope& e) {
  switch (e.kind) {
    case Envelope::Kind::kRoomFrame:
      deliver_local(e.room, e.frame, e.session, e.flags & Envelope::kPresenceOnly);
      if (e.flags & Envelope::kFanoutHold) e.frame->fanout_done();
      break;
    case Envelope::Kind::kPublish:
      home_publish(e);
      break;
    case Envelope::Kind::kDirect:
      if (websocket::Session* s = worker_->find_session(e.session)) s->send_frame(e.frame);
      break;
    case Envelope::Kind::kTask:
      e.task->run(*this);
      break;
    case Envelope::Kind::kState:
      home_state(e);
      break;
    case Envelope::Kind::kBroadcast:
      if (system_.cluster())
        cluster_broadcast(e);
      else
        fanout_home(e.room, e.frame, e.session, false);
      break;
    case Envelope::Kind::kRelease:
      worker_->release_ordered(e.session, e.bytes);
      break;
  }
}

// ---- local membership ---------------------------------------------------------------------------

void Hub::add_local(SharedRoom* room, websocket::Session& s, bool presence) {
  LocalRoom& lr = local_[room];
  lr.members.push_back({&s, presence});
}

void Hub::remove_local(SharedRoom* room, websocket::Session& s) {
  auto it = local_.find(room);
  if (it == local_.end()) return;
  LocalRoom& lr = it->second;
  auto m = std::find_if(lr.members.begin(), lr.members.end(),
                        [&](const LocalMember& x) { return x.session == &s; });
  if (m == lr.members.end()) return;
  if (lr.iterating) {
    // A delivery to this room is walking the vector (a send can close a slow consumer).
    m->session = nullptr;
    lr.has_holes = true;
    return;
  }
  *m = lr.members.back();
  lr.members.pop_back();
  if (lr.members.empty()) local_.erase(it);
}

void Hub::deliver_local(SharedRoom* room, engine::SharedFrame* frame, uint64_t exclude,
                        bool presence_only) {
  auto it = local_.find(room);
  if (it == local_.end()) return;
  LocalRoom& lr = it->second;
  ++lr.delivered;
  ++lr.iterating;
  for (size_t i = 0; i < lr.members.size(); ++i) {
    LocalMember m = lr.members[i];
    if (!m.session || m.session->id() == exclude || (presence_only && !m.presence)) continue;
    m.session->send_frame(frame);
  }
  if (--lr.iterating == 0 && lr.has_holes) {
    std::erase_if(lr.members, [](const LocalMember& x) { return x.session == nullptr; });
    lr.has_holes = false;
    if (lr.members.empty()) {
      local_.erase(it);
      // A member closed during this delivery (a slow consumer) was the last one here.
      direct_room_left(room);
    }
  }
}

Hub::Membership* Hub::find_membership(uint64_t session, const SharedRoom* room) {
  auto it = memberships_.find(session);
  if (it == memberships_.end()) return nullptr;
  for (auto& m : it->second)
    if (m.room.get() == room) return &m;
  return nullptr;
}

Hub::Membership* Hub::find_membership(uint64_t session, std::string_view room) {
  auto it = memberships_.find(session);
  if (it == memberships_.end()) return nullptr;
  for (auto& m : it->second)
    if (m.room->name() == room) return &m;
  return nullptr;
}

// ---- direct rooms -------------------------------------------------------------------------------

RoomRef Hub::join_direct(websocket::Session& s, std::string_view name) {
  auto& reg = system_.rooms();
  RoomRef room(&reg, reg.acquire(name));
  if (!room) return room;
  Membership m;
  m.room = room;
  m.direct = true;
  m.acked = true;
  memberships_[s.id()].push_back(std::move(m));
  bool first = local_.find(room.get()) == local_.end();
  add_local(room.get(), s, false);
  // Members first, then the bit: a publisher that sees the bit finds the member.
  if (first && !(room->member_cores().fetch_or(1ull << core_, std::memory_order_acq_rel) &
                 (1ull << core_))) {
    if (ClusterBus* c = system_.cluster()) c->room_members(core_, *room.get(), true);
  }
  return room;
}

void Hub::direct_room_left(SharedRoom* room) {
  // Only raw rooms set bits; the bus hears each core's first join and last leave exactly once.
  if (room->member_cores().fetch_and(~(1ull << core_), std::memory_order_acq_rel) &
      (1ull << core_)) {
    if (ClusterBus* c = system_.cluster()) c->room_members(core_, *room, false);
  }
}

void Hub::leave_direct(websocket::Session& s, SharedRoom* room) {
  remove_local(room, s);
  if (local_.find(room) == local_.end()) direct_room_left(room);
  auto it = memberships_.find(s.id());
  if (it == memberships_.end()) return;
  std::erase_if(it->second, [&](const Membership& m) { return m.room.get() == room; });
  if (it->second.empty()) memberships_.erase(it);
}

bool Hub::sample_fanout(engine::SharedFrame* frame, int64_t start_ns) {
  // At most one sampled fan-out per core per millisecond: the histogram stays representative and
  // the extra atomics of a tracked frame stay off almost every broadcast.
  const int64_t now = worker_->now_ms();
  if (now == last_fanout_sample_ms_ || frame->fanout_tracked()) return false;
  if (!frame->begin_fanout(start_ns > 0 ? start_ns : engine::monotonic_ns())) return false;
  last_fanout_sample_ms_ = now;
  return true;
}

void Hub::fanout_direct(SharedRoom* room, engine::SharedFrame* frame, uint64_t exclude,
                        websocket::Session* origin) {
  fanout_direct_here(room, frame, exclude, origin);
  if (ClusterBus* c = system_.cluster()) c->publish_direct(core_, *room, frame);
}

void Hub::fanout_from_cluster(SharedRoom* room, engine::SharedFrame* frame) {
  fanout_direct_here(room, frame, 0, nullptr);
}

void Hub::fanout_direct_here(SharedRoom* room, engine::SharedFrame* frame, uint64_t exclude,
                             websocket::Session* origin) {
  uint64_t mask = room->member_cores().load(std::memory_order_acquire);
  const bool sampled = mask && sample_fanout(frame);
  while (mask) {
    int c = __builtin_ctzll(mask);
    mask &= mask - 1;
    if (c == core_) {
      deliver_local(room, frame, exclude, false);
      continue;
    }
    Envelope e = counted_envelope(Envelope::Kind::kRoomFrame, room, frame, exclude);
    if (sampled) {
      frame->fanout_hold();
      e.flags |= Envelope::kFanoutHold;
    }
    send(c, e, origin);
  }
  if (sampled) frame->fanout_done();
}

// ---- sequenced rooms ----------------------------------------------------------------------------

JoinStatus Hub::join(websocket::Session& s, std::string_view name, JoinOptions opts,
                     JoinCallback done) {
  if (find_membership(s.id(), name)) return JoinStatus::kAlreadyJoined;
  if (auto it = memberships_.find(s.id());
      it != memberships_.end() && it->second.size() >= system_.max_rooms_per_connection()) {
    return JoinStatus::kTooManyRooms;
  }
  auto& reg = system_.rooms();
  RoomRef room(&reg, reg.acquire(name));
  if (!room) return JoinStatus::kRoomLimit;
  Membership m;
  m.room = room;
  m.presence = opts.presence;
  m.holds_input = true;
  memberships_[s.id()].push_back(std::move(m));
  worker_->hold_input(s);  // released by JoinedTask (or by a leave that comes first)
  auto task = std::make_unique<JoinTask>();
  task->room = room;
  task->session = s.id();
  task->from = core_;
  task->opts = std::move(opts);
  task->done = std::move(done);
  post(room->home(), task.release());
  return JoinStatus::kJoined;
}

bool Hub::leave(websocket::Session& s, std::string_view name) {
  Membership* m = find_membership(s.id(), name);
  if (!m) return false;
  if (m->direct) {
    leave_direct(s, m->room.get());
    return true;
  }
  if (m->acked) remove_local(m->room.get(), s);
  if (m->holds_input) worker_->release_input(s);  // left before the join was in effect
  auto task = std::make_unique<LeaveTask>();
  task->room = m->room;
  task->session = s.id();
  task->from = core_;
  SharedRoom* room = m->room.get();
  auto it = memberships_.find(s.id());
  std::erase_if(it->second, [&](const Membership& x) { return x.room.get() == room; });
  if (it->second.empty()) memberships_.erase(it);
  post(room->home(), task.release());
  return true;
}

SharedRoom* Hub::joined_room(const websocket::Session& s, std::string_view name) const {
  auto it = memberships_.find(s.id());
  if (it == memberships_.end()) return nullptr;
  for (const auto& m : it->second)
    if (m.acked && m.room->name() == name) return m.room.get();
  return nullptr;
}

std::vector<SharedRoom*> Hub::rooms_of(const websocket::Session& s) const {
  std::vector<SharedRoom*> out;
  auto it = memberships_.find(s.id());
  if (it == memberships_.end()) return out;
  for (const auto& m : it->second)
    if (m.acked) out.push_back(m.room.get());
  return out;
}

// A connection's messages are sequential, as in the seeds: while a write that members see only
// after its commit is on its way, nothing a later message of the same connection causes (a reply,
// a broadcast, a query) may overtake it. So its input waits until the home core reports the
// write in effect (or refused). Writes seen at once need no hold: the home core orders them.
bool Hub::hold_for_write(websocket::Session& s, SharedRoom* room, size_t bytes, bool answered,
                         const void* key) {
  RoomStore& store = system_.store();
  // In a cluster every recorded change takes effect when Redis has ordered it: held the same way.
  // So is a write answered from the home core, lest a later message's direct reply overtake it.
  if (!answered && !system_.cluster() &&
      (!store.acknowledge_after_commit() || !store.persistent(*room)))
    return false;
  // Ordered: a later durable write of the same room may pass (the home core and the store keep
  // their order), so pipelined writes are not one commit each.
  worker_->hold_ordered(s, key, bytes);
  return true;
}

void Hub::release_hold(uint64_t session, size_t bytes) {
  int c = core_of(session);
  if (c == core_) {
    worker_->release_ordered(session, bytes);
    return;
  }
  if (c < 0 || c >= system_.cores()) return;
  Envelope e;
  e.kind = Envelope::Kind::kRelease;
  e.session = session;
  e.bytes = bytes;
  send(c, e);  // behind the reply to the same session, if any: the ring keeps the order
}

void Hub::publish(websocket::Session& s, SharedRoom* room, std::span<const uint8_t> payload,
                  std::string_view user, EventFormatter formatter, bool echo, bool record,
                  engine::SharedFrame* reply_ok, engine::SharedFrame* reply_fail) {
  engine::SharedFrame* f = pack_payload(user, payload);
  Envelope e;
  e.kind = Envelope::Kind::kPublish;
  e.flags =
      static_cast<uint8_t>((echo ? 0 : Envelope::kNoEcho) | (record ? 0 : Envelope::kNoHistory));
  const bool answered = reply_ok || reply_fail || echo;  // the sender's own copy answers too
  if ((record || answered) && hold_for_write(s, room, f->size(), answered, room))
    e.flags |= Envelope::kHeld;
  room->add_ref();
  e.room = room;
  e.frame = f;
  e.session = s.id();
  e.formatter = formatter;
  // The fan-out latency of a sequenced room runs from here: the hop to the home core, the
  // sequencing and (strict) the commit are part of what members wait for. (A vDSO clock read.)
  e.received_ns = engine::monotonic_ns();
  if (reply_ok) reply_ok->add_ref();
  if (reply_fail) reply_fail->add_ref();
  e.reply_ok = reply_ok;
  e.reply_fail = reply_fail;
  send(room->home(), e, &s);
}

void Hub::home_publish(Envelope& e) {
  if (system_.cluster()) return cluster_publish(e);
  SharedRoom* room = e.room;
  engine::SharedFrame* payload = e.frame;
  const bool echo = !(e.flags & Envelope::kNoEcho);
  const bool record = !(e.flags & Envelope::kNoHistory);
  const bool held = e.flags & Envelope::kHeld;
  HistoryRecord rec;
  rec.seq = ++room->seq;
  rec.ts_ms = wall_ms();
  rec.sender = e.session;
  size_t ulen = payload->data()[0];
  rec.user.assign(reinterpret_cast<const char*>(payload->data()) + 1, ulen);
  payload->add_ref();
  rec.payload = engine::FrameRef(payload);
  rec.payload_offset = static_cast<uint32_t>(1 + ulen);
  rec.event = engine::FrameRef(e.formatter(*room, rec));
  RoomStore& store = system_.store();
  const int64_t received = e.received_ns;
  if (!record || !store.persistent(*room)) {
    commit_publish(room, std::move(rec), echo, record, received);
    if (e.reply_ok) send_to(e.session, e.reply_ok);
    if (held) release_hold(e.session, e.frame->size());
    return;
  }
  if (!store.acknowledge_after_commit()) {
    // Relaxed durability: deliver now, write behind.
    store.append(*room, rec, [](bool) {});
    commit_publish(room, std::move(rec), echo, record, received);
    if (e.reply_ok) send_to(e.session, e.reply_ok);
    if (held) release_hold(e.session, e.frame->size());
    return;
  }
  // Acknowledged means kept: members (and the publisher's ack) see the message only after the
  // store has committed it.
  auto rec_held = std::make_shared<HistoryRecord>(std::move(rec));
  room->add_ref();
  RoomRef ref(&system_.rooms(), room);
  engine::FrameRef ok(e.reply_ok), fail(e.reply_fail);
  e.reply_ok = e.reply_fail = nullptr;  // now owned by the callback
  const size_t bytes = payload->size();
  store.append(*ref.get(), *rec_held,
               [this, ref, rec_held, echo, ok, fail, held, bytes, received](bool stored) {
                 uint64_t sender = rec_held->sender;
                 if (!stored) {
                   if (fail) send_to(sender, fail.get());
                 } else {
                   commit_publish(ref.get(), std::move(*rec_held), echo, true, received);
                   if (ok) send_to(sender, ok.get());
                 }
                 if (held) release_hold(sender, bytes);
               });
}

void Hub::publish_at_home(SharedRoom* room, std::span<const uint8_t> payload, std::string_view user,
                          uint64_t sender, EventFormatter formatter,
                          std::function<void(std::optional<uint64_t>)> done) {
  if (system_.cluster())
    return cluster_publish_at_home(room, payload, user, formatter, std::move(done));
  engine::SharedFrame* f = pack_payload(user, payload);
  const size_t ulen = f->data()[0];
  HistoryRecord rec;
  rec.seq = ++room->seq;
  rec.ts_ms = wall_ms();
  rec.sender = sender;
  rec.user.assign(user.data(), ulen);
  rec.payload = engine::FrameRef(f);
  rec.payload_offset = static_cast<uint32_t>(1 + ulen);
  rec.event = engine::FrameRef(formatter(*room, rec));
  const uint64_t seq = rec.seq;
  RoomStore& store = system_.store();
  if (!store.persistent(*room) || !store.acknowledge_after_commit()) {
    if (store.persistent(*room)) store.append(*room, rec, [](bool) {});
    commit_publish(room, std::move(rec), true, true);
    done(seq);
    return;
  }
  // Strict: in effect (delivered, answered) once committed, as for a session's publish.
  auto rec_held = std::make_shared<HistoryRecord>(std::move(rec));
  room->add_ref();
  RoomRef ref(&system_.rooms(), room);
  store.append(*room, *rec_held, [this, ref, rec_held, done = std::move(done), seq](bool stored) {
    if (!stored) return done(std::nullopt);
    commit_publish(ref.get(), std::move(*rec_held), true, true);
    done(seq);
  });
}

void Hub::commit_publish(SharedRoom* room, HistoryRecord rec, bool echo, bool record,
                         int64_t received_ns) {
  engine::SharedFrame* event = rec.event.get();
  uint64_t sender = rec.sender;
  event->add_ref();  // fan-out below outlives the record if the ring overwrites it
  if (record && room->history().capacity() > 0) {
    room->history().push(std::move(rec));
    if (!room->pinned) pin(room);
  } else if (record && !room->pinned && system_.store().persistent(*room)) {
    pin(room);  // stored without history in memory: its sequence numbers must not restart
  }
  fanout_home(room, event, echo ? 0 : sender, false, received_ns);
  event->release();
}

void Hub::fanout_home(SharedRoom* room, engine::SharedFrame* frame, uint64_t exclude,
                      bool presence_only, int64_t start_ns) {
  const auto& counts = room->core_members();
  const bool sampled = sample_fanout(frame, start_ns);
  for (int c = 0; c < static_cast<int>(counts.size()); ++c) {
    if (counts[c] <= 0) continue;
    if (c == core_) {
      deliver_local(room, frame, exclude, presence_only);
      continue;
    }
    Envelope e = counted_envelope(Envelope::Kind::kRoomFrame, room, frame, exclude);
    e.flags = presence_only ? Envelope::kPresenceOnly : 0;
    if (sampled) {
      frame->fanout_hold();
      e.flags |= Envelope::kFanoutHold;
    }
    send(c, e);
  }
  if (sampled) frame->fanout_done();
}

// ---- room lifetime ------------------------------------------------------------------------------

void Hub::pin(SharedRoom* room) {
  room->pinned = true;
  room->add_ref();
  room->pin_index = static_cast<uint32_t>(pinned_.size());
  pinned_.push_back(room);
}

void Hub::unpin(SharedRoom* room) {
  room->pinned = false;
  if (room->pin_index < pinned_.size() && pinned_[room->pin_index] == room) {
    SharedRoom* last = pinned_.back();
    pinned_[room->pin_index] = last;
    last->pin_index = room->pin_index;
    pinned_.pop_back();
  }
  room->pin_index = UINT32_MAX;
  system_.rooms().release(room);
}

void Hub::maybe_unpin(SharedRoom* room) {
  // Persistent rooms stay once they have content (their sequence numbers and history are on
  // disk and must not restart); they count against [hub] max_rooms like any other.
  if (!room->pinned || !room->history().empty() || !room->state().empty() ||
      room->state_pending != 0 || system_.store().persistent(*room)) {
    return;
  }
  unpin(room);
}

// In-memory history of a room nobody is in expires [hub] history_ttl_s after its last message
// (Centrifugo's history_ttl); a room left with no state is then freed. Looks at a bounded number
// of rooms per sweep so a large registry never stalls the loop.
void Hub::expire_history() {
  next_expiry_ms_ = worker_->now_ms() + 1000;
  const int64_t ttl = system_.history_ttl_ms();
  if (ttl <= 0) return;
  const int64_t now = wall_ms();
  RoomStore& store = system_.store();
  const size_t budget = std::min(kExpiryPerSweep, pinned_.size());
  for (size_t n = 0; n < budget && !pinned_.empty(); ++n) {
    if (expire_cursor_ >= pinned_.size()) expire_cursor_ = 0;
    SharedRoom* r = pinned_[expire_cursor_];
    bool idle = !r->history().empty() && now - r->history().newest().ts_ms >= ttl &&
                std::all_of(r->core_members().begin(), r->core_members().end(),
                            [](int32_t c) { return c <= 0; });
    if (!idle || store.persistent(*r)) {
      ++expire_cursor_;
      continue;
    }
    r->history().clear();
    if (r->state().empty() && r->state_pending == 0)
      unpin(r);  // the slot now holds another room (or the cursor is past the end)
    else
      ++expire_cursor_;
  }
}

void Hub::broadcast(websocket::Session& s, SharedRoom* room, engine::SharedFrame* frame,
                    bool echo) {
  send(room->home(), counted_envelope(Envelope::Kind::kBroadcast, room, frame, echo ? 0 : s.id()),
       &s);
}

void Hub::query(SharedRoom* room, std::function<std::string(SharedRoom&)> fn,
                std::function<void(std::string)> reply) {
  room->add_ref();
  RoomRef ref(&system_.rooms(), room);
  int from = core_;
  post_fn(
      room->home(), [ref, fn = std::move(fn), reply = std::move(reply), from](Hub& home) mutable {
        auto run = [ref, fn = std::move(fn), reply = std::move(reply), from, &home]() mutable {
          std::string result = fn(*ref.get());
          home.post_fn(from, [reply = std::move(reply), result = std::move(result)](Hub&) mutable {
            reply(std::move(result));
          });
        };
        // In a cluster the room is read from its mirror, loaded first if this node has none.
        if (home.system().cluster())
          home.cluster_query(ref.get(), std::move(run));
        else
          run();
      });
}

void Hub::set_identity(websocket::Session& s, SharedRoom* room, Identity identity,
                       engine::SharedFrame* announce) {
  RoomRef ref(&system_.rooms(), room);
  room->add_ref();
  if (announce) announce->add_ref();
  engine::FrameRef frame(announce);
  post_fn(room->home(),
          [ref, session = s.id(), identity = std::move(identity), frame](Hub& home) mutable {
            SharedRoom* r = ref.get();
            if (home.system().cluster())
              return home.cluster_identity(r, session, std::move(identity), std::move(frame));
            for (auto& e : r->presence()) {
              if (e.session != session) continue;
              e.identity = std::move(identity);
              if (frame) home.fanout_home(r, frame.get(), 0, true);
              return;
            }
          });
}

// ---- direct sends and cleanup -------------------------------------------------------------------

void Hub::send_to(uint64_t session_id, engine::SharedFrame* frame) {
  int c = core_of(session_id);
  if (c == core_) {
    if (websocket::Session* s = worker_->find_session(session_id)) s->send_frame(frame);
    return;
  }
  if (is_remote_session(session_id)) {
    if (ClusterBus* bus = system_.cluster()) bus->send_remote(core_, session_id, frame);
    return;
  }
  if (c < 0 || c >= system_.cores()) return;
  Envelope e;
  e.kind = Envelope::Kind::kDirect;
  frame->add_ref();
  e.frame = frame;
  e.session = session_id;
  send(c, e);
}

void Hub::session_closed(websocket::Session& s) {
  auto it = memberships_.find(s.id());
  if (it == memberships_.end()) return;
  std::vector<std::string> names;
  for (auto& m : it->second) names.push_back(m.room->name());
  for (auto& n : names) leave(s, n);
}

}  // namespace ringcast::hub

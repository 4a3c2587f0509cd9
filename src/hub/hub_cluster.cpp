// Sequenced rooms in a cluster ([cluster], docs/cluster.md). The room's home core on each node
// keeps a mirror of the room (sequence number, history, presence, state) while the node has
// members or changes in flight. Every change is sent as an event to Redis, whose event script
// gives it its place in the room's one order (and a sequence number for messages), records it
// and publishes it; every mirroring node, this one included, applies the events in that order.
// So a change takes effect here when it comes back, exactly as it does on the other nodes.
#include <charconv>
#include <cstring>

#include "cluster_room.h"
#include "ringcast/engine/log.h"
#include "ringcast/hub/formatter_names.h"

namespace ringcast::hub {

namespace {
void delete_cluster_room(ClusterRoom* c) {
  delete c;
}
}  // namespace

// ---- sending ------------------------------------------------------------------------------------

namespace {

// The script's arguments, as length-prefixed fields (see RedisBus::send_event).
engine::SharedFrame* pack_args(char kind, const EventArgs& a, const SharedRoom& room,
                               int64_t ttl_ms) {
  char num1[24], num2[24];
  auto n1 = std::to_chars(num1, num1 + sizeof num1, room.history().capacity());
  auto n2 = std::to_chars(num2, num2 + sizeof num2, ttl_ms);
  std::string_view fields[] = {std::string_view(&kind, 1),
                               a.body,
                               a.field,
                               a.value,
                               std::string_view(num1, static_cast<size_t>(n1.ptr - num1)),
                               std::string_view(num2, static_cast<size_t>(n2.ptr - num2))};
  size_t total = 0;
  for (auto f : fields) total += 4 + f.size();
  engine::SharedFrame* out = engine::SharedFrame::allocate(total);
  uint8_t* p = out->data();
  for (auto f : fields) {
    uint32_t n = static_cast<uint32_t>(f.size());
    std::memcpy(p, &n, 4);
    if (n) std::memcpy(p + 4, f.data(), n);
    p += 4 + n;
  }
  out->set_size(total);
  return out;
}

// The arguments of this thread's next event, emptied: messages, broadcasts and state writes
// reuse its buffers instead of allocating per event (each call finishes with it before the next).
EventArgs& scratch_args() {
  thread_local EventArgs a;
  a.body.clear();
  a.field.clear();
  a.value.clear();
  return a;
}

}  // namespace

ClusterRoom& cluster_of(SharedRoom* room) {
  if (!room->cluster) {
    room->cluster = new ClusterRoom();
    room->cluster_free = delete_cluster_room;
  }
  return *room->cluster;
}

// Starts mirroring if it is not on. Called before sending: the room's own events then come
// back to this node, after the snapshot or inside it.
void activate(Hub& hub, ClusterBus& bus, SharedRoom* room) {
  ClusterRoom& c = cluster_of(room);
  if (c.phase != ClusterRoom::Phase::kOff) return;
  c.phase = ClusterRoom::Phase::kLoading;
  room->add_ref();
  c.self = RoomRef(&hub.system().rooms(), room);
  bus.mirror(hub.core(), *room, true);
}

// Stops mirroring a room this node no longer needs (no members here, nothing in flight); what
// the mirror held is dropped, Redis keeps it.
void maybe_deactivate(Hub& hub, ClusterBus& bus, SharedRoom* room) {
  ClusterRoom& c = cluster_of(room);
  if (c.phase == ClusterRoom::Phase::kOff || !c.ops.empty() || !c.queries.empty() ||
      !c.leaving.empty() || !c.waiting_joins.empty())
    return;
  for (int32_t n : room->core_members())
    if (n > 0) return;
  bus.mirror(hub.core(), *room, false);
  c.phase = ClusterRoom::Phase::kOff;
  c.ev = 0;
  c.stale = false;
  c.early.clear();
  room->history().clear();
  room->presence().clear();
  std::vector<std::string> keys;
  room->state().for_each([&](std::string_view k, std::string_view) { keys.emplace_back(k); });
  for (const auto& k : keys) room->state().erase(k);
  RoomRef keep = std::move(c.self);    // the room may go with this reference: last
  HubClusterAccess::unpin(hub, room);  // pinned only for the mirror's content, which is gone
}

std::string member_of(uint64_t instance, uint64_t session) {
  std::string m;
  m.reserve(kMemberLen);
  put_hex(m, instance, 16);
  put_hex(m, session, 16);
  return m;
}

// Sends one event; false (and nothing queued) if Redis is not reachable.
bool send_event(Hub& hub, ClusterBus& bus, SharedRoom* room, char kind, EventArgs& a,
                ClusterRoom::Op* op, uint64_t session) {
  ClusterRoom& c = cluster_of(room);
  activate(hub, bus, room);
  uint32_t token = op ? c.next_token++ : 0;
  if (c.next_token == 0) c.next_token = 1;
  // Who and which token, in front of the body (no allocation once the scratch is warm).
  static constexpr char kHex[] = "0123456789abcdef";
  char head[kBodyHead];
  for (int i = 0; i < 16; ++i) {
    head[i] = kHex[(bus.instance() >> ((15 - i) * 4)) & 15];
    head[16 + i] = kHex[(session >> ((15 - i) * 4)) & 15];
  }
  for (int i = 0; i < 8; ++i) head[32 + i] = kHex[(token >> ((7 - i) * 4)) & 15];
  a.body.insert(0, head, kBodyHead);
  const bool persistent = hub.system().store().persistent(*room);
  int64_t ttl = persistent ? 0 : hub.system().history_ttl_ms();
  engine::SharedFrame* args = pack_args(kind, a, *room, ttl);
  bool sent = bus.send_event(hub.core(), *room, args);
  args->release();
  if (!sent) {
    maybe_deactivate(hub, bus, room);
    return false;
  }
  if (op) {
    op->token = token;
    op->kind = kind;
    op->session = session;
    c.ops.push_back(std::move(*op));
  }
  return true;
}

void Hub::cluster_publish(Envelope& e) {
  ClusterBus& bus = *system_.cluster();
  SharedRoom* room = e.room;
  const bool record = !(e.flags & Envelope::kNoHistory);
  engine::SharedFrame* payload = e.frame;
  EventArgs& a = scratch_args();
  a.body.push_back(static_cast<char>((e.flags & Envelope::kNoEcho) ? 0 : kEcho));
  put<uint32_t>(a.body, formatter_id(e.formatter));
  put<int64_t>(a.body, wall_ms_now());
  a.body.append(reinterpret_cast<const char*>(payload->data()), payload->size());  // user + data
  ClusterRoom::Op op;
  op.ok = engine::FrameRef(e.reply_ok);
  op.fail = engine::FrameRef(e.reply_fail);
  e.reply_ok = e.reply_fail = nullptr;
  op.held = e.flags & Envelope::kHeld;
  op.bytes = payload->size();
  op.received_ns = e.received_ns;
  if (!send_event(*this, bus, room, record ? 'p' : 'q', a, &op, e.session)) {
    // Redis is unreachable: a message cannot get its place in the room's order.
    if (op.fail) send_to(e.session, op.fail.get());
    if (op.held) release_hold(e.session, op.bytes);
  }
}

void Hub::cluster_publish_at_home(SharedRoom* room, std::span<const uint8_t> payload,
                                  std::string_view user, EventFormatter formatter,
                                  std::function<void(std::optional<uint64_t>)> done) {
  ClusterBus& bus = *system_.cluster();
  EventArgs a;
  a.body.push_back(static_cast<char>(kEcho));
  put<uint32_t>(a.body, formatter_id(formatter));
  put<int64_t>(a.body, wall_ms_now());
  size_t ulen = std::min<size_t>(user.size(), 255);
  a.body.push_back(static_cast<char>(ulen));
  a.body.append(user.substr(0, ulen));
  a.body.append(reinterpret_cast<const char*>(payload.data()), payload.size());
  ClusterRoom::Op op;
  op.done = done;
  if (!send_event(*this, bus, room, 'p', a, &op, 0)) done(std::nullopt);
}

void Hub::cluster_broadcast(Envelope& e) {
  ClusterBus& bus = *system_.cluster();
  EventArgs& a = scratch_args();
  a.body.push_back(static_cast<char>(e.session ? 0 : kEcho));
  put_frame(a.body, e.frame);
  ClusterRoom::Op op;
  e.frame->add_ref();
  op.frame = engine::FrameRef(e.frame);  // this node sends its own frame, not a re-encoded one
  send_event(*this, bus, e.room, 'b', a, &op, e.session);
}

void Hub::cluster_state(Envelope& e) {
  ClusterBus& bus = *system_.cluster();
  SharedRoom* room = e.room;
  const uint8_t* p = e.frame->data();
  uint32_t klen;
  std::memcpy(&klen, p, 4);
  std::string_view key(reinterpret_cast<const char*>(p) + 4, klen);
  const bool del = e.flags & Envelope::kDelete;
  const bool held = e.flags & Envelope::kHeld;
  std::string_view value;
  if (!del)
    value =
        std::string_view(reinterpret_cast<const char*>(p) + 4 + klen, e.frame->size() - 4 - klen);
  // Limits are judged on this node's mirror (see docs/cluster.md: exact per node; writes racing
  // on two nodes can pass them by the number of nodes).
  const std::string_view prefix = key.substr(0, e.key_prefix);
  if ((e.flags & Envelope::kTooLarge) ||
      (!del && !room->state().admits(key, prefix, e.max_keys, true))) {
    if (e.reply_refused) send_to(e.session, e.reply_refused);
    if (held) release_hold(e.session, e.frame->size());
    return;
  }
  EventArgs& a = scratch_args();
  uint8_t flags = static_cast<uint8_t>(((e.flags & Envelope::kNoEcho) ? 0 : kEcho) |
                                       ((e.flags & Envelope::kEvent) ? kHasEvent : 0));
  a.body.push_back(static_cast<char>(flags));
  put<uint32_t>(a.body, (e.flags & Envelope::kEvent) ? 0 : formatter_id(e.state_formatter));
  put<uint32_t>(a.body, klen);
  a.body.append(key);
  put<uint32_t>(a.body, static_cast<uint32_t>(value.size()));
  a.body.append(value);
  put_frame(a.body, (e.flags & Envelope::kEvent) ? e.event : nullptr);
  a.field.assign(key);
  a.value.assign(value);
  ClusterRoom::Op op;
  op.ok = engine::FrameRef(e.reply_ok);
  op.fail = engine::FrameRef(e.reply_fail);
  e.reply_ok = e.reply_fail = nullptr;
  op.held = held;
  op.bytes = e.frame->size();
  if (!send_event(*this, bus, room, del ? 'd' : 's', a, &op, e.session)) {
    if (op.fail) send_to(e.session, op.fail.get());
    if (op.held) release_hold(e.session, op.bytes);
  }
}

void Hub::cluster_join(std::unique_ptr<JoinTask> task) {
  ClusterBus& bus = *system_.cluster();
  SharedRoom* room = task->room.get();
  ClusterRoom& c = cluster_of(room);
  if (c.phase != ClusterRoom::Phase::kLive && bus.connected()) {
    activate(*this, bus, room);
    c.waiting_joins.push_back(std::move(task));
    return;
  }
  EventArgs a;
  put<uint32_t>(a.body, formatter_id(task->opts.presence_events));
  put_identity(a.body, task->opts.identity);
  a.field = member_of(bus.instance(), task->session);
  a.value = a.body;  // the presence record Redis keeps: formatter and identity
  ClusterRoom::Op op;
  uint64_t session = task->session;
  op.join = std::move(task);
  if (!send_event(*this, bus, room, 'j', a, &op, session)) {
    // Redis is unreachable: the member joins this node's mirror now (served locally, degraded)
    // and is announced to the cluster when Redis is back (see the snapshot below).
    JoinTask* t = op.join.get();
    activate(*this, bus, room);
    t->join_here(*this, PresenceEntry{t->session, t->opts.identity});
  }
}

void Hub::cluster_query(SharedRoom* room, std::function<void()> run) {
  ClusterBus& bus = *system_.cluster();
  ClusterRoom& c = cluster_of(room);
  if (c.phase == ClusterRoom::Phase::kLive || !bus.connected()) {
    run();
    if (c.phase == ClusterRoom::Phase::kOff) return;
  } else {
    activate(*this, bus, room);
    c.queries.push_back(std::move(run));
    return;
  }
  maybe_deactivate(*this, bus, room);
}

void Hub::cluster_leave(SharedRoom* room, uint64_t session) {
  ClusterBus& bus = *system_.cluster();
  EventArgs a;
  a.field = member_of(bus.instance(), session);
  // The others hear it when the event comes back (its core stopped delivering to it already).
  // If Redis is unreachable it leaves this node's mirror now and Redis's at the next snapshot.
  ClusterRoom& c = cluster_of(room);
  c.leaving.push_back(session);
  ClusterRoom::Op op;  // its receipt tells a leave Redis had nothing for (then done)
  if (!send_event(*this, bus, room, 'l', a, &op, session)) remove_presence(room, session);
  maybe_deactivate(*this, bus, room);
}

void Hub::cluster_identity(SharedRoom* room, uint64_t session, Identity identity,
                           engine::FrameRef announce) {
  ClusterBus& bus = *system_.cluster();
  EventArgs a;
  std::string record;
  put<uint32_t>(record, formatter_id(room->presence_formatter));
  put_identity(record, identity);
  a.body = record;
  put_frame(a.body, announce.get());
  a.field = member_of(bus.instance(), session);
  a.value = std::move(record);
  send_event(*this, bus, room, 'i', a, nullptr, session);
}

}  // namespace ringcast::hub

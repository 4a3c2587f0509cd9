// Sequenced rooms in a cluster ([cluster], docs/cluster.md). The room's home core on each node
// keeps a mirror of the room (sequence number, history, presence, state) while the node has
// members or changes in flight. Every change is sent as an event to Redis, whose event script
// gives it its place in the room's one order (and a sequence number for messages), records it
// and publishes it; every mirroring node, this one included, applies the events in that order.
// So a change takes effect here when it comes back, exactly as it does on the other nodes.
#include <charconv>
#include <cstring>

#include "membership_tasks.h"
#include "ringcast/engine/log.h"
#include "ringcast/hub/formatter_names.h"
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
};

void delete_cluster_room(ClusterRoom* c) {
  delete c;
}

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

namespace {

void put_hex(std::string& out, uint64_t v, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; --i) out.push_back(kHex[(v >> (i * 4)) & 15]);
}

uint64_t get_hex(std::string_view s) {
  uint64_t v = 0;
  for (char c : s) v = v * 16 + static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
  return v;
}

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

void put_str16(std::string& out, std::string_view s) {
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

void put_identity(std::string& out, const Identity& id) {
  put_str16(out, id.user_id);
  put_str16(out, id.nickname);
  put_str16(out, id.role);
}

Identity get_identity(Reader& r) {
  Identity id;
  id.user_id = std::string(r.str16());
  id.nickname = std::string(r.str16());
  id.role = std::string(r.str16());
  return id;
}

// The message payload of an encoded frame, with its opcode (0: none).
void put_frame(std::string& out, const engine::SharedFrame* f) {
  if (!f || !f->message_opcode()) {
    out.push_back(0);
    return;
  }
  out.push_back(static_cast<char>(f->message_opcode()));
  auto p = f->message_payload();
  out.append(reinterpret_cast<const char*>(p.data()), p.size());
}

engine::SharedFrame* get_frame(std::string_view rest) {
  if (rest.empty() || rest[0] == 0) return nullptr;
  auto op = static_cast<websocket::Opcode>(rest[0]);
  rest.remove_prefix(1);
  return websocket::encode_frame(op, {reinterpret_cast<const uint8_t*>(rest.data()), rest.size()});
}

// The session id a member of another node goes by here: outside every core's range (so sends
// to it go nowhere), the same for every event of that member.
uint64_t remote_session(std::string_view member) {
  return remote_session_id(member);
}

int64_t wall_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// ---- sending ------------------------------------------------------------------------------------

namespace {

struct EventArgs {
  std::string body, field, value;
};

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

}  // namespace

namespace {
struct SendContext {
  Hub& hub;
  ClusterBus& bus;
  ClusterRoom& c;
  SharedRoom* room;
};
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
static void activate(Hub& hub, ClusterBus& bus, SharedRoom* room) {
  ClusterRoom& c = cluster_of(room);
  if (c.phase != ClusterRoom::Phase::kOff) return;
  c.phase = ClusterRoom::Phase::kLoading;
  room->add_ref();
  c.self = RoomRef(&hub.system().rooms(), room);
  bus.mirror(hub.core(), *room, true);
}

// Stops mirroring a room this node no longer needs (no members here, nothing in flight); what
// the mirror held is dropped, Redis keeps it.
static void maybe_deactivate(Hub& hub, ClusterBus& bus, SharedRoom* room) {
  ClusterRoom& c = cluster_of(room);
  if (c.phase == ClusterRoom::Phase::kOff || !c.ops.empty() || !c.queries.empty() ||
      !c.leaving.empty())
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

namespace {

std::string member_of(uint64_t instance, uint64_t session) {
  std::string m;
  m.reserve(kMemberLen);
  put_hex(m, instance, 16);
  put_hex(m, session, 16);
  return m;
}

}  // namespace

// Sends one event; false (and nothing queued) if Redis is not reachable.
static bool send_event(Hub& hub, ClusterBus& bus, SharedRoom* room, char kind, EventArgs& a,
                       ClusterRoom::Op* op, uint64_t session) {
  ClusterRoom& c = cluster_of(room);
  activate(hub, bus, room);
  uint32_t token = op ? c.next_token++ : 0;
  if (c.next_token == 0) c.next_token = 1;
  std::string head = member_of(bus.instance(), session);
  put_hex(head, token, 8);
  a.body.insert(0, head);
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
  size_t ulen = payload->data()[0];
  EventArgs a;
  a.body.push_back(static_cast<char>((e.flags & Envelope::kNoEcho) ? 0 : kEcho));
  put<uint32_t>(a.body, formatter_id(e.formatter));
  put<int64_t>(a.body, wall_ms_now());
  a.body.append(reinterpret_cast<const char*>(payload->data()), payload->size());  // user + data
  (void)ulen;
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
  EventArgs a;
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
  EventArgs a;
  uint8_t flags = static_cast<uint8_t>(((e.flags & Envelope::kNoEcho) ? 0 : kEcho) |
                                       ((e.flags & Envelope::kEvent) ? kHasEvent : 0));
  a.body.push_back(static_cast<char>(flags));
  put<uint32_t>(a.body, (e.flags & Envelope::kEvent) ? 0 : formatter_id(e.state_formatter));
  put<uint32_t>(a.body, klen);
  a.body.append(key);
  put<uint32_t>(a.body, static_cast<uint32_t>(value.size()));
  a.body.append(value);
  put_frame(a.body, (e.flags & Envelope::kEvent) ? e.event : nullptr);
  a.field = std::string(key);
  a.value = std::string(value);
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

// ---- arrivals -----------------------------------------------------------------------------------

namespace {

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

bool parse_event(std::string_view msg, Event& e) {
  if (msg.size() < 4) return false;
  e.kind = msg[0];
  const char* p = msg.data() + 1;
  const char* end = msg.data() + msg.size();
  auto r1 = std::from_chars(p, end, e.ev);
  if (r1.ec != std::errc() || r1.ptr == end || *r1.ptr != ',') return false;
  auto r2 = std::from_chars(r1.ptr + 1, end, e.n);
  if (r2.ec != std::errc() || r2.ptr == end || *r2.ptr != ',') return false;
  std::string_view body(r2.ptr + 1, static_cast<size_t>(end - r2.ptr - 1));
  if (body.size() < kBodyHead) return false;
  for (char c : body.substr(0, kBodyHead))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  e.member = body.substr(0, kMemberLen);
  e.instance = get_hex(body.substr(0, 16));
  e.session = get_hex(body.substr(16, 16));
  e.token = static_cast<uint32_t>(get_hex(body.substr(kMemberLen, 8)));
  e.rest = body.substr(kBodyHead);
  return true;
}

}  // namespace

namespace {

// Applies one event of the room's order to this node's mirror and fans it out here.
class Applier {
 public:
  Applier(Hub& hub, ClusterBus& bus, SharedRoom* room, ClusterRoom& c)
      : hub_(hub), bus_(bus), room_(room), c_(c) {}

  // `covered`: the event is already in the snapshot (only this node's op needs finishing).
  void apply(const Event& e, bool covered);

 private:
  std::optional<ClusterRoom::Op> take_op(const Event& e) {
    if (e.instance != bus_.instance() || e.token == 0) return std::nullopt;
    for (auto it = c_.ops.begin(); it != c_.ops.end(); ++it) {
      if (it->token != e.token) continue;
      ClusterRoom::Op op = std::move(*it);
      c_.ops.erase(it);
      return op;
    }
    return std::nullopt;
  }
  void finish(ClusterRoom::Op& op, bool ok);
  uint64_t sid(const Event& e) const {
    return e.instance == bus_.instance() ? e.session : remote_session(e.member);
  }

  Hub& hub_;
  ClusterBus& bus_;
  SharedRoom* room_;
  ClusterRoom& c_;
};

}  // namespace

// An event of this node that a snapshot already has: its effects are in the mirror, only the
// node's side of it (replies, the joiner's result) is left.
void finish_covered(Hub& hub, SharedRoom* room, ClusterRoom::Op& op, uint64_t n) {
  if (op.kind == 'l') {
    std::erase(room->cluster->leaving, op.session);
    return;
  }
  if (op.join) {
    JoinTask& t = *op.join;
    auto& p = room->presence();
    PresenceEntry me{t.session, t.opts.identity};
    for (auto it = p.begin(); it != p.end(); ++it) {
      if (it->session != t.session) continue;
      me = std::move(*it);
      p.erase(it);
      break;
    }
    t.join_here(hub, std::move(me));
    return;
  }
  if (op.done) op.done(n);
  if (op.ok) hub.send_to(op.session, op.ok.get());
  if (op.held) HubClusterAccess::release_hold(hub, op.session, op.bytes);
}

void Applier::finish(ClusterRoom::Op& op, bool ok) {
  if (ok && op.ok) hub_.send_to(op.session, op.ok.get());
  if (!ok && op.fail) hub_.send_to(op.session, op.fail.get());
  if (op.held) HubClusterAccess::release_hold(hub_, op.session, op.bytes);
}

void Applier::apply(const Event& e, bool covered) {
  std::optional<ClusterRoom::Op> op = take_op(e);
  if (covered) {
    if (op) finish_covered(hub_, room_, *op, e.n);
    return;
  }
  Reader r{e.rest};
  switch (e.kind) {
    case 'p':
    case 'q': {
      uint8_t flags = r.get<uint8_t>();
      EventFormatter fmt = event_formatter(r.get<uint32_t>());
      int64_t ts = r.get<int64_t>();
      std::string_view packed = r.s;  // [user length][user][data], as Hub::publish packs it
      if (!r.ok || packed.empty() || packed.size() < 1u + static_cast<uint8_t>(packed[0])) break;
      room_->seq = std::max(room_->seq, e.n);
      if (op && op->done) op->done(e.n);
      if (!fmt) {
        static log::Throttle throttle(10000);
        uint64_t held = 0;
        if (throttle.allow(0, held))
          RC_WARN(
              "cluster: room %s: a message with a formatter this node does not have; "
              "nodes must run the same version",
              room_->name().c_str());
        if (op) finish(*op, true);
        break;
      }
      HistoryRecord rec;
      rec.seq = e.n;
      rec.ts_ms = ts;
      rec.sender = op && !op->done ? op->session : sid(e);
      size_t ulen = static_cast<uint8_t>(packed[0]);
      rec.user.assign(packed.data() + 1, ulen);
      engine::SharedFrame* pf = engine::SharedFrame::allocate(packed.size());
      std::memcpy(pf->data(), packed.data(), packed.size());
      pf->set_size(packed.size());
      rec.payload = engine::FrameRef(pf);
      rec.payload_offset = static_cast<uint32_t>(1 + ulen);
      rec.event = engine::FrameRef(fmt(*room_, rec));
      uint64_t sender = rec.sender;
      bool echo = flags & kEcho;
      if (e.instance != bus_.instance()) echo = true;  // nobody here sent it
      HubClusterAccess::commit_publish(hub_, room_, std::move(rec), echo, e.kind == 'p',
                                       op ? op->received_ns : 0);
      (void)sender;
      if (op) finish(*op, true);
      break;
    }
    case 'b': {
      uint8_t flags = r.get<uint8_t>();
      if (!r.ok) break;
      engine::FrameRef f =
          op && op->frame ? std::move(op->frame) : engine::FrameRef(get_frame(r.s));
      if (!f) break;
      uint64_t exclude = e.instance == bus_.instance() && !(flags & kEcho) ? e.session : 0;
      HubClusterAccess::fanout_home(hub_, room_, f.get(), exclude, false);
      break;
    }
    case 'j': {
      PresenceFormatter pf = presence_formatter(r.get<uint32_t>());
      Identity id = get_identity(r);
      if (!r.ok) break;
      if (op && op->join) {
        op->join->join_here(hub_, PresenceEntry{op->join->session, std::move(id)});
        break;
      }
      uint64_t s = sid(e);
      auto& p = room_->presence();
      if (std::any_of(p.begin(), p.end(), [&](const PresenceEntry& x) { return x.session == s; }))
        break;  // a re-announced member this mirror has (after Redis came back)
      if (pf && !room_->presence_formatter) room_->presence_formatter = pf;
      PresenceEntry me{s, std::move(id)};
      if (room_->presence_formatter) {
        engine::FrameRef f(room_->presence_formatter(*room_, me, true));
        if (f) HubClusterAccess::fanout_home(hub_, room_, f.get(), s, true);
      }
      p.push_back(std::move(me));
      break;
    }
    case 'l':
      // Token ffffffff: the others expired this node's member (see the heartbeat script). If it
      // is this node's, it is alive after all (the node stalled): it stays here and is
      // re-announced once this node has reconnected.
      if (e.instance == bus_.instance() && e.token == 0xffffffffu) break;
      if (e.instance == bus_.instance()) std::erase(c_.leaving, e.session);
      HubClusterAccess::remove_presence(hub_, room_, sid(e));
      break;
    case 'i': {
      r.get<uint32_t>();
      Identity id = get_identity(r);
      if (!r.ok) break;
      uint64_t s = sid(e);
      for (auto& x : room_->presence()) {
        if (x.session != s) continue;
        x.identity = std::move(id);
        engine::FrameRef f(get_frame(r.s));
        if (f) HubClusterAccess::fanout_home(hub_, room_, f.get(), 0, true);
        break;
      }
      break;
    }
    case 's':
    case 'd': {
      uint8_t flags = r.get<uint8_t>();
      StateFormatter fmt = state_formatter(r.get<uint32_t>());
      std::string_view key = r.str32();
      std::string_view value = r.str32();
      if (!r.ok) break;
      engine::FrameRef event((flags & kHasEvent) ? get_frame(r.s) : nullptr);
      bool echo = (flags & kEcho) || e.instance != bus_.instance();
      std::optional<std::string_view> v;
      if (e.kind == 's') v = value;
      HubClusterAccess::apply_state(hub_, room_, key, v, e.n, event.get(), fmt,
                                    op ? op->session : sid(e), echo,
                                    op && op->ok ? op->ok.get() : nullptr);
      if (op && op->held) HubClusterAccess::release_hold(hub_, op->session, op->bytes);
      break;
    }
    default:
      break;
  }
}

void Hub::cluster_arrival(ClusterArrival kind, SharedRoom* room, engine::SharedFrame* frame,
                          ClusterReceipt receipt) {
  ClusterBus& bus = *system_.cluster();
  if (kind == ClusterArrival::kSend) {
    if (frame) send_to(receipt.n, frame);
    return;
  }
  if (kind == ClusterArrival::kAllocated) {
    if (ClusterDirectory* d = bus.directory()) d->directory_allocated(*this, receipt.ev, receipt.n);
    return;
  }
  ClusterRoom& c = cluster_of(room);
  switch (kind) {
    case ClusterArrival::kDirect:
      fanout_from_cluster(room, frame);
      return;
    case ClusterArrival::kSend:
    case ClusterArrival::kAllocated:
      return;
    case ClusterArrival::kEvent: {
      if (c.phase == ClusterRoom::Phase::kOff) return;
      if (c.phase == ClusterRoom::Phase::kLoading) {
        frame->add_ref();
        c.early.emplace_back(frame);
        return;
      }
      Event e;
      if (!parse_event({reinterpret_cast<const char*>(frame->data()), frame->size()}, e)) return;
      Applier(*this, bus, room, c).apply(e, e.ev <= c.ev);
      c.ev = std::max(c.ev, e.ev);
      break;
    }
    case ClusterArrival::kDone:
    case ClusterArrival::kFailed: {
      auto it = std::find_if(c.ops.begin(), c.ops.end(),
                             [&](const ClusterRoom::Op& o) { return o.token == receipt.token; });
      if (it == c.ops.end()) break;  // finished by its event already
      if (kind == ClusterArrival::kDone && receipt.ev != 0) {
        if (c.phase == ClusterRoom::Phase::kLive && receipt.ev <= c.ev) {
          // A snapshot had it (it ran before this node subscribed): finish it now.
          ClusterRoom::Op op = std::move(*it);
          c.ops.erase(it);
          finish_covered(*this, room, op, receipt.n);
        } else {
          it->ev = receipt.ev;  // its event (or the snapshot) finishes it
          it->n = receipt.n;
        }
        break;
      }
      ClusterRoom::Op op = std::move(*it);
      c.ops.erase(it);
      const bool ok = kind == ClusterArrival::kDone;                // and changed nothing
      if (ok && op.kind == 'l') std::erase(c.leaving, op.session);  // Redis had no such member
      if (op.done) op.done(ok ? std::optional<uint64_t>(room->seq) : std::nullopt);
      if (op.join) {
        // Could not be recorded: join this node's mirror only (see cluster_join).
        op.join->join_here(*this, PresenceEntry{op.join->session, op.join->opts.identity});
      } else if (ok && op.ok) {
        send_to(op.session, op.ok.get());  // a delete of a key that was not there
      } else if (!ok && op.fail) {
        send_to(op.session, op.fail.get());
      }
      if (op.held) release_hold(op.session, op.bytes);
      break;
    }
    case ClusterArrival::kLost:
      if (c.phase == ClusterRoom::Phase::kOff) return;
      c.stale = true;
      c.seq_at_loss = room->seq;
      bus.mirror_floor(core_, *room, room->seq, c.ev);
      c.phase = ClusterRoom::Phase::kLoading;  // events wait for the next snapshot
      break;
    case ClusterArrival::kSnapshot: {
      if (c.phase == ClusterRoom::Phase::kOff || !frame) return;
      Reader r{{reinterpret_cast<const char*>(frame->data()), frame->size()}};
      uint64_t ev = r.get<uint64_t>();
      uint64_t seq = r.get<uint64_t>();
      // Members this node has that Redis does not (joined while it was unreachable): announce
      // them again after the snapshot.
      std::vector<PresenceEntry> mine;
      for (const auto& p : room->presence())
        if (core_of(p.session) < system_.cores() &&
            std::find(c.leaving.begin(), c.leaving.end(), p.session) == c.leaving.end())
          mine.push_back(p);
      room->history().clear();
      // After a loss, what changed meanwhile is announced here like the events it missed.
      const bool was_stale = c.stale;
      std::vector<PresenceEntry> before;
      if (was_stale) before = room->presence();
      room->presence().clear();
      std::vector<std::string> keys;
      room->state().for_each([&](std::string_view k, std::string_view) { keys.emplace_back(k); });
      for (const auto& k : keys) room->state().erase(k);
      room->seq = seq;
      c.ev = ev;
      uint32_t nh = r.get<uint32_t>();
      std::vector<HistoryRecord> missed;
      for (uint32_t i = 0; i < nh && r.ok; ++i) {
        Event e;
        if (!parse_event(r.str32(), e) || e.kind != 'p') continue;
        Reader b{e.rest};
        b.get<uint8_t>();
        EventFormatter fmt = event_formatter(b.get<uint32_t>());
        int64_t ts = b.get<int64_t>();
        std::string_view packed = b.s;
        if (!b.ok || !fmt || packed.empty() || packed.size() < 1u + static_cast<uint8_t>(packed[0]))
          continue;
        HistoryRecord rec;
        rec.seq = e.n;
        rec.ts_ms = ts;
        rec.sender = e.instance == bus.instance() ? e.session : remote_session(e.member);
        size_t ulen = static_cast<uint8_t>(packed[0]);
        rec.user.assign(packed.data() + 1, ulen);
        engine::SharedFrame* pf = engine::SharedFrame::allocate(packed.size());
        std::memcpy(pf->data(), packed.data(), packed.size());
        pf->set_size(packed.size());
        rec.payload = engine::FrameRef(pf);
        rec.payload_offset = static_cast<uint32_t>(1 + ulen);
        rec.event = engine::FrameRef(fmt(*room, rec));
        if (c.stale && rec.seq > c.seq_at_loss) {
          // Published while this node could not hear: its members get what history still has.
          engine::FrameRef ev2 = rec.event;
          if (ev2) HubClusterAccess::fanout_home(*this, room, ev2.get(), 0, false);
        }
        if (room->history().capacity() > 0) {
          room->history().push(std::move(rec));
          HubClusterAccess::pin(*this, room);
        }
      }
      uint32_t np = r.get<uint32_t>();
      for (uint32_t i = 0; i < np && r.ok; ++i) {
        std::string_view member = r.str32();
        Reader v{r.str32()};
        PresenceFormatter pf = presence_formatter(v.get<uint32_t>());
        Identity id = get_identity(v);
        if (member.size() != kMemberLen || !v.ok) continue;
        if (pf && !room->presence_formatter) room->presence_formatter = pf;
        uint64_t inst = get_hex(member.substr(0, 16));
        uint64_t s =
            inst == bus.instance() ? get_hex(member.substr(16, 16)) : remote_session(member);
        room->presence().push_back(PresenceEntry{s, std::move(id)});
      }
      uint32_t ns = r.get<uint32_t>();
      for (uint32_t i = 0; i < ns && r.ok; ++i) {
        std::string_view k = r.str32();
        std::string_view v = r.str32();
        uint64_t order = r.get<uint64_t>();
        if (!r.ok) break;
        room->state().set(k, v, order);
        HubClusterAccess::pin(*this, room);
      }
      c.stale = false;
      c.phase = ClusterRoom::Phase::kLive;
      std::vector<std::function<void()>> queries = std::move(c.queries);
      c.queries.clear();
      for (auto& q : queries) q();
      // This node's events the snapshot has (their receipts came first).
      for (auto it = c.ops.begin(); it != c.ops.end();) {
        if (it->ev == 0 || it->ev > c.ev) {
          ++it;
          continue;
        }
        ClusterRoom::Op op = std::move(*it);
        it = c.ops.erase(it);
        finish_covered(*this, room, op, op.n);
      }
      for (auto& p : mine) {
        auto& pr = room->presence();
        if (std::none_of(pr.begin(), pr.end(),
                         [&](const PresenceEntry& x) { return x.session == p.session; })) {
          EventArgs a;
          put<uint32_t>(a.body, formatter_id(room->presence_formatter));
          put_identity(a.body, p.identity);
          a.field = member_of(bus.instance(), p.session);
          a.value = a.body;
          pr.push_back(p);  // still a member here meanwhile
          send_event(*this, bus, room, 'j', a, nullptr, p.session);
        }
      }
      if (was_stale && room->presence_formatter) {
        auto has = [](const std::vector<PresenceEntry>& v, uint64_t id) {
          return std::any_of(v.begin(), v.end(),
                             [&](const PresenceEntry& x) { return x.session == id; });
        };
        const auto& now = room->presence();
        for (const auto& p : before)
          if (!has(now, p.session)) {
            engine::FrameRef f(room->presence_formatter(*room, p, false));
            if (f) HubClusterAccess::fanout_home(*this, room, f.get(), p.session, true);
          }
        for (const auto& p : now)
          if (!has(before, p.session)) {
            engine::FrameRef f(room->presence_formatter(*room, p, true));
            if (f) HubClusterAccess::fanout_home(*this, room, f.get(), p.session, true);
          }
      }
      // Leaves Redis did not get: again (and out of this mirror now); the rest are done.
      std::vector<uint64_t> leaving = std::move(c.leaving);
      c.leaving.clear();
      for (uint64_t s : leaving) {
        auto& pr = room->presence();
        if (std::none_of(pr.begin(), pr.end(),
                         [&](const PresenceEntry& x) { return x.session == s; }))
          continue;
        c.leaving.push_back(s);
        EventArgs a;
        a.field = member_of(bus.instance(), s);
        ClusterRoom::Op op;
        if (!send_event(*this, bus, room, 'l', a, &op, s)) remove_presence(room, s);
      }
      // Events that came meanwhile, in order; those the snapshot has are only finished.
      std::vector<engine::FrameRef> early = std::move(c.early);
      c.early.clear();
      for (auto& f : early) {
        Event e;
        if (!parse_event({reinterpret_cast<const char*>(f->data()), f->size()}, e)) continue;
        Applier(*this, bus, room, c).apply(e, e.ev <= c.ev);
        c.ev = std::max(c.ev, e.ev);
      }
      break;
    }
  }
  maybe_deactivate(*this, bus, room);
}

}  // namespace ringcast::hub

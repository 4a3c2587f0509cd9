// Sequenced rooms in a cluster: applying what Redis sends back (events, snapshots, receipts) to
// this node's mirror, in the room's one order (see hub_cluster.cpp).
#include <algorithm>
#include <charconv>
#include <cstring>

#include "cluster_room.h"
#include "ringcast/engine/log.h"
#include "ringcast/hub/formatter_names.h"

namespace ringcast::hub {

// ---- arrivals -----------------------------------------------------------------------------------

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

namespace {

// A message's fields ([flags][formatter][ts][user length][user][data]); false if malformed.
struct MessageEvent {
  uint8_t flags = 0;
  EventFormatter fmt = nullptr;
  int64_t ts = 0;
  std::string_view packed;  // [user length][user][data], as Hub::publish packs it
};
bool read_message(std::string_view rest, MessageEvent& m) {
  Reader r{rest};
  m.flags = r.get<uint8_t>();
  m.fmt = event_formatter(r.get<uint32_t>());
  m.ts = r.get<int64_t>();
  m.packed = r.s;
  return r.ok && !m.packed.empty() && m.packed.size() >= 1u + static_cast<uint8_t>(m.packed[0]);
}

// The history record of a message (m.fmt set), its event formatted here.
HistoryRecord message_record(const SharedRoom& room, const MessageEvent& m, uint64_t seq,
                             uint64_t sender) {
  HistoryRecord rec;
  rec.seq = seq;
  rec.ts_ms = m.ts;
  rec.sender = sender;
  size_t ulen = static_cast<uint8_t>(m.packed[0]);
  rec.user.assign(m.packed.data() + 1, ulen);
  engine::SharedFrame* pf = engine::SharedFrame::allocate(m.packed.size());
  std::memcpy(pf->data(), m.packed.data(), m.packed.size());
  pf->set_size(m.packed.size());
  rec.payload = engine::FrameRef(pf);
  rec.payload_offset = static_cast<uint32_t>(1 + ulen);
  rec.event = engine::FrameRef(m.fmt(room, rec));
  return rec;
}

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
      MessageEvent m;
      if (!read_message(e.rest, m)) break;
      room_->seq = std::max(room_->seq, e.n);
      if (op && op->done) op->done(e.n);
      if (!m.fmt) {
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
      HistoryRecord rec = message_record(*room_, m, e.n, op && !op->done ? op->session : sid(e));
      // A message from another node goes to every member here: nobody here sent it.
      const bool echo = (m.flags & kEcho) || e.instance != bus_.instance();
      HubClusterAccess::commit_publish(hub_, room_, std::move(rec), echo, e.kind == 'p',
                                       op ? op->received_ns : 0);
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
  if (kind == ClusterArrival::kQuery) {
    // <asking instance, 16 hex digits><ticket, 8 bytes><query>
    ClusterQueries* q = bus.queries();
    if (!q || !frame || frame->size() < 24) return;
    std::string_view p(reinterpret_cast<const char*>(frame->data()), frame->size());
    uint64_t ticket = 0;
    std::memcpy(&ticket, p.data() + 16, 8);
    q->cluster_query(*this, p.substr(0, 16), ticket, p.substr(24));
    return;
  }
  if (kind == ClusterArrival::kQueryDone) {
    ClusterQueries* q = bus.queries();
    if (!q || !frame) return;
    std::vector<std::string_view> answers;
    const uint8_t* p = frame->data();
    const uint8_t* end = p + frame->size();
    uint32_t n = 0;
    if (end - p >= 4) std::memcpy(&n, p, 4);
    p += 4;
    for (uint32_t i = 0; i < n && end - p >= 4; ++i) {
      uint32_t len = 0;
      std::memcpy(&len, p, 4);
      p += 4;
      if (static_cast<size_t>(end - p) < len) break;
      answers.emplace_back(reinterpret_cast<const char*>(p), len);
      p += len;
    }
    q->cluster_answers(*this, receipt.n, answers, receipt.ev);
    return;
  }
  if (kind == ClusterArrival::kJournalReply || kind == ClusterArrival::kJournalNote) {
    ClusterJournal* j = bus.journal(receipt.token);
    if (!j || !frame) return;
    std::string_view text(reinterpret_cast<const char*>(frame->data()), frame->size());
    if (kind == ClusterArrival::kJournalReply)
      j->journal_reply(*this, receipt.n, text, receipt.ev == 1);
    else
      j->journal_note(*this, receipt.n, text);
    return;
  }
  ClusterRoom& c = cluster_of(room);
  switch (kind) {
    case ClusterArrival::kDirect:
      fanout_from_cluster(room, frame);
      return;
    case ClusterArrival::kSend:
    case ClusterArrival::kAllocated:
    case ClusterArrival::kJournalReply:
    case ClusterArrival::kJournalNote:
    case ClusterArrival::kQuery:
    case ClusterArrival::kQueryDone:
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
      {
        // Joins that waited for a snapshot this connection will not bring: served by this node's
        // mirror now, as a join made while Redis is unreachable (cluster_join), and announced
        // after the next snapshot. Waiting for Redis would hold their sessions' input meanwhile.
        std::vector<std::unique_ptr<JoinTask>> joins = std::move(c.waiting_joins);
        c.waiting_joins.clear();
        for (auto& t : joins) t->join_here(*this, PresenceEntry{t->session, t->opts.identity});
      }
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
        MessageEvent m;
        if (!read_message(e.rest, m) || !m.fmt) continue;
        HistoryRecord rec = message_record(
            *room, m, e.n, e.instance == bus.instance() ? e.session : remote_session(e.member));
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
      // Joins that waited for this snapshot: now in order after it.
      std::vector<std::unique_ptr<JoinTask>> joins = std::move(c.waiting_joins);
      c.waiting_joins.clear();
      for (auto& t : joins) cluster_join(std::move(t));
      break;
    }
  }
  maybe_deactivate(*this, bus, room);
}

}  // namespace ringcast::hub

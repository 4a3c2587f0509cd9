// The relayer's directory across the nodes of a cluster (docs/cluster.md "Relayer"): Redis keeps
// the booths and scanners, changed by one script; every node mirrors them from the records the
// script emits, in one order, and tells its own sessions what the seed tells them.
//
// connect_scanner keeps the seed's order across nodes: the booth's node queues scanner_connected
// first and only then lets the scanner's node answer connection_success (through a 'k' record).
#include <charconv>

#include "relayer_parts.h"

namespace ringcast::profiles {

using namespace relayer_detail;
using websocket::Session;

namespace {

// Keys under the journal's base: b (id -> holder), bj (id -> its order and first spelling),
// s (scanner -> its order, id and spelling), o (holder -> the ids it registered), n (order
// counter), a:<id> (sorted set: the id's scanners by order). Records: R (registered), C
// (scanner attached), K (the booth was told: answer the scanner), Q (a session closed: the id it
// released, if any), D (a dead node's booth id is gone). Every record is the kind, the member (32
// hex digits), then fields.
constexpr const char* kScript = R"lua(
local B, J, S, O, N = base .. ':b', base .. ':bj', base .. ':s', base .. ':o', base .. ':n'
local function att(c) return base .. ':a:' .. c end
local function order_of(c) return tonumber(fields(redis.call('HGET', J, c))[1]) end
local function detach(m)
  local sv = redis.call('HGET', S, m)
  if not sv then return false end
  redis.call('ZREM', att(fields(sv)[2]), m)
  redis.call('HDEL', S, m)
  return true
end
if op == 'r' then
  local c, j = ARGV[3], ARGV[4]
  local jv = redis.call('HGET', J, c)
  local order
  if jv then
    local x = fields(jv)
    order, j = x[1], x[2]
  else
    order = tostring(redis.call('INCR', N))
    redis.call('HSET', J, c, f(order) .. f(j))
  end
  redis.call('HSET', B, c, member)
  local own = redis.call('HGET', O, member) or ''
  for _, k in ipairs(fields(own)) do
    if k == c then own = nil break end
  end
  if own then redis.call('HSET', O, member, own .. f(c)) end
  emit('R' .. member .. f(order) .. f(c) .. f(j))
  return 'y'
elseif op == 'c' then
  local c, j = ARGV[3], ARGV[4]
  if not redis.call('HGET', B, c) then return 'n' end
  local order
  local sv = redis.call('HGET', S, member)
  if sv then
    local x = fields(sv)
    order = x[1]
    redis.call('ZREM', att(x[2]), member)
  else
    order = tostring(redis.call('INCR', N))
  end
  redis.call('HSET', S, member, f(order) .. f(c) .. f(j))
  redis.call('ZADD', att(c), order, member)
  emit('C' .. member .. f(order) .. f(c) .. f(j))
  return 'y'
elseif op == 'k' then
  emit('K' .. ARGV[3] .. f(ARGV[4]))
  return ''
elseif op == 'q' then
  -- Only the first id it holds is released (the seed's quirk): the earliest registered one.
  local best, bo
  for _, c in ipairs(fields(redis.call('HGET', O, member) or '')) do
    if redis.call('HGET', B, c) == member then
      local o = order_of(c)
      if not best or o < bo then best, bo = c, o end
    end
  end
  if best then
    redis.call('HDEL', B, best)
    redis.call('HDEL', J, best)
  end
  local owned = redis.call('HDEL', O, member) == 1
  local scanner = detach(member)
  if best or owned or scanner then emit('Q' .. member .. f(best or '')) end
  return ''
elseif op == 'x' then
  local all = redis.call('HGETALL', S)
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 16) == member then
      detach(all[i])
      emit('Q' .. all[i] .. f(''))
    end
  end
  all = redis.call('HGETALL', B)
  for i = 1, #all, 2 do
    if string.sub(all[i + 1], 1, 16) == member then
      redis.call('HDEL', B, all[i])
      redis.call('HDEL', J, all[i])
      emit('D' .. all[i + 1] .. f(all[i]))
    end
  end
  all = redis.call('HKEYS', O)
  for _, m in ipairs(all) do
    if string.sub(m, 1, 16) == member then redis.call('HDEL', O, m) end
  end
  return ''
elseif op == 's' then
  local out = {}
  local all = redis.call('HGETALL', B)
  for i = 1, #all, 2 do
    local x = fields(redis.call('HGET', J, all[i]))
    out[#out + 1] = 'R' .. all[i + 1] .. f(x[1]) .. f(all[i]) .. f(x[2])
  end
  all = redis.call('HGETALL', S)
  for i = 1, #all, 2 do
    out[#out + 1] = 'C' .. all[i] .. all[i + 1]
  end
  return out
end
return ''
)lua";

constexpr std::string_view kUnavailable =
    "The booth directory is unavailable right now (the cluster cannot reach Redis); try again";

// A record's fields after its kind and member.
struct Fields {
  std::string_view rest;
  bool next(std::string_view& out) { return hub::next_journal_field(rest, out); }
};

uint64_t to_u64(std::string_view s) {
  uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

bool local(uint64_t session) {
  return session && !hub::is_remote_session(session);
}

}  // namespace

const char* RelayerProfile::journal_script() const {
  return kScript;
}

// ---- on the session's core ----------------------------------------------------------------------

void RelayerProfile::cluster_call(Session& s, char op, std::string canon, std::string json,
                                  std::string error) {
  RelaySession& st = *state_of(s);
  st.pending = op;
  st.pending_json = std::move(json);
  st.pending_error = std::move(error);
  if (op == 'r') st.booth = true;
  if (op == 'c') {
    st.scanner = true;  // its close must tell the directory, whatever the answer
    st.awaiting_connect = true;
  }
  hub::Hub& hub = hubs_.hub_of(s);
  hub.worker().hold_input(s);
  hubs_.cluster()->journal_call(hub.core(), *this, op, s.id(), {canon, st.pending_json}, true);
}

void RelayerProfile::journal_reply(hub::Hub& hub, uint64_t session, std::string_view answer,
                                   bool refused) {
  Session* s = hub.worker().find_session(session);
  RelaySession* st = s ? state_of(*s) : nullptr;
  if (!st || !st->pending) return;  // gone, or connect_scanner already answered
  const char op = st->pending;
  if (op == 'c' && !refused && answer == "y") return;  // connection_success comes from the booth
  st->pending = 0;
  st->awaiting_connect = false;
  if (refused)
    reply(*s, *st, error_frame(kUnavailable));
  else if (op == 'r')
    reply(*s, *st, booth_event("registration_success", st->pending_json));
  else
    reply(*s, *st, error_frame(st->pending_error));
  hub.worker().release_input(*s);
}

void RelayerProfile::complete_connect(hub::Hub& hub, uint64_t scanner, std::string_view json) {
  Session* s = hub.worker().find_session(scanner);
  RelaySession* st = s ? state_of(*s) : nullptr;
  if (!st || !st->awaiting_connect) return;
  st->awaiting_connect = false;
  st->pending = 0;
  reply(*s, *st, booth_event("connection_success", json));
  hub.worker().release_input(*s);
}

void RelayerProfile::journal_note(hub::Hub& hub, uint64_t session, std::string_view note) {
  if (note.empty()) return;
  if (note[0] == 's') return complete_connect(hub, session, note.substr(1));
  // 'c': a scanner attached to this session's booth id. The booth hears it first; then the
  // scanner, wherever it is, is answered.
  if (note[0] != 'c' || note.size() < 1 + 8 + 32) return;
  uint64_t scanner = 0;
  std::memcpy(&scanner, note.data() + 1, 8);
  std::string_view member = note.substr(9, 32);
  std::string_view json = note.substr(41);
  engine::FrameRef to_booth(booth_event("scanner_connected", json));
  if (Session* b = hub.worker().find_session(session)) {
    RelaySession* bst = state_of(*b);
    if (scanner == session && bst) {
      to_booth.get()->add_ref();
      reply(*b, *bst, to_booth.get());
    } else {
      b->send_frame(to_booth.get());
    }
  }
  if (hub::is_remote_session(scanner)) {
    hubs_.cluster()->journal_call(hub.core(), *this, 'k', 0, {member, json}, false);
    return;
  }
  int core = hub::Hub::core_of(scanner);
  if (core == hub.core()) return complete_connect(hub, scanner, json);
  if (core < 0 || core >= hubs_.cores()) return;
  hub.post_fn(core, [this, scanner, j = std::string(json)](hub::Hub& h) {
    complete_connect(h, scanner, j);
  });
}

// ---- on the bus thread --------------------------------------------------------------------------

void RelayerProfile::tell_booth(hub::ClusterBus& bus, uint64_t booth, uint64_t scanner,
                                std::string_view member, std::string_view json) {
  std::string n = "c";
  n.append(reinterpret_cast<const char*>(&scanner), 8).append(member).append(json);
  bus.note(*this, booth, n);
}

void RelayerProfile::booth_gone(hub::ClusterBus& bus, const std::string& canon, uint64_t owner) {
  auto b = dir_->booths.find(canon);
  if (b == dir_->booths.end()) return;
  engine::FrameRef gone;
  auto a = dir_->attached.find(canon);
  if (a != dir_->attached.end())
    for (const auto& [order, sid] : a->second) {
      if (sid == owner || !local(sid)) continue;
      if (!gone) gone = engine::FrameRef(booth_event("booth_disconnected", b->second.key_json));
      bus.send_local(sid, gone.get());
    }
  dir_->booths.erase(b);
}

void RelayerProfile::journal_record(hub::ClusterBus& bus, std::string_view rec, bool listing) {
  if (rec.size() < 33) return;
  const char kind = rec[0];
  std::string_view member = rec.substr(1, 32);
  Fields f{rec.substr(33)};
  uint64_t sid = bus.member_session(member);
  // A listing's records are applied under the lock journal_reset holds from begin to end, so
  // relays never see half a directory.
  std::unique_lock lock(dir_->mutex, std::defer_lock);
  if (!listing) lock.lock();
  std::string_view a, b, c;
  switch (kind) {
    case 'R': {  // registered: order, id, the id's first spelling
      if (!f.next(a) || !f.next(b) || !f.next(c)) return;
      auto [it, inserted] = dir_->booths.try_emplace(std::string(b));
      if (inserted) {
        it->second.key_json = c;
        it->second.order = to_u64(a);
      }
      it->second.owner = sid;
      auto& mine = dir_->owned[sid];
      bool known = false;
      for (const auto& k : mine) known |= k == b;
      if (!known) mine.emplace_back(b);
      return;
    }
    case 'C': {  // attached: order, id, the scanner's spelling
      if (!f.next(a) || !f.next(b) || !f.next(c)) return;
      auto [sc, inserted] = dir_->scanners.try_emplace(sid);
      if (!inserted) dir_->detach(sc->second.canon, sc->second.order);
      sc->second.canon = b;
      sc->second.booth_json = c;
      sc->second.order = to_u64(a);
      sc->second.member = member;
      dir_->attached[sc->second.canon][sc->second.order] = sid;
      if (listing) return;
      auto booth = dir_->booths.find(sc->second.canon);
      uint64_t owner = booth == dir_->booths.end() ? 0 : booth->second.owner;
      if (local(owner))
        tell_booth(bus, owner, sid, member, c);
      else if (local(sid) && owner)
        dir_->waiting[sid] = owner;
      else if (local(sid))
        bus.note(*this, sid, std::string("s").append(c));
      return;
    }
    case 'K': {  // the booth was told: the scanner (member) gets connection_success
      if (!f.next(a) || !local(sid) || !dir_->waiting.erase(sid)) return;
      bus.note(*this, sid, std::string("s").append(a));
      return;
    }
    case 'Q':    // closed: the id it released (may be none)
    case 'D': {  // a dead node's id
      if (!f.next(a)) return;
      // Scanners waiting for this booth's node to answer them are answered now.
      for (auto it = dir_->waiting.begin(); it != dir_->waiting.end();) {
        if (it->second != sid) {
          ++it;
          continue;
        }
        auto sc = dir_->scanners.find(it->first);
        if (sc != dir_->scanners.end())
          bus.note(*this, it->first, std::string("s").append(sc->second.booth_json));
        it = dir_->waiting.erase(it);
      }
      if (!a.empty()) {
        std::string canon(a);
        booth_gone(bus, canon, sid);
        auto o = dir_->owned.find(sid);
        if (kind == 'D' && o != dir_->owned.end()) std::erase(o->second, canon);
      }
      if (kind == 'D') return;
      dir_->owned.erase(sid);
      dir_->waiting.erase(sid);
      auto sc = dir_->scanners.find(sid);
      if (sc == dir_->scanners.end()) return;
      auto booth = dir_->booths.find(sc->second.canon);
      if (booth != dir_->booths.end() && booth->second.owner != sid && local(booth->second.owner)) {
        engine::FrameRef fr(booth_event("scanner_disconnected", sc->second.booth_json));
        bus.send_local(booth->second.owner, fr.get());
      }
      dir_->detach(sc->second.canon, sc->second.order);
      dir_->scanners.erase(sc);
      return;
    }
    default:
      return;
  }
}

void RelayerProfile::journal_reset(hub::ClusterBus& bus, bool begin) {
  auto& before = dir_->before;
  if (begin) {
    dir_->mutex.lock();  // until the end of the listing (bus thread, which applies it at once)
    // What this node's sessions were part of, to tell them what changed while this node was not
    // listening (Redis unreachable, or a record lost).
    before = {};
    for (const auto& [canon, booth] : dir_->booths) {
      if (!local(booth.owner)) continue;
      auto a = dir_->attached.find(canon);
      if (a == dir_->attached.end()) continue;
      for (const auto& [order, sid] : a->second) {
        auto sc = dir_->scanners.find(sid);
        if (sc != dir_->scanners.end())
          before.booth_scanners[{canon, sid}] = {booth.owner, sc->second.booth_json};
      }
    }
    for (const auto& [sid, sc] : dir_->scanners) {
      auto booth = dir_->booths.find(sc.canon);
      if (local(sid) && booth != dir_->booths.end())
        before.scanner_booth[sid] = {sc.canon, booth->second.key_json};
    }
    dir_->booths.clear();
    dir_->scanners.clear();
    dir_->attached.clear();
    dir_->owned.clear();
    return;
  }
  // Scanners still waiting for a booth's node are answered: their attachment is in the listing,
  // and a booth's node that missed it tells its booth below.
  for (const auto& [sid, owner] : dir_->waiting) {
    auto sc = dir_->scanners.find(sid);
    if (sc != dir_->scanners.end())
      bus.note(*this, sid, std::string("s").append(sc->second.booth_json));
  }
  dir_->waiting.clear();
  for (const auto& [canon, booth] : dir_->booths) {
    if (!local(booth.owner)) continue;
    auto a = dir_->attached.find(canon);
    if (a == dir_->attached.end()) continue;
    for (const auto& [order, sid] : a->second) {
      if (before.booth_scanners.erase({canon, sid})) continue;
      // Attached meanwhile: the booth is told now, and the scanner answered if it still waits.
      auto sc = dir_->scanners.find(sid);
      if (sc != dir_->scanners.end())
        tell_booth(bus, booth.owner, sid, sc->second.member, sc->second.booth_json);
    }
  }
  for (const auto& [key, who] : before.booth_scanners) {  // detached meanwhile
    auto booth = dir_->booths.find(key.first);
    if (booth == dir_->booths.end() || booth->second.owner != who.first) continue;
    engine::FrameRef fr(booth_event("scanner_disconnected", who.second));
    bus.send_local(who.first, fr.get());
  }
  for (const auto& [sid, was] : before.scanner_booth) {  // their booth went meanwhile
    if (dir_->booths.count(was.first)) continue;
    auto sc = dir_->scanners.find(sid);
    if (sc == dir_->scanners.end() || sc->second.canon != was.first) continue;
    engine::FrameRef fr(booth_event("booth_disconnected", was.second));
    bus.send_local(sid, fr.get());
  }
  before = {};
  dir_->mutex.unlock();
}

}  // namespace ringcast::profiles

// The native protocol's endpoints (register / attach / relay): unique names owned by one session,
// with peers attached to them (docs/native-protocol.md). On one node they live in the hub's
// EndpointRegistry. In a cluster Redis keeps them, changed by this file's script; every node
// mirrors them into its registry from the script's records, in one order, and tells its own
// sessions what changed (docs/cluster.md "Native endpoints").
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>

#include "native_parts.h"
#include "ringcast/profiles/native_profile.h"
#include "ringcast/profiles/relay_pacing.h"

namespace ringcast::profiles {

using namespace native_detail;

namespace {

// Keys under the journal's base: e (name -> owner), p:<name> (sorted set: its peers in attach
// order), o and a (member -> the names it registered / attached to), n (attach counter).
// Records: R (registered), A (attached; with the peer's user id), G (an owner's endpoint is gone),
// X (a peer detached). Every record is the kind, the member (32 hex digits), then fields.
constexpr const char* kScript = R"lua(
local E, O, A, N = base .. ':e', base .. ':o', base .. ':a', base .. ':n'
local function peers(n) return base .. ':p:' .. n end
local function add(h, m, n)
  local v = redis.call('HGET', h, m) or ''
  for _, k in ipairs(fields(v)) do
    if k == n then return end
  end
  redis.call('HSET', h, m, v .. f(n))
end
local function drop_owner(m)
  for _, n in ipairs(fields(redis.call('HGET', O, m) or '')) do
    if redis.call('HGET', E, n) == m then
      redis.call('HDEL', E, n)
      redis.call('DEL', peers(n))
      emit('G' .. m .. f(n))
    end
  end
  redis.call('HDEL', O, m)
end
local function drop_peer(m)
  for _, n in ipairs(fields(redis.call('HGET', A, m) or '')) do
    if redis.call('ZREM', peers(n), m) == 1 then emit('X' .. m .. f(n)) end
  end
  redis.call('HDEL', A, m)
end
if op == 'r' then
  local n = ARGV[3]
  local owner = redis.call('HGET', E, n)
  if owner and owner ~= member then return 't' end
  add(O, member, n)
  if not owner then
    redis.call('HSET', E, n, member)
    emit('R' .. member .. f(n))
  end
  return 'y'
elseif op == 'a' then
  local n = ARGV[3]
  local owner = redis.call('HGET', E, n)
  if not owner then return 'n' end
  if not redis.call('ZSCORE', peers(n), member) then
    redis.call('ZADD', peers(n), redis.call('INCR', N), member)
  end
  add(A, member, n)
  emit('A' .. member .. f(n) .. f(ARGV[4]))
  return owner
elseif op == 'q' then
  drop_owner(member)
  drop_peer(member)
  return ''
elseif op == 'x' then
  for _, m in ipairs(redis.call('HKEYS', O)) do
    if string.sub(m, 1, 16) == member then drop_owner(m) end
  end
  for _, m in ipairs(redis.call('HKEYS', A)) do
    if string.sub(m, 1, 16) == member then drop_peer(m) end
  end
  return ''
elseif op == 's' then
  local out = {}
  local all = redis.call('HGETALL', E)
  for i = 1, #all, 2 do
    out[#out + 1] = 'R' .. all[i + 1] .. f(all[i])
    for _, p in ipairs(redis.call('ZRANGE', peers(all[i]), 0, -1)) do
      out[#out + 1] = 'A' .. p .. f(all[i]) .. f('')
    end
  end
  return out
end
return ''
)lua";

constexpr std::string_view kEndpointLimit =
    "a session may register, and attach to, at most 64 endpoints each";
static_assert(NativeProfile::kMaxEndpointsPerSession == 64);

bool local(uint64_t session) {
  return session && !hub::is_remote_session(session);
}

engine::SharedFrame* peer_event(std::string_view event, std::string_view name, uint64_t peer,
                                std::string_view user) {
  JsonFrame j;
  j.w().StartObject();
  j.kv("type", "peer");
  j.kv("event", event);
  j.kv("name", name);
  j.kv("peer", Sid(peer));
  if (!user.empty()) j.kv("user", user);
  j.w().EndObject();
  return j.frame();
}

engine::SharedFrame* gone_event(std::string_view name) {
  JsonFrame j;
  j.w().StartObject();
  j.kv("type", "endpoint");
  j.kv("event", "gone");
  j.kv("name", name);
  j.w().EndObject();
  return j.frame();
}

// A cluster answer, sent once the call's change is in this node's mirror: the request's id is
// kept as JSON text.
void answer(Session& s, std::string_view id_json, std::string_view type, std::string_view code,
            std::string_view message, std::string_view name, std::optional<uint64_t> endpoint) {
  JsonFrame j;
  j.w().StartObject();
  j.kv("type", type);
  if (!id_json.empty()) {
    j.key("id");
    j.raw(id_json);
  }
  if (!code.empty()) {
    j.kv("code", code);
    j.kv("message", message);
  } else {
    j.kv("name", name);
    if (endpoint) j.kv("endpoint", Sid(*endpoint));
  }
  j.w().EndObject();
  engine::FrameRef f(j.frame());
  s.send_frame(f.get());
}

}  // namespace

NativeProfile::NativeProfile(hub::HubSystem& hubs, const TokenTable& tokens,
                             const JwtVerifierSlot& jwt)
    : hubs_(hubs), tokens_(tokens), jwt_(jwt) {
  if (hub::ClusterBus* bus = hubs_.cluster()) bus->add_journal(this);
}

const char* NativeProfile::journal_script() const {
  return kScript;
}

// ---- the protocol -------------------------------------------------------------------------------

void NativeProfile::endpoint_call(Session& s, const Value* id, char op, std::string_view name) {
  NativeState& st = state_of(s);
  st.pending = op;
  st.pending_name = name;
  st.pending_id.clear();
  if (id) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    id->Accept(w);
    st.pending_id.assign(buf.GetString(), buf.GetSize());
  }
  hub::Hub& hub = hubs_.hub_of(s);
  hub.worker().hold_input(s);
  hubs_.cluster()->journal_call(hub.core(), *this, op, s.id(), {name, st.identity.user_id}, true);
}

void NativeProfile::endpoint_register(Session& s, const Value* id, std::string_view name) {
  NativeState& st = state_of(s);
  if (st.owned.size() >= kMaxEndpointsPerSession &&
      std::find(st.owned.begin(), st.owned.end(), name) == st.owned.end())
    return send_error(s, id, "endpoint_limit", kEndpointLimit);
  if (hubs_.cluster()) return endpoint_call(s, id, 'r', name);
  if (!hubs_.endpoints().register_name(name, s.id()))
    return send_error(s, id, "name_taken", "an endpoint with this name exists");
  if (std::find(st.owned.begin(), st.owned.end(), name) == st.owned.end())
    st.owned.emplace_back(name);
  reply(s, id, "registered", [&](JsonFrame& j) { j.kv("name", name); });
}

void NativeProfile::endpoint_attach(Session& s, const Value* id, std::string_view name) {
  NativeState& st = state_of(s);
  if (st.attached.size() >= kMaxEndpointsPerSession &&
      std::none_of(st.attached.begin(), st.attached.end(),
                   [&](const auto& a) { return a.first == name; }))
    return send_error(s, id, "endpoint_limit", kEndpointLimit);
  if (hubs_.cluster()) return endpoint_call(s, id, 'a', name);
  auto owner = hubs_.endpoints().attach(name, s.id());
  if (!owner) return send_error(s, id, "no_such_endpoint", "no endpoint with this name");
  bool known = false;
  for (auto& a : st.attached) known |= a.first == name;
  if (!known) st.attached.emplace_back(std::string(name), *owner);
  reply(s, id, "attached", [&](JsonFrame& j) {
    j.kv("name", name);
    j.kv("endpoint", Sid(*owner));
  });
  engine::FrameRef f(peer_event("attached", name, s.id(), st.identity.user_id));
  hubs_.hub_of(s).send_to(*owner, f.get());
}

void NativeProfile::endpoint_relay(Session& s, const Value* id, const Value& data,
                                   std::optional<std::string_view> name,
                                   std::optional<uint64_t> to) {
  NativeState& st = state_of(s);
  hub::Hub& hub = hubs_.hub_of(s);
  std::optional<hub::EndpointRegistry::Endpoint> ep;
  if (name) {
    ep = hubs_.endpoints().find(*name);
    if (!ep) return send_error(s, id, "no_such_endpoint", "no endpoint with this name");
  }
  // A session of another node knows the sender by another id (hub::ClusterBus::id_elsewhere):
  // its copy says that one, so a reply finds the way back.
  engine::FrameRef frames[2];
  auto frame_for = [&](uint64_t target) {
    const bool remote = hub::is_remote_session(target);
    engine::FrameRef& f = frames[remote];
    if (!f) {
      JsonFrame j;
      j.w().StartObject();
      j.kv("type", "relay");
      j.kv("from", Sid(remote ? hubs_.cluster()->id_elsewhere(s.id()) : s.id()));
      if (name) j.kv("name", *name);
      j.key("data");
      data.Accept(j.w());
      j.w().EndObject();
      f = engine::FrameRef(j.frame());
      pace_relay(s, f.get());
    }
    return f.get();
  };
  // An endpoint owner relays to its peers (one, or all); a peer relays to the endpoint.
  if (name && std::find(st.owned.begin(), st.owned.end(), *name) != st.owned.end()) {
    if (to) {
      if (std::find(ep->peers.begin(), ep->peers.end(), *to) == ep->peers.end())
        return send_error(s, id, "not_attached", "that session is not attached to this endpoint");
      hub.send_to(*to, frame_for(*to));
    } else {
      for (uint64_t p : ep->peers) hub.send_to(p, frame_for(p));
    }
    return;
  }
  const std::pair<std::string, uint64_t>* att = nullptr;
  for (auto& a : st.attached)
    if (!name || a.first == *name) att = &a;
  if (!att)
    return send_error(s, id, "not_attached", "attach to an endpoint (or register one) first");
  hub.send_to(att->second, frame_for(att->second));
}

void NativeProfile::endpoints_closed(Session& s) {
  NativeState& st = state_of(s);
  hub::Hub& hub = hubs_.hub_of(s);
  if (hub::ClusterBus* bus = hubs_.cluster()) {
    // Every node applies the close from Redis's records and tells its own sessions.
    if (!st.owned.empty() || !st.attached.empty() || st.pending)
      bus->journal_call(hub.core(), *this, 'q', s.id(), {}, false);
    return;
  }
  auto& endpoints = hubs_.endpoints();
  for (const auto& name : st.owned) {
    auto peers = endpoints.unregister(name, s.id());
    if (!peers) continue;
    engine::FrameRef f(gone_event(name));
    for (uint64_t p : *peers) hub.send_to(p, f.get());
  }
  for (const auto& [name, owner] : st.attached) {
    if (!endpoints.detach(name, s.id())) continue;
    engine::FrameRef f(peer_event("detached", name, s.id(), {}));
    hub.send_to(owner, f.get());
  }
}

// ---- the cluster: on the session's core ---------------------------------------------------------

void NativeProfile::journal_reply(hub::Hub& hub, uint64_t session, std::string_view text,
                                  bool refused) {
  Session* s = hub.worker().find_session(session);
  if (!s || !s->user) return;
  NativeState& st = state_of(*s);
  const char op = st.pending;
  if (!op) return;
  st.pending = 0;
  const std::string& name = st.pending_name;
  if (refused) {
    answer(*s, st.pending_id, "error", "store_failed",
           "the endpoint directory is unreachable (the cluster cannot reach Redis); nothing "
           "changed",
           {}, {});
  } else if (op == 'r' && text == "t") {
    answer(*s, st.pending_id, "error", "name_taken", "an endpoint with this name exists", {}, {});
  } else if (op == 'r') {
    if (std::find(st.owned.begin(), st.owned.end(), name) == st.owned.end())
      st.owned.push_back(name);
    answer(*s, st.pending_id, "registered", {}, {}, name, {});
  } else if (text == "n" || text.size() != 32) {
    answer(*s, st.pending_id, "error", "no_such_endpoint", "no endpoint with this name", {}, {});
  } else {
    // The owner as this node knows it (its peers event went out from its own node).
    uint64_t owner = hubs_.cluster()->id_of_member(text);
    bool known = false;
    for (auto& a : st.attached) known |= a.first == name;
    if (!known) st.attached.emplace_back(name, owner);
    answer(*s, st.pending_id, "attached", {}, {}, name, owner);
  }
  hub.worker().release_input(*s);
}

// ---- the cluster: on the bus thread -------------------------------------------------------------

void NativeProfile::journal_record(hub::ClusterBus& bus, std::string_view rec, bool listing) {
  if (rec.size() < 33) return;
  const char kind = rec[0];
  uint64_t sid = bus.member_session(rec.substr(1, 32));
  std::string_view rest = rec.substr(33), name, user;
  if (!hub::next_journal_field(rest, name)) return;
  hub::EndpointRegistry& reg = hubs_.endpoints();
  if (listing) {
    // Into the staging copy: the registry changes in one step at the end (journal_reset).
    if (kind == 'R') staging_[std::string(name)].owner = sid;
    if (kind == 'A') {
      auto it = staging_.find(std::string(name));
      if (it != staging_.end()) it->second.peers.push_back(sid);
    }
    return;
  }
  switch (kind) {
    case 'R':
      reg.assign(name, sid);
      return;
    case 'A': {
      hub::next_journal_field(rest, user);
      auto owner = reg.attach(name, sid);
      if (owner && local(*owner)) {
        engine::FrameRef f(peer_event("attached", name, sid, user));
        bus.send_local(*owner, f.get());
      }
      return;
    }
    case 'G': {
      auto peers = reg.unregister(name, sid);
      if (!peers) return;
      engine::FrameRef f;
      for (uint64_t p : *peers) {
        if (!local(p)) continue;
        if (!f) f = engine::FrameRef(gone_event(name));
        bus.send_local(p, f.get());
      }
      return;
    }
    case 'X': {
      auto owner = reg.detach(name, sid);
      if (owner && local(*owner)) {
        engine::FrameRef f(peer_event("detached", name, sid, {}));
        bus.send_local(*owner, f.get());
      }
      return;
    }
    default:
      return;
  }
}

void NativeProfile::journal_reset(hub::ClusterBus& bus, bool begin) {
  // (name, peer) -> owner, for what this node's sessions are part of.
  auto pairs = [](const hub::EndpointRegistry::Map& m) {
    std::map<std::pair<std::string, uint64_t>, uint64_t> out;
    for (const auto& [name, ep] : m)
      for (uint64_t p : ep.peers)
        if (local(ep.owner) || local(p)) out[{name, p}] = ep.owner;
    return out;
  };
  if (begin) {
    before_ = pairs(hubs_.endpoints().copy());
    staging_.clear();
    return;
  }
  auto after = pairs(staging_);
  // What changed while this node was not listening (Redis unreachable, or a record lost) is told
  // to this node's sessions, as if it had happened now.
  for (const auto& [key, owner] : after) {
    if (before_.count(key) || !local(owner)) continue;
    engine::FrameRef f(peer_event("attached", key.first, key.second, {}));
    bus.send_local(owner, f.get());
  }
  for (const auto& [key, owner] : before_) {
    if (after.count(key)) continue;
    auto ep = staging_.find(key.first);
    bool still = ep != staging_.end() && ep->second.owner == owner;
    if (still && local(owner)) {
      engine::FrameRef f(peer_event("detached", key.first, key.second, {}));
      bus.send_local(owner, f.get());
    } else if (!still && local(key.second)) {
      engine::FrameRef f(gone_event(key.first));
      bus.send_local(key.second, f.get());
    }
  }
  hubs_.endpoints().replace(std::move(staging_));
  staging_.clear();
  before_.clear();
}

}  // namespace ringcast::profiles

#include "ringcast/cluster/redis_scripts.h"

#include <openssl/sha.h>

#include <cstring>

namespace ringcast::cluster {

// Refreshes this node (ARGV[1]: its instance) in the node set, by Redis's clock (nodes' clocks
// may differ). Nodes unseen for ARGV[2] ms are gone: their members leave every room they were
// in, with a leave event in each room's order (token ffffffff), and the node is forgotten.
// Returns {nodes alive, 1 if this node was not in the set: new, or expired by the others, the
// nodes that died in the last minute (for the journals)}.
const char* const kHeartbeatScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local added = redis.call('ZADD', KEYS[1], now, ARGV[1])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
for _, inst in ipairs(dead) do
  local rk = ARGV[3] .. 'inst:' .. inst .. ':rooms'
  for _, room in ipairs(redis.call('SMEMBERS', rk)) do
    local base = ARGV[3] .. '{' .. room .. '}'
    for _, member in ipairs(redis.call('HKEYS', base .. ':pres')) do
      if string.sub(member, 1, 16) == inst then
        redis.call('HDEL', base .. ':pres', member)
        local ev = redis.call('HINCRBY', base .. ':meta', 'ev', 1)
        redis.call('SPUBLISH', base, 'l' .. ev .. ',0,' .. member .. 'ffffffff')
      end
    end
  end
  redis.call('DEL', rk)
  -- The bridge directory: its client ids and its bridge.
  local dir = ARGV[3] .. 'dir:{bridge}'
  local ids = redis.call('HGETALL', dir .. ':ids')
  for i = 1, #ids, 2 do
    if string.sub(ids[i + 1], 1, 16) == inst then
      redis.call('HDEL', dir .. ':ids', ids[i])
      redis.call('ZADD', dir .. ':free', ids[i], ids[i])
      redis.call('SPUBLISH', dir, 'r' .. ids[i])
    end
  end
  local owner = redis.call('GET', dir .. ':owner')
  if owner and string.sub(owner, 1, 16) == inst then
    redis.call('DEL', dir .. ':owner')
    redis.call('SPUBLISH', dir, 'o')
  end
  redis.call('ZREM', KEYS[1], inst)
  -- Journals (profiles' own directories) are cleaned by the nodes: each runs its journals'
  -- 'x' op for every node listed here (kept a minute, so every live node sees it).
  redis.call('ZADD', ARGV[3] .. 'jdead', now, inst)
end
redis.call('ZREMRANGEBYSCORE', ARGV[3] .. 'jdead', '-inf', now - 60000)
return {redis.call('ZCARD', KEYS[1]), added, redis.call('ZRANGE', ARGV[3] .. 'jdead', 0, -1)}
)lua";

// One change of a sequenced room, atomically: its place in the room's order (ev), a message's
// sequence number, the history append (XADD with MAXLEN), presence and state, and the publish
// to every node that mirrors the room. Returns the event number, or 0 for a change that changes
// nothing (a leave or delete of what is not there), which is then not published.
// KEYS: meta, hist, pres, state, order, channel, this instance's room set.
// ARGV: kind, body, field, value, history length, history ttl ms, room name.
const char* const kEventScript = R"lua(
local kind = ARGV[1]
local n = 0
if kind == 'l' then
  if redis.call('HDEL', KEYS[3], ARGV[3]) == 0 then return 0 end
elseif kind == 'i' then
  if redis.call('HEXISTS', KEYS[3], ARGV[3]) == 0 then return 0 end
  redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
elseif kind == 'j' then
  redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
  redis.call('SADD', KEYS[7], ARGV[7])
elseif kind == 's' then
  redis.call('HSET', KEYS[4], ARGV[3], ARGV[4])
  n = tonumber(redis.call('HGET', KEYS[5], ARGV[3]) or '0')
  if n == 0 then
    n = redis.call('HINCRBY', KEYS[1], 'order', 1)
    redis.call('HSET', KEYS[5], ARGV[3], n)
  end
elseif kind == 'd' then
  if redis.call('HDEL', KEYS[4], ARGV[3]) == 0 then return 0 end
  redis.call('HDEL', KEYS[5], ARGV[3])
elseif kind == 'p' or kind == 'q' then
  n = redis.call('HINCRBY', KEYS[1], 'seq', 1)
end
local ev = redis.call('HINCRBY', KEYS[1], 'ev', 1)
local msg = kind .. ev .. ',' .. n .. ',' .. ARGV[2]
if kind == 'p' and tonumber(ARGV[5]) > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[5], n .. '-1', 'm', msg)
  if tonumber(ARGV[6]) > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[6]) end
end
redis.call('SPUBLISH', KEYS[6], msg)
return {ev, n}
)lua";

// A sequenced room as Redis has it, atomically: {ev, seq, history (oldest first, at most
// ARGV[1]), presence, state, state order}. ARGV[2], ARGV[3]: floors for seq and ev, which a
// node that already delivered up to there raises a Redis that lost the room's data to (the room's
// numbers never go back). KEYS: meta, hist, pres, state, order.
const char* const kSnapshotScript = R"lua(
local ev = tonumber(redis.call('HGET', KEYS[1], 'ev') or '0')
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if seq < tonumber(ARGV[2]) then
  seq = tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], 'seq', seq)
end
if ev < tonumber(ARGV[3]) then
  ev = tonumber(ARGV[3])
  redis.call('HSET', KEYS[1], 'ev', ev)
end
local hist = {}
if tonumber(ARGV[1]) > 0 then
  local h = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ARGV[1])
  for i = #h, 1, -1 do hist[#hist + 1] = h[i][2][2] end
end
return {ev, seq, hist, redis.call('HGETALL', KEYS[3]), redis.call('HGETALL', KEYS[4]),
        redis.call('HGETALL', KEYS[5])}
)lua";

// The bridge directory: numbered clients (the smallest free id first, across the cluster) and
// one owner (the current bridge). KEYS: ids (hash id -> member), free (sorted set), next
// (counter), owner, channel. ARGV[1]: 'a' allocate for member ARGV[2], ids up to ARGV[3] (0 when
// none is left); 'r' release id ARGV[3] if member ARGV[2] holds it; 'o' owner = ARGV[2]; 'c' no
// owner if ARGV[2] is it; 's' the listing {ids..., owner}. Changes are published as
// "a<id>,<member>", "r<id>" and "o<member>" ("o" alone: no bridge).
const char* const kDirectoryScript = R"lua(
local op = ARGV[1]
if op == 'a' then
  local f = redis.call('ZRANGE', KEYS[2], 0, 0)
  local id
  if #f > 0 then
    id = tonumber(f[1])
    redis.call('ZREM', KEYS[2], f[1])
  else
    id = redis.call('INCR', KEYS[3])
    if id > tonumber(ARGV[3]) then
      redis.call('DECR', KEYS[3])
      return 0
    end
  end
  redis.call('HSET', KEYS[1], id, ARGV[2])
  redis.call('SPUBLISH', KEYS[5], 'a' .. id .. ',' .. ARGV[2])
  return id
elseif op == 'r' then
  if redis.call('HGET', KEYS[1], ARGV[3]) ~= ARGV[2] then return 0 end
  redis.call('HDEL', KEYS[1], ARGV[3])
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[3])
  redis.call('SPUBLISH', KEYS[5], 'r' .. ARGV[3])
  return 1
elseif op == 'o' then
  redis.call('SET', KEYS[4], ARGV[2])
  redis.call('SPUBLISH', KEYS[5], 'o' .. ARGV[2])
  return 1
elseif op == 'c' then
  if redis.call('GET', KEYS[4]) ~= ARGV[2] then return 0 end
  redis.call('DEL', KEYS[4])
  redis.call('SPUBLISH', KEYS[5], 'o')
  return 1
end
return {redis.call('HGETALL', KEYS[1]), redis.call('GET', KEYS[4]) or ''}
)lua";

// A journal's script (hub::ClusterJournal) is the profile's body wrapped in this: KEYS[1] is the
// journal's base key and channel, ARGV[1] the op, ARGV[2] the caller (or a dead node's
// instance). Every record is published as "<ver>,<record>" with ver the journal's counter.
// Returns {ver of the last record emitted (0: none), answer}; for 's', {the counter now, the
// listing}.
std::string journal_script(const char* body) {
  std::string s = R"lua(
local base = KEYS[1]
local op = ARGV[1]
local member = ARGV[2]
local ver = 0
local function f(v) return #v .. ':' .. v end
local function fields(v)
  local out, i = {}, 1
  while i <= #v do
    local c = string.find(v, ':', i, true)
    local n = tonumber(string.sub(v, i, c - 1))
    out[#out + 1] = string.sub(v, c + 1, c + n)
    i = c + n + 1
  end
  return out
end
local function emit(rec)
  ver = redis.call('INCR', base .. ':ver')
  redis.call('SPUBLISH', base, ver .. ',' .. rec)
end
local answer = (function()
)lua";
  s += body;
  s += R"lua(
end)()
if op == 's' then return {tonumber(redis.call('GET', base .. ':ver') or '0'), answer} end
return {ver, answer or ''}
)lua";
  return s;
}

std::string script_sha1(const char* script) {
  unsigned char d[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(script), std::strlen(script), d);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : d) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

}  // namespace ringcast::cluster

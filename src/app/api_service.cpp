#include "ringcast/app/api_service.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>
#include <map>

#include "ringcast/app/api_key.h"
#include "ringcast/profiles/display_name.h"
#include "ringcast/profiles/json_depth.h"
#include "ringcast/profiles/json_frame.h"
#include "ringcast/profiles/native_profile.h"
#include "ringcast/profiles/python_json.h"
#include "ringcast/profiles/raw_profile.h"
#include "ringcast/profiles/reserved_rooms.h"
#include "ringcast/websocket/close_code.h"
#include "ringcast/websocket/frame_encoder.h"
#include "ringcast/websocket/message_handler.h"
#include "ringcast/websocket/router.h"
#include "ringcast/websocket/worker.h"

namespace ringcast::app {

using rapidjson::Value;
using websocket::HttpContext;
using websocket::HttpRequest;
using websocket::HttpResponse;
using websocket::json_error;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

namespace {

HttpResponse json_ok(const rapidjson::StringBuffer& buf, int status = 200) {
  HttpResponse r;
  r.status = status;
  r.body.assign(buf.GetString(), buf.GetSize());
  r.add_header("Cache-Control", "no-store");
  return r;
}

HttpResponse deferred() {
  HttpResponse r;
  r.deferred = true;
  return r;
}

void key(Writer& w, std::string_view k) {
  w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
}
void str(Writer& w, std::string_view v) {
  w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
}

// In a cluster: which nodes the answer covers ("nodes_missing": asked, but no answer in time).
void write_nodes(Writer& w, const ApiService::Tally& t) {
  key(w, "nodes");
  w.StartArray();
  for (const auto& n : t.nodes) str(w, n);
  w.EndArray();
  key(w, "nodes_missing");
  w.Uint64(t.missing);
  if (t.degraded) {
    key(w, "redis");
    str(w, "degraded");
  }
}

// Session ids pass 2^53, so they are strings in JSON (as in the native protocol).
std::string sid(uint64_t id) {
  return std::to_string(id);
}

std::optional<uint64_t> parse_u64(std::string_view v) {
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || v.empty()) return std::nullopt;
  return n;
}

// A path segment as sent, percent-decoded; nullopt for a malformed escape.
std::optional<std::string> percent_decode(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] != '%') {
      out.push_back(v[i]);
      continue;
    }
    if (i + 2 >= v.size()) return std::nullopt;
    int hi = hex(v[i + 1]), lo = hex(v[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

// The request body as a JSON object, or the 400 that refuses it.
std::optional<HttpResponse> parse_object(std::string_view body, rapidjson::Document& doc) {
  // Refused before parsing: the parser recurses once per level.
  if (profiles::nested_deeper_than(body))
    return json_error(400, "the body nests arrays/objects deeper than 256");
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject())
    return json_error(400, "the body must be a JSON object");
  return std::nullopt;
}

enum class RoomKind { kNative, kRaw };

// The checks a client's join would make: a name others may be shown, not a seed profile's room.
std::optional<HttpResponse> check_room(const Value* v, RoomKind kind, std::string_view& out) {
  size_t max = kind == RoomKind::kNative ? profiles::NativeProfile::kMaxRoomName
                                         : profiles::RawProfile::kMaxRoomName;
  if (!v || !v->IsString() || v->GetStringLength() == 0 || v->GetStringLength() > max)
    return json_error(400, "\"room\" must be a string of 1-" + std::to_string(max) + " bytes");
  out = std::string_view(v->GetString(), v->GetStringLength());
  if (!profiles::is_display_safe(out))
    return json_error(400, "\"room\" " + std::string(profiles::kDisplayNameRule));
  if (profiles::reserved_room_name(out))
    return json_error(403,
                      "rooms named gamechat:..., livemap:..., chatroom:..., bridge:..., "
                      "relayer:... belong to the seed profiles");
  return std::nullopt;
}

}  // namespace

ApiService::ApiService(hub::HubSystem& hubs, std::string node_id)
    : hubs_(hubs),
      node_id_(std::move(node_id)),
      keys_(std::make_shared<const std::vector<std::string>>()),
      waiting_(static_cast<size_t>(hubs.cores())) {
  if (hub::ClusterBus* bus = hubs_.cluster()) bus->set_queries(this);
}

void ApiService::set_keys(std::vector<std::string> keys) {
  auto next = std::make_shared<const std::vector<std::string>>(std::move(keys));
  std::lock_guard lock(keys_mutex_);
  keys_ = std::move(next);
}

bool ApiService::owns(std::string_view path) {
  // /api, /api/ and /api/version are the game-chat seed's.
  return path.starts_with("/api/") && path.size() > 5 && path != "/api/version";
}

HttpResponse ApiService::handle(const HttpRequest& req, const HttpContext& ctx) {
  std::shared_ptr<const std::vector<std::string>> keys;
  {
    std::lock_guard lock(keys_mutex_);
    keys = keys_;
  }
  if (keys->empty()) return json_error(404, "the server API is off (no [api] keys configured)");
  if (!api_key_allows(*keys, req.header("Authorization"))) {
    HttpResponse r = json_error(401, "missing or wrong API key (Authorization: apikey <key>)");
    r.add_header("WWW-Authenticate", "apikey");
    return r;
  }
  const std::string_view path = req.path;
  const bool get = req.method == "GET" || req.method == "HEAD";
  const bool post = req.method == "POST";
  auto only = [&](bool ok, const char* allow) -> std::optional<HttpResponse> {
    if (ok) return std::nullopt;
    HttpResponse r = json_error(405, "method not allowed");
    r.add_header("Allow", allow);
    return r;
  };
  if (path == "/api/publish" || path == "/api/broadcast") {
    if (auto r = only(post, "POST")) return *r;
    return publish(ctx, path == "/api/broadcast");
  }
  if (path == "/api/disconnect") {
    if (auto r = only(post, "POST")) return *r;
    return disconnect(ctx);
  }
  if (path == "/api/rooms") {
    if (auto r = only(get, "GET, HEAD")) return *r;
    return list_rooms(req, ctx);
  }
  constexpr std::string_view kRooms = "/api/rooms/";
  if (path.starts_with(kRooms)) {
    std::string_view rest = path.substr(kRooms.size());
    size_t slash = rest.rfind('/');
    if (slash != std::string_view::npos && slash > 0) {
      std::string_view what = rest.substr(slash + 1);
      if (what == "presence" || what == "history") {
        if (auto r = only(get, "GET, HEAD")) return *r;
        auto room = percent_decode(rest.substr(0, slash));
        if (!room || room->empty()) return json_error(400, "bad room name in the path");
        return room_query(req, ctx, std::move(*room), what == "history");
      }
    }
  }
  return json_error(404, "no such API endpoint");
}

// POST /api/publish {"room", "data", "kind"?, "user"?}
// POST /api/broadcast {"rooms": [...], "data", "kind"?, "user"?}
HttpResponse ApiService::publish(const HttpContext& ctx, bool many) {
  rapidjson::Document doc;
  if (auto bad = parse_object(ctx.body, doc)) return *bad;
  RoomKind kind = RoomKind::kNative;
  if (const Value* k = profiles::py_get(doc, "kind")) {
    std::string_view ks = k->IsString() ? std::string_view(k->GetString(), k->GetStringLength())
                                        : std::string_view("?");
    if (ks == "raw")
      kind = RoomKind::kRaw;
    else if (ks != "native")
      return json_error(400, "unknown room kind (\"kind\" is \"native\" or \"raw\")");
  }
  const Value* data = profiles::py_get(doc, "data");
  if (!data) return json_error(400, "missing field \"data\"");
  std::string_view user;
  if (const Value* u = profiles::py_get(doc, "user")) {
    if (kind == RoomKind::kRaw) return json_error(400, "\"user\" applies to native rooms only");
    if (!u->IsString() || u->GetStringLength() > 255)
      return json_error(400, "\"user\" must be a string of at most 255 bytes");
    user = std::string_view(u->GetString(), u->GetStringLength());
    if (!profiles::is_display_safe(user))
      return json_error(400, "\"user\" " + std::string(profiles::kDisplayNameRule));
  }
  std::vector<std::string_view> names;
  if (many) {
    const Value* rooms = profiles::py_get(doc, "rooms");
    if (!rooms || !rooms->IsArray() || rooms->Empty() || rooms->Size() > kMaxBroadcastRooms)
      return json_error(400, "\"rooms\" must be an array of 1-" +
                                 std::to_string(kMaxBroadcastRooms) + " room names");
    for (const Value& v : rooms->GetArray()) {
      std::string_view n;
      if (auto bad = check_room(&v, kind, n)) return *bad;
      names.push_back(n);
    }
  } else {
    std::string_view n;
    if (auto bad = check_room(profiles::py_get(doc, "room"), kind, n)) return *bad;
    names.push_back(n);
  }
  // A string is sent as its text (raw rooms: the frame clients get); anything else as JSON.
  std::string_view json = profiles::to_json_scratch(*data);
  hub::Hub& here = hubs_.hub(ctx.worker);
  auto& registry = hubs_.rooms();

  if (kind == RoomKind::kRaw) {
    std::string_view text =
        data->IsString() ? std::string_view(data->GetString(), data->GetStringLength()) : json;
    engine::FrameRef frame(websocket::encode_frame(websocket::Opcode::kText, text));
    rapidjson::StringBuffer buf;
    Writer w(buf);
    if (many) {
      w.StartObject();
      key(w, "results");
      w.StartArray();
    }
    for (std::string_view n : names) {
      // A raw room nobody is in does not exist: nothing to deliver, and nothing is created.
      // Raw rooms keep no sequence: the answer only confirms the fan-out has started.
      hub::RoomRef ref(&registry, registry.find(n));
      if (ref) here.fanout_direct(ref.get(), frame.get(), 0, nullptr);
      w.StartObject();
      key(w, "room");
      str(w, n);
      w.EndObject();
    }
    if (many) {
      w.EndArray();
      w.EndObject();
    }
    return json_ok(buf);
  }

  // Native: the room's home core sequences, records and fans out; the answer waits for all.
  struct Gather {
    std::vector<std::string> rooms;
    std::vector<std::optional<uint64_t>> seqs;
    std::vector<std::string> errors;
    size_t left = 0;
  };
  auto g = std::make_shared<Gather>();
  std::vector<hub::RoomRef> refs;
  refs.reserve(names.size());
  for (std::string_view n : names) {
    hub::RoomRef ref(&registry, registry.acquire(n));
    if (!ref) return json_error(503, "the server holds as many rooms as it may ([hub] max_rooms)");
    refs.push_back(std::move(ref));
    g->rooms.emplace_back(n);
  }
  g->seqs.resize(names.size());
  g->errors.resize(names.size());
  g->left = names.size();
  const int origin = ctx.worker;
  const uint64_t session = ctx.session;
  auto payload = std::make_shared<const std::string>(json);
  auto owned_user = std::make_shared<const std::string>(user);
  auto finish = [this, g, origin, session, many]() {
    rapidjson::StringBuffer buf;
    Writer w(buf);
    bool failed = false;
    auto one = [&](size_t i) {
      w.StartObject();
      key(w, "room");
      str(w, g->rooms[i]);
      if (g->seqs[i]) {
        key(w, "seq");
        w.Uint64(*g->seqs[i]);
      } else {
        failed = true;
        key(w, "error");
        str(w, g->errors[i]);
      }
      w.EndObject();
    };
    if (many) {
      w.StartObject();
      key(w, "results");
      w.StartArray();
      for (size_t i = 0; i < g->rooms.size(); ++i) one(i);
      w.EndArray();
      w.EndObject();
    } else {
      one(0);
    }
    hubs_.hub(origin).worker().complete_http(session, json_ok(buf, failed ? 500 : 200));
  };
  for (size_t i = 0; i < refs.size(); ++i) {
    hub::RoomRef ref = refs[i];
    here.post_fn(ref.get()->home(), [ref, i, g, payload, owned_user, origin, session,
                                     finish](hub::Hub& home) {
      home.publish_at_home(ref.get(),
                           {reinterpret_cast<const uint8_t*>(payload->data()), payload->size()},
                           *owned_user, session, &profiles::NativeProfile::message_event,
                           [&home, i, g, origin, finish](std::optional<uint64_t> seq) {
                             home.post_fn(origin, [i, g, seq, finish](hub::Hub&) {
                               g->seqs[i] = seq;
                               if (!seq) g->errors[i] = "the store could not keep the message";
                               if (--g->left == 0) finish();
                             });
                           });
    });
  }
  return deferred();
}

// POST /api/disconnect {"session": "<id>"} or {"user": "<user id>"}, "code"?, "reason"?
HttpResponse ApiService::disconnect(const HttpContext& ctx) {
  rapidjson::Document doc;
  if (auto bad = parse_object(ctx.body, doc)) return *bad;
  const Value* session = profiles::py_get(doc, "session");
  const Value* user = profiles::py_get(doc, "user");
  if (!!session == !!user) return json_error(400, "give exactly one of \"session\" and \"user\"");
  uint16_t code = websocket::kClosePolicyViolation;
  if (const Value* c = profiles::py_get(doc, "code")) {
    if (!c->IsUint() || !(c->GetUint() == 1000 || c->GetUint() == 1001 || c->GetUint() == 1008 ||
                          (c->GetUint() >= 3000 && c->GetUint() <= 4999)))
      return json_error(400, "\"code\" must be 1000, 1001, 1008 or 3000-4999");
    code = static_cast<uint16_t>(c->GetUint());
  }
  std::string reason = "disconnected by the server";
  if (const Value* r = profiles::py_get(doc, "reason")) {
    if (!r->IsString() || r->GetStringLength() > 123)
      return json_error(400, "\"reason\" must be a string of at most 123 bytes");
    reason.assign(r->GetString(), r->GetStringLength());
  }
  const int origin = ctx.worker;
  const uint64_t me = ctx.session;
  DisconnectTarget target;
  if (session) {
    auto id = session->IsString() ? parse_u64({session->GetString(), session->GetStringLength()})
                                  : std::nullopt;
    if (!id) return json_error(400, "\"session\" must be a session id (a decimal string)");
    int core = hub::Hub::core_of(*id);
    if (!hub::is_remote_session(*id) && (core < 0 || core >= hubs_.cores()))
      return json_error(404, "no such session");
    target.session = *id;
  } else {
    if (!user->IsString() || user->GetStringLength() == 0)
      return json_error(400, "\"user\" must be a non-empty string");
    target.user.assign(user->GetString(), user->GetStringLength());
  }
  target.code = code;
  target.reason = std::move(reason);
  disconnect_everywhere(origin, std::move(target), [this, origin, me](const Tally& t) {
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    key(w, "disconnected");
    w.Uint64(t.closed);
    if (hubs_.cluster()) write_nodes(w, t);
    w.EndObject();
    hubs_.hub(origin).worker().complete_http(me, json_ok(buf));
  });
  return deferred();
}

// Closes this node's sessions that match (a session of another node, by the id this node knows
// it by, is looked for among this node's sessions by the id the others know them by).
void ApiService::disconnect_here(int origin, std::shared_ptr<const DisconnectTarget> t,
                                 std::function<void(size_t)> done) {
  hub::Hub& here = hubs_.hub(origin);
  hub::ClusterBus* bus = hubs_.cluster();
  if (t->user.empty() && !hub::is_remote_session(t->session)) {
    int core = hub::Hub::core_of(t->session);
    if (core < 0 || core >= hubs_.cores()) return done(0);
    here.post_fn(core, [t, origin, done](hub::Hub& h) {
      size_t n = 0;
      websocket::Session* s = h.worker().find_session(t->session);
      if (s && s->open()) {
        s->close(t->code, t->reason);
        n = 1;
      }
      h.post_fn(origin, [done, n](hub::Hub&) { done(n); });
    });
    return;
  }
  auto total = std::make_shared<std::pair<size_t, int>>(0, hubs_.cores());
  for (int c = 0; c < hubs_.cores(); ++c) {
    here.post_fn(c, [t, origin, done, total, bus](hub::Hub& h) {
      size_t n = 0;
      h.worker().for_each_session([&](websocket::Session& s) {
        if (!s.open()) return;
        if (t->user.empty()) {
          if (!bus || bus->id_elsewhere(s.id()) != t->session) return;
        } else {
          if (!s.route() || !s.route()->handler) return;
          if (s.route()->handler->user_id(s) != t->user) return;
        }
        s.close(t->code, t->reason);
        ++n;
      });
      h.post_fn(origin, [done, total, n](hub::Hub&) {
        total->first += n;
        if (--total->second == 0) done(total->first);
      });
    });
  }
}

// GET /api/rooms?limit=N: every room with its members on each core, from each core's own view.
HttpResponse ApiService::list_rooms(const HttpRequest& req, const HttpContext& ctx) {
  size_t limit = 1000;
  if (auto l = websocket::query_param(req.query, "limit")) {
    auto n = parse_u64(*l);
    if (!n || *n == 0 || *n > kMaxListedRooms)
      return json_error(400, "limit must be 1-" + std::to_string(kMaxListedRooms));
    limit = *n;
  }
  const int origin = ctx.worker;
  const uint64_t me = ctx.session;
  const int cores = hubs_.cores();
  rooms_everywhere(origin, [this, origin, me, limit, cores](const RoomTable& g, const Tally& t) {
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    key(w, "node");
    str(w, node_id_);
    if (hubs_.cluster()) write_nodes(w, t);
    key(w, "total");
    w.Uint64(g.size());
    key(w, "rooms");
    w.StartArray();
    size_t n = 0;
    for (const auto& [name, info] : g) {
      if (n++ == limit) break;
      w.StartObject();
      key(w, "room");
      str(w, name);
      uint64_t members = info.elsewhere;
      for (uint32_t m : info.members) members += m;
      key(w, "members");
      w.Uint64(members);
      key(w, "members_per_core");
      w.StartArray();
      for (int c = 0; c < cores; ++c)
        w.Uint(c < static_cast<int>(info.members.size()) ? info.members[c] : 0);
      w.EndArray();
      if (hubs_.cluster()) {
        key(w, "members_per_node");
        w.StartObject();
        uint64_t mine = 0;
        for (uint32_t m : info.members) mine += m;
        key(w, node_id_);
        w.Uint64(mine);
        for (const auto& [node, m] : info.per_node) {
          key(w, node);
          w.Uint64(m);
        }
        w.EndObject();
      }
      key(w, "seq");
      w.Uint64(info.seq);
      key(w, "history");
      w.Uint64(info.history);
      key(w, "state_keys");
      w.Uint64(info.state_keys);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    hubs_.hub(origin).worker().complete_http(me, json_ok(buf));
  });
  return deferred();
}

// This node's rooms, each core counting its own members; sequence, history and state read on
// each room's home core.
void ApiService::rooms_here(int origin, std::function<void(RoomTable&)> done) {
  struct Gather {
    RoomTable rooms;
    int left = 0;
  };
  const int cores = hubs_.cores();
  auto g = std::make_shared<Gather>();
  g->left = cores;
  std::vector<std::vector<hub::RoomRef>> homed(cores);
  for (hub::SharedRoom* r : hubs_.rooms().snapshot())
    homed[r->home()].emplace_back(&hubs_.rooms(), r);
  hub::Hub& here = hubs_.hub(origin);
  for (int c = 0; c < cores; ++c) {
    here.post_fn(c, [c, cores, origin, g, done, mine = std::move(homed[c])](hub::Hub& h) {
      struct Row {
        std::string name;
        uint32_t members = 0;
        bool home = false;
        uint64_t seq = 0;
        size_t history = 0, state_keys = 0;
      };
      auto rows = std::make_shared<std::vector<Row>>();
      h.for_each_local_room([&](const hub::SharedRoom& r, size_t n) {
        rows->push_back({r.name(), static_cast<uint32_t>(n)});
      });
      for (const hub::RoomRef& ref : mine) {
        hub::SharedRoom& r = *ref.get();
        rows->push_back({r.name(), 0, true, r.seq, r.history().size(), r.state().size()});
      }
      h.post_fn(origin, [c, cores, g, done, rows](hub::Hub&) {
        for (const Row& row : *rows) {
          RoomInfo& info = g->rooms[row.name];
          if (info.members.empty()) info.members.assign(cores, 0);
          info.members[c] += row.members;
          if (row.home) {
            info.seq = row.seq;
            info.history = row.history;
            info.state_keys = row.state_keys;
          }
        }
        if (--g->left == 0) done(g->rooms);
      });
    });
  }
}

// GET /api/rooms/<room>/presence and /history?since=&limit=&offset=
HttpResponse ApiService::room_query(const HttpRequest& req, const HttpContext& ctx,
                                    std::string room, bool history) {
  size_t limit = 50, offset = 0;
  std::optional<uint64_t> since;
  auto param = [&](std::string_view name, uint64_t max) -> std::optional<std::optional<uint64_t>> {
    auto v = websocket::query_param(req.query, name);
    if (!v) return std::optional<uint64_t>();
    auto n = parse_u64(*v);
    if (!n || *n > max) return std::nullopt;
    return std::optional<uint64_t>(*n);
  };
  if (history) {
    auto l = param("limit", kMaxHistoryLimit);
    auto o = param("offset", UINT32_MAX);
    auto s = param("since", UINT64_MAX);
    if (!l || !o || !s)
      return json_error(400, "limit (0-" + std::to_string(kMaxHistoryLimit) +
                                 "), offset and since must be non-negative integers");
    if (*l) limit = **l;
    if (*o) offset = **o;
    since = *s;
  }
  auto render = [room, history, limit, offset, since](const hub::SharedRoom* rm) {
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    key(w, "room");
    str(w, room);
    if (history) {
      key(w, "seq");
      w.Uint64(rm ? rm->seq : 0);
      key(w, "messages");
      w.StartArray();
      auto item = [&w](const hub::HistoryRecord& rec) {
        w.StartObject();
        key(w, "seq");
        w.Uint64(rec.seq);
        key(w, "ts");
        w.Int64(rec.ts_ms);
        key(w, "from");
        str(w, sid(rec.sender));
        if (!rec.user.empty()) {
          key(w, "user");
          str(w, rec.user);
        }
        key(w, "data");
        std::string_view d = rec.data();
        w.RawValue(d.data(), d.size(), rapidjson::kObjectType);
        w.EndObject();
      };
      if (rm && since)
        rm->history().since(*since, item);
      else if (rm)
        rm->history().newest_first(offset, limit, item);
      w.EndArray();
    } else {
      key(w, "members");
      w.StartArray();
      if (rm) {
        for (const auto& m : rm->presence()) {
          w.StartObject();
          key(w, "session");
          str(w, sid(m.session));
          if (!m.identity.user_id.empty()) {
            key(w, "user_id");
            str(w, m.identity.user_id);
          }
          if (!m.identity.nickname.empty()) {
            key(w, "nickname");
            str(w, m.identity.nickname);
          }
          w.EndObject();
        }
      }
      w.EndArray();
    }
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
  };
  auto& registry = hubs_.rooms();
  // In a cluster a room this node has no member in is still the cluster's: it is loaded from
  // Redis for the answer (and freed after it).
  hub::RoomRef ref(&registry, hubs_.cluster() ? registry.acquire(room) : registry.find(room));
  if (!ref) {
    // Unknown: nothing to show, and asking does not create it.
    HttpResponse r;
    r.body = render(nullptr);
    return r;
  }
  const int origin = ctx.worker;
  const uint64_t me = ctx.session;
  hubs_.hub(origin).query(
      ref.get(), [render](hub::SharedRoom& rm) { return render(&rm); },
      [this, origin, me](std::string json) {
        HttpResponse r;
        r.body = std::move(json);
        r.add_header("Cache-Control", "no-store");
        hubs_.hub(origin).worker().complete_http(me, r);
      });
  return deferred();
}

}  // namespace ringcast::app

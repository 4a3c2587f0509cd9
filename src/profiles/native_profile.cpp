#include "ringcast/profiles/native_profile.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <charconv>
#include <chrono>

#include "native_parts.h"
#include "ringcast/hub/formatter_names.h"
#include "ringcast/profiles/display_name.h"
#include "ringcast/profiles/json_arena.h"
#include "ringcast/profiles/json_depth.h"
#include "ringcast/profiles/json_frame.h"
#include "ringcast/profiles/json_peek.h"
#include "ringcast/profiles/python_json.h"
#include "ringcast/profiles/relay_pacing.h"
#include "ringcast/profiles/reserved_rooms.h"
#include "ringcast/websocket/frame_encoder.h"

namespace ringcast::profiles {

using rapidjson::Value;
using websocket::Session;
using namespace native_detail;

void TokenTable::set(std::map<std::string, hub::Identity> tokens) {
  std::lock_guard lock(mutex_);
  tokens_.clear();
  for (auto& [k, v] : tokens) tokens_.emplace(k, std::move(v));
}

std::optional<hub::Identity> TokenTable::lookup(std::string_view token) const {
  std::lock_guard lock(mutex_);
  auto it = tokens_.find(token);
  if (it == tokens_.end()) return std::nullopt;
  return it->second;
}

namespace {

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Serialises a parsed value back to JSON text (the in-situ parse consumed the original).
void write_identity(JsonFrame& j, uint64_t session, const hub::Identity& id) {
  j.w().StartObject();
  j.kv("session", Sid(session));
  if (!id.user_id.empty()) j.kv("user_id", id.user_id);
  if (!id.nickname.empty()) j.kv("nickname", id.nickname);
  j.w().EndObject();
}

engine::SharedFrame* message_event(const hub::SharedRoom& room, const hub::HistoryRecord& rec) {
  JsonFrame j;
  j.w().StartObject();
  j.kv("type", "message");
  j.kv("room", room.name());
  j.key("seq");
  j.w().Uint64(rec.seq);
  j.kv("from", Sid(rec.sender));
  if (!rec.user.empty()) j.kv("user", rec.user);
  j.key("ts");
  j.w().Int64(rec.ts_ms);
  j.key("data");
  j.raw(rec.data());
  j.w().EndObject();
  return j.frame();
}

engine::SharedFrame* binary_event(const hub::SharedRoom&, const hub::HistoryRecord& rec) {
  std::string_view d = rec.data();
  return websocket::encode_frame(websocket::Opcode::kBinary,
                                 {reinterpret_cast<const uint8_t*>(d.data()), d.size()});
}

engine::SharedFrame* presence_event(const hub::SharedRoom& room, const hub::PresenceEntry& who,
                                    bool joined) {
  JsonFrame j;
  j.w().StartObject();
  j.kv("type", "presence");
  j.kv("room", room.name());
  j.kv("event", joined ? "join" : "leave");
  j.key("member");
  write_identity(j, who.session, who.identity);
  j.w().EndObject();
  return j.frame();
}

engine::SharedFrame* state_event(const hub::SharedRoom& room, std::string_view key,
                                 std::string_view value, uint64_t from) {
  JsonFrame j;
  j.w().StartObject();
  j.kv("type", "state");
  j.kv("room", room.name());
  j.kv("key", key);
  if (value.empty()) {
    j.key("deleted");
    j.w().Bool(true);
  } else {
    j.key("value");
    j.raw(value);
  }
  j.kv("from", Sid(from));
  j.w().EndObject();
  return j.frame();
}

}  // namespace

// One parsed request: the document lives on the stack, strings point into the payload.
struct NativeProfile::Request {
  JsonArena& mem = json_arena();
  ArenaDocument doc{&mem.value_alloc, sizeof(JsonArena::stack), &mem.stack_alloc};
  const Value* id = nullptr;
  std::string_view op;

  // A repeated key counts with its last value, as in every profile (Python's json.loads).
  const Value* get(std::string_view name) const { return py_get(doc, name); }
  std::optional<std::string_view> string(std::string_view name) const {
    const Value* v = get(name);
    if (!v || !v->IsString()) return std::nullopt;
    return std::string_view(v->GetString(), v->GetStringLength());
  }
};

namespace {

// Cluster nodes format each other's events by these names (hub/formatter_names.h).
const bool kFormattersNamed = [] {
  hub::name_formatter(&NativeProfile::message_event, "native.message");
  hub::name_formatter(binary_event, "native.binary");
  hub::name_formatter(presence_event, "native.presence");
  hub::name_formatter(state_event, "native.state");
  return true;
}();

engine::SharedFrame* simple_frame(std::string_view type, const Value* id) {
  JsonFrame j;
  j.w().StartObject();
  j.kv("type", type);
  write_id(j, id);
  j.w().EndObject();
  return j.frame();
}

engine::FrameRef state_limit_frame(const Value* id, std::string_view message) {
  JsonFrame j;
  j.w().StartObject();
  j.kv("type", "error");
  write_id(j, id);
  j.kv("code", "state_limit");
  j.kv("message", message);
  j.w().EndObject();
  return engine::FrameRef(j.frame());
}

bool valid_room(std::string_view name) {
  return !name.empty() && name.size() <= NativeProfile::kMaxRoomName;
}

}  // namespace

void NativeProfile::on_open(Session& s, const websocket::HttpRequest&) {
  s.user = new NativeState();
}

void NativeProfile::on_close(Session& s) {
  auto* st = static_cast<NativeState*>(s.user);
  if (!st) return;
  hub::Hub& hub = hubs_.hub_of(s);
  hub.session_closed(s);
  endpoints_closed(s);
  delete st;
  s.user = nullptr;
}

void NativeProfile::on_message(Session& s, websocket::Opcode op, std::span<uint8_t> payload) {
  NativeState& st = state_of(s);
  hub::Hub& hub = hubs_.hub_of(s);
  if (op == websocket::Opcode::kBinary) {
    hub::SharedRoom* room = st.binary_room.empty() ? nullptr : hub.joined_room(s, st.binary_room);
    if (!room) {
      send_error(s, nullptr, "not_joined",
                 "binary frames are published to the last joined room; join one first");
      return;
    }
    hub.publish(s, room, payload, st.identity.user_id, binary_event, true, false);
    return;
  }
  Request r;
  // rapidjson's in-situ parser needs a NUL after the text, and the payload may sit inside the frame
  // reader's buffer right before the next frame: copy once into a per-thread buffer (no allocation
  // once warm), then decode strings in place there.
  thread_local std::string text;
  text.assign(reinterpret_cast<const char*>(payload.data()), payload.size());
  if (nested_deeper_than(text)) {
    send_error(s, nullptr, "bad_json", "nested too deeply");
    return;
  }
  r.doc.ParseInsitu<rapidjson::kParseIterativeFlag>(text.data());
  if (r.doc.HasParseError() || payload.empty()) {
    send_error(
        s, nullptr, "bad_json",
        payload.empty() ? "empty message" : rapidjson::GetParseError_En(r.doc.GetParseError()));
    return;
  }
  if (!r.doc.IsObject()) {
    send_error(s, nullptr, "bad_request", "a request is a JSON object with an \"op\" field");
    return;
  }
  r.id = r.get("id");
  auto op_name = r.string("op");
  if (!op_name) {
    send_error(s, r.id, "bad_request", "missing string field \"op\"");
    return;
  }
  r.op = *op_name;
  handle(s, r);
}

// Durable writes to the room the pending ones went to need not wait for them: the room's home
// core keeps their order. Anything else waits.
const void* NativeProfile::order_key(Session& s, websocket::Opcode op,
                                     std::span<const uint8_t> payload) {
  if (op == websocket::Opcode::kBinary) {  // published to the binary room, like the ones before
    const std::string& room = state_of(s).binary_room;
    return room.empty() ? nullptr : hubs_.hub_of(s).joined_room(s, room);
  }
  if (op != websocket::Opcode::kText) return nullptr;
  JsonPeek peek(payload);
  std::string_view o = peek.string("op");
  if (o != "publish" && o != "state.set" && o != "state.del") return nullptr;
  std::string_view room = peek.string("room");
  return room.empty() ? nullptr : hubs_.hub_of(s).joined_room(s, room);
}

// `auth` logs in with a [tokens] entry or a JWT; `refresh` renews a JWT login with a newer token
// of the same user before the current one expires. A JWT login is closed with
// kCloseTokenExpired once its token's exp (+ leeway) passes without a refresh. A failed `auth` or
// `refresh` changes nothing (the identity and the deadline in force stay).
void NativeProfile::auth(Session& s, Request& r, bool refresh) {
  NativeState& st = state_of(s);
  const Value* id = r.id;
  auto token = r.string("token");
  if (!token) return send_error(s, id, "bad_request", "missing string field \"token\"");
  if (refresh && !st.jwt_login)
    return send_error(s, id, "auth_failed",
                      "refresh renews a JWT login; this session did not log in with a JWT");
  std::optional<hub::Identity> who = refresh ? std::nullopt : tokens_.lookup(*token);
  JwtClaims claims;
  if (!who) {
    std::shared_ptr<const JwtVerifier> jwt = jwt_.get();
    const int64_t now_ms = wall_ms();
    if (!jwt || jwt->verify(*token, now_ms / 1000, claims) != JwtResult::kOk)
      return send_error(s, id, "auth_failed",
                        refresh ? "the token is not a valid, unexpired JWT"
                                : "unknown token (not in the token table, nor a valid, "
                                  "unexpired JWT)");
    if (refresh && claims.sub != st.identity.user_id)
      return send_error(s, id, "auth_failed", "the token is for another user (sub)");
    // Both are shown to other users (presence, message senders).
    if (!is_display_safe(claims.sub) || (claims.nickname && !is_display_safe(*claims.nickname)))
      return send_error(s, id, "auth_failed",
                        "the token's sub and nickname " + std::string(kDisplayNameRule));
    if (claims.valid_until) {
      // Milliseconds until the token stops being accepted, bounded so that far-future (or huge)
      // exp values stay representable.
      constexpr double kMaxMs = 10.0 * 365 * 86400 * 1000;
      double ms =
          std::clamp(*claims.valid_until * 1000.0 - static_cast<double>(now_ms), 0.0, kMaxMs);
      s.close_after(static_cast<int64_t>(ms), kCloseTokenExpired, "token expired");
    } else {
      s.close_after(-1, 0, nullptr);
    }
    if (!refresh) {
      hub::Identity jwt_identity;
      jwt_identity.user_id = std::move(claims.sub);
      jwt_identity.nickname = claims.nickname.value_or(std::string());
      who = std::move(jwt_identity);
    }
    st.jwt_login = true;
  } else {
    s.close_after(-1, 0, nullptr);  // a table token does not expire
    st.jwt_login = false;
  }
  if (!refresh) {
    st.identity = std::move(*who);
    st.authed = true;
  }
  reply(s, id, refresh ? "refreshed" : "authed", [&](JsonFrame& j) {
    if (!refresh) {
      j.kv("session", Sid(s.id()));
      j.kv("user_id", st.identity.user_id);
      j.kv("nickname", st.identity.nickname);
    }
    if (st.jwt_login && claims.exp) {
      j.key("expires");
      j.w().Int64(static_cast<int64_t>(std::clamp(*claims.exp, -9.0e15, 9.0e15)));
    }
  });
}

void NativeProfile::handle(Session& s, Request& r) {
  NativeState& st = state_of(s);
  hub::Hub& hub = hubs_.hub_of(s);
  const Value* id = r.id;
  auto room_arg = [&]() -> std::optional<std::string_view> {
    auto room = r.string("room");
    if (!room || !valid_room(*room)) {
      send_error(s, id, "bad_request", "\"room\" must be a string of 1-128 bytes");
      return std::nullopt;
    }
    // Room names are shown to every member (presence, events, lists).
    if (!is_display_safe(*room)) {
      send_error(s, id, "bad_request", "\"room\" " + std::string(kDisplayNameRule));
      return std::nullopt;
    }
    if (reserved_room_name(*room)) {
      send_error(s, id, "forbidden",
                 "rooms named gamechat:..., livemap:..., chatroom:... belong to "
                 "the seed profiles");
      return std::nullopt;
    }
    return room;
  };
  auto joined = [&](std::string_view room) -> hub::SharedRoom* {
    hub::SharedRoom* rm = hub.joined_room(s, room);
    if (!rm) send_error(s, id, "not_joined", "join the room first");
    return rm;
  };

  if (r.op == "ping") {
    reply(s, id, "pong", [](JsonFrame&) {});
  } else if (r.op == "auth" || r.op == "refresh") {
    auth(s, r, r.op == "refresh");
  } else if (r.op == "join") {
    auto room = room_arg();
    if (!room) return;
    hub::JoinOptions opts;
    const Value* presence = r.get("presence");
    if (presence && !presence->IsBool())
      return send_error(s, id, "bad_request", "\"presence\" must be true or false");
    opts.presence = presence && presence->GetBool();
    opts.presence_events = presence_event;
    const Value* since = r.get("since");
    if (since) {
      if (!since->IsUint64())
        return send_error(s, id, "bad_request", "\"since\" must be a sequence number");
      opts.since = since->GetUint64();
    }
    const Value* history = r.get("history");
    if (history) {
      if (!history->IsUint() || history->GetUint() > kMaxHistoryLimit) {
        return send_error(s, id, "bad_request", "\"history\" must be a count of at most 1000");
      }
      opts.replay = history->GetUint();
    }
    opts.identity = st.identity;
    if (opts.identity.user_id.empty()) opts.identity.user_id = "";
    std::string id_json = id ? to_json(*id) : std::string();
    std::string room_name(*room);
    hub::JoinStatus status = hub.join(s, *room, std::move(opts),
                                      [id_json, room_name](Session& js, hub::JoinResult& res) {
                                        state_of(js).binary_room = room_name;
                                        JsonFrame j;
                                        j.w().StartObject();
                                        j.kv("type", "joined");
                                        if (!id_json.empty()) {
                                          j.key("id");
                                          j.raw(id_json);
                                        }
                                        j.kv("room", room_name);
                                        j.key("seq");
                                        j.w().Uint64(res.seq);
                                        j.key("state");
                                        j.w().StartObject();
                                        for (const auto& [k, v] : res.state) {
                                          j.key(k);
                                          j.raw(v);
                                        }
                                        j.w().EndObject();
                                        if (!res.members.empty()) {
                                          j.key("members");
                                          j.w().StartArray();
                                          for (const auto& m : res.members)
                                            write_identity(j, m.session, m.identity);
                                          j.w().EndArray();
                                        }
                                        j.w().EndObject();
                                        engine::FrameRef f(j.frame());
                                        // What a joiner must receive: not slow-consumer backlog.
                                        Session::SnapshotScope snapshot(js);
                                        js.send_frame(f.get());
                                        for (const auto& ev : res.replay) js.send_frame(ev.get());
                                      });
    switch (status) {
      case hub::JoinStatus::kJoined:
        break;
      case hub::JoinStatus::kAlreadyJoined:
        return send_error(s, id, "already_joined", "already in this room");
      case hub::JoinStatus::kTooManyRooms:
        return send_error(s, id, "room_limit",
                          "this connection is in as many rooms as it may be (leave one first)");
      case hub::JoinStatus::kRoomLimit:
        return send_error(s, id, "room_limit",
                          "the server holds as many rooms as it may; try again later");
    }
  } else if (r.op == "leave") {
    auto room = room_arg();
    if (!room) return;
    if (!hub.leave(s, *room)) return send_error(s, id, "not_joined", "not in this room");
    reply(s, id, "left", [&](JsonFrame& j) { j.kv("room", *room); });
  } else if (r.op == "publish") {
    auto room = room_arg();
    if (!room) return;
    const Value* data = r.get("data");
    if (!data) return send_error(s, id, "bad_request", "missing field \"data\"");
    const Value* echo = r.get("echo");
    if (echo && !echo->IsBool())
      return send_error(s, id, "bad_request", "\"echo\" must be true or false");
    hub::SharedRoom* rm = joined(*room);
    if (!rm) return;
    // The ack (when asked for) comes once the message is in effect: sequenced, and committed if
    // the room is persistent; a store failure comes back as an error in this protocol's shape.
    engine::FrameRef ok, fail;
    if (id) ok = engine::FrameRef(simple_frame("ack", id));
    // In a cluster any change can be refused (Redis unreachable): the same answer.
    if (hubs_.store().persistent(*rm) || hubs_.cluster()) fail = store_failed_frame(id);
    std::string_view json = to_json_scratch(*data);
    hub.publish(s, rm, {reinterpret_cast<const uint8_t*>(json.data()), json.size()},
                st.identity.user_id, message_event, !echo || echo->GetBool(), true, ok.get(),
                fail.get());
  } else if (r.op == "send") {
    const Value* to = r.get("to");
    const Value* data = r.get("data");
    auto target = to ? parse_sid(*to) : std::nullopt;
    if (!target) return send_error(s, id, "bad_request", "\"to\" must be a session id");
    if (!data) return send_error(s, id, "bad_request", "missing field \"data\"");
    JsonFrame j;
    j.w().StartObject();
    j.kv("type", "direct");
    // A member of another node knows this session by the id it goes by there.
    const bool remote = hub::is_remote_session(*target) && hubs_.cluster();
    j.kv("from", Sid(remote ? hubs_.cluster()->id_elsewhere(s.id()) : s.id()));
    if (!st.identity.user_id.empty()) j.kv("user", st.identity.user_id);
    j.key("data");
    data->Accept(j.w());
    j.w().EndObject();
    engine::FrameRef f(j.frame());
    if (remote) {
      // A member of another node (as presence lists show it): through that node's channel. A
      // target that has gone there meanwhile is not reported back (docs/cluster.md).
      hub.send_to(*target, f.get());
      return;
    }
    int core = hub::Hub::core_of(*target);
    if (core < 0 || core >= hubs_.cores())
      return send_error(s, id, "no_such_session", "no such session");
    // Delivered on the target's core; an unknown target is reported back to the sender.
    std::string id_json = id ? to_json(*id) : std::string();
    uint64_t from = s.id();
    int from_core = hub.core();
    hub.post_fn(core, [f, target = *target, from, from_core, id_json](hub::Hub& h) {
      if (Session* t = h.worker().find_session(target); t && t->open()) {
        t->send_frame(f.get());
        return;
      }
      h.post_fn(from_core, [from, id_json](hub::Hub& back) {
        Session* origin = back.worker().find_session(from);
        if (!origin || !origin->open()) return;
        rapidjson::Document idd;
        if (!id_json.empty()) idd.Parse(id_json.c_str());
        send_error(*origin, id_json.empty() ? nullptr : &idd, "no_such_session", "no such session");
      });
    });
  } else if (r.op == "history") {
    auto room = room_arg();
    if (!room) return;
    const Value* limit = r.get("limit");
    const Value* offset = r.get("offset");
    const Value* since = r.get("since");
    if ((limit && !limit->IsUint()) || (offset && !offset->IsUint()) ||
        (since && !since->IsUint64())) {
      return send_error(s, id, "bad_request",
                        "\"limit\", \"offset\" and \"since\" must be non-negative integers");
    }
    size_t lim = std::min<size_t>(limit ? limit->GetUint() : 50, kMaxHistoryLimit);
    size_t off = offset ? offset->GetUint() : 0;
    std::optional<uint64_t> after;
    if (since) after = since->GetUint64();
    std::string id_json = id ? to_json(*id) : std::string();
    std::string room_name(*room);
    auto history_json = [lim, off, after, id_json, room_name](const hub::SharedRoom* rm) {
      JsonFrame j;
      j.w().StartObject();
      j.kv("type", "history");
      if (!id_json.empty()) {
        j.key("id");
        j.raw(id_json);
      }
      j.kv("room", room_name);
      j.key("seq");
      j.w().Uint64(rm ? rm->seq : 0);
      j.key("messages");
      j.w().StartArray();
      auto item = [&j](const hub::HistoryRecord& rec) {
        j.w().StartObject();
        j.key("seq");
        j.w().Uint64(rec.seq);
        j.key("ts");
        j.w().Int64(rec.ts_ms);
        j.kv("from", Sid(rec.sender));
        if (!rec.user.empty()) j.kv("user", rec.user);
        j.key("data");
        j.raw(rec.data());
        j.w().EndObject();
      };
      if (rm && after)
        rm->history().since(*after, item);
      else if (rm)
        rm->history().newest_first(off, lim, item);
      j.w().EndArray();
      j.w().EndObject();
      return std::string(j.text());
    };
    // A room that does not exist has nothing to show, and asking must not create it: nothing
    // about it can be in flight (a join, publish or query would hold it), so answer at once.
    auto& reg = hubs_.rooms();
    // In a cluster the room may have content on other nodes: the query loads it from Redis.
    hub::RoomRef ref(&reg, hubs_.cluster() ? reg.acquire(*room) : reg.find(*room));
    if (!ref) return s.send_text(history_json(nullptr));
    uint64_t me = s.id();
    hub.query(
        ref.get(), [history_json](hub::SharedRoom& rm) { return history_json(&rm); },
        [&hub, me](std::string json) {
          if (Session* t = hub.worker().find_session(me); t && t->open()) t->send_text(json);
        });
  } else if (r.op == "presence") {
    auto room = room_arg();
    if (!room) return;
    std::string id_json = id ? to_json(*id) : std::string();
    std::string room_name(*room);
    auto presence_json = [id_json, room_name](const hub::SharedRoom* rm) {
      JsonFrame j;
      j.w().StartObject();
      j.kv("type", "presence");
      if (!id_json.empty()) {
        j.key("id");
        j.raw(id_json);
      }
      j.kv("room", room_name);
      j.key("members");
      j.w().StartArray();
      if (rm)
        for (const auto& m : rm->presence()) write_identity(j, m.session, m.identity);
      j.w().EndArray();
      j.w().EndObject();
      return std::string(j.text());
    };
    auto& reg = hubs_.rooms();
    hub::RoomRef ref(&reg, hubs_.cluster() ? reg.acquire(*room) : reg.find(*room));
    if (!ref) return s.send_text(presence_json(nullptr));  // unknown: empty, and not created
    uint64_t me = s.id();
    hub.query(
        ref.get(), [presence_json](hub::SharedRoom& rm) { return presence_json(&rm); },
        [&hub, me](std::string json) {
          if (Session* t = hub.worker().find_session(me); t && t->open()) t->send_text(json);
        });
  } else if (r.op == "state.set" || r.op == "state.del") {
    auto room = room_arg();
    if (!room) return;
    auto key = r.string("key");
    if (!key || key->empty() || key->size() > 256)
      return send_error(s, id, "bad_request", "\"key\" must be a string of 1-256 bytes");
    bool set = r.op == "state.set";
    const Value* value = r.get("value");
    if (set && !value) return send_error(s, id, "bad_request", "missing field \"value\"");
    hub::SharedRoom* rm = joined(*room);
    if (!rm) return;
    std::optional<std::string> v;
    if (set) v = to_json(*value);
    engine::FrameRef ok, fail, refused, too_large;
    if (id) ok = engine::FrameRef(simple_frame("ack", id));
    // In a cluster any change can be refused (Redis unreachable): the same answer.
    if (hubs_.store().persistent(*rm) || hubs_.cluster()) fail = store_failed_frame(id);
    hub::StateOptions opts;
    opts.reply_ok = ok.get();
    opts.reply_fail = fail.get();
    if (set) {
      // [hub] max_state_keys and max_state_value_bytes, judged on the room's home core in order
      // with every other write of the room (exact across cores).
      const size_t max_keys = hubs_.max_state_keys();
      const size_t max_bytes = hubs_.max_state_value_bytes();
      opts.max_keys = static_cast<uint32_t>(std::min<size_t>(max_keys, UINT32_MAX));
      opts.max_value_bytes = max_bytes;
      refused = state_limit_frame(id, "the room holds the maximum of " + std::to_string(max_keys) +
                                          " state keys ([hub] max_state_keys); delete one first "
                                          "(the key was not set)");
      opts.reply_refused = refused.get();
      if (v->size() > max_bytes) {
        too_large = state_limit_frame(
            id, "the value is " + std::to_string(v->size()) + " bytes of JSON, more than the " +
                    std::to_string(max_bytes) + " allowed ([hub] max_state_value_bytes); not set");
        opts.reply_too_large = too_large.get();
      }
    }
    hub.set_state(s, rm, std::string_view(*key),
                  v ? std::optional<std::string_view>(*v) : std::nullopt, state_event, opts);
  } else if (r.op == "register") {
    auto name = r.string("name");
    if (!name || name->empty() || name->size() > 128)
      return send_error(s, id, "bad_request", "\"name\" must be a string of 1-128 bytes");
    // Endpoint names reach every peer that attaches.
    if (!is_display_safe(*name))
      return send_error(s, id, "bad_request", "\"name\" " + std::string(kDisplayNameRule));
    endpoint_register(s, id, *name);
  } else if (r.op == "attach") {
    auto name = r.string("name");
    if (!name) return send_error(s, id, "bad_request", "missing string field \"name\"");
    endpoint_attach(s, id, *name);
  } else if (r.op == "relay") {
    const Value* data = r.get("data");
    if (!data) return send_error(s, id, "bad_request", "missing field \"data\"");
    const Value* name_value = r.get("name");
    if (name_value && !name_value->IsString()) {
      return send_error(s, id, "bad_request", "\"name\" must be a string");
    }
    const Value* to = r.get("to");
    if (to && !parse_sid(*to))
      return send_error(s, id, "bad_request", "\"to\" must be a session id");
    endpoint_relay(s, id, *data, r.string("name"), to ? parse_sid(*to) : std::optional<uint64_t>());
  } else {
    send_error(s, id, "unknown_op", "unknown op");
  }
}

std::string_view NativeProfile::user_id(const Session& s) const {
  const auto* st = static_cast<const NativeState*>(s.user);
  return st && st->authed ? std::string_view(st->identity.user_id) : std::string_view();
}

engine::SharedFrame* NativeProfile::message_event(const hub::SharedRoom& room,
                                                  const hub::HistoryRecord& rec) {
  return profiles::message_event(room, rec);
}

}  // namespace ringcast::profiles

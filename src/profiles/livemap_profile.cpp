#include "ringcast/profiles/livemap_profile.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>

#include "ringcast/profiles/display_name.h"
#include "ringcast/profiles/json_arena.h"
#include "ringcast/profiles/json_depth.h"
#include "ringcast/profiles/json_frame.h"
#include "ringcast/profiles/json_peek.h"
#include "ringcast/profiles/json_zero_exponent.h"
#include "ringcast/profiles/python_json.h"
#include "ringcast/websocket/close_code.h"
#include "ringcast/websocket/frame_encoder.h"
#include "ringcast/websocket/session.h"

namespace ringcast::profiles {

using rapidjson::Value;
using websocket::Session;

namespace {

constexpr std::string_view kMarkerPrefix = "m:";
constexpr std::string_view kPositionPrefix = "p:";

// The stored marker: the dict json.loads makes of the client's object (a repeated key once, at its
// first position, with its last value), with "id" set (in place if the client sent one, else last).
std::string_view marker_json(const Value& marker, std::string_view id) {
  thread_local rapidjson::StringBuffer buf;
  buf.Clear();
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  bool wrote_id = false;
  py_for_each_member(marker, [&](std::string_view name, const Value& value) {
    w.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
    if (name == "id") {
      wrote_id = true;
      w.String(id.data(), static_cast<rapidjson::SizeType>(id.size()));
    } else {
      value.Accept(w);
    }
  });
  if (!wrote_id) {
    w.Key("id", 2);
    w.String(id.data(), static_cast<rapidjson::SizeType>(id.size()));
  }
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

// A name other clients are shown (a player's or chat sender's `username`): absent or not a string
// is the seed's business; a string must be safe to display.
bool safe_username(const Value& obj) {
  const Value* name = py_get(obj, "username");
  return !name || !name->IsString() ||
         is_display_safe({name->GetString(), name->GetStringLength()});
}

engine::SharedFrame* error_frame(std::string_view message) {
  JsonFrame j;
  j.w().StartObject();
  j.kv("type", "error");
  j.kv("message", message);
  j.w().EndObject();
  return j.frame();
}

// On the room's home core, for a joiner: the markers, then the positions, each in insertion
// order, each only if there is any. (The hub reuses the frames while the state is unchanged.)
void snapshot(const hub::SharedRoom& room, std::vector<engine::FrameRef>& out) {
  const hub::RetainedState& state = room.state();
  if (state.empty()) return;
  auto list = [&](std::string_view type, std::string_view field, std::string_view prefix) {
    JsonFrame j;
    size_t n = 0;
    j.w().StartObject();
    j.kv("type", type);
    j.key(field);
    j.w().StartArray();
    state.for_each([&](std::string_view key, std::string_view value) {
      if (!key.starts_with(prefix)) return;
      j.raw(value);
      ++n;
    });
    j.w().EndArray();
    j.w().EndObject();
    if (n) out.emplace_back(j.frame());
  };
  list("markers_sync", "markers", kMarkerPrefix);
  list("positions_sync", "positions", kPositionPrefix);
}

}  // namespace

LivemapProfile::LivemapProfile(hub::HubSystem& hubs, LivemapLimits limits)
    : hubs_(hubs), limits_(limits) {
  room_ = hub::RoomRef(&hubs.rooms(), hubs.rooms().acquire(kRoom, false));
  // In a cluster a write can be refused too (Redis unreachable): the same answer.
  persistent_ = hubs.store().persistent(*room_.get()) || hubs.cluster();
  // The limits are fixed for the life of the profile: their refusals are encoded once.
  markers_full_ = engine::FrameRef(error_frame(
      "marker_add: the map already holds the maximum of " + std::to_string(limits_.max_markers) +
      " markers; remove one first (the marker was not added)"));
  positions_full_ = engine::FrameRef(
      error_frame("position_update: the map already holds the maximum of " +
                  std::to_string(limits_.max_positions) +
                  " player positions; a new player's position is not stored or sent"));
}

LivemapProfile::~LivemapProfile() = default;

// Direct: no message is handled before the connection's join is in effect (Hub::join holds its
// input), so the sync messages are already on their way ahead of any reply.
void LivemapProfile::reply(Session& s, engine::SharedFrame* frame) {
  s.send_frame(frame);
}

void LivemapProfile::on_open(Session& s, const websocket::HttpRequest&) {
  hub::JoinOptions opts;
  opts.snapshot = snapshot;
  // Runs on this session's core once the join is in effect: the sync messages come before any
  // event of the room that the snapshot does not already contain.
  hubs_.hub_of(s).join(s, kRoom, std::move(opts), [](Session& js, hub::JoinResult& res) {
    Session::SnapshotScope snapshot(js);  // the map a joiner must get, not slow-consumer backlog
    for (const auto& f : res.snapshot) js.send_frame(f.get());
  });
}

void LivemapProfile::on_close(Session& s) {
  hubs_.hub_of(s).session_closed(s);
}

// Writes of one kind while earlier ones are being committed or answered (a refusal comes from the
// room's home core): ordered behind them there, so they need not wait. Markers wait for their
// commit but positions are written behind, so a position must not pass a marker (or the other way
// round): each kind has its own key (the hub's, see Hub::hold_for_write). Anything else (a ping,
// chat) waits, so that its reply or effect cannot overtake theirs.
const void* LivemapProfile::order_key(Session&, websocket::Opcode,
                                      std::span<const uint8_t> payload) {
  std::string_view type = JsonPeek(payload).string("type");
  if (type == "marker_add" || type == "marker_remove") return room_.get();
  if (type == "position_update") return &room_->state();
  return nullptr;
}

void LivemapProfile::on_message(Session& s, websocket::Opcode op, std::span<uint8_t> payload) {
  if (nested_deeper_than({reinterpret_cast<const char*>(payload.data()), payload.size()},
                         kMaxDepth)) {
    s.close(websocket::kClosePolicyViolation, "JSON nested too deeply");
    return;
  }
  // The in-situ parse needs a NUL after the text and rewrites strings: it works on a per-thread
  // copy (no allocation once warm), so the original bytes stay available for forwarding.
  thread_local std::string text;
  text.assign(reinterpret_cast<const char*>(payload.data()), payload.size());
  zero_exponents_of_zeros(text.data(), text.size());  // 0e196 is 0.0, as Python reads it
  JsonArena& mem = json_arena();
  ArenaDocument doc(&mem.value_alloc, sizeof(JsonArena::stack), &mem.stack_alloc);
  constexpr unsigned kFlags = rapidjson::kParseFullPrecisionFlag | rapidjson::kParseIterativeFlag;
  if (op == websocket::Opcode::kBinary)  // text frames were checked for UTF-8 already
    doc.ParseInsitu<kFlags | rapidjson::kParseValidateEncodingFlag>(text.data());
  else
    doc.ParseInsitu<kFlags>(text.data());
  if (doc.HasParseError()) {
    s.close(websocket::kCloseInvalidPayload, "message is not JSON");
    return;
  }
  if (!doc.IsObject()) {
    s.close(websocket::kCloseUnsupportedData, "message must be a JSON object");
    return;
  }
  const Value* type_value = py_get(doc, "type");
  if (!type_value || !type_value->IsString()) return;  // no type: ignored
  std::string_view type(type_value->GetString(), type_value->GetStringLength());
  hub::Hub& hub = hubs_.hub_of(s);
  auto original = [&] {  // the whole message as the client sent it, as a text frame
    return engine::FrameRef(websocket::encode_frame(websocket::Opcode::kText, payload));
  };

  if (type == "position_update") {
    const Value* player = py_get(doc, "player");
    if (!player) return;  // defaults to {}: no user_id, nothing stored or sent
    if (!player->IsObject()) {
      s.close(websocket::kClosePolicyViolation, "position_update: \"player\" must be an object");
      return;
    }
    const Value* uid = py_get(*player, "user_id");
    if (!py_truthy(uid)) return;
    if (!safe_username(*player)) {
      engine::FrameRef f(error_frame("position_update: \"username\" " +
                                     std::string(kDisplayNameRule) + "; not stored or sent"));
      return reply(s, f.get());
    }
    if (uid->IsObject() || uid->IsArray()) {
      s.close(websocket::kClosePolicyViolation,
              "position_update: \"user_id\" must be a string, number or boolean");
      return;
    }
    thread_local std::string key;
    key.assign(kPositionPrefix);
    append_py_key(key, *uid);
    std::string_view value = to_json_scratch(*player);
    engine::FrameRef event = original();  // encoded once, shared by every recipient
    hub::StateOptions opts;
    opts.echo = false;
    opts.write_behind = true;
    opts.event = event.get();
    // Bounded like the markers, so that positions_sync stays within 1 MiB (see the header).
    opts.max_keys = static_cast<uint32_t>(limits_.max_positions);
    opts.key_prefix = static_cast<uint16_t>(kPositionPrefix.size());
    opts.reply_refused = positions_full_.get();
    opts.max_value_bytes = limits_.max_position_bytes;
    engine::FrameRef too_large;
    if (value.size() > limits_.max_position_bytes) {
      too_large = engine::FrameRef(
          error_frame("position_update: the player record is " + std::to_string(value.size()) +
                      " bytes of JSON, more than the " +
                      std::to_string(limits_.max_position_bytes) + " allowed; not stored or sent"));
      opts.reply_too_large = too_large.get();
    }
    hub.set_state(s, room_.get(), key, value, nullptr, opts);
  } else if (type == "marker_add") {
    const Value* marker = py_get(doc, "marker");
    if (!marker || !marker->IsObject()) {
      s.close(websocket::kClosePolicyViolation, "marker_add: \"marker\" must be an object");
      return;
    }
    const Value* uid = py_get(*marker, "user_id");
    const Value* ts = py_get(*marker, "timestamp");
    if (!uid || !ts) {
      s.close(websocket::kClosePolicyViolation,
              "marker_add: the marker needs \"user_id\" and \"timestamp\"");
      return;
    }
    thread_local std::string id;
    id.clear();
    append_py_str(id, *uid);
    id.push_back('_');
    append_py_str(id, *ts);
    std::string_view value = marker_json(*marker, id);
    JsonFrame j;
    j.w().StartObject();
    j.kv("type", "marker_added");
    j.key("marker");
    j.raw(value);
    j.w().EndObject();
    // Bounded so that markers_sync stays within what a default client accepts (see the header):
    // the room's home core refuses a marker over max_marker_bytes, or a new id past max_markers.
    engine::FrameRef too_large;
    if (value.size() > limits_.max_marker_bytes) {
      too_large = engine::FrameRef(
          error_frame("marker_add: the marker is " + std::to_string(value.size()) +
                      " bytes of JSON, more than the " + std::to_string(limits_.max_marker_bytes) +
                      " allowed; it was not added"));
    }
    write_marker(s, id, value, engine::FrameRef(j.frame()),
                 "the marker could not be stored; it was not added", too_large.get());
  } else if (type == "marker_remove") {
    const Value* mid = py_get(doc, "marker_id");
    if (!mid || mid->IsObject() || mid->IsArray()) {
      s.close(websocket::kClosePolicyViolation, "marker_remove: \"marker_id\" must be a marker id");
      return;
    }
    if (!mid->IsString()) return;  // ids are strings: no such marker, nothing to do
    std::string_view id(mid->GetString(), mid->GetStringLength());
    JsonFrame j;
    j.w().StartObject();
    j.kv("type", "marker_removed");
    j.kv("marker_id", id);
    j.w().EndObject();
    // The event goes out only if the marker was there.
    write_marker(s, id, std::nullopt, engine::FrameRef(j.frame()),
                 "the marker could not be removed (store failure)");
  } else if (type == "chat_message") {
    if (!safe_username(doc)) {
      engine::FrameRef f(error_frame("chat_message: \"username\" " + std::string(kDisplayNameRule) +
                                     "; not sent"));
      return reply(s, f.get());
    }
    engine::FrameRef event = original();
    hub.broadcast(s, room_.get(), event.get(), false);
  } else if (type == "ping") {
    const Value* ts = py_get(doc, "timestamp");
    JsonFrame j;
    j.w().StartObject();
    j.kv("type", "pong");
    j.key("timestamp");
    if (ts)
      ts->Accept(j.w());
    else
      j.w().Null();
    j.w().EndObject();
    engine::FrameRef f(j.frame());
    reply(s, f.get());
  }
  // Any other type: ignored, the connection stays open.
}

// Sets (value) or deletes (nullopt) marker `id` in the room; `event` goes to everyone else once
// it is in effect. The sender gets `fail_text` as an error if the store refuses it, the
// max_markers error if the room's home core finds the map full, or `too_large` (if not null:
// the marker is over max_marker_bytes) in order with its other writes.
void LivemapProfile::write_marker(Session& s, std::string_view id,
                                  std::optional<std::string_view> value, engine::FrameRef event,
                                  const char* fail_text, engine::SharedFrame* too_large) {
  engine::FrameRef fail;
  if (persistent_) fail = engine::FrameRef(error_frame(fail_text));
  thread_local std::string key;
  key.assign(kMarkerPrefix);
  key.append(id);
  hub::StateOptions opts;
  opts.echo = false;
  opts.event = event.get();
  opts.reply_fail = fail.get();
  opts.max_keys = static_cast<uint32_t>(limits_.max_markers);
  opts.key_prefix = static_cast<uint16_t>(kMarkerPrefix.size());
  opts.reply_refused = markers_full_.get();
  opts.max_value_bytes = limits_.max_marker_bytes;
  opts.reply_too_large = too_large;
  hubs_.hub_of(s).set_state(s, room_.get(), key, value, nullptr, opts);
}

}  // namespace ringcast::profiles

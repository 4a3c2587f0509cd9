// The game chat (seed 003, docs/profiles/gamechat.md) on the hub. Rulings taken where the original
// service leaves a choice:
//  - login tokens: the [tokens] table first, then a JWT the [jwt] keys verify (RS256 with audience
//    heavenland-api is what the seed's real server took), then an HS256 JWT with
//    [profiles.gamechat] hs256_secret. Every token that none of them accepts, whatever its form
//    (not a string, not a JWT at all like "bad-token", bad signature, expired, ...), is
//    "the access token is expired or invalid", as the seed's PyJWT answered (its DecodeError is an
//    InvalidTokenError). "error parsing the access token" was the seed's answer to an unusable
//    verification key, which ringcast refuses when it loads the keys. An empty table nickname is
//    null.
//  - username + password: there is no password backend, so always "invalid credentials".
//  - after the login the session joins the hub room kRoom; {"info": "connected"} is sent once that
//    join is in effect, so every message sequenced after it reaches the session. Frames that
//    arrive meanwhile wait (reading is paused) and are handled right after it, in order.
//  - text that is not JSON, JSON that is not an object, and JSON nested deeper than kMaxJsonDepth
//  get
//    {"error": "invalid JSON..."}; a binary frame gets {"error": "binary frames are not
//    supported..."}. The connection stays open in every case (the real server dropped it).
//  - `channel` other than a string becomes the text Python's str() gives it (5 -> "5",
//    2.5 -> "2.5", true -> "True", [1, "a"] -> "[1, 'a']").
//  - a repeated key counts once, with its last value, at its first position (Python's json).
//  - a JWT whose `sub` or `nickname` holds control or bidi formatting characters is refused with
//    an {"error": ...} reply (everyone would be shown them).
//  - history: `limit` absent = 10, an integer <= 0 = everything kept, anything else (null, a
//    fraction, a string, a boolean) is an error reply; `offset` (absent or null = 0) skips the
//    newest messages and must be a non-negative integer.
#include "ringcast/profiles/gamechat_profile.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "ringcast/hub/formatter_names.h"
#include "ringcast/profiles/display_name.h"
#include "ringcast/profiles/json_arena.h"
#include "ringcast/profiles/json_depth.h"
#include "ringcast/profiles/json_frame.h"
#include "ringcast/profiles/json_peek.h"
#include "ringcast/profiles/python_json.h"
#include "ringcast/websocket/frame_encoder.h"
#include "ringcast/websocket/session.h"
#include "ringcast/websocket/worker.h"

namespace ringcast::profiles {

using rapidjson::Value;
using websocket::Session;

namespace {

// Replies, in the real server's json.dumps spacing.
constexpr std::string_view kConnected = R"({"info": "connected"})";
constexpr std::string_view kAuthenticateFirst = R"({"error": "you need to authenticate first"})";
constexpr std::string_view kNoCredentials =
    R"({"error": "username and password or token have to be provided with action of type login"})";
constexpr std::string_view kInvalidCredentials = R"({"error": "invalid credentials"})";
constexpr std::string_view kTokenInvalid = R"({"error": "the access token is expired or invalid"})";
constexpr std::string_view kInvalidJson = R"({"error": "invalid JSON"})";
constexpr std::string_view kNotAnObject =
    R"({"error": "invalid JSON: a message must be a JSON object"})";
constexpr std::string_view kTooDeep = R"({"error": "invalid JSON: nested too deeply"})";
constexpr std::string_view kBinary =
    R"({"error": "binary frames are not supported: send JSON objects as text"})";
constexpr std::string_view kBadLimit = R"({"error": "limit must be an integer"})";
constexpr std::string_view kBadOffset = R"({"error": "offset must be a non-negative integer"})";
constexpr std::string_view kUnsafeIdentity =
    R"({"error": "the access token's user id or nickname must not contain control characters or )"
    R"(bidirectional formatting characters"})";
constexpr std::string_view kStoreFailed =
    R"({"error": "the message could not be stored, so it was not sent"})";

struct GamechatState {
  enum class Phase : uint8_t { kAnon, kJoining, kIn };
  Phase phase = Phase::kAnon;
  bool has_nickname = false;
  bool persistent = false;          // the room's messages go through the durable store
  hub::SharedRoom* room = nullptr;  // once in: the hub's membership holds the reference
  std::string user_id;
  std::string nickname;
  // Frames that arrived while the join was in flight: (binary, bytes), handled once it is in.
  std::vector<std::pair<bool, std::string>> pending;
};

GamechatState* state_of(Session& s) {
  return static_cast<GamechatState*>(s.user);
}

int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string_view name_of(const Value& v) {
  return {v.GetString(), v.GetStringLength()};
}

// `channel` as the real server's str() leaves it.
void write_channel(JsonFrame& j, const Value& v) {
  thread_local std::string text;
  text.clear();
  append_py_str(text, v);
  j.str(text);
}

// The broadcast and the history record are the same bytes: the chat object as a text frame.
engine::SharedFrame* chat_event(const hub::SharedRoom&, const hub::HistoryRecord& rec) {
  return websocket::encode_frame(websocket::Opcode::kText, rec.data());
}

// Cluster nodes format each other's events by name (hub/formatter_names.h).
const bool kFormattersNamed = [] {
  hub::name_formatter(chat_event, "gamechat.chat");
  return true;
}();

}  // namespace

struct GamechatProfile::Request {
  JsonArena& mem = json_arena();
  ArenaDocument doc{&mem.value_alloc, sizeof(JsonArena::stack), &mem.stack_alloc};
};

GamechatProfile::GamechatProfile(hub::HubSystem& hubs, const TokenTable& tokens,
                                 const JwtVerifierSlot& jwt,
                                 std::shared_ptr<const JwtVerifier> secret_jwt)
    : hubs_(hubs),
      tokens_(tokens),
      jwt_(jwt),
      secret_jwt_(std::move(secret_jwt)),
      store_failed_(websocket::encode_frame(websocket::Opcode::kText, kStoreFailed)),
      // Held for the profile's lifetime: the one chat exists whatever the room limit.
      room_(&hubs.rooms(), hubs.rooms().acquire(kRoom, false)) {}

GamechatProfile::~GamechatProfile() = default;

void GamechatProfile::on_open(Session& s, const websocket::HttpRequest&) {
  s.user = new GamechatState();
}

void GamechatProfile::on_close(Session& s) {
  auto* st = state_of(s);
  if (!st) return;
  hubs_.hub_of(s).session_closed(s);
  delete st;
  s.user = nullptr;
}

void GamechatProfile::on_message(Session& s, websocket::Opcode op, std::span<uint8_t> payload) {
  GamechatState* st = state_of(s);
  if (!st) return;
  if (st->phase == GamechatState::Phase::kJoining) {
    st->pending.emplace_back(
        op == websocket::Opcode::kBinary,
        std::string(reinterpret_cast<const char*>(payload.data()), payload.size()));
    return;
  }
  if (op == websocket::Opcode::kBinary) {
    s.send_text(kBinary);
    return;
  }
  handle_text(s, payload);
}

// A chat message while earlier ones are being committed: it too only publishes to the chat room,
// where it is ordered behind them, so it need not wait (pipelined messages are not one commit
// each). Anything else waits.
const void* GamechatProfile::order_key(Session& s, websocket::Opcode op,
                                       std::span<const uint8_t> payload) {
  GamechatState* st = state_of(s);
  if (!st || st->phase != GamechatState::Phase::kIn || !st->room || op != websocket::Opcode::kText)
    return nullptr;
  return JsonPeek(payload).string("action") == "message" ? st->room : nullptr;
}

void GamechatProfile::handle_text(Session& s, std::span<const uint8_t> payload) {
  GamechatState& st = *state_of(s);
  // The in-situ parser needs a NUL after the text, and the payload may sit in the frame reader's
  // buffer right before the next frame: copy once into a per-thread buffer (no allocation once
  // warm) and decode strings in place there.
  thread_local std::string text;
  text.assign(reinterpret_cast<const char*>(payload.data()), payload.size());
  if (nested_deeper_than(text)) {
    s.send_text(kTooDeep);
    return;
  }
  Request r;
  r.doc.ParseInsitu<rapidjson::kParseIterativeFlag>(text.data());
  if (text.empty() || r.doc.HasParseError()) {
    s.send_text(kInvalidJson);
    return;
  }
  if (!r.doc.IsObject()) {
    s.send_text(kNotAnObject);
    return;
  }
  const Value* action = py_get(r.doc, "action");
  auto is = [action](std::string_view name) {
    return action && action->IsString() && name_of(*action) == name;
  };
  if (st.phase == GamechatState::Phase::kAnon) {
    if (is("login"))
      login(s, r);
    else
      s.send_text(kAuthenticateFirst);
    return;
  }
  // Logged in: a second login and unknown actions are ignored without a reply.
  if (is("message"))
    chat(s, r);
  else if (is("history"))
    history(s, r);
}

void GamechatProfile::login(Session& s, Request& r) {
  GamechatState& st = *state_of(s);
  const Value* token = py_get(r.doc, "token");
  const bool credentials =
      py_truthy(py_get(r.doc, "username")) && py_truthy(py_get(r.doc, "password"));
  if (!py_truthy(token)) {
    // The real server reports the missing fields, then still tries a credential login (which
    // fails): one or two errors. Without a password backend that login always fails here.
    if (!credentials) s.send_text(kNoCredentials);
    s.send_text(kInvalidCredentials);
    return;
  }
  if (!token->IsString()) {
    s.send_text(kTokenInvalid);
    return;
  }
  std::string_view tok = name_of(*token);
  if (auto id = tokens_.lookup(tok)) {
    st.user_id = id->user_id;
    st.has_nickname = !id->nickname.empty();
    st.nickname = id->nickname;
  } else {
    JwtClaims claims;
    const int64_t now = now_seconds();
    auto accepts = [&](const JwtVerifier* v) {
      return v && v->verify(tok, now, claims) == JwtResult::kOk;
    };
    std::shared_ptr<const JwtVerifier> jwt = jwt_.get();
    if (!accepts(jwt.get()) && !accepts(secret_jwt_.get())) {
      s.send_text(kTokenInvalid);
      return;
    }
    // Both are shown to everyone in the chat. (Table tokens are checked when the config is read.)
    if (!is_display_safe(claims.sub) || (claims.nickname && !is_display_safe(*claims.nickname))) {
      s.send_text(kUnsafeIdentity);
      return;
    }
    st.user_id = std::move(claims.sub);
    st.has_nickname = claims.nickname.has_value();
    st.nickname = claims.nickname.value_or(std::string());
  }
  st.phase = GamechatState::Phase::kJoining;
  hub::JoinOptions opts;
  opts.identity.user_id = st.user_id;
  opts.identity.nickname = st.nickname;
  // Until the join is in effect, frames wait: reading pauses, and what was already read is kept.
  s.hold_input();
  // The room itself is held by the profile (room_), so the room limit never refuses this join.
  if (hubs_.hub_of(s).join(s, kRoom, std::move(opts), [this](Session& js, hub::JoinResult&) {
        joined(js);
      }) != hub::JoinStatus::kJoined) {
    joined(s);  // already a member (cannot happen from kAnon, but never leave it hanging)
  }
}

void GamechatProfile::joined(Session& s) {
  GamechatState* st = state_of(s);
  if (!st || st->phase != GamechatState::Phase::kJoining) return;
  hub::Hub& hub = hubs_.hub_of(s);
  st->phase = GamechatState::Phase::kIn;
  st->room = hub.joined_room(s, kRoom);
  // In a cluster a message can be refused too (Redis unreachable): the same answer.
  st->persistent = st->room && (hubs_.store().persistent(*st->room) || hubs_.cluster());
  s.send_text(kConnected);
  s.release_input();
  auto pending = std::move(st->pending);
  st->pending.clear();
  for (auto& [binary, bytes] : pending) {
    if (!s.open() || s.user != st) break;
    on_message(s, binary ? websocket::Opcode::kBinary : websocket::Opcode::kText,
               {reinterpret_cast<uint8_t*>(bytes.data()), bytes.size()});
  }
}

void GamechatProfile::chat(Session& s, Request& r) {
  GamechatState& st = *state_of(s);
  if (!st.room) return;
  JsonFrame j;
  auto& w = j.w();
  w.StartObject();
  j.kv("user_id", st.user_id);
  j.key("timestamp");
  w.Int64(now_seconds());
  py_for_each_member(r.doc, [&](std::string_view name, const Value& v) {
    // The server's user_id, timestamp and nickname win over the client's.
    if (name == "action" || name == "user_id" || name == "timestamp" || name == "nickname") return;
    j.key(name);
    if (name == "channel" && !v.IsNull())
      write_channel(j, v);
    else
      v.Accept(w);
  });
  j.key("nickname");
  if (st.has_nickname)
    j.str(st.nickname);
  else
    w.Null();
  w.EndObject();
  std::string_view chat = j.text();
  // To every logged-in session, the sender included; recorded as exactly these bytes. With a
  // durable room nobody sees it before it is committed, and a refused write reaches only the
  // sender, as an error.
  hubs_.hub_of(s).publish(s, st.room, {reinterpret_cast<const uint8_t*>(chat.data()), chat.size()},
                          st.user_id, chat_event, true, true, nullptr,
                          st.persistent ? store_failed_.get() : nullptr);
}

void GamechatProfile::history(Session& s, Request& r) {
  GamechatState& st = *state_of(s);
  if (!st.room) return;
  size_t limit = kDefaultHistoryLimit;
  if (const Value* v = py_get(r.doc, "limit")) {
    if (v->IsInt64())
      limit = v->GetInt64() <= 0 ? SIZE_MAX : static_cast<size_t>(v->GetInt64());
    else if (v->IsUint64())
      limit = SIZE_MAX;
    else
      return s.send_text(kBadLimit);
  }
  size_t offset = 0;
  if (const Value* v = py_get(r.doc, "offset"); v && !v->IsNull()) {
    if (v->IsInt64() && v->GetInt64() >= 0)
      offset = static_cast<size_t>(v->GetInt64());
    else if (v->IsUint64())
      offset = SIZE_MAX;
    else
      return s.send_text(kBadOffset);
  }
  hub::Hub& hub = hubs_.hub_of(s);
  uint64_t me = s.id();
  // Read on the room's home core, which owns its history.
  hub.query(
      st.room,
      [limit, offset](hub::SharedRoom& room) {
        const hub::HistoryRing& h = room.history();
        size_t off = std::min(offset, h.size());
        size_t lim = std::min(limit, h.size() - off);
        JsonFrame j;
        j.w().StartObject();
        j.key("history");
        j.w().StartArray();
        h.newest_first(off, lim, [&j](const hub::HistoryRecord& rec) { j.raw(rec.data()); });
        j.w().EndArray();
        j.w().EndObject();
        return std::string(j.text());
      },
      [&hub, me](std::string json) {
        if (Session* t = hub.worker().find_session(me); t && t->open()) t->send_text(json);
      });
}

std::string_view GamechatProfile::user_id(const Session& s) const {
  const auto* st = static_cast<const GamechatState*>(s.user);
  return st && st->phase != GamechatState::Phase::kAnon ? std::string_view(st->user_id)
                                                        : std::string_view();
}

}  // namespace ringcast::profiles

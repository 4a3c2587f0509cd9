// The native profile's private parts, shared by native_profile.cpp (the protocol) and
// native_endpoints.cpp (register / attach / relay, on one node and across a cluster).
#pragma once

#include <rapidjson/document.h>

#include <charconv>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ringcast/hub/room.h"
#include "ringcast/profiles/json_frame.h"
#include "ringcast/websocket/session.h"

namespace ringcast::profiles::native_detail {

using rapidjson::Value;
using websocket::Session;

struct NativeState {
  hub::Identity identity;
  bool authed = false;
  bool jwt_login = false;          // authed with a JWT: `refresh` renews it, and it expires
  std::vector<std::string> owned;  // endpoint names this session registered
  std::vector<std::pair<std::string, uint64_t>> attached;  // endpoint name -> owner session
  std::string binary_room;  // last joined room: where binary frames go
  // Cluster: the endpoint call in flight ('r' register, 'a' attach; 0 none), its request's id
  // (as JSON; empty: none) and name. The session's input is held until it is answered.
  char pending = 0;
  std::string pending_id, pending_name;
};

inline NativeState& state_of(Session& s) {
  return *static_cast<NativeState*>(s.user);
}

// Session ids as JSON strings, formatted on the stack (no allocation on the message path).
struct Sid {
  char buf[24];
  size_t len;
  explicit Sid(uint64_t id) {
    auto r = std::to_chars(buf, buf + sizeof buf, id);
    len = static_cast<size_t>(r.ptr - buf);
  }
  operator std::string_view() const { return {buf, len}; }
};

inline std::optional<uint64_t> parse_sid(const Value& v) {
  // Ids exceed 2^53, so they are strings on the wire, never numbers.
  if (!v.IsString()) return std::nullopt;
  uint64_t out = 0;
  const char* b = v.GetString();
  const char* e = b + v.GetStringLength();
  auto [p, ec] = std::from_chars(b, e, out);
  if (ec != std::errc() || p != e) return std::nullopt;
  return out;
}

inline void write_id(JsonFrame& j, const Value* id) {
  if (!id) return;
  j.key("id");
  id->Accept(j.w());
}

inline void send_error(Session& s, const Value* id, std::string_view code,
                       std::string_view message) {
  JsonFrame j;
  j.w().StartObject();
  j.kv("type", "error");
  write_id(j, id);
  j.kv("code", code);
  j.kv("message", message);
  j.w().EndObject();
  engine::FrameRef f(j.frame());
  s.send_frame(f.get());
}

// {"type": type, "id": ..., extra...}
template <typename Fn>
inline void reply(Session& s, const Value* id, std::string_view type, Fn&& extra) {
  JsonFrame j;
  j.w().StartObject();
  j.kv("type", type);
  write_id(j, id);
  extra(j);
  j.w().EndObject();
  engine::FrameRef f(j.frame());
  s.send_frame(f.get());
}

inline engine::FrameRef store_failed_frame(const Value* id) {
  JsonFrame j;
  j.w().StartObject();
  j.kv("type", "error");
  write_id(j, id);
  j.kv("code", "store_failed");
  j.kv("message", "the change could not be stored; nothing was delivered");
  j.w().EndObject();
  return engine::FrameRef(j.frame());
}

}  // namespace ringcast::profiles::native_detail

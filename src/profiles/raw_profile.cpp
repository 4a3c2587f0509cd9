#include "ringcast/profiles/raw_profile.h"

#include "ringcast/profiles/display_name.h"
#include "ringcast/profiles/relay_pacing.h"
#include "ringcast/profiles/reserved_rooms.h"
#include "ringcast/websocket/close_code.h"
#include "ringcast/websocket/frame_encoder.h"

namespace ringcast::profiles {

namespace {
struct RawState {
  hub::SharedRoom* room;  // the hub's membership holds the reference
  bool echo;
};
}  // namespace

void RawProfile::on_open(websocket::Session& s, const websocket::HttpRequest& req) {
  std::string_view name = req.path.substr(kPrefix.size());
  if (name.empty() || name.size() > kMaxRoomName) {
    s.close(websocket::kClosePolicyViolation, "room name must be 1-256 bytes");
    return;
  }
  // The path is not percent-decoded: these are the bytes as sent (the HTTP parser already refused
  // C0 controls and DEL; UTF-8 bidi controls and C1 would otherwise pass).
  if (!is_display_safe(name)) {
    s.close(websocket::kClosePolicyViolation,
            "room name must not contain control or bidi characters");
    return;
  }
  if (reserved_room_name(name)) {
    s.close(websocket::kClosePolicyViolation, "room belongs to a seed profile");
    return;
  }
  auto echo = websocket::query_param(req.query, "echo");
  hub::Hub& hub = hubs_.hub_of(s);
  hub::RoomRef room = hub.join_direct(s, name);
  if (!room) {
    // The room would be new and [hub] max_rooms rooms exist. The 101 is already on its way, so
    // the refusal is a close (policy: the server's room budget), not an HTTP status.
    s.close(websocket::kClosePolicyViolation, "room limit reached");
    return;
  }
  s.user = new RawState{room.get(), !(echo && (*echo == "0" || *echo == "false"))};
}

void RawProfile::on_message(websocket::Session& s, websocket::Opcode op,
                            std::span<uint8_t> payload) {
  auto* st = static_cast<RawState*>(s.user);
  if (!st) return;
  engine::SharedFrame* frame = websocket::encode_frame(op, payload);  // once, for every recipient
  pace_room(s, frame);
  hubs_.hub_of(s).fanout_direct(st->room, frame, st->echo ? 0 : s.id(), &s);
  frame->release();
}

void RawProfile::on_close(websocket::Session& s) {
  hubs_.hub_of(s).session_closed(s);
  delete static_cast<RawState*>(s.user);
  s.user = nullptr;
}

}  // namespace ringcast::profiles

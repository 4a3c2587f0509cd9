// /map: the Arma Reforger Live Map's WebSocket protocol (seed 002, ../shared/protocols/SEEDS.md
// section 3). Markers and player positions are retained state of one sequenced hub room
// ("livemap:map", keys "m:<marker id>" and "p:<user id>"), kept in insertion order and durable
// when [profiles.livemap] persistent is set. A new session gets markers_sync and positions_sync
// (when non-empty) from the room's home core, ordered with every change; changes, forwarded
// position updates and chat go to every member but the sender through the same home core.
//
// Durability: a marker add/remove under strict durability reaches others only after its group
// commit (a failed write gets {"type":"error","message":...} and reaches nobody). Position updates
// are a high-rate last-value-wins stream: delivered at once and stored behind (a crash can lose
// the last few positions, never a marker).
#pragma once

#include <optional>
#include <string_view>

#include "ringcast/hub/hub.h"
#include "ringcast/websocket/message_handler.h"

namespace ringcast::profiles {

class LivemapProfile final : public websocket::MessageHandler {
 public:
  static constexpr std::string_view kRoom = "livemap:map";
  static constexpr size_t kMaxDepth = 256;  // JSON nesting refused beyond this (close 1008)

  explicit LivemapProfile(hub::HubSystem& hubs);
  void on_open(websocket::Session& s, const websocket::HttpRequest& req) override;
  void on_message(websocket::Session& s, websocket::Opcode op, std::span<uint8_t> payload) override;
  void on_close(websocket::Session& s) override;

 private:
  void write_marker(websocket::Session& s, std::string_view id,
                    std::optional<std::string_view> value, engine::FrameRef event,
                    const char* fail_text);
  hub::HubSystem& hubs_;
  hub::RoomRef room_;        // the room every session joins; all state lives in it
  bool persistent_ = false;  // the room is in the durable store (its writes can fail)
};

}  // namespace ringcast::profiles

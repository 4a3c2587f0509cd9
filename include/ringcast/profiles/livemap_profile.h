// /map: the Arma Reforger Live Map's WebSocket protocol (seed 002, docs/profiles/livemap.md).
// Markers and player positions are retained state of one sequenced hub room
// ("livemap:map", keys "m:<marker id>" and "p:<user id>"), kept in insertion order and durable
// when [profiles.livemap] persistent is set. A new session gets markers_sync and positions_sync
// (when non-empty) from the room's home core, ordered with every change; changes, forwarded
// position updates and chat go to every member but the sender through the same home core.
//
// Durability: a marker add/remove under strict durability reaches others only after its group
// commit (a failed write gets {"type":"error","message":...} and reaches nobody). Position updates
// are a high-rate last-value-wins stream: delivered at once and stored behind (a crash can lose
// the last few positions, never a marker).
//
// Bounded state: a new client must accept markers_sync and positions_sync in one message each, and
// the seed's own clients (Python websockets) refuse messages above 1 MiB. marker_add is refused
// with an error reply when the stored marker would exceed max_marker_bytes of JSON or when a new
// id would exceed max_markers; position_update likewise with max_position_bytes and
// max_positions. The counts are exact: the hub checks them on the room's home core, where every
// write of the room is ordered (StateOptions::max_keys). The config check refuses limits whose
// fullest markers_sync or positions_sync could pass 1 MiB.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include "ringcast/hub/hub.h"
#include "ringcast/websocket/message_handler.h"

namespace ringcast::profiles {

struct LivemapLimits {
  size_t max_markers = 1000;        // distinct marker ids stored
  size_t max_marker_bytes = 1024;   // one stored marker, as JSON (its "id" included)
  size_t max_positions = 2000;      // distinct player user_ids stored
  size_t max_position_bytes = 512;  // one stored player record, as JSON
};

// markers_sync is {"type":"markers_sync","markers":[m1,m2,...]}: this envelope, each marker, and
// a comma between markers.
inline constexpr size_t kMarkersSyncEnvelopeBytes =
    sizeof(R"({"type":"markers_sync","markers":[]})") - 1;  // 36
// The largest markers_sync the limits allow, in bytes (the WebSocket payload).
constexpr size_t markers_sync_worst_case(size_t max_markers, size_t max_marker_bytes) {
  return kMarkersSyncEnvelopeBytes + max_markers * max_marker_bytes +
         (max_markers ? max_markers - 1 : 0);
}
// positions_sync is {"type":"positions_sync","positions":[p1,p2,...]}, built the same way.
inline constexpr size_t kPositionsSyncEnvelopeBytes =
    sizeof(R"({"type":"positions_sync","positions":[]})") - 1;  // 40
constexpr size_t positions_sync_worst_case(size_t max_positions, size_t max_position_bytes) {
  return kPositionsSyncEnvelopeBytes + max_positions * max_position_bytes +
         (max_positions ? max_positions - 1 : 0);
}
// What a default Python websockets client accepts in one message (its max_size).
inline constexpr size_t kMaxClientMessageBytes = 1 << 20;

class LivemapProfile final : public websocket::MessageHandler {
 public:
  static constexpr std::string_view kRoom = "livemap:map";
  static constexpr size_t kMaxDepth = 256;  // JSON nesting refused beyond this (close 1008)

  explicit LivemapProfile(hub::HubSystem& hubs, LivemapLimits limits = {});
  ~LivemapProfile() override;
  void on_open(websocket::Session& s, const websocket::HttpRequest& req) override;
  void on_message(websocket::Session& s, websocket::Opcode op, std::span<uint8_t> payload) override;
  const void* order_key(websocket::Session& s, websocket::Opcode op,
                        std::span<const uint8_t> payload) override;
  void on_close(websocket::Session& s) override;

 private:
  // To this session, never ahead of its sync messages.
  void reply(websocket::Session& s, engine::SharedFrame* frame);
  void write_marker(websocket::Session& s, std::string_view id,
                    std::optional<std::string_view> value, engine::FrameRef event,
                    const char* fail_text, engine::SharedFrame* too_large = nullptr);
  hub::HubSystem& hubs_;
  const LivemapLimits limits_;
  hub::RoomRef room_;                // the room every session joins; all state lives in it
  bool persistent_ = false;          // the room is in the durable store (its writes can fail)
  engine::FrameRef markers_full_;    // the max_markers refusal
  engine::FrameRef positions_full_;  // the max_positions refusal
};

}  // namespace ringcast::profiles

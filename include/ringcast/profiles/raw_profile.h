// /raw/<room>: every frame a client sends goes verbatim (same opcode) to every member of <room>,
// the sender included unless it connected with ?echo=0. What broadcast benchmarks drive, so it is
// the shortest path the hub has: one encode, one reference per member core.
#pragma once

#include "ringcast/hub/hub.h"
#include "ringcast/websocket/message_handler.h"

namespace ringcast::profiles {

class RawProfile final : public websocket::MessageHandler {
 public:
  static constexpr std::string_view kPrefix = "/raw/";
  static constexpr size_t kMaxRoomName = 256;

  explicit RawProfile(hub::HubSystem& hubs) : hubs_(hubs) {}
  void on_open(websocket::Session& s, const websocket::HttpRequest& req) override;
  void on_message(websocket::Session& s, websocket::Opcode op, std::span<uint8_t> payload) override;
  void on_close(websocket::Session& s) override;

 private:
  hub::HubSystem& hubs_;
};

}  // namespace ringcast::profiles

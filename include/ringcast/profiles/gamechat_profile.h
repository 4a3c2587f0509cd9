// /chat: the Heavenland in-game chat (seed 003). A connection logs in with a token (the [tokens]
// table, or an HS256 JWT when a secret is configured), then every chat message goes, as the seed's
// chat object, to every logged-in connection (the sender included) and into the one global
// history, which survives restarts when the profile is persistent. The wire protocol is
// docs/profiles/gamechat.md; the rulings this profile takes are in the .cpp.
#pragma once

#include <string>
#include <string_view>

#include "ringcast/engine/shared_frame.h"
#include "ringcast/hub/hub.h"
#include "ringcast/profiles/native_profile.h"
#include "ringcast/websocket/message_handler.h"

namespace ringcast::profiles {

class GamechatProfile final : public websocket::MessageHandler {
 public:
  // The one chat every logged-in connection shares (sequenced, persistent by prefix).
  static constexpr std::string_view kRoom = "gamechat:global";
  static constexpr int64_t kDefaultHistoryLimit = 10;

  GamechatProfile(hub::HubSystem& hubs, const TokenTable& tokens, std::string hs256_secret);
  ~GamechatProfile() override;

  void on_open(websocket::Session& s, const websocket::HttpRequest& req) override;
  void on_message(websocket::Session& s, websocket::Opcode op, std::span<uint8_t> payload) override;
  const void* order_key(websocket::Session& s, websocket::Opcode op,
                        std::span<const uint8_t> payload) override;
  void on_close(websocket::Session& s) override;
  std::string_view user_id(const websocket::Session& s) const override;

 private:
  struct Request;
  void handle_text(websocket::Session& s, std::span<const uint8_t> payload);
  void login(websocket::Session& s, Request& r);
  void chat(websocket::Session& s, Request& r);
  void history(websocket::Session& s, Request& r);
  void joined(websocket::Session& s);

  hub::HubSystem& hubs_;
  const TokenTable& tokens_;
  const std::string secret_;
  engine::FrameRef store_failed_;  // {"error": ...} for a message the store refused
  hub::RoomRef room_;
};

}  // namespace ringcast::profiles

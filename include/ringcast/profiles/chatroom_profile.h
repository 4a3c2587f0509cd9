// /chatroom and /chatroom/json: the Websocket-Chatroom seed (001). Clients send plain text; each
// connection gets a generated name, everyone sees who comes and goes, and a message starting with
// '!' is a command (!help, !about, !setname, !who, !env, !ping, and !pm in the JSON version).
// Two wire-incompatible versions, one instance each, in separate rooms:
//  - kText (the seed version): every frame is plain text; the sender gets nothing for its own chat.
//  - kJson (the project's later version): every frame is {"body","origin","sentAt"}; the sender
//    gets its own chat back (origin SELF) after everyone else (origin USER).
// Mapped onto the hub: one sequenced room per version whose presence list is the user list (in
// connection order, the identity's nickname is the name). Everything a session is sent because of
// what it did goes through the room's home core, so it arrives in the order of its requests.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ringcast/hub/hub.h"
#include "ringcast/websocket/message_handler.h"

namespace ringcast::profiles {

class ChatroomProfile final : public websocket::MessageHandler {
 public:
  enum class Variant : uint8_t { kText, kJson };
  static constexpr std::string_view kTextRoom = "chatroom:text";
  static constexpr std::string_view kJsonRoom = "chatroom:json";

  // env: what !env reports; max_chars: incoming messages are cut to this many code points.
  ChatroomProfile(hub::HubSystem& hubs, Variant variant, std::string env, size_t max_chars);

  void on_open(websocket::Session& s, const websocket::HttpRequest& req) override;
  void on_message(websocket::Session& s, websocket::Opcode op, std::span<uint8_t> payload) override;
  const void* order_key(websocket::Session& s, websocket::Opcode op,
                        std::span<const uint8_t> payload) override;
  void on_close(websocket::Session& s) override;
  void on_shutdown(websocket::Session& s) override;

 private:
  void command(websocket::Session& s, std::string_view text);
  // A SERVER reply to the sender only, in order with everything else it is sent.
  void reply(websocket::Session& s, std::string_view body);
  void send_ordered(websocket::Session& s, engine::FrameRef frame);
  void set_name(websocket::Session& s, std::string name);
  void private_message(websocket::Session& s, std::string_view args);

  hub::HubSystem& hubs_;
  const Variant variant_;
  const std::string env_;
  const size_t max_chars_;
  hub::RoomRef room_;  // held for the profile's lifetime: tasks may use the raw pointer
};

}  // namespace ringcast::profiles

// /ws: the native JSON protocol over every hub building block (rooms, presence, history, retained
// state, endpoints, direct sends). The reference is docs/native-protocol.md.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "ringcast/hub/hub.h"
#include "ringcast/websocket/message_handler.h"

namespace ringcast::profiles {

// Static login tokens (token -> identity), replaceable at run time (SIGHUP).
class TokenTable {
 public:
  void set(std::map<std::string, hub::Identity> tokens);
  std::optional<hub::Identity> lookup(std::string_view token) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, hub::Identity, std::less<>> tokens_;
};

class NativeProfile final : public websocket::MessageHandler {
 public:
  NativeProfile(hub::HubSystem& hubs, const TokenTable& tokens) : hubs_(hubs), tokens_(tokens) {}
  void on_open(websocket::Session& s, const websocket::HttpRequest& req) override;
  void on_message(websocket::Session& s, websocket::Opcode op, std::span<uint8_t> payload) override;
  const void* order_key(websocket::Session& s, websocket::Opcode op,
                        std::span<const uint8_t> payload) override;
  void on_close(websocket::Session& s) override;
  std::string_view user_id(const websocket::Session& s) const override;

  // A room message as members receive it ({"type":"message",...}); the server API publishes
  // into native rooms with it.
  static engine::SharedFrame* message_event(const hub::SharedRoom& room,
                                            const hub::HistoryRecord& rec);

  static constexpr size_t kMaxRoomName = 128;
  static constexpr size_t kMaxHistoryLimit = 1000;

 private:
  struct Request;
  void handle(websocket::Session& s, Request& r);

  hub::HubSystem& hubs_;
  const TokenTable& tokens_;
};

}  // namespace ringcast::profiles

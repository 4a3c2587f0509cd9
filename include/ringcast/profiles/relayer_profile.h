// `/relay` (seed 004, EEG booth relayer): a connection registers as a booth under an id, scanners
// attach to a booth id, and relay_message goes scanner -> its booth or booth -> its first scanner,
// with notifications when either side comes or goes. The protocol: docs/profiles/relayer.md.
//
// Booths and scanners may sit on any core. Who holds which id, and which scanners are attached to
// it in what order, is one directory behind a mutex: registration, attachment and disconnects
// change it, a relay reads it once to find the peer's session id, and every frame then travels
// through the hub (send_to / post_fn). Replies to a session leave in the order its messages were
// handled, even when one of them (connection_success) waits for the booth's core to have queued
// scanner_connected first.
#pragma once

#include <memory>

#include "ringcast/hub/hub.h"
#include "ringcast/websocket/message_handler.h"

namespace ringcast::profiles {

class RelayerProfile final : public websocket::MessageHandler {
 public:
  explicit RelayerProfile(hub::HubSystem& hubs);
  ~RelayerProfile() override;

  void on_open(websocket::Session& s, const websocket::HttpRequest& req) override;
  void on_message(websocket::Session& s, websocket::Opcode op, std::span<uint8_t> payload) override;
  void on_close(websocket::Session& s) override;

  // Deeper JSON than this is refused like Python's json.loads (RecursionError): "Internal server
  // error".
  static constexpr int kMaxDepth = 900;

 private:
  struct Directory;
  struct Request;
  void handle(websocket::Session& s, Request& r);
  void register_booth(websocket::Session& s, Request& r);
  void connect_scanner(websocket::Session& s, Request& r);
  void relay(websocket::Session& s, Request& r);

  hub::HubSystem& hubs_;
  std::unique_ptr<Directory> dir_;
};

}  // namespace ringcast::profiles

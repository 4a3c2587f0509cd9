// /echo: every message comes back to its sender with the same opcode. The conformance and load-test
// target, and the shortest path through the engine.
#pragma once

#include "ringcast/websocket/message_handler.h"
#include "ringcast/websocket/session.h"

namespace ringcast::profiles {

class EchoProfile final : public websocket::MessageHandler {
 public:
  void on_open(websocket::Session&, const websocket::HttpRequest&) override {}
  void on_message(websocket::Session& s, websocket::Opcode op,
                  std::span<uint8_t> payload) override {
    s.send_message(op, payload);
  }
  void on_close(websocket::Session&) override {}
};

}  // namespace ringcast::profiles

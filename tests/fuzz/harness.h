// A whole ringcast server on one core, without sockets: the real Router, HubSystem (1 core),
// profiles, HTTP service and Worker, with the Worker driven through FakeBackend. The fuzzers open
// connections, hand them bytes as if received, and every byte the server writes is checked for
// well-formedness (an HTTP response first, then valid server frames: unmasked, known opcodes,
// UTF-8 text, a legal close code, nothing after the close frame, and optionally JSON text).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fake_backend.h"
#include "ringcast/app/config.h"
#include "ringcast/app/health_service.h"
#include "ringcast/hub/hub.h"
#include "ringcast/profiles/echo_profile.h"
#include "ringcast/profiles/native_profile.h"
#include "ringcast/profiles/raw_profile.h"
#include "ringcast/websocket/worker.h"

namespace ringcast::fuzz {

// What a connection's output must look like; aborts the process (a fuzzer finding) otherwise.
class OutputChecker {
 public:
  void set_json_text(bool on) { json_text_ = on; }
  void feed(const uint8_t* p, size_t n);
  bool upgraded() const { return mode_ == Mode::kFrames || mode_ == Mode::kClosed; }

 private:
  enum class Mode { kHead, kFrames, kClosed, kIgnore };
  void check_message(uint8_t opcode, const std::string& payload);
  Mode mode_ = Mode::kHead;
  bool json_text_ = false;
  std::string buf_;
  std::string message_;  // data message being assembled
  uint8_t message_opcode_ = 0;
  bool in_message_ = false;
  bool deflate_ = false;     // the 101 agreed permessage-deflate
  bool compressed_ = false;  // the message being assembled had RSV1
};

struct ServerOptions {
  bool json_text = false;  // every text frame the server sends must be JSON
};

class FakeServer final : private FakeBackend::Observer {
 public:
  explicit FakeServer(ServerOptions opts = {});
  ~FakeServer()
      override;  // graceful stop, then every peer goes away; runs the loop until all are freed

  // A new connection on the WebSocket port; returns its handle.
  int connect();
  // The bytes arrive as one read. Ignored once the server has closed the connection.
  void receive(int conn, std::span<const uint8_t> bytes);
  void receive(int conn, std::string_view text) {
    receive(conn, {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
  }
  // The peer closes its side (EOF).
  void peer_close(int conn);
  bool alive(int conn) const { return conns_[conn].socket != nullptr; }
  bool upgraded(int conn) const { return conns_[conn].checker.upgraded(); }
  // One loop pass (hub mailbox, timers, flush, send completions).
  void pass() { worker_->run_pass(0); }
  void set_short_send(size_t bytes) { backend_->set_short_send(bytes); }

 private:
  struct Conn {
    engine::Socket* socket = nullptr;  // null once the server freed it
    OutputChecker checker;
  };
  Conn* find(engine::Socket* s);
  void attached(engine::Socket* s) override { attached_ = s; }
  void sent(engine::Socket* s, const uint8_t* p, size_t n) override;
  void finished(engine::Socket* s) override;

  ServerOptions opts_;
  app::Config cfg_;
  websocket::Router router_;
  std::unique_ptr<websocket::ServerStats> stats_;
  std::unique_ptr<websocket::SettingsStore> settings_;
  std::unique_ptr<hub::HubSystem> hubs_;
  profiles::TokenTable tokens_;
  profiles::JwtVerifierSlot jwt_;
  profiles::EchoProfile echo_;
  std::unique_ptr<profiles::RawProfile> raw_;
  std::unique_ptr<profiles::NativeProfile> native_;
  std::vector<std::unique_ptr<websocket::MessageHandler>> seeds_;
  std::unique_ptr<app::ApiService> api_;
  std::unique_ptr<app::HealthService> health_;
  websocket::WorkerShared shared_;
  std::unique_ptr<websocket::Worker> worker_;
  FakeBackend* backend_ = nullptr;
  engine::Socket* attached_ = nullptr;  // set by the backend during on_accept
  std::vector<Conn> conns_;
};

// Frames a client message (masked, as a client must).
void append_client_frame(std::string& out, uint8_t opcode, bool fin, std::string_view payload);
// The upgrade request of a well-behaved client for `path`.
std::string upgrade_request(std::string_view path);

}  // namespace ringcast::fuzz

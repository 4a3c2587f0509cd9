// /ws: the native JSON protocol over every hub building block (rooms, presence, history, retained
// state, endpoints, direct sends). The reference is docs/native-protocol.md.
#pragma once

#include <rapidjson/fwd.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "ringcast/hub/cluster_bus.h"
#include "ringcast/hub/hub.h"
#include "ringcast/profiles/jwt_verifier.h"
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

// In a cluster, endpoints are shared by the nodes: Redis keeps them, changed by the profile's
// script, and each node mirrors them into the hub's EndpointRegistry as a hub::ClusterJournal
// (native_endpoints.cpp). Relays read the mirror; a peer on another node is reached through the
// hub's remote sends.
class NativeProfile final : public websocket::MessageHandler, public hub::ClusterJournal {
 public:
  NativeProfile(hub::HubSystem& hubs, const TokenTable& tokens, const JwtVerifierSlot& jwt);
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
  // Close code for a session whose JWT expired (exp + leeway) without a `refresh`.
  static constexpr uint16_t kCloseTokenExpired = 4001;
  // Endpoints one session may register, and attach to (each stays until the session closes).
  static constexpr size_t kMaxEndpointsPerSession = 64;

  // hub::ClusterJournal: the endpoints shared by the nodes (native_endpoints.cpp).
  std::string_view journal_name() const override { return "endpoints"; }
  const char* journal_script() const override;
  void journal_record(hub::ClusterBus& bus, std::string_view record, bool listing) override;
  void journal_reset(hub::ClusterBus& bus, bool begin) override;
  void journal_reply(hub::Hub& hub, uint64_t session, std::string_view answer,
                     bool refused) override;
  void journal_note(hub::Hub&, uint64_t, std::string_view) override {}

 private:
  struct Request;
  void handle(websocket::Session& s, Request& r);
  void auth(websocket::Session& s, Request& r, bool refresh);
  // Endpoints (native_endpoints.cpp), on one node or across a cluster.
  void endpoint_register(websocket::Session& s, const rapidjson::Value* id, std::string_view name);
  void endpoint_attach(websocket::Session& s, const rapidjson::Value* id, std::string_view name);
  void endpoint_relay(websocket::Session& s, const rapidjson::Value* id,
                      const rapidjson::Value& data, std::optional<std::string_view> name,
                      std::optional<uint64_t> to);
  void endpoints_closed(websocket::Session& s);
  void endpoint_call(websocket::Session& s, const rapidjson::Value* id, char op,
                     std::string_view name);
  // What this node's sessions were part of before a listing: (name, peer) -> owner.
  std::map<std::pair<std::string, uint64_t>, uint64_t> before_;
  hub::EndpointRegistry::Map staging_;  // a listing, until it replaces the registry at once

  hub::HubSystem& hubs_;
  const TokenTable& tokens_;
  const JwtVerifierSlot& jwt_;
};

}  // namespace ringcast::profiles

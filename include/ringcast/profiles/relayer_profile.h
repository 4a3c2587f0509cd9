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
//
// In a cluster the directory is shared by every node: Redis keeps it, changed by the profile's
// script, and each node mirrors it as a hub::ClusterJournal (relayer_cluster.cpp). Relays still
// read the local mirror; a peer on another node is reached through the hub's remote sends.
#pragma once

#include <memory>

#include "ringcast/hub/cluster_bus.h"
#include "ringcast/hub/hub.h"
#include "ringcast/websocket/message_handler.h"

namespace ringcast::profiles {

class RelayerProfile final : public websocket::MessageHandler, public hub::ClusterJournal {
 public:
  explicit RelayerProfile(hub::HubSystem& hubs);
  ~RelayerProfile() override;

  void on_open(websocket::Session& s, const websocket::HttpRequest& req) override;
  void on_message(websocket::Session& s, websocket::Opcode op, std::span<uint8_t> payload) override;
  void on_close(websocket::Session& s) override;

  // Deeper JSON than this is refused like Python's json.loads (RecursionError): "Internal server
  // error".
  static constexpr int kMaxDepth = 900;
  // Booth ids one connection may register (the seed has no limit; each id stays registered, so
  // without one a single client could grow the directory without bound).
  static constexpr size_t kMaxBoothIdsPerConnection = 64;

  // hub::ClusterJournal: the directory shared by the nodes (relayer_cluster.cpp).
  std::string_view journal_name() const override { return "relayer"; }
  const char* journal_script() const override;
  void journal_record(hub::ClusterBus& bus, std::string_view record, bool listing) override;
  void journal_reset(hub::ClusterBus& bus, bool begin) override;
  void journal_reply(hub::Hub& hub, uint64_t session, std::string_view answer,
                     bool refused) override;
  void journal_note(hub::Hub& hub, uint64_t session, std::string_view note) override;

 private:
  struct Directory;
  struct Request;
  void handle(websocket::Session& s, Request& r);
  void register_booth(websocket::Session& s, Request& r);
  void connect_scanner(websocket::Session& s, Request& r);
  void relay(websocket::Session& s, Request& r);
  // Cluster: the calls, and the end of a connect_scanner on the scanner's core.
  void cluster_call(websocket::Session& s, char op, std::string canon, std::string json,
                    std::string error);
  void complete_connect(hub::Hub& hub, uint64_t scanner, std::string_view json);
  // Cluster, bus thread: the booth `canon` is gone; its scanners of this node are told.
  void booth_gone(hub::ClusterBus& bus, const std::string& canon, uint64_t owner);
  // Cluster, bus thread: the booth's core says scanner_connected, then has the scanner answered.
  void tell_booth(hub::ClusterBus& bus, uint64_t booth, uint64_t scanner, std::string_view member,
                  std::string_view json);

  hub::HubSystem& hubs_;
  std::unique_ptr<Directory> dir_;
};

}  // namespace ringcast::profiles

// Server configuration: built-in defaults, then the TOML file, then command-line flags.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ringcast/hub/room.h"
#include "ringcast/profiles/livemap_profile.h"
#include "ringcast/websocket/server_settings.h"

namespace ringcast::app {

// Where and whether a seed profile is mounted ([profiles.<name>] enabled, path).
struct ProfileMount {
  bool enabled = true;
  std::string path;
  bool operator==(const ProfileMount&) const = default;
};

// One command-line setting (--port 9000 -> {"--port", "9000"}).
struct CliFlag {
  std::string name, value;
  bool operator==(const CliFlag&) const = default;
};

struct Config {
  std::string config_path;  // empty: no file
  // The flags this configuration was built with: a reload re-applies them over the file, so a
  // setting given on the command line keeps winning.
  std::vector<CliFlag> flags;
  std::string host = "0.0.0.0";
  uint16_t port = 8765;
  uint16_t http_port = 8000;  // 0 disables the health listener
  int threads = 0;            // 0: one per online CPU
  std::string backend = "auto";
  std::string data_dir = "./data";
  std::string log_level = "info";
  websocket::Limits limits;
  websocket::Compression compression;  // [compression]: permessage-deflate
  bool origin_check = true;
  std::vector<std::string> allowed_origins = {
      "https://wizzyworks-frontend.vercel.app", "http://localhost:3000-3001",
      "http://127.0.0.1:3000-3001", "http://localhost:8000", "http://127.0.0.1:8000"};
  // GET /api/version, as the game-chat seed serves it.
  std::string api_version = "v1.0.1";
  std::string api_env = "PRODUCTION";
  std::string api_desc = "Websocket Server Python";
  // Server API (/api/publish ...) and /dashboard data: `Authorization: apikey <key>` must
  // carry one of these. No key: the server API is off and /dashboard answers loopback peers only.
  std::vector<std::string> api_keys;
  size_t api_max_body_bytes = 1 << 20;  // request body of a server API call
  // Hub: messages of history kept per room, with per-room-name overrides ("prefix*" or exact).
  size_t history_size = 100;
  std::vector<std::pair<std::string, size_t>> history_rules;
  // Rooms clients can make the hub keep: in all, per connection, and how long the in-memory
  // history of a room nobody is in outlives its last message (history_ttl_s; 0 = forever).
  size_t max_rooms = hub::RoomRegistry::kDefaultMaxRooms;
  size_t max_rooms_per_connection = 100;
  int64_t history_ttl_s = 86400;
  // Retained state a native client can make a room keep: keys per room, bytes per value.
  size_t max_state_keys = hub::RoomLimits{}.max_state_keys;
  size_t max_state_value_bytes = hub::RoomLimits{}.max_state_value_bytes;
  // Durable store: rooms whose history and state survive restarts (name patterns, "*" = all),
  // and whether members see a change only after its commit ("strict") or at once ("relaxed").
  std::vector<std::string> persistent_rooms;
  std::string durability = "strict";
  // TLS ([tls]): on when cert and key are set. The WebSocket port then speaks only TLS, and the
  // health port too with http_port_tls. cert/key/ca are re-read on SIGHUP.
  std::string tls_cert, tls_key, tls_ca;
  bool http_port_tls = false;
  bool tls_enabled() const { return !tls_cert.empty(); }
  // [cluster]: several nodes as one hub over Redis (docs/cluster.md). Off while redis is empty.
  struct Cluster {
    std::string redis;    // redis://[[user]:password@]host[:port][/db] or unix:/path[?db=N...]
    std::string node_id;  // empty: hostname:port
    int64_t max_queue_bytes = int64_t{64} << 20;
    int64_t node_ttl_ms = 5000;
    bool enabled() const { return !redis.empty(); }
  } cluster;
  // Login tokens: token -> identity.
  std::map<std::string, hub::Identity> tokens;
  // [jwt]: JSON Web Tokens that log in (game chat, native auth). Keys: public_key_file (a PEM
  // public key or a JWKS document, RS256/ES256) and hs256_secret; none = no JWT logs in (except
  // with [profiles.gamechat] hs256_secret). Reloaded on SIGHUP.
  struct Jwt {
    std::string public_key_file;
    std::string hs256_secret;
    std::vector<std::string> audience;  // `aud` must name one; empty: tokens with `aud` refused
    std::string issuer;                 // non-empty: `iss` must equal it
    int64_t leeway_s = 60;              // clock skew allowed on exp and nbf
    bool operator==(const Jwt&) const = default;
  } jwt;

  // Seed profiles ([profiles.<name>]). Each keeps its seed's wire protocol on its own path.
  struct Bridge {  // seed 000
    ProfileMount mount{true, "/"};
    int64_t first_message_timeout_ms = 5000;
    bool operator==(const Bridge&) const = default;
  } bridge;
  struct Chatroom {  // seed 001: plain-text version on `path`, the later JSON version on json_path
    ProfileMount mount{true, "/chatroom"};
    std::string json_path = "/chatroom/json";  // empty: not mounted
    std::string env = "PROD";                  // what !env reports
    int64_t max_message_chars = 1000;
    bool operator==(const Chatroom&) const = default;
  } chatroom;
  struct Livemap {  // seed 002
    ProfileMount mount{true, "/map"};
    bool persistent = true;  // markers and positions survive restarts (durable store)
    // Bounds on the markers a joiner must accept in one markers_sync (<= 1 MiB together), and
    // on the player positions of one positions_sync (likewise).
    int64_t max_markers = 1000;
    int64_t max_marker_bytes = 1024;
    int64_t max_positions = 2000;
    int64_t max_position_bytes = 512;
    bool operator==(const Livemap&) const = default;
  } livemap;
  struct Gamechat {  // seed 003
    ProfileMount mount{true, "/chat"};
    int64_t history_limit = 100;  // messages kept
    bool persistent = true;       // history survives restarts (durable store)
    std::string hs256_secret;     // empty: only the [tokens] table logs in
    bool operator==(const Gamechat&) const = default;
  } gamechat;
  struct Relayer {  // seed 004
    ProfileMount mount{true, "/relay"};
    bool operator==(const Relayer&) const = default;
  } relayer;
};

// Thrown for any configuration problem; what() names the key and, for the file, FILE:LINE.
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Reads `path` over the values already in `cfg`. Unknown keys and wrong types are errors.
void load_config_file(const std::string& path, Config& cfg);
// Checks cross-field rules (ranges, backend name, origins); throws ConfigError.
void validate_config(const Config& cfg);

// The live-map profile's limits as configured.
profiles::LivemapLimits livemap_limits(const Config& cfg);
// The parts workers read live.
std::shared_ptr<const websocket::ServerSettings> make_settings(const Config& cfg);
// Settings that only a restart applies (listeners, threads, backend, data_dir, [store],
// [profiles.*]) whose value differs between `running` and `next`, as "server.port", ...
std::vector<std::string> restart_only_changes(const Config& running, const Config& next);

}  // namespace ringcast::app

#include "ringcast/app/config.h"

#include <toml++/toml.h>

#include <functional>
#include <map>

#include "ringcast/cluster/redis_url.h"
#include "ringcast/engine/log.h"
#include "ringcast/profiles/display_name.h"
#include "ringcast/profiles/livemap_profile.h"

namespace ringcast::app {
namespace {

std::string where(const std::string& path, const toml::node& node) {
  return path + ":" + std::to_string(node.source().begin.line);
}

// Key readers: each knows its type and range, and reports mistakes with the key's location.
using Reader = std::function<void(const std::string& key, const toml::node& node)>;

template <typename T>
Reader integer(const std::string& path, T& out, int64_t lo, int64_t hi) {
  return [&path, &out, lo, hi](const std::string& key, const toml::node& node) {
    // Type first: value<int64_t>() also converts floats, and an out-of-range one is UB.
    const auto* v = node.as_integer();
    if (v == nullptr) {
      throw ConfigError(where(path, node) + ": '" + key + "' must be an integer");
    }
    if (v->get() < lo || v->get() > hi) {
      throw ConfigError(where(path, node) + ": '" + key + "' must be between " +
                        std::to_string(lo) + " and " + std::to_string(hi));
    }
    out = static_cast<T>(v->get());
  };
}

Reader string(const std::string& path, std::string& out) {
  return [&path, &out](const std::string& key, const toml::node& node) {
    if (!node.is_string())
      throw ConfigError(where(path, node) + ": '" + key + "' must be a string");
    out = *node.value<std::string>();
  };
}

// A string naming one of `choices`; the error lists them in order ("must be a, b or c").
template <typename T>
Reader one_of(const std::string& path, T& out,
              std::vector<std::pair<std::string_view, T>> choices) {
  return
      [&path, &out, choices = std::move(choices)](const std::string& key, const toml::node& node) {
        std::string v;
        string(path, v)(key, node);
        std::string names;
        for (size_t i = 0; i < choices.size(); ++i) {
          if (choices[i].first == v) {
            out = choices[i].second;
            return;
          }
          names += i == 0 ? "" : i + 1 == choices.size() ? " or " : ", ";
          names += choices[i].first;
        }
        throw ConfigError(where(path, node) + ": '" + key + "' must be " + names);
      };
}

Reader boolean(const std::string& path, bool& out) {
  return [&path, &out](const std::string& key, const toml::node& node) {
    if (!node.is_boolean())
      throw ConfigError(where(path, node) + ": '" + key + "' must be true or false");
    out = *node.value<bool>();
  };
}

Reader string_list(const std::string& path, std::vector<std::string>& out) {
  return [&path, &out](const std::string& key, const toml::node& node) {
    const toml::array* arr = node.as_array();
    if (!arr) throw ConfigError(where(path, node) + ": '" + key + "' must be an array of strings");
    std::vector<std::string> values;
    for (const auto& item : *arr) {
      if (!item.is_string()) {
        throw ConfigError(where(path, item) + ": '" + key + "' must contain only strings");
      }
      values.push_back(*item.value<std::string>());
    }
    out = std::move(values);
  };
}

// A string, or an array of strings ("a" reads as ["a"]).
Reader string_or_list(const std::string& path, std::vector<std::string>& out) {
  return [&path, &out](const std::string& key, const toml::node& node) {
    if (node.is_string()) {
      out = {*node.value<std::string>()};
      return;
    }
    if (!node.is_array())
      throw ConfigError(where(path, node) + ": '" + key +
                        "' must be a string or an array of strings");
    string_list(path, out)(key, node);
  };
}

}  // namespace

void load_config_file(const std::string& path, Config& cfg) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    throw ConfigError(path + ":" + std::to_string(e.source().begin.line) + ": " +
                      std::string(e.description()));
  } catch (const std::exception& e) {
    throw ConfigError(path + ": " + e.what());
  }
  constexpr int64_t kMaxMs = 24LL * 3600 * 1000;
  auto& L = cfg.limits;
  using SC = websocket::Limits::SlowConsumer;
  std::map<std::string, std::map<std::string, Reader>> schema = {
      {"server",
       {{"host", string(path, cfg.host)},
        {"port", integer(path, cfg.port, 1, 65535)},
        {"http_port", integer(path, cfg.http_port, 0, 65535)},
        {"threads", integer(path, cfg.threads, 0, 1024)},
        {"backend", string(path, cfg.backend)},
        {"data_dir", string(path, cfg.data_dir)},
        {"log_level", string(path, cfg.log_level)}}},
      {"limits",
       {{"max_message_size", integer(path, L.max_message_size, 125, 1LL << 30)},
        {"max_connections", integer(path, L.max_connections, 1, 100000000)},
        {"max_connections_per_ip", integer(path, L.max_connections_per_ip, 0, 100000000)},
        {"max_header_bytes", integer(path, L.max_header_bytes, 1024, 1 << 20)},
        {"handshake_timeout_ms", integer(path, L.handshake_timeout_ms, 50, kMaxMs)},
        {"idle_timeout_ms", integer(path, L.idle_timeout_ms, 50, kMaxMs)},
        {"ping_interval_ms", integer(path, L.ping_interval_ms, 0, kMaxMs)},
        {"ping_timeout_ms", integer(path, L.ping_timeout_ms, 50, kMaxMs)},
        {"drain_timeout_ms", integer(path, L.drain_timeout_ms, 0, kMaxMs)},
        {"outbound_cap", integer(path, L.outbound_cap, 4096, 1LL << 31)},
        {"max_messages_per_second", integer(path, L.max_messages_per_second, 0, 100000000)},
        {"message_burst", integer(path, L.message_burst, 0, 100000000)},
        {"stall_timeout_ms", integer(path, L.stall_timeout_ms, 100, kMaxMs)},
        {"slow_consumer",
         one_of<SC>(
             path, L.slow_consumer,
             {{"close", SC::kClose}, {"drop_oldest", SC::kDropOldest}, {"pace", SC::kPace}})},
        {"relay_slow_consumer",
         one_of<SC>(path, L.relay_slow_consumer, {{"pace", SC::kPace}, {"close", SC::kClose}})}}},
      {"origins",
       {{"check", boolean(path, cfg.origin_check)},
        {"allowed", string_list(path, cfg.allowed_origins)}}},
      {"hub",
       {{"history", integer(path, cfg.history_size, 0, 1000000)},
        {"max_rooms", integer(path, cfg.max_rooms, 1, 100000000)},
        {"max_rooms_per_connection", integer(path, cfg.max_rooms_per_connection, 1, 1000000)},
        {"history_ttl_s", integer(path, cfg.history_ttl_s, 0, int64_t{10} * 365 * 86400)},
        {"max_state_keys", integer(path, cfg.max_state_keys, 1, 10000000)},
        {"max_state_value_bytes", integer(path, cfg.max_state_value_bytes, 1, 1 << 30)},
        {"history_by_room",
         [&path, &cfg](const std::string& key, const toml::node& node) {
           const toml::table* t = node.as_table();
           if (!t)
             throw ConfigError(where(path, node) + ": '" + key +
                               "' must be a table of pattern = size");
           std::vector<std::pair<std::string, size_t>> rules;
           for (const auto& [pattern, v] : *t) {
             size_t n = 0;
             integer(path, n, 0, 1000000)(key + "." + std::string(pattern.str()), v);
             rules.emplace_back(std::string(pattern.str()), n);
           }
           cfg.history_rules = std::move(rules);
         }}}},
      {"store",
       {{"persistent_rooms", string_list(path, cfg.persistent_rooms)},
        {"durability", string(path, cfg.durability)}}},
      {"tokens", {}},
      {"jwt",
       {{"public_key_file", string(path, cfg.jwt.public_key_file)},
        {"hs256_secret", string(path, cfg.jwt.hs256_secret)},
        {"audience", string_or_list(path, cfg.jwt.audience)},
        {"issuer", string(path, cfg.jwt.issuer)},
        {"leeway_s", integer(path, cfg.jwt.leeway_s, 0, 86400)}}},
      {"tls",
       {{"cert", string(path, cfg.tls_cert)},
        {"key", string(path, cfg.tls_key)},
        {"ca", string(path, cfg.tls_ca)},
        {"http_port_tls", boolean(path, cfg.http_port_tls)}}},
      {"profiles.bridge",
       {{"enabled", boolean(path, cfg.bridge.mount.enabled)},
        {"path", string(path, cfg.bridge.mount.path)},
        {"first_message_timeout_ms",
         integer(path, cfg.bridge.first_message_timeout_ms, 50, kMaxMs)}}},
      {"profiles.chatroom",
       {{"enabled", boolean(path, cfg.chatroom.mount.enabled)},
        {"path", string(path, cfg.chatroom.mount.path)},
        {"json_path", string(path, cfg.chatroom.json_path)},
        {"env", string(path, cfg.chatroom.env)},
        {"max_message_chars", integer(path, cfg.chatroom.max_message_chars, 1, 1 << 24)}}},
      {"profiles.livemap",
       {{"enabled", boolean(path, cfg.livemap.mount.enabled)},
        {"path", string(path, cfg.livemap.mount.path)},
        {"persistent", boolean(path, cfg.livemap.persistent)},
        {"max_markers", integer(path, cfg.livemap.max_markers, 1, 1000000)},
        {"max_marker_bytes", integer(path, cfg.livemap.max_marker_bytes, 64, 1 << 20)},
        {"max_positions", integer(path, cfg.livemap.max_positions, 1, 1000000)},
        {"max_position_bytes", integer(path, cfg.livemap.max_position_bytes, 64, 1 << 20)}}},
      {"profiles.gamechat",
       {{"enabled", boolean(path, cfg.gamechat.mount.enabled)},
        {"path", string(path, cfg.gamechat.mount.path)},
        {"history_limit", integer(path, cfg.gamechat.history_limit, 1, 1000000)},
        {"persistent", boolean(path, cfg.gamechat.persistent)},
        {"hs256_secret", string(path, cfg.gamechat.hs256_secret)}}},
      {"profiles.relayer",
       {{"enabled", boolean(path, cfg.relayer.mount.enabled)},
        {"path", string(path, cfg.relayer.mount.path)}}},
      {"compression",
       {{"enabled", boolean(path, cfg.compression.enabled)},
        {"threshold_bytes", integer(path, cfg.compression.threshold_bytes, 0, 1 << 30)},
        {"level", integer(path, cfg.compression.level, 1, 9)}}},
      {"cluster",
       {{"redis", string(path, cfg.cluster.redis)},
        {"node_id", string(path, cfg.cluster.node_id)},
        {"max_queue_bytes", integer(path, cfg.cluster.max_queue_bytes, 1 << 16, int64_t{1} << 40)},
        {"node_ttl_ms", integer(path, cfg.cluster.node_ttl_ms, 1000, kMaxMs)}}},
      {"api",
       {{"version", string(path, cfg.api_version)},
        {"env", string(path, cfg.api_env)},
        {"desc", string(path, cfg.api_desc)},
        {"keys", string_list(path, cfg.api_keys)},
        {"max_body_bytes", integer(path, cfg.api_max_body_bytes, 64, 64 << 20)}}},
  };
  // [profiles.<name>] tables are flattened to "profiles.<name>" sections.
  std::vector<std::pair<std::string, const toml::node*>> sections;
  for (const auto& [section, node] : root) {
    std::string sname(section.str());
    if (sname == "profiles" && node.is_table()) {
      for (const auto& [sub, subnode] : *node.as_table())
        sections.emplace_back("profiles." + std::string(sub.str()), &subnode);
    } else {
      sections.emplace_back(sname, &node);
    }
  }
  for (const auto& [sname, node_ptr] : sections) {
    const toml::node& node = *node_ptr;
    auto sit = schema.find(sname);
    if (sit == schema.end()) {
      throw ConfigError(where(path, node) + ": unknown section or key '" + sname + "'");
    }
    const toml::table* table = node.as_table();
    if (!table) throw ConfigError(where(path, node) + ": '" + sname + "' must be a table");
    if (sname == "tokens") {
      // [tokens] "secret" = { user_id = "u1", nickname = "Alice", role = "player" }
      for (const auto& [token, value] : *table) {
        std::string key = "tokens." + std::string(token.str());
        const toml::table* t = value.as_table();
        if (!t)
          throw ConfigError(where(path, value) + ": '" + key +
                            "' must be { user_id = ..., nickname = ... }");
        hub::Identity id;
        for (const auto& [field, fv] : *t) {
          std::string fname(field.str());
          std::string* target = fname == "user_id"    ? &id.user_id
                                : fname == "nickname" ? &id.nickname
                                : fname == "role"     ? &id.role
                                                      : nullptr;
          if (!target)
            throw ConfigError(where(path, fv) + ": unknown key '" + key + "." + fname + "'");
          string(path, *target)(key + "." + fname, fv);
          // Identities are shown to other users (presence, chat objects, nicknames).
          if (!profiles::is_display_safe(*target))
            throw ConfigError(where(path, fv) + ": '" + key + "." + fname + "' " +
                              std::string(profiles::kDisplayNameRule));
        }
        if (id.user_id.empty())
          throw ConfigError(where(path, value) + ": '" + key + "' needs a user_id");
        cfg.tokens[std::string(token.str())] = std::move(id);
      }
      continue;
    }
    for (const auto& [key, value] : *table) {
      std::string kname(key.str());
      auto kit = sit->second.find(kname);
      if (kit == sit->second.end()) {
        throw ConfigError(where(path, value) + ": unknown key '" + sname + "." + kname + "'");
      }
      kit->second(sname + "." + kname, value);
    }
  }
}

void validate_config(const Config& cfg) {
  for (const auto& key : cfg.api_keys) {
    // A short key is guessable; the value itself is never logged.
    if (key.size() < 16 || key.find_first_of(" \t\r\n") != std::string::npos)
      throw ConfigError("api.keys: each key must be at least 16 characters without whitespace");
  }
  if (cfg.backend != "auto" && cfg.backend != "io_uring" && cfg.backend != "epoll") {
    throw ConfigError("server.backend: must be auto, io_uring or epoll (got '" + cfg.backend +
                      "')");
  }
  if (!log::parse_level(cfg.log_level)) {
    throw ConfigError("server.log_level: must be trace, debug, info, warn or error (got '" +
                      cfg.log_level + "')");
  }
  if (cfg.durability != "strict" && cfg.durability != "relaxed") {
    throw ConfigError("store.durability: must be strict or relaxed (got '" + cfg.durability + "')");
  }
  if (cfg.cluster.enabled()) {
    try {
      cluster::parse_redis_url(cfg.cluster.redis);  // its message never shows the password
    } catch (const cluster::RedisUrlError& e) {
      throw ConfigError(e.what());
    }
    if (!profiles::is_display_safe(cfg.cluster.node_id) || cfg.cluster.node_id.size() > 255)
      throw ConfigError("cluster.node_id: at most 255 bytes, without control characters");
  } else if (!cfg.cluster.node_id.empty()) {
    throw ConfigError("cluster.node_id: needs cluster.redis");
  }
  if (cfg.tls_cert.empty() != cfg.tls_key.empty())
    throw ConfigError("tls: cert and key must be set together (both PEM file paths)");
  if (!cfg.tls_enabled() && (!cfg.tls_ca.empty() || cfg.http_port_tls))
    throw ConfigError(std::string("tls.") + (cfg.tls_ca.empty() ? "http_port_tls" : "ca") +
                      ": needs tls.cert and tls.key");
  if (cfg.http_port != 0 && cfg.http_port == cfg.port) {
    throw ConfigError("server.http_port: must differ from server.port (or be 0 to disable)");
  }
  const std::pair<const char*, const ProfileMount*> mounts[] = {{"bridge", &cfg.bridge.mount},
                                                                {"chatroom", &cfg.chatroom.mount},
                                                                {"livemap", &cfg.livemap.mount},
                                                                {"gamechat", &cfg.gamechat.mount},
                                                                {"relayer", &cfg.relayer.mount}};
  std::vector<std::string> paths = {"/echo", "/ws", "/raw/"};
  if (cfg.chatroom.mount.enabled && !cfg.chatroom.json_path.empty()) {
    if (cfg.chatroom.json_path[0] != '/')
      throw ConfigError("profiles.chatroom.json_path: must start with '/' or be empty (got '" +
                        cfg.chatroom.json_path + "')");
    paths.push_back(cfg.chatroom.json_path);
  }
  for (const auto& [name, m] : mounts) {
    if (!m->enabled) continue;
    if (m->path.empty() || m->path[0] != '/')
      throw ConfigError(std::string("profiles.") + name + ".path: must start with '/' (got '" +
                        m->path + "')");
    paths.push_back(m->path);
  }
  for (size_t i = 0; i < paths.size(); ++i)
    for (size_t j = i + 1; j < paths.size(); ++j)
      if (paths[i] == paths[j])
        throw ConfigError("profiles: path '" + paths[i] + "' is mounted twice");
  // A joiner gets every marker in one markers_sync and every player position in one
  // positions_sync; the seed's clients accept at most 1 MiB each.
  auto sync_fits = [&cfg](const char* sync, const char* what, int64_t count, int64_t bytes,
                          size_t worst, const char* formula) {
    if (!cfg.livemap.mount.enabled || worst <= profiles::kMaxClientMessageBytes) return;
    throw ConfigError("profiles.livemap: max_" + std::string(what) +
                      "s = " + std::to_string(count) + " " + what + "s of max_" + what +
                      "_bytes = " + std::to_string(bytes) + " make a " + sync + " of up to " +
                      std::to_string(worst) +
                      " bytes; a default client refuses messages above 1048576 (need " + formula +
                      " <= 1048576)");
  };
  const profiles::LivemapLimits lim = livemap_limits(cfg);
  sync_fits("markers_sync", "marker", cfg.livemap.max_markers, cfg.livemap.max_marker_bytes,
            profiles::markers_sync_worst_case(lim.max_markers, lim.max_marker_bytes),
            "36 + max_markers * (max_marker_bytes + 1) - 1");
  sync_fits("positions_sync", "position", cfg.livemap.max_positions, cfg.livemap.max_position_bytes,
            profiles::positions_sync_worst_case(lim.max_positions, lim.max_position_bytes),
            "40 + max_positions * (max_position_bytes + 1) - 1");
  websocket::OriginPolicy policy;
  std::string error;
  if (!policy.set(cfg.allowed_origins, cfg.origin_check, error)) {
    throw ConfigError("origins.allowed: " + error);
  }
}

std::shared_ptr<const websocket::ServerSettings> make_settings(const Config& cfg) {
  auto s = std::make_shared<websocket::ServerSettings>();
  s->limits = cfg.limits;
  s->compression = cfg.compression;
  s->max_body_bytes = cfg.api_max_body_bytes;
  std::string error;
  s->origins.set(cfg.allowed_origins, cfg.origin_check, error);
  return s;
}

std::vector<std::string> restart_only_changes(const Config& a, const Config& b) {
  std::vector<std::string> changed;
  auto check = [&changed](bool same, const char* name) {
    if (!same) changed.emplace_back(name);
  };
  check(a.host == b.host, "server.host");
  check(a.port == b.port, "server.port");
  check(a.http_port == b.http_port, "server.http_port");
  check(a.threads == b.threads, "server.threads");
  check(a.backend == b.backend, "server.backend");
  check(a.data_dir == b.data_dir, "server.data_dir");
  check(a.persistent_rooms == b.persistent_rooms, "store.persistent_rooms");
  check(a.durability == b.durability, "store.durability");
  check(a.cluster.redis == b.cluster.redis, "cluster.redis");  // the name only: never the URL
  check(a.cluster.node_id == b.cluster.node_id, "cluster.node_id");
  check(a.cluster.node_ttl_ms == b.cluster.node_ttl_ms, "cluster.node_ttl_ms");
  check(a.cluster.max_queue_bytes == b.cluster.max_queue_bytes, "cluster.max_queue_bytes");
  // Certificate files are reloaded; turning TLS on or off changes what the listeners speak.
  check(a.tls_enabled() == b.tls_enabled(), "tls.cert");
  check(a.http_port_tls == b.http_port_tls, "tls.http_port_tls");
  check(a.bridge == b.bridge, "profiles.bridge");
  check(a.chatroom == b.chatroom, "profiles.chatroom");
  check(a.livemap == b.livemap, "profiles.livemap");
  check(a.gamechat == b.gamechat, "profiles.gamechat");
  check(a.relayer == b.relayer, "profiles.relayer");
  return changed;
}

profiles::LivemapLimits livemap_limits(const Config& cfg) {
  profiles::LivemapLimits limits;
  limits.max_markers = static_cast<size_t>(cfg.livemap.max_markers);
  limits.max_marker_bytes = static_cast<size_t>(cfg.livemap.max_marker_bytes);
  limits.max_positions = static_cast<size_t>(cfg.livemap.max_positions);
  limits.max_position_bytes = static_cast<size_t>(cfg.livemap.max_position_bytes);
  return limits;
}

}  // namespace ringcast::app

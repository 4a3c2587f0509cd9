// Named endpoints (a booth id, "the bridge"): unique names, each owned by one session, with the
// sessions attached to it. Registration and attachment are control operations, so a mutex is fine;
// relayed messages never come here (each side caches the other's session id).
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ringcast::hub {

class EndpointRegistry {
 public:
  struct Endpoint {
    uint64_t owner = 0;
    std::vector<uint64_t> peers;  // attached sessions, in attach order
  };

  // False if the name is taken (by a live session).
  bool register_name(std::string_view name, uint64_t owner);
  // Removes the endpoint if `owner` owns it; returns its attached peers.
  std::optional<std::vector<uint64_t>> unregister(std::string_view name, uint64_t owner);
  // Attaches `peer`; returns the owner, or nullopt if there is no such endpoint.
  std::optional<uint64_t> attach(std::string_view name, uint64_t peer);
  // Detaches `peer`; returns the owner if it was attached.
  std::optional<uint64_t> detach(std::string_view name, uint64_t peer);
  std::optional<Endpoint> find(std::string_view name) const;
  size_t size() const;

  // A cluster's mirror (NativeProfile): Redis decides, so these never refuse.
  using Map = std::unordered_map<std::string, Endpoint>;
  void assign(std::string_view name, uint64_t owner);  // owned by `owner` now
  Map copy() const;
  void replace(Map endpoints);  // at once: readers see the old or the new, never a mix

 private:
  mutable std::mutex mutex_;
  Map endpoints_;
};

}  // namespace ringcast::hub

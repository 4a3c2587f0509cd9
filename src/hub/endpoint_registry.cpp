#include "ringcast/hub/endpoint_registry.h"

#include <algorithm>

namespace ringcast::hub {

bool EndpointRegistry::register_name(std::string_view name, uint64_t owner) {
  std::lock_guard lock(mutex_);
  auto [it, inserted] = endpoints_.try_emplace(std::string(name));
  if (!inserted) return it->second.owner == owner;
  it->second.owner = owner;
  return true;
}

std::optional<std::vector<uint64_t>> EndpointRegistry::unregister(std::string_view name,
                                                                  uint64_t owner) {
  std::lock_guard lock(mutex_);
  auto it = endpoints_.find(std::string(name));
  if (it == endpoints_.end() || it->second.owner != owner) return std::nullopt;
  std::vector<uint64_t> peers = std::move(it->second.peers);
  endpoints_.erase(it);
  return peers;
}

std::optional<uint64_t> EndpointRegistry::attach(std::string_view name, uint64_t peer) {
  std::lock_guard lock(mutex_);
  auto it = endpoints_.find(std::string(name));
  if (it == endpoints_.end()) return std::nullopt;
  auto& peers = it->second.peers;
  if (std::find(peers.begin(), peers.end(), peer) == peers.end()) peers.push_back(peer);
  return it->second.owner;
}

std::optional<uint64_t> EndpointRegistry::detach(std::string_view name, uint64_t peer) {
  std::lock_guard lock(mutex_);
  auto it = endpoints_.find(std::string(name));
  if (it == endpoints_.end()) return std::nullopt;
  auto& peers = it->second.peers;
  auto p = std::find(peers.begin(), peers.end(), peer);
  if (p == peers.end()) return std::nullopt;
  peers.erase(p);
  return it->second.owner;
}

std::optional<EndpointRegistry::Endpoint> EndpointRegistry::find(std::string_view name) const {
  std::lock_guard lock(mutex_);
  auto it = endpoints_.find(std::string(name));
  if (it == endpoints_.end()) return std::nullopt;
  return it->second;
}

size_t EndpointRegistry::size() const {
  std::lock_guard lock(mutex_);
  return endpoints_.size();
}

void EndpointRegistry::assign(std::string_view name, uint64_t owner) {
  std::lock_guard lock(mutex_);
  endpoints_[std::string(name)].owner = owner;
}

EndpointRegistry::Map EndpointRegistry::copy() const {
  std::lock_guard lock(mutex_);
  return endpoints_;
}

void EndpointRegistry::replace(Map endpoints) {
  std::lock_guard lock(mutex_);
  endpoints_.swap(endpoints);
}

}  // namespace ringcast::hub

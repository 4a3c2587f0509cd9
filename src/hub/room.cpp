#include "ringcast/hub/room.h"

#include <functional>

namespace ringcast::hub {

RoomRegistry::RoomRegistry(int cores, size_t default_history, std::vector<HistoryRule> rules)
    : cores_(cores), default_history_(default_history), rules_(std::move(rules)) {}

RoomRegistry::~RoomRegistry() {
  for (auto& [name, room] : rooms_) delete room;
}

size_t RoomRegistry::history_for(std::string_view name) const {
  for (const auto& r : rules_) {
    if (!r.pattern.empty() && r.pattern.back() == '*') {
      if (name.starts_with(std::string_view(r.pattern).substr(0, r.pattern.size() - 1)))
        return r.size;
    } else if (r.pattern == name) {
      return r.size;
    }
  }
  return default_history_;
}

void RoomRegistry::set_rules(size_t default_history, std::vector<HistoryRule> rules) {
  std::lock_guard lock(mutex_);
  default_history_ = default_history;
  rules_ = std::move(rules);
}

SharedRoom* RoomRegistry::acquire(std::string_view name) {
  std::lock_guard lock(mutex_);
  auto it = rooms_.find(std::string(name));
  if (it != rooms_.end() && it->second->try_add_ref()) return it->second;
  // New room, or one whose last reference is being dropped right now: that one is replaced and
  // its dropper frees it without touching the map.
  int home = static_cast<int>(std::hash<std::string_view>{}(name) % static_cast<size_t>(cores_));
  size_t history = history_for(name);
  auto* room = new SharedRoom(std::string(name), home, cores_, history);
  if (history > 0) room->add_ref();  // rooms that keep history live as long as the process
  rooms_[room->name()] = room;
  return room;
}

void RoomRegistry::release(SharedRoom* room) {
  if (room->release_ref() != 0) return;
  {
    std::lock_guard lock(mutex_);
    auto it = rooms_.find(room->name());
    if (it != rooms_.end() && it->second == room) rooms_.erase(it);
  }
  delete room;
}

size_t RoomRegistry::size() const {
  std::lock_guard lock(mutex_);
  return rooms_.size();
}

}  // namespace ringcast::hub

#include "ringcast/hub/room.h"

#include <functional>

namespace ringcast::hub {

RoomRegistry::RoomRegistry(int cores, size_t default_history, std::vector<HistoryRule> rules)
    : cores_(cores), default_history_(default_history), rules_(std::move(rules)) {}

RoomRegistry::~RoomRegistry() {
  for (auto& [name, room] : rooms_) delete room;
}

size_t RoomRegistry::history_for(std::string_view name) const {
  std::lock_guard lock(mutex_);
  return history_for_locked(name);
}

size_t RoomRegistry::history_for_locked(std::string_view name) const {
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

void RoomRegistry::set_max_rooms(size_t n) {
  std::lock_guard lock(mutex_);
  max_rooms_ = n;
}

size_t RoomRegistry::max_rooms() const {
  std::lock_guard lock(mutex_);
  return max_rooms_;
}

SharedRoom* RoomRegistry::acquire(std::string_view name, bool enforce_limit) {
  std::lock_guard lock(mutex_);
  auto it = rooms_.find(std::string(name));
  if (it != rooms_.end() && it->second->try_add_ref()) return it->second;
  // New room, or one whose last reference is being dropped right now: that one is replaced (in
  // place, so the count is unchanged) and its dropper frees it without touching the map.
  if (enforce_limit && it == rooms_.end() && rooms_.size() >= max_rooms_) return nullptr;
  int home = static_cast<int>(std::hash<std::string_view>{}(name) % static_cast<size_t>(cores_));
  auto* room = new SharedRoom(std::string(name), home, cores_, history_for_locked(name));
  if (it != rooms_.end())
    it->second = room;
  else
    rooms_.emplace(room->name(), room);
  return room;
}

SharedRoom* RoomRegistry::find(std::string_view name) {
  std::lock_guard lock(mutex_);
  auto it = rooms_.find(std::string(name));
  if (it != rooms_.end() && it->second->try_add_ref()) return it->second;
  return nullptr;
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

std::vector<SharedRoom*> RoomRegistry::snapshot() {
  std::vector<SharedRoom*> out;
  std::lock_guard lock(mutex_);
  out.reserve(rooms_.size());
  for (auto& [name, room] : rooms_)
    if (room->try_add_ref()) out.push_back(room);
  return out;
}

size_t RoomRegistry::size() const {
  std::lock_guard lock(mutex_);
  return rooms_.size();
}

}  // namespace ringcast::hub

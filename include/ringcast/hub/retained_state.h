// A room's retained state: keyed JSON values kept in insertion order. Replacing a key's value keeps
// its original position; a deleted key that comes back goes to the end. Each entry carries an order
// number: the home core reserves one per write before it goes to the store, so the order on disk
// and in memory agree even when writes are applied after their commit, and a restart restores it.
// Home core only (no locking).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace ringcast::hub {

class RetainedState {
 public:
  struct Entry {
    std::string key;
    std::string value;  // JSON text
  };

  RetainedState() = default;
  RetainedState(const RetainedState&) = delete;
  RetainedState& operator=(const RetainedState&) = delete;

  size_t size() const { return index_.size(); }
  bool empty() const { return index_.empty(); }
  bool contains(std::string_view key) const { return index_.count(key) != 0; }
  // Changes with every set and erase: lets a profile reuse what it encoded from an unchanged state.
  uint64_t version() const { return version_; }
  const std::string* find(std::string_view key) const {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : &it->second->second.value;
  }

  // An order number for a write about to be made: a key that is new when the write is applied
  // takes this position.
  uint64_t reserve_order() { return next_order_++; }
  // Sets a key: an existing key keeps its position (the value is assigned in place, reusing its
  // memory), a new one is placed by `order` (normally at the end).
  void set(std::string_view key, std::string_view value, uint64_t order) {
    ++version_;
    if (auto it = index_.find(key); it != index_.end()) {
      it->second->second.value.assign(value);
      return;
    }
    if (order >= next_order_) next_order_ = order + 1;
    auto [pos, inserted] = entries_.try_emplace(order, Entry{std::string(key), std::string(value)});
    if (!inserted) {  // order numbers are unique by construction; never lose a write regardless
      pos = entries_.try_emplace(next_order_++, Entry{std::string(key), std::string(value)}).first;
    }
    index_.emplace(std::string_view(pos->second.key), pos);
  }
  void set(std::string_view key, std::string_view value) { set(key, value, reserve_order()); }
  // False if the key was not there.
  bool erase(std::string_view key) {
    auto it = index_.find(key);
    if (it == index_.end()) return false;
    auto pos = it->second;
    ++version_;
    index_.erase(it);  // before the entry: the index key points into it
    entries_.erase(pos);
    return true;
  }

  // fn(key, value) for every entry, oldest insertion first.
  template <typename Fn>
  void for_each(Fn&& fn) const {
    for (const auto& [order, e] : entries_) fn(std::string_view(e.key), std::string_view(e.value));
  }

 private:
  using Entries = std::map<uint64_t, Entry>;
  Entries entries_;                                                // by order number
  std::unordered_map<std::string_view, Entries::iterator> index_;  // keys point into entries_
  uint64_t next_order_ = 1;
  uint64_t version_ = 0;
};

}  // namespace ringcast::hub

// A room's retained state: keyed JSON values kept in insertion order. Replacing a key's value keeps
// its original position; a deleted key that comes back goes to the end. Each entry carries an order
// number: the home core reserves one per write before it goes to the store, so the order on disk
// and in memory agree even when writes are applied after their commit, and a restart restores it.
// Home core only (no locking).
//
// Key limits: a limit counts the keys that share a prefix ("" = every key). The state keeps one
// counter per prefix a limit has named (made on first use by counting once), updated on every
// set and erase, so checking a write costs no scan and no allocation. Writes that wait for their
// commit before they are applied (strict durability) are recorded as pending: admits() judges a
// write against the state as it will be once every pending write is applied, so a burst of
// writes in flight cannot pass a limit between them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

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
    if (!counters_.empty()) presence_changed(key, +1);
  }
  void set(std::string_view key, std::string_view value) { set(key, value, reserve_order()); }
  // False if the key was not there.
  bool erase(std::string_view key) {
    auto it = index_.find(key);
    if (it == index_.end()) return false;
    auto pos = it->second;
    ++version_;
    if (!counters_.empty()) presence_changed(key, -1);
    index_.erase(it);  // before the entry: the index key points into it
    entries_.erase(pos);
    return true;
  }

  // ---- key limits ----
  // True if setting `key` keeps the keys starting with `prefix` (a prefix of `key`) within
  // `max_keys` (0: no limit): the key is there already (a replacement) or there is room for one
  // more, counting pending writes as applied. `immediate`: the write is applied now, ahead of the
  // pending ones, so there must be room both now and once they are applied.
  bool admits(std::string_view key, std::string_view prefix, size_t max_keys, bool immediate);
  // True if setting `key` now keeps the keys starting with `prefix` within `max_keys`, counting
  // only what is applied (the last check before a committed write is applied).
  bool fits(std::string_view key, std::string_view prefix, size_t max_keys);
  // Keys starting with `prefix`, as applied.
  size_t count(std::string_view prefix) { return counter(prefix).count; }
  // A set (or delete) of `key` that will be applied later, once committed: admits() counts it
  // from now on. Each pend() is matched by one settle().
  void pend(std::string_view key, bool set);
  // The oldest pending write of `key` is done: applied (call after set() or erase()) or refused
  // by the store (not applied).
  void settle(std::string_view key);
  // Writes waiting for settle().
  size_t pending() const { return pending_count_; }

  // fn(key, value) for every entry, oldest insertion first.
  template <typename Fn>
  void for_each(Fn&& fn) const {
    for (const auto& [order, e] : entries_) fn(std::string_view(e.key), std::string_view(e.value));
  }

 private:
  using Entries = std::map<uint64_t, Entry>;
  struct Counter {
    std::string prefix;
    size_t count = 0;   // applied keys with this prefix
    int64_t delta = 0;  // what the pending writes will change it by (see contribution)
  };
  struct Pending {
    uint32_t writes = 0;  // pending writes of this key
    bool exists = false;  // whether the key is there once they are applied (the last one's kind)
  };
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  Counter& counter(std::string_view prefix);
  // What `key`'s pending writes change the count of keys by, once applied: -1, 0 or +1.
  int contribution(std::string_view key) const;
  void adjust_delta(std::string_view key, int64_t by);
  // `key` appeared (+1) or went (-1) in the applied state.
  void presence_changed(std::string_view key, int by);

  Entries entries_;                                                // by order number
  std::unordered_map<std::string_view, Entries::iterator> index_;  // keys point into entries_
  uint64_t next_order_ = 1;
  uint64_t version_ = 0;
  std::vector<Counter> counters_;  // one per prefix a limit named; few
  std::unordered_map<std::string, Pending, StringHash, std::equal_to<>> pending_;
  size_t pending_count_ = 0;
};

}  // namespace ringcast::hub

#include "ringcast/hub/retained_state.h"

namespace ringcast::hub {

RetainedState::Counter& RetainedState::counter(std::string_view prefix) {
  for (Counter& c : counters_)
    if (c.prefix == prefix) return c;
  // First use of this prefix: count once what is there (a room restored from the store included)
  // and what its pending writes will change; set/erase/pend/settle keep it current from now on.
  Counter c;
  c.prefix.assign(prefix);
  for (const auto& [key, pos] : index_)
    if (key.starts_with(prefix)) ++c.count;
  for (const auto& [key, p] : pending_)
    if (std::string_view(key).starts_with(prefix)) c.delta += contribution(key);
  counters_.push_back(std::move(c));
  return counters_.back();
}

int RetainedState::contribution(std::string_view key) const {
  auto it = pending_.find(key);
  if (it == pending_.end()) return 0;
  return static_cast<int>(it->second.exists) - static_cast<int>(contains(key));
}

void RetainedState::adjust_delta(std::string_view key, int64_t by) {
  if (by == 0) return;
  for (Counter& c : counters_)
    if (key.starts_with(c.prefix)) c.delta += by;
}

void RetainedState::presence_changed(std::string_view key, int by) {
  // A key with pending writes keeps its projected presence: the change moves from delta to count.
  const bool pending = !pending_.empty() && pending_.count(key) != 0;
  for (Counter& c : counters_) {
    if (!key.starts_with(c.prefix)) continue;
    c.count += by;
    if (pending) c.delta -= by;
  }
}

bool RetainedState::admits(std::string_view key, std::string_view prefix, size_t max_keys,
                           bool immediate) {
  if (max_keys == 0) return true;
  const Counter& c = counter(prefix);
  const bool now = contains(key);
  bool later = now;
  if (!pending_.empty())
    if (auto it = pending_.find(key); it != pending_.end()) later = it->second.exists;
  const int64_t projected = static_cast<int64_t>(c.count) + c.delta;
  if (!later && projected >= static_cast<int64_t>(max_keys)) return false;
  if (immediate && !now && c.count >= max_keys) return false;
  return true;
}

bool RetainedState::fits(std::string_view key, std::string_view prefix, size_t max_keys) {
  return max_keys == 0 || contains(key) || counter(prefix).count < max_keys;
}

void RetainedState::pend(std::string_view key, bool set) {
  const int before = contribution(key);
  auto it = pending_.find(key);
  if (it == pending_.end()) it = pending_.emplace(std::string(key), Pending{}).first;
  ++it->second.writes;
  it->second.exists = set;
  ++pending_count_;
  adjust_delta(key, contribution(key) - before);
}

void RetainedState::settle(std::string_view key) {
  auto it = pending_.find(key);
  if (it == pending_.end()) return;
  const int before = contribution(key);
  --pending_count_;
  // The last pending write decides the key's projected presence. If the store refused an
  // earlier one, a later one may have been admitted against a count that no longer holds;
  // fits() is checked again before it is applied.
  if (--it->second.writes == 0) pending_.erase(it);
  adjust_delta(key, contribution(key) - before);
}

}  // namespace ringcast::hub

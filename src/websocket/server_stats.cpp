#include "ringcast/websocket/server_stats.h"

namespace ringcast::websocket {

bool ServerStats::admit(const std::array<uint8_t, 16>& ip, size_t max_total, size_t max_per_ip) {
  int64_t prev = total_ws_.fetch_add(1, std::memory_order_relaxed);
  if (max_total && static_cast<size_t>(prev) >= max_total) {
    total_ws_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  std::lock_guard lock(ip_mutex_);
  uint32_t& n = per_ip_[ip];
  if (max_per_ip && n >= max_per_ip) {
    if (n == 0) per_ip_.erase(ip);
    total_ws_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  ++n;
  return true;
}

void ServerStats::leave(const std::array<uint8_t, 16>& ip) {
  total_ws_.fetch_sub(1, std::memory_order_relaxed);
  std::lock_guard lock(ip_mutex_);
  auto it = per_ip_.find(ip);
  if (it != per_ip_.end() && --it->second == 0) per_ip_.erase(it);
}

}  // namespace ringcast::websocket

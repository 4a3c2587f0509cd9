// Extra fields a profile adds to GET /health (the bridge seed's `connected_clients`, ...).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace ringcast::profiles {

class HealthFields {
 public:
  virtual ~HealthFields() = default;
  // Appends (key, JSON value text) pairs. Called from any thread: read only atomics or locked data.
  virtual void append_health(std::vector<std::pair<std::string, std::string>>& out) const = 0;
};

}  // namespace ringcast::profiles

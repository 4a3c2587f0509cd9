// Rooms the seed profiles own. Their members expect the profile's own message shapes (and the
// persistent ones end up in the store), so native and raw clients may not join or publish there.
#pragma once

#include <string_view>

namespace ringcast::profiles {

inline bool reserved_room_name(std::string_view name) {
  for (std::string_view prefix : {"gamechat:", "livemap:", "chatroom:", "bridge:", "relayer:"})
    if (name.starts_with(prefix)) return true;
  return false;
}

}  // namespace ringcast::profiles

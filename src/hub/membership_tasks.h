// The control tasks that carry membership changes through a room's home core (hub.cpp), shared
// with the cluster path (hub_cluster.cpp), which runs them at their place in the cluster's order.
#pragma once

#include "ringcast/hub/hub.h"

namespace ringcast::hub {

// On the joiner's core: the join is in effect.
struct JoinedTask final : Task {
  RoomRef room;
  uint64_t session;
  JoinResult result;
  JoinCallback done;
  void run(Hub& hub) override;
};

// On the home core: adds the joiner (single node: at once; cluster: once the join comes back in
// the room's cluster-wide order, see Hub::cluster_join).
struct JoinTask final : Task {
  RoomRef room;
  uint64_t session;
  int from;
  JoinOptions opts;
  JoinCallback done;
  void run(Hub& hub) override;
  // The join itself, with `me` as the presence entry; in the order of the room's events.
  void join_here(Hub& hub, PresenceEntry me);
};

struct LeaveTask final : Task {
  RoomRef room;
  uint64_t session;
  int from;
  void run(Hub& hub) override;
};

}  // namespace ringcast::hub

// The hub's link to the other nodes of a cluster (implemented over Redis by cluster::RedisBus).
// Set only when [cluster] is configured: a single node never calls here.
#pragma once

#include "ringcast/engine/shared_frame.h"

namespace ringcast::hub {

class Hub;
class SharedRoom;

class ClusterBus {
 public:
  virtual ~ClusterBus() = default;
  // On `core`'s loop: `frame` (encoded as sent to clients) also goes to the room's members on
  // the other nodes. Never blocks; past the outbound cap it is dropped and counted.
  virtual void publish_direct(int core, SharedRoom& room, engine::SharedFrame* frame) = 0;
  // On `core`'s loop: this core gained its first (active) or lost its last (inactive) local
  // member of a raw room. The node listens to a room only while some core has members.
  virtual void room_members(int core, SharedRoom& room, bool active) = 0;
  // On `core`'s loop, once per pass: fans out what arrived from other nodes for rooms homed on
  // this core, and wakes the bus if this pass gave it work.
  virtual void poll(int core, Hub& hub) = 0;
  // True if `core` has arrivals waiting (its loop must not sleep).
  virtual bool has_arrivals(int core) const = 0;
};

}  // namespace ringcast::hub

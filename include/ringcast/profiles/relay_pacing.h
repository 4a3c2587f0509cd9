// Flow control for what a connection's message makes go straight to other connections.
#pragma once

#include "ringcast/engine/shared_frame.h"
#include "ringcast/websocket/session.h"
#include "ringcast/websocket/worker.h"

namespace ringcast::profiles {

// One-to-one relays (bridge, relayer, native relay) pace their sender by default: a burst waits in
// the sender's TCP window instead of closing a recipient that reads more slowly
// ([limits] relay_slow_consumer). Call on a freshly encoded frame, before it is sent.
inline void pace_relay(websocket::Session& s, engine::SharedFrame* f) {
  if (s.worker().settings().limits.relay_slow_consumer == websocket::Limits::SlowConsumer::kPace)
    s.pace(f);
}

// Raw rooms pace only when [limits] slow_consumer = "pace".
inline void pace_room(websocket::Session& s, engine::SharedFrame* f) {
  if (s.worker().settings().limits.slow_consumer == websocket::Limits::SlowConsumer::kPace)
    s.pace(f);
}

}  // namespace ringcast::profiles

// What travels through the cross-core mailbox. Small and trivially copyable: the hot kinds carry
// only counted references (a room, a shared frame); rare control work carries a task object.
#pragma once

#include <cstdint>
#include <string_view>

#include "ringcast/engine/shared_frame.h"

namespace ringcast::hub {

class Hub;
class SharedRoom;
struct HistoryRecord;

// A unit of control work to run on another core (joins, leaves, queries). Allocated per use:
// control operations are rare next to messages.
struct Task {
  virtual ~Task() = default;
  virtual void run(Hub& hub) = 0;
};

// Builds the event frame of a sequenced publish (profile-specific shape).
using EventFormatter = engine::SharedFrame* (*)(const SharedRoom& room, const HistoryRecord& rec);
// Builds a retained-state event frame (value empty = deleted); `from` is the writer's session.
using StateFormatter = engine::SharedFrame* (*)(const SharedRoom& room, std::string_view key,
                                                std::string_view value, uint64_t from);

struct Envelope {
  enum class Kind : uint8_t {
    kRoomFrame,  // deliver `frame` to local members of `room`, except `session`
    kPublish,    // to the home core: sequence, record and fan out `frame` (payload) from `session`
    kDirect,     // deliver `frame` to session `session`
    kTask,       // run `task`
    kState,      // to the home core: set or delete a retained-state key (packed in `frame`)
    kBroadcast,  // to the home core: fan `frame` out to the room's members, except `session`
    kRelease,    // to `session`'s core: its durable write is done, release its input hold
  };
  enum Flags : uint8_t {
    kPresenceOnly = 1,  // kRoomFrame: only to members that asked for presence events
    kNoHistory = 2,     // kPublish: sequence and fan out, but keep no record
    kFanoutHold = 2,    // kRoomFrame: holds a pending delivery of a sampled fan-out
    kNoEcho = 4,        // kPublish, kState: the event does not go back to the sender
    kDelete = 8,        // kState: delete the key
    kWriteBehind = 16,  // kState: deliver at once and store behind, even under strict durability
    kHeld = 32,         // kPublish, kState: the sender's input is held until this is in effect
    kEvent = 64,        // kState: `event` is set (else `state_formatter`, which may be null)
    kTooLarge = 128,    // kState: the value is over the writer's size limit: refuse it
  };

  Kind kind = Kind::kTask;
  uint8_t flags = 0;
  // kState: a set of a new key is refused when the room has `max_keys` keys (0: no limit)
  // starting with the key's first `key_prefix` bytes (see RetainedState::admits).
  uint16_t key_prefix = 0;
  uint32_t max_keys = 0;
  SharedRoom* room = nullptr;            // counted reference
  engine::SharedFrame* frame = nullptr;  // counted reference
  uint64_t session = 0;
  union {
    Task* task = nullptr;            // kTask (owned)
    engine::SharedFrame* event;      // kState with kEvent: the event, encoded (counted reference)
    StateFormatter state_formatter;  // kState without kEvent
    uint64_t bytes;                  // kRelease: the size of the write that is in effect
    int64_t received_ns;             // kPublish: when the publisher's core took the message
                                     // (monotonic; the start of its fan-out latency)
  };
  union {
    EventFormatter formatter = nullptr;  // kPublish
    engine::SharedFrame* reply_refused;  // kState: to the writer if a limit refuses the write
                                         // (counted reference; may be null)
  };
  // kPublish: sent to the publisher once the message is in effect (stored, where the room is
  // persistent), or if the store refused it. Counted references; either may be null.
  engine::SharedFrame* reply_ok = nullptr;
  engine::SharedFrame* reply_fail = nullptr;
};
static_assert(sizeof(Envelope) <= 64, "an envelope fits one cache line");

}  // namespace ringcast::hub

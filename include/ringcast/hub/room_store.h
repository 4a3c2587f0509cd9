// Where a room's history and retained state are kept beyond memory. The hub's home core calls it
// for every recorded message and state change, and continues (fan-out, acknowledgement) only when
// the store says the change is kept: an in-memory store says so at once, a durable one after its
// group commit. Start-up restores every room before the listeners open.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "ringcast/hub/history.h"

namespace ringcast::hub {

class SharedRoom;

class RoomStore {
 public:
  // Called on the home core once the change is kept (ok) or could not be (ok == false).
  using Done = std::function<void(bool ok)>;

  virtual ~RoomStore() = default;
  // True if changes to this room are written to the store.
  virtual bool persistent(const SharedRoom& room) const = 0;
  // True: members see a change only after it is committed ("strict"); false: at once ("relaxed").
  virtual bool acknowledge_after_commit() const { return true; }
  // Home-core side, once per loop pass: runs the Done callbacks of finished writes for `core`,
  // and hands this pass's writes to the store. Returns true if it did anything.
  virtual bool poll(int core) {
    (void)core;
    return false;
  }
  // True if `core` has finished writes waiting for poll() (the loop must not block).
  virtual bool has_completions(int core) const {
    (void)core;
    return false;
  }
  virtual void append(const SharedRoom& room, const HistoryRecord& rec, Done done) = 0;
  // value == nullopt deletes the key. `order` places a key that is new (see RetainedState): an
  // existing key keeps its position.
  virtual void put_state(const SharedRoom& room, std::string_view key,
                         std::optional<std::string_view> value, uint64_t order, Done done) = 0;
};

// Keeps nothing beyond the rooms' own memory: every change is "kept" immediately.
class MemoryRoomStore final : public RoomStore {
 public:
  bool persistent(const SharedRoom&) const override { return false; }
  void append(const SharedRoom&, const HistoryRecord&, Done done) override { done(true); }
  void put_state(const SharedRoom&, std::string_view, std::optional<std::string_view>, uint64_t,
                 Done done) override {
    done(true);
  }
};

}  // namespace ringcast::hub

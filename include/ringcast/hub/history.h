// A room's recent messages: a ring of the last N records, each with its sequence number.
// Records hold references to pooled frames, so keeping history costs no copy of the payload.
// The ring starts empty and grows geometrically up to N as records arrive: a room that never
// records (or records a few) does not pay for N slots.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ringcast/engine/shared_frame.h"

namespace ringcast::hub {

struct HistoryRecord {
  uint64_t seq = 0;
  int64_t ts_ms = 0;         // wall clock, milliseconds since the epoch
  uint64_t sender = 0;       // session id
  std::string user;          // sender's user id, if authenticated
  engine::FrameRef payload;  // holds the published bytes from payload_offset on
  uint32_t payload_offset = 0;
  engine::FrameRef event;  // the encoded event frame members received

  std::string_view data() const {
    if (!payload) return {};
    return {reinterpret_cast<const char*>(payload->data()) + payload_offset,
            payload->size() - payload_offset};
  }
};

class HistoryRing {
 public:
  explicit HistoryRing(size_t capacity = 0) : capacity_(capacity) {}
  // The configured bound N.
  size_t capacity() const { return capacity_; }
  // Slots allocated so far (grows toward capacity()).
  size_t allocated() const { return slots_.size(); }
  size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  void push(HistoryRecord rec);
  // Drops every record and gives the slots back.
  void clear();
  // The newest record (size() > 0).
  const HistoryRecord& newest() const { return at_age(0); }
  // Newest first, skipping `offset` records, at most `limit`.
  template <typename Fn>
  void newest_first(size_t offset, size_t limit, Fn&& fn) const;
  // Oldest first, every record with seq > after.
  template <typename Fn>
  void since(uint64_t after, Fn&& fn) const;
  // Oldest first, the last n records.
  template <typename Fn>
  void last(size_t n, Fn&& fn) const;

 private:
  const HistoryRecord& at_age(size_t age) const {  // 0 = newest
    return slots_[(next_ + slots_.size() - 1 - age) % slots_.size()];
  }
  void grow();

  size_t capacity_;
  std::vector<HistoryRecord> slots_;
  size_t next_ = 0;
  size_t count_ = 0;
};

template <typename Fn>
void HistoryRing::newest_first(size_t offset, size_t limit, Fn&& fn) const {
  for (size_t age = offset; age < count_ && age < offset + limit; ++age) fn(at_age(age));
}

template <typename Fn>
void HistoryRing::since(uint64_t after, Fn&& fn) const {
  size_t n = 0;  // records newer than `after`
  while (n < count_ && at_age(n).seq > after) ++n;
  for (size_t age = n; age-- > 0;) fn(at_age(age));
}

template <typename Fn>
void HistoryRing::last(size_t n, Fn&& fn) const {
  for (size_t age = std::min(n, count_); age-- > 0;) fn(at_age(age));
}

}  // namespace ringcast::hub

#include "ringcast/websocket/frame_reader.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace ringcast::websocket {

namespace {
constexpr size_t kMaxIdleReaders = 256;
int no_mask(uint8_t*, size_t, void*) {
  return -1;
}
ssize_t no_send(const uint8_t*, size_t, int, void*) {
  return -1;
}
}  // namespace

FrameReader::FrameReader() {
  wslay_frame_callbacks cb{no_send, recv_cb, no_mask};
  if (wslay_frame_context_init(&ctx_, &cb, this) != 0) throw std::bad_alloc();
}

FrameReader::~FrameReader() {
  wslay_frame_context_free(ctx_);
}

ssize_t FrameReader::recv_cb(uint8_t* buf, size_t len, int, void* user_data) {
  auto* self = static_cast<FrameReader*>(user_data);
  size_t n = std::min(len, self->in_len_);
  if (n == 0) return 0;  // wslay reads 0 as "would block"
  std::memcpy(buf, self->in_, n);
  self->in_ += n;
  self->in_len_ -= n;
  return static_cast<ssize_t>(n);
}

bool FrameReader::header_only(std::span<const uint8_t> in, FrameChunk& out) {
  // Between frames wslay holds nothing but the next header's bytes: the last pending_ of the
  // stream, at most 14.
  if (pending_ > sizeof head_) return false;
  const size_t have = static_cast<size_t>(pending_);
  if (in.size() >= have) {
    if (have) std::memcpy(head_, in.data() + in.size() - have, have);
  } else {
    // The header started in an earlier feed, whose bytes head_ already holds.
    const size_t earlier = have - in.size();
    // An empty feed (held input resumed with nothing new) may come with a null pointer.
    if (!in.empty()) std::memcpy(head_ + earlier, in.data(), in.size());
  }
  if (have < 2) return false;
  const uint8_t len7 = head_[1] & 0x7f;
  const bool masked = head_[1] & 0x80;
  const size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
  if (have < 2 + ext + (masked ? 4 : 0)) return false;
  uint64_t length = len7;
  if (ext) {
    length = 0;
    for (size_t i = 0; i < ext; ++i) length = length << 8 | head_[2 + i];
  }
  if (length == 0) return false;  // wslay reports empty frames itself
  out.opcode = head_[0] & 0x0f;
  out.rsv = (head_[0] >> 4) & 7;
  out.fin = head_[0] & 0x80;
  out.masked = masked;
  out.payload_length = length;
  out.frame_start = true;
  out.frame_end = false;
  out.data = {};
  in_frame_ = true;
  frame_remaining_ = length;
  return true;
}

std::span<const uint8_t> FrameReader::take_rest() {
  const uint64_t ahead = pending_ - in_len_;  // in the decoder's buffer
  std::span<const uint8_t> rest;
  if (in_frame_ || ahead > static_cast<uint64_t>(in_ - in_begin_)) {
    std::abort();  // not at a frame end of this feed: a caller bug, not a client's doing
  }
  rest = {in_ - ahead, static_cast<size_t>(pending_)};
  pending_ = 0;
  in_ = in_begin_ = nullptr;
  in_len_ = 0;
  // The decoder's read-ahead now belongs to the caller: start it afresh.
  wslay_frame_context_free(ctx_);
  ctx_ = nullptr;
  wslay_frame_callbacks cb{no_send, recv_cb, no_mask};
  if (wslay_frame_context_init(&ctx_, &cb, this) != 0) throw std::bad_alloc();
  return rest;
}

FrameReaderPool::~FrameReaderPool() {
  for (auto* r : free_) delete r;
}

FrameReader* FrameReaderPool::acquire() {
  if (free_.empty()) return new FrameReader();
  FrameReader* r = free_.back();
  free_.pop_back();
  return r;
}

void FrameReaderPool::release(FrameReader* r) {
  if (r->at_boundary() && free_.size() < kMaxIdleReaders) {
    free_.push_back(r);
  } else {
    delete r;
  }
}

}  // namespace ringcast::websocket

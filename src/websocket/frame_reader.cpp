#include "ringcast/websocket/frame_reader.h"

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

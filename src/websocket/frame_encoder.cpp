#include "ringcast/websocket/frame_encoder.h"

#include <wslay/wslay.h>

#include <cstring>
#include <stdexcept>

namespace ringcast::websocket {
namespace {

// wslay writes through a callback; ours copies into the SharedFrame being filled.
struct EncodeTarget {
  engine::SharedFrame* frame = nullptr;
};

ssize_t encode_send(const uint8_t* data, size_t len, int, void* user_data) {
  auto* target = static_cast<EncodeTarget*>(user_data);
  engine::SharedFrame* f = target->frame;
  if (len) std::memcpy(f->data() + f->size(), data, len);
  f->set_size(f->size() + len);
  return static_cast<ssize_t>(len);
}

int no_mask(uint8_t*, size_t, void*) {
  return -1;
}  // server frames are never masked

struct Encoder {
  EncodeTarget target;
  wslay_frame_context_ptr ctx = nullptr;
  Encoder() {
    wslay_frame_callbacks cb{encode_send, nullptr, no_mask};
    if (wslay_frame_context_init(&ctx, &cb, &target) != 0) throw std::bad_alloc();
  }
  ~Encoder() { wslay_frame_context_free(ctx); }
};

thread_local Encoder t_encoder;

}  // namespace

void append_frame(engine::SharedFrame* out, Opcode op, std::span<const uint8_t> payload) {
  Encoder& enc = t_encoder;
  enc.target.frame = out;
  wslay_frame_iocb iocb{};
  iocb.fin = 1;
  iocb.opcode = static_cast<uint8_t>(op);
  iocb.mask = 0;
  iocb.payload_length = payload.size();
  iocb.data = payload.data();
  iocb.data_length = payload.size();
  // With a callback that always accepts everything, one call writes header and payload.
  ssize_t r = wslay_frame_send(enc.ctx, &iocb);
  if (r < 0 || static_cast<size_t>(r) != payload.size()) {
    throw std::logic_error("wslay_frame_send failed");
  }
  enc.target.frame = nullptr;
}

engine::SharedFrame* encode_frame(Opcode op, std::span<const uint8_t> payload) {
  engine::SharedFrame* f =
      engine::SharedFrame::allocate(frame_header_size(payload.size()) + payload.size());
  append_frame(f, op, payload);
  if (op == Opcode::kText || op == Opcode::kBinary)
    f->set_message(static_cast<uint8_t>(op),
                   static_cast<uint8_t>(frame_header_size(payload.size())));
  return f;
}

engine::SharedFrame* encode_close(uint16_t code, std::string_view reason) {
  uint8_t buf[125];
  buf[0] = static_cast<uint8_t>(code >> 8);
  buf[1] = static_cast<uint8_t>(code & 0xff);
  size_t n = std::min<size_t>(reason.size(), sizeof buf - 2);
  if (n) std::memcpy(buf + 2, reason.data(), n);
  return encode_frame(Opcode::kClose, std::span<const uint8_t>(buf, n + 2));
}

}  // namespace ringcast::websocket

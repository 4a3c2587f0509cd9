// The worker's permessage-deflate side (RFC 7692): compressed input inflated as it arrives, with
// an inflater leased from the worker only for the message, and output compressed once per frame
// for every recipient that agreed the same window (see websocket/permessage_deflate.h).
#include <algorithm>

#include "ringcast/websocket/close_code.h"
#include "ringcast/websocket/worker.h"

namespace ringcast::websocket {

namespace {
constexpr size_t kSpareInflaters = 16;  // each holds a 32 KiB window and ~7 KiB of state
}

bool Worker::on_compressed_chunk(Session& s, const FrameChunk& c) {
  const size_t max_size = settings_->limits.max_message_size;
  if (!s.inflater_) {
    if (!spare_inflaters_.empty()) {
      s.inflater_ = spare_inflaters_.back();
      spare_inflaters_.pop_back();
      inflaters_low_ = std::min(inflaters_low_, spare_inflaters_.size());
    } else {
      s.inflater_ = new MessageInflater();
    }
  }
  if (!s.assembly_) s.assembly_ = take_buffer();
  std::string& a = *s.assembly_;
  const bool text = s.message_opcode_ == static_cast<uint8_t>(Opcode::kText);
  const bool message_end = c.frame_end && c.fin;
  s.message_size_ += c.data.size();
  size_t before = a.size();
  MessageInflater::Result r = s.inflater_->feed(c.data, a, max_size);
  if (r == MessageInflater::Result::kOk && message_end) r = s.inflater_->finish(a, max_size);
  if (r == MessageInflater::Result::kTooBig)
    return fail(s, kCloseMessageTooBig, "message too big"), false;
  if (r == MessageInflater::Result::kBad)
    return fail(s, kCloseInvalidPayload, "invalid compressed data"), false;
  if (text && !s.utf8_.feed(reinterpret_cast<const uint8_t*>(a.data()) + before, a.size() - before))
    return fail(s, kCloseInvalidPayload, "invalid UTF-8"), false;
  if (!message_end) return s.state_ == Session::State::kOpen;
  if (text && !s.utf8_.complete()) return fail(s, kCloseInvalidPayload, "invalid UTF-8"), false;
  drop_inflater(s);
  s.in_message_ = false;
  s.compressed_in_ = false;
  s.message_deadline_ms_ = 0;
  std::string* msg = s.assembly_;
  bool go = deliver_message(s, static_cast<Opcode>(s.message_opcode_),
                            {reinterpret_cast<uint8_t*>(msg->data()), msg->size()});
  if (s.assembly_ == msg) give_buffer(s.assembly_);
  return go;
}

void Worker::drop_inflater(Session& s) {
  MessageInflater* inf = s.inflater_;
  if (!inf) return;
  s.inflater_ = nullptr;
  if (spare_inflaters_.size() < kSpareInflaters) {
    inf->reset();
    spare_inflaters_.push_back(inf);
  } else {
    delete inf;
  }
}

engine::SharedFrame* Worker::deflated_for(Session& s, engine::SharedFrame* f, bool& owned) {
  owned = false;
  if (s.state_ != Session::State::kOpen && s.state_ != Session::State::kClosing) return f;
  std::span<const uint8_t> payload = f->message_payload();
  if (payload.size() < settings_->compression.threshold_bytes) return f;
  if (!deflater_) deflater_ = std::make_unique<MessageDeflater>(settings_->compression.level);
  auto compress = [&](int bits) {
    engine::SharedFrame* c = deflater_->compress(f->message_opcode(), payload, bits);
    // A paced frame's variant counts against the same sender's credit until it is gone.
    if (c && f->credit()) c->set_credit(f->credit());
    return c;
  };
  if (s.deflate_bits_ == 15) {
    // The common agreement: one compressed frame for every such recipient on every core.
    engine::SharedFrame* v = f->variant();
    if (!v) {
      engine::SharedFrame* c = compress(15);
      v = f->install_variant(c ? c : engine::SharedFrame::kNoVariant);
    }
    return v == engine::SharedFrame::kNoVariant ? f : v;
  }
  // A client that limited our window: its own copy (rare; no shared state to keep).
  engine::SharedFrame* c = compress(s.deflate_bits_);
  if (!c) return f;
  owned = true;
  return c;
}

}  // namespace ringcast::websocket

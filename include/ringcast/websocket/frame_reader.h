// Client-to-server frame decoding with wslay's frame API. A wslay frame context carries a 4 KiB
// input buffer, so a connection borrows a reader from its worker's pool only while a frame is
// partially received; at a frame boundary the reader is clean and goes back to the pool. An idle
// connection therefore holds no decoder memory.
#pragma once

#include <wslay/wslay.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace ringcast::websocket {

struct FrameChunk {
  uint8_t opcode;
  uint8_t rsv;
  bool fin;
  bool masked;
  bool frame_start;  // first chunk of this frame (header fields valid from here)
  bool frame_end;    // last chunk of this frame
  uint64_t payload_length;
  // Unmasked payload bytes, inside the reader's buffer; mutable so JSON can be parsed in situ.
  std::span<uint8_t> data;
};

class FrameReader {
 public:
  enum class Result { kNeedMore, kProtocolError, kStopped };

  FrameReader();
  ~FrameReader();
  FrameReader(const FrameReader&) = delete;
  FrameReader& operator=(const FrameReader&) = delete;

  // Decodes as much of `in` as forms chunks, calling on_chunk(const FrameChunk&) -> bool for each;
  // returning false stops decoding (the rest of the input is dropped).
  template <typename Fn>
  Result feed(std::span<const uint8_t> in, Fn&& on_chunk);

  // After feed() stopped at the end of a frame: every byte fed after that frame — read ahead into
  // the decoder's buffer or not read at all — handed back in order, and the decoder emptied, so
  // the caller can put something in front of them. (The decoder only reads ahead within one
  // feed: whatever follows a frame that ended in this call lies in this call's input.)
  std::span<const uint8_t> take_rest();

  // No partial frame buffered: the reader can serve another connection.
  bool at_boundary() const { return pending_ == 0 && !in_frame_; }

 private:
  static ssize_t recv_cb(uint8_t* buf, size_t len, int flags, void* user_data);
  // wslay reports a frame only once payload bytes arrive, so a header declaring 2 GiB would go
  // unanswered until the first of them. When the input ends with a complete header (which wslay
  // has already validated), this builds a chunk for it with no data, so limits on the declared
  // length apply at once. `in` is the input of this feed; the header's first bytes may have come
  // in an earlier one and are kept in head_.
  bool header_only(std::span<const uint8_t> in, FrameChunk& out);

  wslay_frame_context_ptr ctx_ = nullptr;
  const uint8_t* in_ = nullptr;
  const uint8_t* in_begin_ = nullptr;  // start of the input of the current feed()
  size_t in_len_ = 0;
  uint64_t pending_ = 0;          // bytes fed but not yet accounted to a finished frame
  uint64_t frame_remaining_ = 0;  // payload bytes of the current frame not yet delivered
  bool in_frame_ = false;
  uint8_t head_[14];  // the next frame's header bytes so far (max header: 2 + 8 + 4 mask)
};

// Per-worker pool of readers.
class FrameReaderPool {
 public:
  ~FrameReaderPool();
  FrameReader* acquire();
  // Returns a reader at a boundary to the pool; a reader mid-frame is destroyed (its state is that
  // of a dead connection).
  void release(FrameReader* r);
  size_t idle() const { return free_.size(); }

 private:
  std::vector<FrameReader*> free_;
};

template <typename Fn>
FrameReader::Result FrameReader::feed(std::span<const uint8_t> in, Fn&& on_chunk) {
  in_ = in_begin_ = in.data();
  in_len_ = in.size();
  pending_ += in.size();
  while (true) {
    wslay_frame_iocb iocb{};
    ssize_t r = wslay_frame_recv(ctx_, &iocb);
    if (r == WSLAY_ERR_WANT_READ) {
      if (in_frame_ || pending_ == 0) return Result::kNeedMore;
      // The input ended inside the next frame's header, or right after it.
      FrameChunk h;
      if (!header_only(in, h)) return Result::kNeedMore;
      return on_chunk(h) ? Result::kNeedMore : Result::kStopped;
    }
    if (r < 0) return Result::kProtocolError;
    FrameChunk c;
    c.opcode = iocb.opcode;
    c.rsv = iocb.rsv;
    c.fin = iocb.fin;
    c.masked = iocb.mask;
    c.payload_length = iocb.payload_length;
    c.frame_start = !in_frame_;
    if (!in_frame_) {
      in_frame_ = true;
      frame_remaining_ = iocb.payload_length;
    }
    frame_remaining_ -= iocb.data_length;
    c.frame_end = frame_remaining_ == 0;
    if (c.frame_end) {
      in_frame_ = false;
      // wslay insists on minimal length encoding, so the header size follows from the length.
      uint64_t header = 2 +
                        (iocb.payload_length < 126     ? 0
                         : iocb.payload_length < 65536 ? 2
                                                       : 8) +
                        (iocb.mask ? 4 : 0);
      pending_ -= header + iocb.payload_length;
    }
    // wslay unmasks in place inside its own (non-const) input buffer.
    c.data = {const_cast<uint8_t*>(iocb.data), iocb.data_length};
    if (!on_chunk(c)) return Result::kStopped;
  }
}

}  // namespace ringcast::websocket

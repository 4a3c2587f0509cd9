#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "ringcast/websocket/frame_encoder.h"
#include "ringcast/websocket/frame_reader.h"

using namespace ringcast;
using namespace ringcast::websocket;

namespace {

// A masked client frame, as a browser would send it.
std::vector<uint8_t> client_frame(uint8_t opcode, const std::string& payload, bool fin = true,
                                  uint8_t rsv = 0) {
  std::vector<uint8_t> f;
  f.push_back(static_cast<uint8_t>((fin ? 0x80 : 0) | (rsv << 4) | opcode));
  size_t n = payload.size();
  if (n < 126) {
    f.push_back(static_cast<uint8_t>(0x80 | n));
  } else if (n < 65536) {
    f.push_back(0x80 | 126);
    f.push_back(static_cast<uint8_t>(n >> 8));
    f.push_back(static_cast<uint8_t>(n));
  } else {
    f.push_back(0x80 | 127);
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<uint8_t>(n >> (8 * i)));
  }
  const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
  f.insert(f.end(), mask, mask + 4);
  for (size_t i = 0; i < n; ++i) f.push_back(static_cast<uint8_t>(payload[i]) ^ mask[i % 4]);
  return f;
}

struct Collected {
  std::vector<std::string> messages;
  std::string current;
  std::vector<uint8_t> opcodes;
};

FrameReader::Result feed(FrameReader& r, const std::vector<uint8_t>& bytes, Collected& out) {
  return r.feed(bytes, [&](const FrameChunk& c) {
    if (c.frame_start) out.opcodes.push_back(c.opcode);
    out.current.append(reinterpret_cast<const char*>(c.data.data()), c.data.size());
    if (c.frame_end) {
      out.messages.push_back(out.current);
      out.current.clear();
    }
    return true;
  });
}

}  // namespace

TEST(FrameEncoder, HeaderSizesAndBytes) {
  for (size_t n : {0u, 1u, 125u, 126u, 65535u, 65536u, 200000u}) {
    std::string payload(n, 'x');
    engine::FrameRef f(encode_frame(Opcode::kBinary, payload));
    ASSERT_EQ(f->size(), frame_header_size(n) + n) << n;
    EXPECT_EQ(f->data()[0], 0x82);
    EXPECT_EQ(f->data()[1] & 0x80, 0) << "server frames are unmasked";
  }
  engine::FrameRef close(encode_close(1001, "bye"));
  ASSERT_EQ(close->size(), 2u + 5u);
  EXPECT_EQ(close->data()[0], 0x88);
  EXPECT_EQ(close->data()[2], 0x03);
  EXPECT_EQ(close->data()[3], 0xE9);
}

TEST(FrameReader, DecodesWholeAndSplitInput) {
  std::vector<uint8_t> stream;
  std::vector<std::string> payloads = {"", "hello", std::string(300, 'a'), std::string(70000, 'b')};
  for (auto& p : payloads) {
    auto f = client_frame(0x1, p);
    stream.insert(stream.end(), f.begin(), f.end());
  }
  std::mt19937 rng(7);
  for (int round = 0; round < 20; ++round) {
    FrameReader r;
    Collected out;
    size_t pos = 0;
    while (pos < stream.size()) {
      size_t n = std::min<size_t>(stream.size() - pos, 1 + rng() % 5000);
      std::vector<uint8_t> piece(stream.begin() + pos, stream.begin() + pos + n);
      ASSERT_EQ(feed(r, piece, out), FrameReader::Result::kNeedMore);
      pos += n;
    }
    EXPECT_EQ(out.messages, payloads);
    EXPECT_TRUE(r.at_boundary());
  }
}

TEST(FrameReader, BoundaryTracking) {
  FrameReader r;
  Collected out;
  auto f = client_frame(0x2, "abcdef");
  std::vector<uint8_t> first(f.begin(), f.begin() + 1);  // half a header
  std::vector<uint8_t> rest(f.begin() + 1, f.end());
  feed(r, first, out);
  EXPECT_FALSE(r.at_boundary());
  feed(r, rest, out);
  EXPECT_TRUE(r.at_boundary());
  ASSERT_EQ(out.messages.size(), 1u);
  EXPECT_EQ(out.messages[0], "abcdef");
}

TEST(FrameReader, ReportsFlagsAndRejectsBadControlFrames) {
  FrameReader r;
  Collected out;
  std::vector<FrameChunk> chunks;
  auto f = client_frame(0x1, "x", /*fin=*/false, /*rsv=*/4);
  r.feed(f, [&](const FrameChunk& c) {
    chunks.push_back(c);
    return true;
  });
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_FALSE(chunks[0].fin);
  EXPECT_EQ(chunks[0].rsv, 4);
  EXPECT_TRUE(chunks[0].masked);

  FrameReader r2;
  auto ping = client_frame(0x9, std::string(126, 'p'));  // control frames carry <= 125 bytes
  EXPECT_EQ(feed(r2, ping, out), FrameReader::Result::kProtocolError);
  FrameReader r3;
  auto frag_ping = client_frame(0x9, "p", /*fin=*/false);
  EXPECT_EQ(feed(r3, frag_ping, out), FrameReader::Result::kProtocolError);
}

// A header alone is reported as soon as it is complete, so a declared length can be judged
// before any payload byte arrives (1009 for a 2 GiB frame at once).
TEST(FrameReader, ReportsAHeaderBeforeItsPayload) {
  const uint64_t two_gib = 1ull << 31;
  std::vector<uint8_t> head = {0x82, 0x80 | 127};
  for (int i = 7; i >= 0; --i) head.push_back(static_cast<uint8_t>(two_gib >> (8 * i)));
  const uint8_t mask[4] = {1, 2, 3, 4};
  head.insert(head.end(), mask, mask + 4);
  for (size_t split : {head.size(), size_t{1}, size_t{5}, size_t{13}}) {
    FrameReader r;
    std::vector<FrameChunk> chunks;
    auto collect = [&](const FrameChunk& c) {
      chunks.push_back(c);
      return true;
    };
    std::vector<uint8_t> first(head.begin(), head.begin() + split);
    std::vector<uint8_t> rest(head.begin() + split, head.end());
    EXPECT_EQ(r.feed(first, collect), FrameReader::Result::kNeedMore);
    if (!rest.empty()) {
      EXPECT_EQ(r.feed(rest, collect), FrameReader::Result::kNeedMore);
    }
    ASSERT_EQ(chunks.size(), 1u) << "split at " << split;
    EXPECT_TRUE(chunks[0].frame_start);
    EXPECT_FALSE(chunks[0].frame_end);
    EXPECT_EQ(chunks[0].opcode, 0x2);
    EXPECT_TRUE(chunks[0].fin);
    EXPECT_TRUE(chunks[0].masked);
    EXPECT_EQ(chunks[0].payload_length, two_gib);
    EXPECT_TRUE(chunks[0].data.empty());
    EXPECT_FALSE(r.at_boundary());
    // Payload that follows continues the same frame.
    std::vector<uint8_t> payload = {'a' ^ 1, 'b' ^ 2};
    EXPECT_EQ(r.feed(payload, collect), FrameReader::Result::kNeedMore);
    ASSERT_EQ(chunks.size(), 2u);
    EXPECT_FALSE(chunks[1].frame_start);
    EXPECT_EQ(std::string(chunks[1].data.begin(), chunks[1].data.end()), "ab");
  }
  // A frame header followed by its whole payload in one piece is still one chunk, and a header
  // split from a short payload arrives as header, then data, with the frame ending on the data.
  FrameReader r;
  Collected out;
  auto frame = client_frame(0x1, "hello");
  std::vector<uint8_t> hdr(frame.begin(), frame.begin() + 6), body(frame.begin() + 6, frame.end());
  feed(r, hdr, out);
  feed(r, body, out);
  ASSERT_EQ(out.messages.size(), 1u);
  EXPECT_EQ(out.messages[0], "hello");
  EXPECT_EQ(out.opcodes.size(), 1u);
  EXPECT_TRUE(r.at_boundary());
}

TEST(FrameReaderPool, ReusesCleanReadersOnly) {
  FrameReaderPool pool;
  FrameReader* a = pool.acquire();
  pool.release(a);
  EXPECT_EQ(pool.idle(), 1u);
  FrameReader* b = pool.acquire();
  EXPECT_EQ(a, b);
  Collected out;
  std::vector<uint8_t> half = {0x81};
  feed(*b, half, out);
  pool.release(b);  // mid-frame: destroyed, not pooled
  EXPECT_EQ(pool.idle(), 0u);
}

TEST(SharedFrame, ReferenceCountingReturnsToPool) {
  engine::SharedFrame::trim_this_thread();
  engine::SharedFrame* f = engine::SharedFrame::allocate(100);
  f->add_ref(2);
  EXPECT_EQ(f->refs(), 3u);
  f->release();
  f->release();
  EXPECT_EQ(engine::SharedFrame::pooled_bytes_this_thread(), 0u);
  f->release();
  EXPECT_EQ(engine::SharedFrame::pooled_bytes_this_thread(), 256u);
  engine::SharedFrame* g = engine::SharedFrame::allocate(200);
  EXPECT_EQ(g, f) << "same size class is reused";
  g->release();
  engine::SharedFrame::trim_this_thread();
}

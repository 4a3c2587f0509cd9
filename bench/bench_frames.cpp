// Server frame encoding (wslay into a pooled SharedFrame) and client frame decoding (FrameReader).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ringcast/engine/shared_frame.h"
#include "ringcast/websocket/frame_encoder.h"
#include "ringcast/websocket/frame_reader.h"

using namespace ringcast;
using namespace ringcast::websocket;

namespace {

std::vector<uint8_t> payload_of(size_t n) {
  std::vector<uint8_t> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>('a' + i % 26);
  return p;
}

// A masked client frame, as a browser would send it (same layout as tests/unit/frame_codec_test).
void append_client_frame(std::vector<uint8_t>& f, uint8_t opcode,
                         std::span<const uint8_t> payload) {
  f.push_back(static_cast<uint8_t>(0x80 | opcode));
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
  for (size_t i = 0; i < n; ++i) f.push_back(payload[i] ^ mask[i % 4]);
}

// Encode one text frame into a fresh SharedFrame and drop it (pool hit once warm, except above the
// largest size class: a 64 KiB payload plus its 10-byte header no longer fits 64 KiB).
void BM_EncodeFrame(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  std::vector<uint8_t> payload = payload_of(n);
  std::span<const uint8_t> in(payload);
  for (auto _ : state) {
    benchmark::DoNotOptimize(in);
    engine::SharedFrame* f = encode_frame(Opcode::kText, in);
    benchmark::DoNotOptimize(f->data());
    benchmark::ClobberMemory();
    f->release();
  }
  engine::FrameRef check(encode_frame(Opcode::kText, in));
  if (check->size() != frame_header_size(n) + n) state.SkipWithError("bad frame size");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodeFrame)->Arg(20)->Arg(1024)->Arg(65526)->Arg(65536);

// Decode a receive buffer holding many masked client frames (about 256 KiB of payload).
void BM_DecodeFrames(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const size_t frames = std::max<size_t>(4, (256 * 1024) / n);
  std::vector<uint8_t> payload = payload_of(n);
  std::vector<uint8_t> wire;
  for (size_t i = 0; i < frames; ++i) append_client_frame(wire, 0x1, payload);

  FrameReader reader;
  uint64_t delivered = 0;
  uint64_t ended = 0;
  uint64_t sum = 0;
  for (auto _ : state) {
    auto r = reader.feed(wire, [&](const FrameChunk& c) {
      delivered += c.data.size();
      ended += c.frame_end;
      if (!c.data.empty()) sum += c.data[c.data.size() - 1];  // touch the unmasked bytes
      return true;
    });
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(sum);
    if (r != FrameReader::Result::kNeedMore || !reader.at_boundary()) {
      state.SkipWithError("decode failed");
      break;
    }
  }
  if (delivered != state.iterations() * frames * n || ended != state.iterations() * frames)
    state.SkipWithError("wrong payload byte count");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * frames * n));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * frames));
  state.counters["frames_per_buf"] = static_cast<double>(frames);
  state.counters["wire_bytes"] = static_cast<double>(wire.size());
}
BENCHMARK(BM_DecodeFrames)->Arg(20)->Arg(1024)->Arg(65536);

}  // namespace

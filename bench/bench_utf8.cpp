// UTF-8 validation of text message payloads.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>

#include "ringcast/websocket/utf8_validator.h"

using namespace ringcast::websocket;

namespace {

// Repeats whole characters from `alphabet` up to exactly n bytes (ASCII pads the last few bytes).
std::string make_text(size_t n, bool mixed) {
  // 1-, 2-, 3- and 4-byte characters: a, é, ß, €, 世, 界, 😀, 🎉, plus ASCII punctuation.
  static const std::string_view kMixed[] = {
      "a", "\xC3\xA9",        "\xC3\x9F",     "\xE2\x82\xAC",
      " ", "\xE4\xB8\x96",    "\xE7\x95\x8C", "\xF0\x9F\x98\x80",
      "!", "\xF0\x9F\x8E\x89"};
  static const std::string_view kAscii = "The quick brown fox jumps over the lazy dog. ";
  std::string s;
  s.reserve(n);
  size_t i = 0;
  if (mixed) {
    while (true) {
      std::string_view c = kMixed[i++ % std::size(kMixed)];
      if (s.size() + c.size() > n) break;
      s.append(c);
    }
  }
  while (s.size() < n) s.push_back(kAscii[i++ % kAscii.size()]);
  return s;
}

void run(benchmark::State& state, bool mixed) {
  const size_t n = static_cast<size_t>(state.range(0));
  const std::string text = make_text(n, mixed);
  const uint8_t* p = reinterpret_cast<const uint8_t*>(text.data());
  if (!is_valid_utf8(p, n)) {
    state.SkipWithError("input is not valid UTF-8");
    return;
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(p);
    bool ok = is_valid_utf8(p, n);
    benchmark::DoNotOptimize(ok);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n));
}

void BM_Utf8Ascii(benchmark::State& state) {
  run(state, false);
}
void BM_Utf8Mixed(benchmark::State& state) {
  run(state, true);
}
BENCHMARK(BM_Utf8Ascii)->Arg(20)->Arg(4 << 10)->Arg(1 << 20);
BENCHMARK(BM_Utf8Mixed)->Arg(20)->Arg(4 << 10)->Arg(1 << 20);

// Mixed 1 MiB text fed in 4 KiB receive-buffer pieces (pieces split characters; the validator
// carries state across them).
void BM_Utf8MixedStreamed4K(benchmark::State& state) {
  const size_t n = 1 << 20;
  const size_t piece = 4096 - 3;  // not a multiple of any character length
  const std::string text = make_text(n, true);
  const uint8_t* p = reinterpret_cast<const uint8_t*>(text.data());
  Utf8Validator v;
  for (auto _ : state) {
    v.reset();
    bool ok = true;
    for (size_t off = 0; off < n && ok; off += piece)
      ok = v.feed(p + off, std::min(piece, n - off));
    ok = ok && v.complete();
    benchmark::DoNotOptimize(ok);
    if (!ok) {
      state.SkipWithError("streamed validation failed");
      break;
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n));
}
BENCHMARK(BM_Utf8MixedStreamed4K);

}  // namespace

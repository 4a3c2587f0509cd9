// Per-recipient cost of fanning one encoded frame out by reference, SharedFrame pool churn, and
// room history pushes that hold frame references.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "ringcast/engine/shared_frame.h"
#include "ringcast/hub/history.h"

using namespace ringcast;

namespace {

constexpr size_t kEventBytes = 96;  // a typical small JSON event frame

// One frame, one reference per recipient (each queued in that recipient's send queue), then every
// recipient drops its reference after writing; the last release returns the buffer to the pool.
void BM_FanoutRefs(benchmark::State& state) {
  const size_t recipients = static_cast<size_t>(state.range(0));
  std::vector<engine::SharedFrame*> queues(recipients);
  for (auto _ : state) {
    engine::SharedFrame* f = engine::SharedFrame::allocate(kEventBytes);
    std::memset(f->data(), 'x', kEventBytes);
    f->set_size(kEventBytes);
    for (size_t i = 0; i < recipients; ++i) {
      f->add_ref();
      queues[i] = f;
    }
    benchmark::ClobberMemory();
    for (size_t i = 0; i < recipients; ++i) queues[i]->release();
    if (f->refs() != 1) {
      state.SkipWithError("reference count off");
      break;
    }
    f->release();  // the sender's reference
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * recipients));
  state.counters["ns_per_recipient"] =
      benchmark::Counter(static_cast<double>(state.iterations() * recipients),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_FanoutRefs)->Arg(1000);

// Same, but all references taken in one add_ref(N) (what a fan-out can do when it knows N first).
void BM_FanoutBulkRef(benchmark::State& state) {
  const size_t recipients = static_cast<size_t>(state.range(0));
  std::vector<engine::SharedFrame*> queues(recipients);
  for (auto _ : state) {
    engine::SharedFrame* f = engine::SharedFrame::allocate(kEventBytes);
    f->set_size(kEventBytes);
    f->add_ref(static_cast<uint32_t>(recipients));
    for (size_t i = 0; i < recipients; ++i) queues[i] = f;
    benchmark::ClobberMemory();
    for (size_t i = 0; i < recipients; ++i) queues[i]->release();
    f->release();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * recipients));
  state.counters["ns_per_recipient"] =
      benchmark::Counter(static_cast<double>(state.iterations() * recipients),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_FanoutBulkRef)->Arg(1000);

// allocate + release of `batch` buffers of the given capacity: the thread-local free-list hit path
// (batch > 1 keeps several frames in flight, as a busy send queue does).
void BM_SharedFrameChurn(benchmark::State& state) {
  const size_t cap = static_cast<size_t>(state.range(0));
  const size_t batch = static_cast<size_t>(state.range(1));
  std::vector<engine::SharedFrame*> held(batch);
  for (auto _ : state) {
    for (size_t i = 0; i < batch; ++i) {
      held[i] = engine::SharedFrame::allocate(cap);
      held[i]->data()[0] = static_cast<uint8_t>(i);
    }
    benchmark::ClobberMemory();
    for (size_t i = 0; i < batch; ++i) held[i]->release();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch));
}
BENCHMARK(BM_SharedFrameChurn)
    ->ArgNames({"cap", "batch"})
    ->Args({64, 1})
    ->Args({1024, 1})
    ->Args({16 << 10, 1})
    ->Args({1024, 64});

constexpr size_t kHistory = 100;  // Config::history_size default

engine::SharedFrame* frame_with(size_t n, char fill) {
  engine::SharedFrame* f = engine::SharedFrame::allocate(n);
  std::memset(f->data(), fill, n);
  f->set_size(n);
  return f;
}

// Steady-state history push as Hub::home_publish/commit_publish do it: a record with the user id
// and references to this message's payload and event frames, overwriting (and releasing) the
// oldest.
void BM_HistoryPushFreshFrames(benchmark::State& state) {
  hub::HistoryRing ring(kHistory);
  uint64_t seq = 0;
  auto push_one = [&] {
    hub::HistoryRecord rec;
    rec.seq = ++seq;
    rec.ts_ms = 1700000000000 + static_cast<int64_t>(seq);
    rec.sender = seq & 1023;
    rec.user = "u123";
    rec.payload = engine::FrameRef(frame_with(1 + 4 + 40, 'p'));
    rec.payload_offset = 5;
    rec.event = engine::FrameRef(frame_with(kEventBytes, 'e'));
    ring.push(std::move(rec));
  };
  for (size_t i = 0; i < kHistory; ++i) push_one();  // full ring: every push below overwrites
  for (auto _ : state) {
    push_one();
    benchmark::ClobberMemory();
  }
  uint64_t newest = 0;
  ring.newest_first(0, 1, [&](const hub::HistoryRecord& r) { newest = r.seq; });
  if (newest != seq || ring.size() != kHistory) state.SkipWithError("history ring lost records");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HistoryPushFreshFrames);

// The ring and reference-count part alone: every record references the same two frames.
void BM_HistoryPushSharedFrames(benchmark::State& state) {
  hub::HistoryRing ring(kHistory);
  engine::FrameRef payload(frame_with(1 + 4 + 40, 'p'));
  engine::FrameRef event(frame_with(kEventBytes, 'e'));
  uint64_t seq = 0;
  for (auto _ : state) {
    hub::HistoryRecord rec;
    rec.seq = ++seq;
    rec.sender = seq & 1023;
    rec.user = "u123";
    rec.payload = payload;  // add_ref
    rec.payload_offset = 5;
    rec.event = event;  // add_ref
    ring.push(std::move(rec));
    benchmark::ClobberMemory();
  }
  const uint32_t expect = 1 + static_cast<uint32_t>(std::min<uint64_t>(seq, kHistory));
  if (payload->refs() != expect || event->refs() != expect)
    state.SkipWithError("reference count off");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HistoryPushSharedFrames);

}  // namespace

// Cross-thread hand-off through the SPSC ring and the per-core-pair Mailbox: producer→consumer
// throughput with batch drain, and ping-pong round-trip latency over two rings.
//
// Each benchmark starts one helper thread and both sides busy-wait (yielding only after a long
// spin), so on a 2-core machine the numbers are only meaningful when nothing else is running.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include "ringcast/engine/mailbox.h"
#include "ringcast/engine/spsc_ring.h"
#include "ringcast/hub/envelope.h"

using namespace ringcast;

namespace {

// Spin-wait step: pause, and after a while yield, so a waiting side cannot hog a core the other
// side needs (keeps each iteration bounded when the machine is busy).
struct Backoff {
  unsigned spins = 0;
  void pause() {
    if (++spins < 4096) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#elif defined(__aarch64__)
      asm volatile("yield");
#endif
    } else {
      std::this_thread::yield();
    }
  }
  void reset() {
    spins = 0;
  }
};

template <typename Fn>
void spin_until(Fn&& done) {
  Backoff b;
  while (!done()) b.pause();
}

constexpr uint64_t kItemsPerIteration = 1 << 16;
constexpr size_t kRingCapacity = 16384;  // hub's ring_capacity() for <= 4 cores

// The producer thread sends `target` items in total, released one iteration at a time, so both
// threads run the same bounded amount of work per benchmark iteration.
struct Pacer {
  std::atomic<uint64_t> target{0};
  std::atomic<bool> stop{false};
};

hub::Envelope envelope_for(uint64_t i) {
  hub::Envelope e;
  e.kind = hub::Envelope::Kind::kRoomFrame;
  e.session = i;
  return e;
}

// SpscRing<Envelope>: producer pushes (spinning when full), consumer drains up to `batch` per call.
void BM_SpscRingThroughput(benchmark::State& state) {
  const size_t batch = static_cast<size_t>(state.range(0));
  engine::SpscRing<hub::Envelope> ring(kRingCapacity);
  Pacer pacer;
  std::thread producer([&] {
    uint64_t sent = 0;
    Backoff idle;
    while (true) {
      uint64_t target = pacer.target.load(std::memory_order_acquire);
      if (sent == target) {
        if (pacer.stop.load(std::memory_order_acquire)) return;
        idle.pause();
        continue;
      }
      idle.reset();
      for (; sent < target; ++sent) spin_until([&] { return ring.push(envelope_for(sent)); });
    }
  });

  uint64_t received = 0;
  uint64_t checksum = 0;
  uint64_t drains = 0;
  bool in_order = true;
  Backoff wait;
  for (auto _ : state) {
    const uint64_t goal = received + kItemsPerIteration;
    pacer.target.store(goal, std::memory_order_release);
    while (received < goal) {
      size_t n = ring.drain(batch, [&](hub::Envelope& e) {
        in_order &= e.session == received;
        checksum += e.session;
        ++received;
      });
      if (n == 0) {
        wait.pause();
      } else {
        wait.reset();
        ++drains;
      }
    }
    benchmark::DoNotOptimize(checksum);
  }
  pacer.stop.store(true, std::memory_order_release);
  producer.join();
  if (!in_order) state.SkipWithError("items arrived out of order");
  state.SetItemsProcessed(static_cast<int64_t>(received));
  state.SetBytesProcessed(static_cast<int64_t>(received * sizeof(hub::Envelope)));
  state.counters["items_per_drain"] =
      drains ? static_cast<double>(received) / static_cast<double>(drains) : 0.0;
}
BENCHMARK(BM_SpscRingThroughput)->Arg(64)->Arg(4096)->UseRealTime();

// The same through Mailbox<Envelope> with 2 cores (core 0 → core 1), including the once-per-batch
// needs_wake() check the hub does after sending.
void BM_MailboxThroughput(benchmark::State& state) {
  const size_t batch = static_cast<size_t>(state.range(0));
  engine::Mailbox<hub::Envelope> mailbox(2, kRingCapacity);
  Pacer pacer;
  std::thread producer([&] {
    uint64_t sent = 0;
    uint64_t wakes = 0;
    Backoff idle;
    while (true) {
      uint64_t target = pacer.target.load(std::memory_order_acquire);
      if (sent == target) {
        if (pacer.stop.load(std::memory_order_acquire)) break;
        idle.pause();
        continue;
      }
      idle.reset();
      while (sent < target) {
        // A burst of up to 64 sends, then one wake check, as a hub core does per loop pass.
        uint64_t burst_end = std::min(target, sent + 64);
        for (; sent < burst_end; ++sent)
          spin_until([&] { return mailbox.send(0, 1, envelope_for(sent)); });
        wakes += mailbox.needs_wake(1);
      }
    }
    benchmark::DoNotOptimize(wakes);
  });

  uint64_t received = 0;
  uint64_t checksum = 0;
  bool in_order = true;
  Backoff wait;
  for (auto _ : state) {
    const uint64_t goal = received + kItemsPerIteration;
    pacer.target.store(goal, std::memory_order_release);
    while (received < goal) {
      size_t n = mailbox.drain(1, batch, [&](hub::Envelope& e) {
        in_order &= e.session == received;
        checksum += e.session;
        ++received;
      });
      if (n == 0) {
        wait.pause();
      } else {
        wait.reset();
      }
    }
    benchmark::DoNotOptimize(checksum);
  }
  pacer.stop.store(true, std::memory_order_release);
  producer.join();
  if (!in_order) state.SkipWithError("items arrived out of order");
  state.SetItemsProcessed(static_cast<int64_t>(received));
  state.SetBytesProcessed(static_cast<int64_t>(received * sizeof(hub::Envelope)));
}
BENCHMARK(BM_MailboxThroughput)->Arg(64)->Arg(4096)->UseRealTime();

// Ping-pong: this thread pushes a token into ring A, the echo thread drains A and pushes it back
// into ring B, this thread waits for it. One benchmark iteration is kRoundTrips round trips, timed
// manually; rtt_ns is the mean time of one round trip.
void BM_SpscPingPong(benchmark::State& state) {
  constexpr uint64_t kRoundTrips = 1000;
  constexpr uint64_t kStop = ~uint64_t{0};
  engine::SpscRing<uint64_t> ping(64);
  engine::SpscRing<uint64_t> pong(64);
  std::thread echo([&] {
    bool running = true;
    Backoff idle;
    while (running) {
      size_t n = ping.drain(64, [&](uint64_t& v) {
        if (v == kStop) {
          running = false;
          return;
        }
        spin_until([&] { return pong.push(v); });
      });
      if (n == 0) {
        idle.pause();
      } else {
        idle.reset();
      }
    }
  });

  // One round trip first, so the echo thread is known to be running before timing starts.
  auto round_trip = [&](uint64_t token) {
    spin_until([&] { return ping.push(token); });
    uint64_t got = kStop;
    spin_until([&] { return pong.drain(1, [&](uint64_t& v) { got = v; }) != 0; });
    return got;
  };
  bool ok = round_trip(0) == 0;
  uint64_t token = 1;
  double total_ns = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < kRoundTrips; ++i, ++token) ok &= round_trip(token) == token;
    auto t1 = std::chrono::steady_clock::now();
    double ns = std::chrono::duration<double, std::nano>(t1 - t0).count();
    total_ns += ns;
    state.SetIterationTime(ns * 1e-9);
  }
  spin_until([&] { return ping.push(kStop); });
  echo.join();
  if (!ok) state.SkipWithError("token mismatch");
  const double trips = static_cast<double>(state.iterations()) * kRoundTrips;
  state.SetItemsProcessed(static_cast<int64_t>(trips));
  state.counters["rtt_ns"] = trips > 0 ? total_ns / trips : 0.0;
}
BENCHMARK(BM_SpscPingPong)->UseManualTime();

}  // namespace

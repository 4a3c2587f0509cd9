// The echo and relay scenarios: every message comes back (echoed, or relayed by the pair's
// other side) and its round trip is timed.
#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "load/http_proto.h"
#include "load/payload.h"
#include "load/workload_util.h"

namespace ringcast::load::workload_util {

namespace {

// ---------------------------------------------------------------------------------------------
// echo and relay: senders send, the reply comes back on the same connection (echo: from the
// server's /echo; relay: from the pair's B connection through the server) and is checked.

class RoundTripWorkload final : public ScenarioWorkload {
 public:
  enum Role : uint8_t { kSender = 0, kReflector = 1 };

  RoundTripWorkload(const Options& o, Run& run, bool relay)
      : o_(o), run_(run), relay_(relay), per_(static_cast<size_t>(o.threads)) {
    senders_ = relay ? o.pairs : o.connections;
    for (auto& p : per_) {
      p.buf.resize(o.size);
      p.node_replies.assign(o.urls.size(), 0);
    }
  }

  uint8_t role(uint64_t gid) const override {
    return relay_ && gid >= senders_ ? kReflector : kSender;
  }

  uint32_t node(uint64_t gid) const override { return connection_node(o_, gid); }

  std::string target(uint64_t gid) const override {
    if (!relay_) return o_.url.target();
    uint64_t pair = gid >= senders_ ? gid - senders_ : gid;
    return append_param(relay_target(o_.url, pair), "echo=0");
  }

  void on_run_start(Worker& w, uint64_t now) override {
    Per& p = per_[static_cast<size_t>(w.index())];
    p.senders.clear();
    auto& conns = w.conns();
    for (size_t i = 0; i < conns.size(); ++i)
      if (conns[i].role == kSender && conns[i].state == ConnState::kOpen)
        p.senders.push_back(static_cast<uint32_t>(i));
    if (o_.rate > 0) {
      p.sched.init(o_.rate, senders_, p.senders.size(), w.index());
    } else {
      for (uint32_t i : p.senders)
        for (uint32_t k = 0; k < o_.pipeline; ++k) send(w, p, conns[i], now);
    }
  }

  uint64_t on_tick(Worker& w, uint64_t now) override {
    if (o_.rate <= 0) return UINT64_MAX;
    Per& p = per_[static_cast<size_t>(w.index())];
    auto& conns = w.conns();
    return p.sched.run(run_.t_run_start.load(std::memory_order_relaxed),
                       run_.t_run_end.load(std::memory_order_relaxed), now, p.senders.size(),
                       [&](size_t k, uint64_t t) {
                         Conn& c = conns[p.senders[k]];
                         w.hist[2].record(now - t);
                         if (c.state == ConnState::kOpen)
                           send(w, p, c, t);
                         else
                           ++p.skipped;
                       });
  }

  void on_message(Worker& w, Conn& c, uint8_t op, const uint8_t* data, size_t n,
                  uint64_t now) override {
    Per& p = per_[static_cast<size_t>(w.index())];
    if (c.role == kReflector) {
      reflect(w, p, c, op, data, n);
      return;
    }
    if (op != data_opcode(o_) || n != o_.size) {
      w.error(ErrorKind::kPayload, "connection " + std::to_string(c.gid) + ": got " +
                                       (op == opcode::kText ? "text" : "binary") + " message of " +
                                       std::to_string(n) + " bytes, sent " +
                                       (o_.text ? "text" : "binary") + " of " +
                                       std::to_string(o_.size));
      return;
    }
    PayloadReader r(data, n, o_.text);
    uint64_t raw = 0, t = 0;
    if (!r.u64(raw) || !r.u64(t)) {
      w.error(ErrorKind::kPayload, "connection " + std::to_string(c.gid) + ": malformed header");
      return;
    }
    uint64_t seq = raw & ~kReflectedBit;
    if (seq < c.expect_seq || c.inflight == 0) {
      w.error(ErrorKind::kDuplicate, "connection " + std::to_string(c.gid) + ": message " +
                                         std::to_string(seq) + " came back again");
      return;
    }
    if (seq != c.expect_seq)
      w.error(ErrorKind::kOrder, "connection " + std::to_string(c.gid) + ": expected message " +
                                     std::to_string(c.expect_seq) + ", got " + std::to_string(seq));
    size_t bad = check_padding(data, r.offset(), n, payload_salt(c.gid, seq), o_.text);
    if (bad != n)
      w.error(ErrorKind::kPayload, "connection " + std::to_string(c.gid) + ": message " +
                                       std::to_string(seq) + " differs at byte " +
                                       std::to_string(bad));
    w.record(0, now > t ? now - t : 0);
    c.expect_seq = seq + 1;
    --c.inflight;
    --p.outstanding;
    ++p.replies;
    ++p.node_replies[c.node];
    if (o_.rate <= 0 && run_.current() == Phase::kRun) send(w, p, c, now);
  }

  void on_close(Worker& w, Conn& c) override {
    Per& p = per_[static_cast<size_t>(w.index())];
    p.outstanding -= c.inflight;
    p.lost_on_close += c.inflight;
    c.inflight = 0;
  }

  bool drained(Worker& w) override { return per_[static_cast<size_t>(w.index())].outstanding == 0; }

  void finish(std::vector<std::unique_ptr<Worker>>& workers, double seconds, Results& r) override {
    uint64_t sent = 0, replies = 0, outstanding = 0, reflected = 0, ignored = 0, skipped = 0;
    for (auto& p : per_) {
      sent += p.sent;
      replies += p.replies;
      outstanding += p.outstanding + p.lost_on_close;
      reflected += p.reflected;
      ignored += p.ignored;
      skipped += p.skipped;
    }
    if (relay_) {
      add_metric(r, "pairs", "pairs", static_cast<double>(o_.pairs), "");
    } else {
      add_metric(r, "connections", "connections", static_cast<double>(o_.connections), "");
    }
    add_metric(r, "message_size_bytes", "message size", static_cast<double>(o_.size), "bytes");
    if (o_.rate > 0) {
      add_metric(r, "target_rate_msg_per_s", "target rate", o_.rate, "msg/s");
    } else {
      add_metric(r, "pipeline", "pipeline", o_.pipeline, "msg/connection");
    }
    add_metric(r, "duration_s", "duration", seconds, "s");
    add_metric(r, "messages_sent", "messages sent", static_cast<double>(sent), "");
    add_metric(r, "messages_returned", "messages returned", static_cast<double>(replies), "");
    if (relay_) {
      add_metric(r, "relayed_by_b", "relayed by B", static_cast<double>(reflected), "");
      add_metric(r, "own_echoes_at_b", "own echoes at B", static_cast<double>(ignored), "");
    }
    add_metric(r, "throughput_msg_per_s", "throughput", seconds > 0 ? replies / seconds : 0,
               "msg/s");
    add_metric(r, "throughput_mib_per_s", "payload throughput",
               seconds > 0 ? replies * static_cast<double>(o_.size) / seconds / 1048576.0 : 0,
               "MiB/s each way");
    if (skipped)
      add_metric(r, "skipped_sends", "skipped (closed conn)", static_cast<double>(skipped), "");
    r.loss = outstanding;
    if (outstanding)
      r.failures.push_back(
          std::to_string(outstanding) +
          " messages were never answered (connection closed, or not within --drain)");
    r.latency.push_back(merged(workers, 0, "round_trip", "round trip"));
    if (o_.rate > 0) r.latency.push_back(merged(workers, 2, "send_lag", "send lag (tool)"));
    for (size_t i = 0; i < r.per_url.size(); ++i) {
      uint64_t n = 0;
      for (auto& p : per_) n += p.node_replies[i];
      // relay: replies are counted at A, whose URL this is.
      r.per_url[i].metrics.push_back(
          Metric{"messages_returned", "messages returned", static_cast<double>(n), ""});
    }
  }

 private:
  struct Per {
    std::vector<uint32_t> senders;
    Schedule sched;
    std::vector<uint8_t> buf;
    std::vector<uint8_t> relay_buf;
    std::vector<uint64_t> node_replies;  // replies per URL of the sender
    uint64_t outstanding = 0, sent = 0, replies = 0, reflected = 0, ignored = 0, skipped = 0;
    uint64_t lost_on_close = 0;  // in flight on a connection that closed
  };

  void send(Worker& w, Per& p, Conn& c, uint64_t t) {
    uint64_t seq = c.next_seq++;
    PayloadWriter wr(p.buf.data(), o_.text);
    wr.u64(seq);
    wr.u64(t);
    fill_padding(p.buf.data(), wr.offset(), p.buf.size(), payload_salt(c.gid, seq), o_.text);
    w.send_message(c, data_opcode(o_), p.buf.data(), p.buf.size());
    ++c.inflight;
    ++p.outstanding;
    ++p.sent;
  }

  // B side of a relay pair: sends A's message back with the "reflected" bit set; its own
  // reflections (a room that echoes to the sender) are ignored so nothing loops.
  void reflect(Worker& w, Per& p, Conn& c, uint8_t op, const uint8_t* data, size_t n) {
    PayloadReader r(data, n, o_.text);
    uint64_t raw = 0;
    if (!r.u64(raw)) {
      w.error(ErrorKind::kPayload, "relay B connection " + std::to_string(c.gid) +
                                       ": malformed message of " + std::to_string(n) + " bytes");
      return;
    }
    if (raw & kReflectedBit) {
      ++p.ignored;
      return;
    }
    p.relay_buf.assign(data, data + n);
    PayloadWriter wr(p.relay_buf.data(), o_.text);
    wr.u64(raw | kReflectedBit);
    w.send_message(c, op, p.relay_buf.data(), n);
    ++p.reflected;
  }

  const Options& o_;
  Run& run_;
  bool relay_;
  uint64_t senders_ = 0;
  std::vector<Per> per_;
};

}  // namespace

std::unique_ptr<ScenarioWorkload> make_round_trip(const Options& o, Run& run, bool relay) {
  return std::make_unique<RoundTripWorkload>(o, run, relay);
}

}  // namespace ringcast::load::workload_util

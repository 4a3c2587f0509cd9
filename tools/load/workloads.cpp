#include "load/workloads.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "load/http_proto.h"
#include "load/payload.h"
#include "load/workload_util.h"

namespace ringcast::load {

using namespace workload_util;

namespace {

// ---------------------------------------------------------------------------------------------
// broadcast: P publishers publish at a fixed total rate into one room, S subscribers check that
// every message of every publisher arrives once and in order, and measure publish->receipt latency
// per delivery and for the last subscriber to get each message.
//
// http-publish is the same with the P publishers being keep-alive HTTP connections that POST to
// the server API (/api/publish); their answers are checked (200, and for native rooms increasing
// sequence numbers) and timed (request -> response), and the subscribers speak the native
// protocol (join first) or raw.

class BroadcastWorkload final : public ScenarioWorkload {
  struct Per;

 public:
  enum Role : uint8_t { kPublisher = 0, kSubscriber = 1 };

  BroadcastWorkload(const Options& o, Run& run)
      : o_(o),
        run_(run),
        http_(o.scenario == Scenario::kHttpPublish),
        pubs_(o.publishers),
        subs_(o.subscribers),
        per_(static_cast<size_t>(o.threads)),
        pub_sent_(new std::atomic<uint64_t>[pubs_]),
        tracks_(static_cast<size_t>(subs_) * pubs_) {
    for (uint32_t i = 0; i < pubs_; ++i) pub_sent_[i].store(0);
    for (auto& p : per_) {
      p.buf.resize(o.size);
      p.node_deliveries.assign(o.urls.size(), 0);
    }
    // A delivery is "same node" when the subscriber's URL is the publisher's; API URL k counts as
    // the node of WebSocket URL k, so http-publish splits only with one --api per WebSocket URL.
    split_ = o.urls.size() > 1 && (!http_ || o.apis.size() == o.urls.size());
    pub_node_.resize(pubs_);
    for (uint32_t i = 0; i < pubs_; ++i)
      pub_node_[i] = static_cast<uint16_t>(connection_node(o, i));
    // Ring of per-message delivery counters, per publisher, covering ~10 s of publishing (at most
    // 4M slots in all); a message still incomplete when its slot is reused counts as incomplete.
    double per_pub_rate = o.rate / pubs_;
    uint64_t want = std::bit_ceil(static_cast<uint64_t>(std::max(256.0, per_pub_rate * 10)));
    uint64_t cap = std::bit_floor(std::max<uint64_t>(16, (uint64_t{1} << 22) / pubs_));
    ring_size_ = std::max<uint64_t>(16, std::min(want, cap));
    ring_.reset(new Slot[ring_size_ * pubs_]);
    if (http_) {
      std::string target = o.api.path;
      while (!target.empty() && target.back() == '/') target.pop_back();
      target += "/api/publish";
      for (const Url& api : o.apis)
        api_prefix_.push_back(http_post_prefix(api.host_header(), target, "apikey " + o.api_key));
      body_head_ = "{\"room\":" + json_string(o.room) +
                   (o.flow == Flow::kRaw ? ",\"kind\":\"raw\"" : "") + ",\"data\":";
      apis_.resize(pubs_);
      for (auto& a : apis_) a.t.resize(64);
    }
    native_head_ =
        "{\"op\":\"publish\",\"room\":" + json_string(o.room) + ",\"echo\":false,\"data\":";
  }

  uint8_t role(uint64_t gid) const override { return gid < pubs_ ? kPublisher : kSubscriber; }

  uint32_t node(uint64_t gid) const override { return connection_node(o_, gid); }

  bool is_http(uint64_t gid) const override { return http_ && gid < pubs_; }

  std::string target(uint64_t gid) const override {
    if (o_.flow == Flow::kRaw && gid < pubs_ && !o_.publisher_echo && !http_)
      return append_param(o_.url.target(), "echo=0");
    return o_.url.target();
  }

  // Game chat: every connection logs in first; native: every WebSocket connection joins the room
  // first (publishers must be members to publish). The run starts when all have been accepted.
  void on_open(Worker& w, Conn& c, uint64_t) override {
    if (o_.flow != Flow::kGamechat && (o_.flow != Flow::kNative || c.http)) return;
    Per& p = per_[static_cast<size_t>(w.index())];
    std::string login = o_.flow == Flow::kNative
                            ? "{\"op\":\"join\",\"room\":" + json_string(o_.room) + "}"
                            : "{\"action\":\"login\",\"token\":\"" + o_.token + "\"}";
    w.send_message(c, opcode::kText, reinterpret_cast<const uint8_t*>(login.data()), login.size());
    c.inflight = 1;  // awaiting the login reply
    ++p.awaiting_login;
  }

  bool ready(Worker& w) override {
    return per_[static_cast<size_t>(w.index())].awaiting_login == 0;
  }

  void on_close(Worker& w, Conn& c) override {
    Per& p = per_[static_cast<size_t>(w.index())];
    if (c.inflight) {
      c.inflight = 0;
      --p.awaiting_login;
    }
    if (c.http) {
      Api& a = apis_[c.gid];
      p.api_outstanding -= a.n;
      p.api_unanswered += a.n;
      a.n = 0;
    }
  }

  void on_run_start(Worker& w, uint64_t) override {
    Per& p = per_[static_cast<size_t>(w.index())];
    p.senders.clear();
    p.subscribers = 0;
    auto& conns = w.conns();
    for (size_t i = 0; i < conns.size(); ++i) {
      if (conns[i].role == kPublisher && conns[i].state == ConnState::kOpen)
        p.senders.push_back(static_cast<uint32_t>(i));
      if (conns[i].role == kSubscriber) ++p.subscribers;
    }
    p.sched.init(o_.rate, pubs_, p.senders.size(), w.index());
  }

  uint64_t on_tick(Worker& w, uint64_t now) override {
    Per& p = per_[static_cast<size_t>(w.index())];
    auto& conns = w.conns();
    return p.sched.run(run_.t_run_start.load(std::memory_order_relaxed),
                       run_.t_run_end.load(std::memory_order_relaxed), now, p.senders.size(),
                       [&](size_t k, uint64_t t) {
                         Conn& c = conns[p.senders[k]];
                         w.hist[2].record(now - t);
                         if (c.state == ConnState::kOpen)
                           publish(w, p, c, t);
                         else
                           ++p.skipped;
                       });
  }

  void on_message(Worker& w, Conn& c, uint8_t op, const uint8_t* data, size_t n,
                  uint64_t now) override {
    Per& p = per_[static_cast<size_t>(w.index())];
    if (c.inflight) {  // the game chat's login reply or the native join reply
      c.inflight = 0;
      --p.awaiting_login;
      std::string_view reply(reinterpret_cast<const char*>(data), n);
      bool native = o_.flow == Flow::kNative;
      if (reply.find(native ? "\"joined\"" : "\"info\"") == std::string_view::npos)
        w.error(ErrorKind::kHandshake, "connection " + std::to_string(c.gid) +
                                           (native ? ": join refused: " : ": login refused: ") +
                                           std::string(reply.substr(0, 200)));
      return;
    }
    if (c.role == kPublisher) {
      ++p.publisher_received;  // room traffic reaching a publisher is not checked
      return;
    }
    auto who = [&] { return subscriber_name(c); };
    uint32_t pub = 0;
    uint64_t seq = 0, t = 0;
    if (o_.flow != Flow::kRaw || http_) {
      // The profile forwards (livemap, raw via the API) or rebuilds (gamechat, native message
      // events) the JSON: find our three fields. Other messages (positions_sync of an earlier
      // run, ...) are counted, not checked.
      uint64_t pub64 = 0;
      if (op != opcode::kText || !json_uint(data, n, "\"load_seq\"", seq)) {
        ++p.other_messages;
        return;
      }
      if (!json_uint(data, n, "\"load_pub\"", pub64) || !json_uint(data, n, "\"load_t\"", t) ||
          pub64 >= pubs_) {
        w.error(ErrorKind::kPayload, who() + ": message without valid load_pub/load_t");
        return;
      }
      pub = static_cast<uint32_t>(pub64);
      track(w, p, c, pub, seq, t, now);
      return;
    }
    if (op != data_opcode(o_) || n != o_.size) {
      w.error(ErrorKind::kPayload, who() + ": got " + (op == opcode::kText ? "text" : "binary") +
                                       " message of " + std::to_string(n) + " bytes, published " +
                                       (o_.text ? "text" : "binary") + " of " +
                                       std::to_string(o_.size));
      return;
    }
    PayloadReader r(data, n, o_.text);
    if (!r.u32(pub) || !r.u64(seq) || !r.u64(t) || pub >= pubs_) {
      w.error(ErrorKind::kPayload, who() + ": malformed message header");
      return;
    }
    size_t bad = check_padding(data, r.offset(), n, payload_salt(pub, seq), o_.text);
    if (bad != n) {
      w.error(ErrorKind::kPayload, who() + ": message " + std::to_string(seq) + " of publisher " +
                                       std::to_string(pub) + " differs at byte " +
                                       std::to_string(bad));
      return;
    }
    track(w, p, c, pub, seq, t, now);
  }

  // Built only when an error is reported: past subscriber 9999 the name no longer fits the
  // string's inline buffer, and a delivery must not allocate.
  std::string subscriber_name(const Conn& c) const {
    return "subscriber " + std::to_string(c.gid - pubs_);
  }

  // Loss, duplicate and order accounting and latency of one delivery.
  void track(Worker& w, Per& p, Conn& c, uint32_t pub, uint64_t seq, uint64_t t, uint64_t now) {
    auto who = [&] { return subscriber_name(c); };
    Track& tr = tracks_[static_cast<size_t>(c.gid - pubs_) * pubs_ + pub];
    if (seq >= tr.next) {
      uint64_t gap = seq - tr.next;
      p.gap_loss += static_cast<int64_t>(gap);
      tr.window = gap + 1 >= 64 ? 1 : (tr.window << (gap + 1)) | 1;
      p.next_sum += seq + 1 - tr.next;
      tr.next = seq + 1;
    } else {
      uint64_t d = tr.next - 1 - seq;
      if (d < 64 && ((tr.window >> d) & 1)) {
        w.error(ErrorKind::kDuplicate, who() + ": message " + std::to_string(seq) +
                                           " of publisher " + std::to_string(pub) +
                                           " delivered twice");
        return;
      }
      w.error(ErrorKind::kOrder, who() + ": message " + std::to_string(seq) + " of publisher " +
                                     std::to_string(pub) + " arrived after message " +
                                     std::to_string(tr.next - 1));
      if (d < 64) {
        tr.window |= uint64_t{1} << d;
        --p.gap_loss;
      }
    }
    ++p.deliveries;
    ++p.node_deliveries[c.node];
    uint64_t lat = now > t ? now - t : 0;
    w.record(0, lat);
    if (split_) w.hist[pub_node_[pub] == c.node ? 4 : 5].record(lat);
    // Last subscriber: the delivery that completes the message's count records the latest
    // receipt time among all subscribers.
    Slot& s = ring_[pub * ring_size_ + (seq & (ring_size_ - 1))];
    if (s.tag.load(std::memory_order_acquire) != seq + 1) {
      ++p.untracked;
      return;
    }
    uint64_t m = s.max_recv.load(std::memory_order_relaxed);
    while (m < now && !s.max_recv.compare_exchange_weak(m, now, std::memory_order_acq_rel)) {
    }
    if (s.count.fetch_add(1, std::memory_order_acq_rel) + 1 == subs_) {
      uint64_t last = s.max_recv.load(std::memory_order_acquire);
      w.record(1, last > t ? last - t : 0);
    }
  }

  // Answers of the server API, in request order.
  size_t on_http(Worker& w, Conn& c, std::string_view in, uint64_t now) override {
    Per& p = per_[static_cast<size_t>(w.index())];
    Api& a = apis_[c.gid];
    size_t off = 0;
    for (;;) {
      HttpResponseView r;
      std::string err;
      HttpParse st = parse_http_response(in.substr(off), r, err);
      if (st == HttpParse::kIncomplete) return off;
      if (st == HttpParse::kFailed || (r.status >= 200 && a.n == 0)) {
        w.error(ErrorKind::kHttp,
                "API connection " + std::to_string(c.gid) + ": " +
                    (st == HttpParse::kFailed ? err : "answer without a request"));
        w.drop(c);
        return off;
      }
      off += r.consumed;
      if (r.status < 200) continue;  // informational: the answer is still to come
      uint64_t t = a.t[a.head];
      a.head = (a.head + 1) & (a.t.size() - 1);
      --a.n;
      --p.api_outstanding;
      w.record(3, now > t ? now - t : 0);
      if (r.status != 200) {
        ++p.api_failed;
        w.error(ErrorKind::kHttp, "POST /api/publish answered " + std::to_string(r.status) + ": " +
                                      std::string(r.body.substr(0, 200)));
        continue;
      }
      ++p.api_ok;
      if (o_.flow != Flow::kNative) continue;  // raw rooms keep no sequence
      // One connection's publishes are sequenced in request order.
      uint64_t seq = 0;
      if (!json_uint(reinterpret_cast<const uint8_t*>(r.body.data()), r.body.size(), "\"seq\"",
                     seq)) {
        w.error(ErrorKind::kHttp,
                "POST /api/publish answer without \"seq\": " + std::string(r.body.substr(0, 200)));
      } else if (a.have_seq && seq <= a.last_seq) {
        w.error(ErrorKind::kOrder, "API connection " + std::to_string(c.gid) + ": seq " +
                                       std::to_string(seq) + " after " +
                                       std::to_string(a.last_seq));
      } else {
        a.last_seq = seq;
        a.have_seq = true;
      }
    }
  }

  bool drained(Worker& w) override {
    Per& p = per_[static_cast<size_t>(w.index())];
    if (p.api_outstanding) return false;
    uint64_t total = 0;
    for (uint32_t i = 0; i < pubs_; ++i) total += pub_sent_[i].load(std::memory_order_acquire);
    return p.next_sum >= p.subscribers * total;
  }

  void finish(std::vector<std::unique_ptr<Worker>>& workers, double seconds, Results& r) override {
    uint64_t published = 0;
    for (uint32_t i = 0; i < pubs_; ++i) published += pub_sent_[i].load();
    int64_t gap_loss = 0;
    uint64_t deliveries = 0, untracked = 0, overwritten = 0, pub_recv = 0, skipped = 0;
    for (auto& p : per_) {
      gap_loss += p.gap_loss;
      deliveries += p.deliveries;
      untracked += p.untracked;
      overwritten += p.overwritten_incomplete;
      pub_recv += p.publisher_received;
      skipped += p.skipped;
    }
    uint64_t tail_loss = 0;
    for (uint64_t s = 0; s < subs_; ++s)
      for (uint32_t i = 0; i < pubs_; ++i) {
        uint64_t sent = pub_sent_[i].load(), next = tracks_[s * pubs_ + i].next;
        tail_loss += sent > next ? sent - next : 0;
      }
    uint64_t loss = tail_loss + static_cast<uint64_t>(std::max<int64_t>(0, gap_loss));
    // Messages that did not reach every subscriber.
    uint64_t incomplete = overwritten;
    if (subs_ > 0) {
      for (uint32_t i = 0; i < pubs_; ++i) {
        uint64_t sent = pub_sent_[i].load();
        uint64_t from = sent > ring_size_ ? sent - ring_size_ : 0;
        for (uint64_t seq = from; seq < sent; ++seq) {
          const Slot& s = ring_[i * ring_size_ + (seq & (ring_size_ - 1))];
          if (s.tag.load() == seq + 1 && s.count.load() < subs_) ++incomplete;
        }
      }
    }
    uint64_t other = 0;
    for (auto& p : per_) other += p.other_messages;
    if (o_.flow != Flow::kRaw || http_)
      add_metric(r, "other_messages", "other messages (sync...)", static_cast<double>(other), "");
    add_metric(r, "publishers", "publishers", pubs_, "");
    add_metric(r, "subscribers", "subscribers", subs_, "");
    add_metric(r, "message_size_bytes", "message size", static_cast<double>(o_.size), "bytes");
    add_metric(r, "target_publish_rate_per_s", "target publish rate", o_.rate, "msg/s");
    add_metric(r, "duration_s", "duration", seconds, "s");
    add_metric(r, "published", "published", static_cast<double>(published), "msgs");
    add_metric(r, "publish_rate_per_s", "publish rate", seconds > 0 ? published / seconds : 0,
               "msg/s");
    add_metric(r, "expected_deliveries", "expected deliveries",
               static_cast<double>(published * subs_), "");
    add_metric(r, "deliveries", "deliveries", static_cast<double>(deliveries), "");
    add_metric(r, "delivery_rate_per_s", "delivery rate", seconds > 0 ? deliveries / seconds : 0,
               "msg/s");
    if (subs_ > 0)
      add_metric(r, "messages_incomplete", "incomplete messages", static_cast<double>(incomplete),
                 "");
    if (http_) {
      uint64_t ok = 0, failed = 0, unanswered = 0;
      for (auto& p : per_) {
        ok += p.api_ok;
        failed += p.api_failed;
        unanswered += p.api_unanswered + p.api_outstanding;
      }
      add_metric(r, "api_ok", "API answers 200", static_cast<double>(ok), "");
      add_metric(r, "api_failed", "API answers not 200", static_cast<double>(failed), "");
      add_metric(r, "api_unanswered", "API unanswered", static_cast<double>(unanswered), "");
      if (unanswered)
        r.failures.push_back(std::to_string(unanswered) +
                             " API requests were never answered (connection closed, or not within "
                             "--drain)");
    } else {
      add_metric(r, "publisher_received", "received by publishers", static_cast<double>(pub_recv),
                 "");
    }
    if (untracked)
      add_metric(r, "last_subscriber_untracked", "last-sub untracked",
                 static_cast<double>(untracked), "");
    if (skipped)
      add_metric(r, "skipped_publishes", "skipped (closed conn)", static_cast<double>(skipped), "");
    r.loss = loss;
    if (loss)
      r.failures.push_back(std::to_string(loss) + " of " + std::to_string(published * subs_) +
                           " deliveries lost");
    r.latency.push_back(merged(workers, 0, "delivery", "delivery"));
    if (split_) {
      r.latency.push_back(merged(workers, 4, "delivery_same_node", "delivery, same node"));
      r.latency.push_back(merged(workers, 5, "delivery_cross_node", "delivery, other node"));
    }
    r.latency.push_back(merged(workers, 1, "last_subscriber", "last subscriber"));
    if (http_) r.latency.push_back(merged(workers, 3, "api_response", "API response"));
    r.latency.push_back(merged(workers, 2, "send_lag", "send lag (tool)"));
    if (!r.per_url.empty()) {
      // WebSocket URLs: subscribers (and broadcast publishers) and what they received; then the
      // API URLs of http-publish with their publishers.
      size_t nws = o_.urls.size();
      std::vector<uint64_t> pubs(r.per_url.size()), subs(nws), got(nws);
      for (uint64_t g = 0; g < uint64_t{pubs_} + subs_; ++g) {
        uint32_t n = connection_node(o_, g);
        if (g < pubs_)
          ++pubs[http_ ? nws + n : n];
        else
          ++subs[n];
      }
      for (auto& p : per_)
        for (size_t i = 0; i < nws; ++i) got[i] += p.node_deliveries[i];
      for (size_t i = 0; i < r.per_url.size(); ++i) {
        auto& m = r.per_url[i].metrics;
        m.push_back(Metric{"publishers", "publishers", static_cast<double>(pubs[i]), ""});
        if (i < nws) {
          m.push_back(Metric{"subscribers", "subscribers", static_cast<double>(subs[i]), ""});
          m.push_back(Metric{"deliveries", "deliveries", static_cast<double>(got[i]), ""});
        }
      }
    }
  }

 private:
  struct Per {
    std::vector<uint32_t> senders;
    Schedule sched;
    std::vector<uint8_t> buf;
    uint64_t subscribers = 0;  // subscriber connections on this worker
    uint64_t next_sum = 0;     // sum of Track::next over them
    int64_t gap_loss = 0;      // holes below Track::next
    uint64_t deliveries = 0, untracked = 0, overwritten_incomplete = 0, publisher_received = 0,
             skipped = 0, other_messages = 0;
    uint64_t awaiting_login = 0;  // gamechat/native: login or join reply not come yet
    std::string json;             // profile flows: the message being built; http: the request
    std::string body;             // http: the request body being built
    std::vector<uint64_t> node_deliveries;  // deliveries per subscriber URL
    uint64_t api_outstanding = 0, api_ok = 0, api_failed = 0, api_unanswered = 0;
  };
  // One API connection's requests awaiting their answer: their intended send times, in a ring
  // that doubles when full (so the steady state allocates nothing).
  struct Api {
    std::vector<uint64_t> t;
    size_t head = 0, n = 0;
    uint64_t last_seq = 0;
    bool have_seq = false;
    void push(uint64_t v) {
      if (n == t.size()) {
        std::vector<uint64_t> bigger(t.size() * 2);
        for (size_t i = 0; i < n; ++i) bigger[i] = t[(head + i) & (t.size() - 1)];
        t.swap(bigger);
        head = 0;
      }
      t[(head + n) & (t.size() - 1)] = v;
      ++n;
    }
  };
  struct Track {
    uint64_t next = 0;    // next expected sequence number
    uint64_t window = 0;  // bit d: message next-1-d was received
  };
  struct Slot {
    std::atomic<uint64_t> tag{0};  // seq + 1 of the message using the slot
    std::atomic<uint64_t> max_recv{0};
    std::atomic<uint32_t> count{0};
  };

  void publish(Worker& w, Per& p, Conn& c, uint64_t t) {
    uint32_t pub = c.gid;
    uint64_t seq = c.next_seq++;
    if (subs_ > 0) {
      Slot& s = ring_[pub * ring_size_ + (seq & (ring_size_ - 1))];
      if (s.tag.load(std::memory_order_relaxed) != 0 &&
          s.count.load(std::memory_order_relaxed) < subs_)
        ++p.overwritten_incomplete;
      s.count.store(0, std::memory_order_relaxed);
      s.max_recv.store(0, std::memory_order_relaxed);
      s.tag.store(seq + 1, std::memory_order_release);
    }
    if (http_) {
      publish_http(w, p, c, pub, seq, t);
    } else if (o_.flow == Flow::kNative) {
      // The native protocol's publish, no ack, not back to the publisher.
      p.json.assign(native_head_);
      append_data(p.json, pub, seq, t);
      p.json += '}';
      w.send_message(c, opcode::kText, reinterpret_cast<const uint8_t*>(p.json.data()),
                     p.json.size());
    } else if (o_.flow != Flow::kRaw) {
      publish_json(w, p, c, pub, seq, t);
    } else {
      PayloadWriter wr(p.buf.data(), o_.text);
      wr.u32(pub);
      wr.u64(seq);
      wr.u64(t);
      fill_padding(p.buf.data(), wr.offset(), p.buf.size(), payload_salt(pub, seq), o_.text);
      w.send_message(c, data_opcode(o_), p.buf.data(), p.buf.size());
    }
    pub_sent_[pub].store(seq + 1, std::memory_order_release);
  }

  // A live-map position_update (as the desktop client sends it, plus our fields) or a game-chat
  // message, padded with letters to --size bytes where the header leaves room.
  void publish_json(Worker& w, Per& p, Conn& c, uint32_t pub, uint64_t seq, uint64_t t) {
    char head[320];
    int len;
    if (o_.flow == Flow::kLivemap) {
      len = std::snprintf(head, sizeof head,
                          "{\"type\":\"position_update\",\"player\":{\"user_id\":\"load-%u\","
                          "\"username\":\"load-%u\",\"x\":%llu,\"y\":0,\"team\":\"load\","
                          "\"timestamp\":%llu},\"load_pub\":%u,\"load_seq\":%llu,\"load_t\":%llu,"
                          "\"pad\":\"",
                          pub, pub, static_cast<unsigned long long>(seq % 10000),
                          static_cast<unsigned long long>(t / 1000000000u), pub,
                          static_cast<unsigned long long>(seq), static_cast<unsigned long long>(t));
    } else {
      len = std::snprintf(head, sizeof head,
                          "{\"action\":\"message\",\"channel\":\"load\",\"load_pub\":%u,"
                          "\"load_seq\":%llu,\"load_t\":%llu,\"message\":\"",
                          pub, static_cast<unsigned long long>(seq),
                          static_cast<unsigned long long>(t));
    }
    p.json.assign(head, static_cast<size_t>(len));
    size_t total = static_cast<size_t>(len) + 2;
    if (o_.size > total) p.json.append(o_.size - total, static_cast<char>('a' + seq % 26));
    p.json += "\"}";
    (void)c;
    w.send_message(c, opcode::kText, reinterpret_cast<const uint8_t*>(p.json.data()),
                   p.json.size());
  }

  // {"load_pub":…,"load_seq":…,"load_t":…,"pad":"…"} padded with letters to about --size bytes:
  // the "data" of native and API publishes.
  void append_data(std::string& out, uint32_t pub, uint64_t seq, uint64_t t) const {
    char head[128];
    int len = std::snprintf(
        head, sizeof head, "{\"load_pub\":%u,\"load_seq\":%llu,\"load_t\":%llu,\"pad\":\"", pub,
        static_cast<unsigned long long>(seq), static_cast<unsigned long long>(t));
    out.append(head, static_cast<size_t>(len));
    size_t data_len = static_cast<size_t>(len) + 2;
    if (o_.size > data_len) out.append(o_.size - data_len, static_cast<char>('a' + seq % 26));
    out += "\"}";
  }

  // POST /api/publish {"room":R,["kind":"raw",]"data":{…}}.
  void publish_http(Worker& w, Per& p, Conn& c, uint32_t pub, uint64_t seq, uint64_t t) {
    p.body.assign(body_head_);
    append_data(p.body, pub, seq, t);
    p.body += '}';
    char cl[32];
    int cl_len = std::snprintf(cl, sizeof cl, "%zu\r\n\r\n", p.body.size());
    p.json.assign(api_prefix_[c.node]);
    p.json.append(cl, static_cast<size_t>(cl_len));
    p.json += p.body;
    w.send_http(c, p.json.data(), p.json.size());
    apis_[c.gid].push(t);
    ++p.api_outstanding;
  }

  const Options& o_;
  Run& run_;
  bool http_;
  uint32_t pubs_;
  uint32_t subs_;
  std::vector<Per> per_;
  std::unique_ptr<std::atomic<uint64_t>[]> pub_sent_;
  std::vector<Track> tracks_;  // [subscriber * pubs_ + publisher], owned by the sub's worker
  uint64_t ring_size_ = 0;
  std::unique_ptr<Slot[]> ring_;
  std::vector<std::string> api_prefix_;  // http: per API URL, the request up to "Content-Length: "
  std::string body_head_;                // http: the body up to "data":
  std::string native_head_;         // broadcast --flow native: the publish request up to "data":
  std::vector<Api> apis_;           // http: [publisher], owned by the publisher's worker
  bool split_ = false;              // delivery latency split by same / other node
  std::vector<uint16_t> pub_node_;  // [publisher]: its URL (http: its API URL)
};

// ---------------------------------------------------------------------------------------------
// connect: open connections (optionally paced), record handshake latency, then hold them.

class ConnectWorkload final : public ScenarioWorkload {
 public:
  ConnectWorkload(const Options& o, Run&) : o_(o) {}
  uint8_t role(uint64_t) const override { return 0; }
  uint32_t node(uint64_t gid) const override { return connection_node(o_, gid); }
  std::string target(uint64_t) const override { return o_.url.target(); }
  void on_open(Worker& w, Conn& c, uint64_t now) override { w.record(0, now - c.t_start); }
  void on_message(Worker& w, Conn&, uint8_t, const uint8_t*, size_t, uint64_t) override {
    ++unexpected_[static_cast<size_t>(w.index()) % kSlots];
  }

  void finish(std::vector<std::unique_ptr<Worker>>& workers, double seconds, Results& r) override {
    uint64_t opened = 0, failed = 0, first = UINT64_MAX, last = 0, pings = 0;
    for (auto& w : workers) {
      auto& c = w->counters();
      opened += c.opened.load();
      failed += c.failed.load();
      pings += c.pings.load();
      if (c.first_start.load()) first = std::min(first, c.first_start.load());
      last = std::max(last, c.last_open.load());
    }
    double span = last > first && first != UINT64_MAX ? static_cast<double>(last - first) / 1e9 : 0;
    add_metric(r, "connections", "connections", static_cast<double>(o_.connections), "");
    add_metric(r, "target_rate_per_s", "target connect rate", o_.rate,
               o_.rate > 0 ? "conn/s" : "(as fast as possible)");
    add_metric(r, "opened", "opened", static_cast<double>(opened), "");
    add_metric(r, "failed", "failed", static_cast<double>(failed), "");
    add_metric(r, "connect_phase_s", "connect phase", span, "s");
    add_metric(r, "connect_rate_per_s", "connect rate", span > 0 ? opened / span : 0, "conn/s");
    add_metric(r, "hold_s", "held idle", o_.hold, "s");
    add_metric(r, "pings_answered", "pings answered", static_cast<double>(pings), "");
    uint64_t unexpected = 0;
    for (uint64_t u : unexpected_) unexpected += u;
    if (unexpected)
      add_metric(r, "unexpected_messages", "unexpected messages", static_cast<double>(unexpected),
                 "");
    (void)seconds;
    r.latency.push_back(merged(workers, 0, "handshake", "handshake"));
  }

 private:
  static constexpr size_t kSlots = 256;
  const Options& o_;
  uint64_t unexpected_[kSlots] = {};
};

}  // namespace

std::string with_query_param(const Url& u, const std::string& param) {
  return append_param(u.target(), param);
}

std::string relay_target(const Url& u, uint64_t pair) {
  static constexpr std::string_view kPlaceholder = "{pair}";
  std::string name = "pair-" + std::to_string(pair);
  std::string t = u.target();
  bool replaced = false;
  for (size_t pos; (pos = t.find(kPlaceholder)) != std::string::npos;) {
    t.replace(pos, kPlaceholder.size(), name);
    replaced = true;
  }
  if (replaced) return t;
  std::string path = u.path;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  if (path == "/") path.clear();
  path += "/" + name;
  return u.query.empty() ? path : path + "?" + u.query;
}

std::unique_ptr<ScenarioWorkload> make_workload(const Options& o, Run& run) {
  switch (o.scenario) {
    case Scenario::kEcho:
      return make_round_trip(o, run, false);
    case Scenario::kRelay:
      return make_round_trip(o, run, true);
    case Scenario::kBroadcast:
    case Scenario::kHttpPublish:
      return std::make_unique<BroadcastWorkload>(o, run);
    case Scenario::kConnect:
      return std::make_unique<ConnectWorkload>(o, run);
  }
  return nullptr;
}

}  // namespace ringcast::load

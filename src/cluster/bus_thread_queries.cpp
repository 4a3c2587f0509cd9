// The bus thread's side of queries (hub::ClusterQueries): a question goes to every node on the
// control channel; each answers on the asking node's own channel; the asking core gets all the
// answers at once, or those that came within ClusterBus::kQueryTimeoutMs.
#include <cstring>

#include "bus_thread.h"
#include "ringcast/engine/log.h"

namespace ringcast::cluster {

void RedisBus::Thread::query_done(size_t i) {
  Query q = std::move(queries_[i]);
  queries_.erase(queries_.begin() + static_cast<std::ptrdiff_t>(i));
  size_t bytes = 4;
  for (const auto& a : q.answers) bytes += 4 + a.size();
  engine::SharedFrame* f = engine::SharedFrame::allocate(bytes);
  uint8_t* p = f->data();
  auto n = static_cast<uint32_t>(q.answers.size());
  std::memcpy(p, &n, 4);
  p += 4;
  for (const auto& a : q.answers) {
    auto len = static_cast<uint32_t>(a.size());
    std::memcpy(p, &len, 4);
    if (len) std::memcpy(p + 4, a.data(), len);
    p += 4 + len;
  }
  f->set_size(bytes);
  to_lane(q.core, Item{nullptr, f, static_cast<uint8_t>(hub::ClusterArrival::kQueryDone), 0,
                       q.asked, q.ticket});
}

void RedisBus::Thread::query_out(Item& it) {
  Query q;
  q.ticket = it.n;
  q.core = static_cast<int>(it.token);
  q.deadline_ms = mono_ms() + hub::ClusterBus::kQueryTimeoutMs;
  uint64_t alive = bus_.nodes_seen_.load(std::memory_order_relaxed);
  q.asked = cmd_ && ok_ && alive > 1 ? alive - 1 : 0;
  if (q.asked) {
    // <asking instance, 16 hex digits><ticket, 8 bytes><query>
    std::span<const uint8_t> body = it.frame ? it.frame->bytes() : std::span<const uint8_t>();
    payload_.assign(instance_hex_);
    payload_.append(reinterpret_cast<const char*>(&q.ticket), 8);
    payload_.append(reinterpret_cast<const char*>(body.data()), body.size());
    const char* argv[] = {"SPUBLISH", ctl_channel_.c_str(), payload_.data()};
    size_t lens[] = {8, ctl_channel_.size(), payload_.size()};
    redisAppendCommandArgv(cmd_, 3, argv, lens);
    pending_.push_back({Pending::kPublish});
  }
  bus_.release_item(it);
  queries_.push_back(std::move(q));
  if (!queries_.back().asked) query_done(queries_.size() - 1);
}

void RedisBus::Thread::query_answer_out(Item& it) {
  std::span<const uint8_t> body = it.frame ? it.frame->bytes() : std::span<const uint8_t>();
  if (!cmd_ || !ok_ || body.size() < 16) return bus_.release_item(it);
  std::string_view from(reinterpret_cast<const char*>(body.data()), 16);
  std::string ch = bus_.opts_.prefix + "inst:{" + std::string(from) + "}";
  // On that node's channel with session 0 (no session has that id): "an answer".
  const uint64_t zero = 0;
  payload_.assign(reinterpret_cast<const char*>(&zero), 8);
  payload_.append(reinterpret_cast<const char*>(&it.n), 8);
  payload_.append(reinterpret_cast<const char*>(body.data()) + 16, body.size() - 16);
  const char* argv[] = {"SPUBLISH", ch.c_str(), payload_.data()};
  size_t lens[] = {8, ch.size(), payload_.size()};
  redisAppendCommandArgv(cmd_, 3, argv, lens);
  pending_.push_back({Pending::kPublish});
  bus_.release_item(it);
}

void RedisBus::Thread::query_arrival(std::string_view payload) {
  if (payload.size() < 24 || payload.substr(0, 16) == instance_hex_ || !bus_.queries_) return;
  engine::SharedFrame* f = engine::SharedFrame::allocate(payload.size());
  std::memcpy(f->data(), payload.data(), payload.size());
  f->set_size(payload.size());
  to_lane(0, Item{nullptr, f, static_cast<uint8_t>(hub::ClusterArrival::kQuery), 0, 0, 0});
}

void RedisBus::Thread::query_answered(std::string_view payload) {
  // <0, 8 bytes><ticket, 8 bytes><answer>
  if (payload.size() < 16) return;
  uint64_t ticket = 0;
  std::memcpy(&ticket, payload.data() + 8, 8);
  for (size_t i = 0; i < queries_.size(); ++i) {
    if (queries_[i].ticket != ticket) continue;
    queries_[i].answers.emplace_back(payload.substr(16));
    if (queries_[i].answers.size() >= queries_[i].asked) query_done(i);
    return;
  }
}

int64_t RedisBus::Thread::query_deadlines(int64_t now) {
  int64_t next = -1;
  for (size_t i = 0; i < queries_.size();) {
    if (queries_[i].deadline_ms <= now) {
      query_done(i);
      continue;
    }
    int64_t left = queries_[i].deadline_ms - now;
    if (next < 0 || left < next) next = left;
    ++i;
  }
  return next;
}

// ---- RedisBus (cores) ---------------------------------------------------------------------------

void RedisBus::query(int core, uint64_t ticket, std::string_view query) {
  engine::SharedFrame* f = engine::SharedFrame::allocate(query.size());
  if (!query.empty()) std::memcpy(f->data(), query.data(), query.size());
  f->set_size(query.size());
  Lane& l = *lanes_[static_cast<size_t>(core)];
  if (!l.out.push(Item{nullptr, f, 5, static_cast<uint32_t>(core), 0, ticket})) {
    f->release();
    // No room (Redis far behind): answered at once, with nobody asked.
    queries_->cluster_answers(hubs_.hub(core), ticket, {}, 0);
    return;
  }
  l.out_bytes += query.size();
  l.pushed = true;
}

void RedisBus::query_answer(int core, std::string_view from, uint64_t ticket,
                            std::string_view answer) {
  if (from.size() != 16) return;
  engine::SharedFrame* f = engine::SharedFrame::allocate(16 + answer.size());
  std::memcpy(f->data(), from.data(), 16);
  if (!answer.empty()) std::memcpy(f->data() + 16, answer.data(), answer.size());
  f->set_size(16 + answer.size());
  Lane& l = *lanes_[static_cast<size_t>(core)];
  if (!l.out.push(Item{nullptr, f, 6, 0, 0, ticket})) {
    f->release();  // the asking node stops waiting at its time limit
    return;
  }
  l.out_bytes += f->size();
  l.pushed = true;
}

}  // namespace ringcast::cluster

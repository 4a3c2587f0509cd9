// The bus thread's side of journals (hub::ClusterJournal): a profile's directory kept in Redis by
// its own script. Calls go out on the command connection; the records the script emits come back
// on the subscription connection, numbered, and are applied in that order; a caller's answer is
// handed to its core once the mirror has applied the call's record.
#include <algorithm>
#include <charconv>
#include <cstring>

#include "bus_thread.h"
#include "ringcast/cluster/redis_scripts.h"
#include "ringcast/engine/log.h"

namespace ringcast::cluster {

namespace {
constexpr size_t kMaxRetries = 100000;  // calls kept while Redis is away (closes, mostly)
constexpr size_t kMaxFields = 4;

// The fields of a call, as journal_call packed them (u32 length, bytes).
size_t unpack(const engine::SharedFrame* f, std::string_view (&out)[kMaxFields]) {
  if (!f) return 0;
  const uint8_t* p = f->data();
  const uint8_t* end = p + f->size();
  size_t n = 0;
  while (n < kMaxFields && end - p >= 4) {
    uint32_t len = 0;
    std::memcpy(&len, p, 4);
    p += 4;
    if (static_cast<size_t>(end - p) < len) break;
    out[n++] = std::string_view(reinterpret_cast<const char*>(p), len);
    p += len;
  }
  return n;
}
}  // namespace

std::string RedisBus::Thread::member_of(uint64_t session) const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string m = instance_hex_;
  for (int i = 15; i >= 0; --i) m.push_back(kHex[(session >> (i * 4)) & 15]);
  return m;
}

int RedisBus::Thread::journal_of(std::string_view channel) const {
  for (size_t i = 0; i < journals_.size(); ++i)
    if (journals_[i].base == channel) return static_cast<int>(i);
  return -1;
}

void RedisBus::Thread::journal_command(Journal& jl, char op, std::string_view member,
                                       std::span<const std::string_view> fields) {
  // EVALSHA <sha> 1 <base> <op> <member> fields...
  const char opc[1] = {op};
  std::string_view fixed[6] = {"EVALSHA", jl.sha, "1", jl.base, {opc, 1}, member};
  append_command(cmd_, fixed, fields);
}

void RedisBus::Thread::journal_answer(uint32_t index, uint64_t session, std::string_view text,
                                      bool refused) {
  int core = static_cast<int>(session >> 48);
  if (core >= static_cast<int>(bus_.lanes_.size())) return;
  engine::SharedFrame* f = engine::SharedFrame::allocate(text.size());
  if (!text.empty()) std::memcpy(f->data(), text.data(), text.size());
  f->set_size(text.size());
  to_lane(core, Item{nullptr, f, static_cast<uint8_t>(hub::ClusterArrival::kJournalReply), index,
                     refused ? 1u : 0u, session});
}

void RedisBus::Thread::journal_op(Item& it) {
  const uint32_t index = it.token;
  const char op = static_cast<char>(it.ev & 0xff);
  const bool reply = (it.ev >> 8) & 1;
  if (index >= journals_.size()) return bus_.release_item(it);
  if (!cmd_ || !ok_) {
    if (reply) {
      journal_answer(index, it.n, {}, true);
      bus_.release_item(it);
    } else if (journal_retry_.size() < kMaxRetries) {
      journal_retry_.push_back(it);  // keeps the references
      it = Item{};
    } else {
      bus_.bus_dropped_.fetch_add(1, std::memory_order_relaxed);
      bus_.release_item(it);
    }
    return;
  }
  std::string_view fields[kMaxFields];
  size_t n = unpack(it.frame, fields);
  std::string member = member_of(it.n);
  journal_command(journals_[index], op, member, {fields, n});
  PendingReply p{Pending::kJournal};
  p.token = index;
  p.session = it.n;
  p.ev = it.ev;
  p.args = it.frame;  // the pending reply holds the reference now
  it.frame = nullptr;
  pending_.push_back(p);
  bus_.release_item(it);
}

void RedisBus::Thread::journal_lost(PendingReply& p) {
  // The connection dropped before the answer: refused if someone waits, else made again later
  // (the profiles' calls without an answer are idempotent).
  const bool reply = (p.ev >> 8) & 1;
  // A dead node's cleanup ('x') is run again from the next heartbeat's list instead.
  if (p.what == Pending::kJournal && reply) {
    journal_answer(p.token, p.session, {}, true);
  } else if (p.what == Pending::kJournal && p.args && journal_retry_.size() < kMaxRetries) {
    journal_retry_.push_back(Item{nullptr, p.args, 4, p.token, p.ev, p.session});
    p.args = nullptr;
  }
  if (p.args) p.args->release();
  p.args = nullptr;
  if (p.what == Pending::kJournalListing && p.token < journals_.size())
    journals_[p.token].listing_sent = false;
}

void RedisBus::Thread::journal_reply(const PendingReply& p, redisReply* r) {
  if (p.args) p.args->release();
  if (p.token >= journals_.size()) return;
  Journal& jl = journals_[p.token];
  const bool reply = (p.ev >> 8) & 1;
  if (r->type == REDIS_REPLY_ERROR || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
    static log::Throttle throttle(10000);
    uint64_t held = 0;
    if (throttle.allow(mono_ms(), held))
      RC_WARN("cluster: redis refused a %.*s call: %.*s (%llu more)",
              static_cast<int>(jl.j->journal_name().size()), jl.j->journal_name().data(),
              static_cast<int>(r->len), r->str ? r->str : "",
              static_cast<unsigned long long>(held));
    if (reply) journal_answer(p.token, p.session, {}, true);
    return;
  }
  if (!reply) return;
  uint64_t ver = r->element[0]->type == REDIS_REPLY_INTEGER
                     ? static_cast<uint64_t>(r->element[0]->integer)
                     : 0;
  std::string_view text = reply_str(r->element[1]);
  if (ver == 0 || (jl.loaded && jl.applied >= ver && jl.answers.empty())) {
    journal_answer(p.token, p.session, text, false);
    return;
  }
  // Its record has not been applied yet: the answer waits for it, behind earlier answers.
  jl.answers.push_back({ver, p.session, std::string(text)});
  if (jl.loaded) journal_release(jl);
}

void RedisBus::Thread::journal_release(Journal& jl) {
  uint32_t index = static_cast<uint32_t>(&jl - journals_.data());
  while (!jl.answers.empty() && jl.loaded && jl.answers.front().ver <= jl.applied) {
    journal_answer(index, jl.answers.front().session, jl.answers.front().text, false);
    jl.answers.pop_front();
  }
}

void RedisBus::Thread::journal_subscribed(uint32_t index) {
  Journal& jl = journals_[index];
  if (!cmd_ || jl.listing_sent) return;
  // Listening: now the listing, so no record falls between the two.
  jl.loaded = false;
  jl.listing_sent = true;
  journal_command(jl, 's', {}, {});
  PendingReply p{Pending::kJournalListing};
  p.token = index;
  pending_.push_back(p);
}

void RedisBus::Thread::journal_listing(uint32_t index, redisReply* r) {
  if (index >= journals_.size()) return;
  Journal& jl = journals_[index];
  jl.listing_sent = false;
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
      r->element[0]->type != REDIS_REPLY_INTEGER) {
    RC_WARN("cluster: redis refused the %.*s listing: %.*s",
            static_cast<int>(jl.j->journal_name().size()), jl.j->journal_name().data(),
            static_cast<int>(r->len), r->str ? r->str : "");
    return;
  }
  jl.j->journal_reset(bus_, true);
  const redisReply* recs = r->element[1];
  if (recs->type == REDIS_REPLY_ARRAY)
    for (size_t i = 0; i < recs->elements; ++i)
      jl.j->journal_record(bus_, reply_str(recs->element[i]), true);
  jl.applied = static_cast<uint64_t>(r->element[0]->integer);
  jl.loaded = true;
  jl.j->journal_reset(bus_, false);
  // Answers the listing covers (or from before Redis lost its data) go now; records that came
  // while it was on its way follow it.
  for (auto& a : jl.answers) a.ver = std::min(a.ver, jl.applied);
  auto early = std::move(jl.early);
  jl.early.clear();
  for (auto& [ver, rec] : early) journal_apply(jl, ver, rec);
  journal_release(jl);
  // Calls made while Redis was away, now that the mirror is current.
  for (size_t i = journal_retry_.size(); i-- > 0;) {
    Item it = journal_retry_.front();
    journal_retry_.pop_front();
    if (it.token == index)
      journal_op(it);
    else
      journal_retry_.push_back(it);
  }
}

void RedisBus::Thread::journal_apply(Journal& jl, uint64_t ver, std::string_view record) {
  if (!jl.loaded) {
    jl.early.emplace_back(ver, std::string(record));
    return;
  }
  if (ver <= jl.applied) return;  // the listing had it
  if (ver != jl.applied + 1) {
    // A record was missed (Redis dropped a message): reload the whole directory.
    RC_WARN("cluster: %.*s record %llu arrived after %llu: reloading",
            static_cast<int>(jl.j->journal_name().size()), jl.j->journal_name().data(),
            static_cast<unsigned long long>(ver), static_cast<unsigned long long>(jl.applied));
    jl.loaded = false;
    jl.early.emplace_back(ver, std::string(record));
    journal_subscribed(static_cast<uint32_t>(&jl - journals_.data()));
    return;
  }
  jl.j->journal_record(bus_, record, false);
  jl.applied = ver;
  journal_release(jl);
}

void RedisBus::Thread::journal_arrival(uint32_t index, std::string_view payload) {
  uint64_t ver = 0;
  auto r = std::from_chars(payload.data(), payload.data() + payload.size(), ver);
  if (r.ec != std::errc() || r.ptr == payload.data() + payload.size() || *r.ptr != ',') return;
  bus_.received_.fetch_add(1, std::memory_order_relaxed);
  journal_apply(journals_[index], ver,
                payload.substr(static_cast<size_t>(r.ptr + 1 - payload.data())));
}

void RedisBus::Thread::journal_expired(const redisReply* dead) {
  std::vector<std::string> now;
  for (size_t i = 0; i < dead->elements; ++i) {
    std::string_view inst = reply_str(dead->element[i]);
    if (inst.size() != 16 || inst == instance_hex_) continue;
    now.emplace_back(inst);
    if (std::find(expired_seen_.begin(), expired_seen_.end(), inst) != expired_seen_.end())
      continue;
    // Every node runs this (the cleanup is idempotent), so it happens even if the node that
    // found the death goes next.
    for (size_t j = 0; j < journals_.size(); ++j) {
      journal_command(journals_[j], 'x', inst, {});
      PendingReply p{Pending::kJournal};
      p.token = static_cast<uint32_t>(j);
      p.ev = 'x';
      pending_.push_back(p);
    }
  }
  expired_seen_ = std::move(now);
}

// ---- RedisBus (bus thread) ----------------------------------------------------------------------

uint64_t RedisBus::member_session(std::string_view member) {
  return thread_state_->session_of_member(member);
}

void RedisBus::note(hub::ClusterJournal& j, uint64_t session, std::string_view note) {
  int core = static_cast<int>(session >> 48);
  if (core >= static_cast<int>(lanes_.size())) return;
  uint32_t index = 0;
  while (index < journals_.size() && journals_[index] != &j) ++index;
  engine::SharedFrame* f = engine::SharedFrame::allocate(note.size());
  if (!note.empty()) std::memcpy(f->data(), note.data(), note.size());
  f->set_size(note.size());
  thread_state_->to_lane_public(
      core,
      Item{nullptr, f, static_cast<uint8_t>(hub::ClusterArrival::kJournalNote), index, 0, session});
}

void RedisBus::send_local(uint64_t session, engine::SharedFrame* frame) {
  int core = static_cast<int>(session >> 48);
  if (core >= static_cast<int>(lanes_.size()) || !frame) return;
  frame->add_ref();
  thread_state_->to_lane_public(
      core, Item{nullptr, frame, static_cast<uint8_t>(hub::ClusterArrival::kSend), 0, 0, session});
}

// ---- RedisBus (cores) ---------------------------------------------------------------------------

void RedisBus::journal_call(int core, hub::ClusterJournal& j, char op, uint64_t session,
                            std::initializer_list<std::string_view> fields, bool reply) {
  uint32_t index = 0;
  while (index < journals_.size() && journals_[index] != &j) ++index;
  size_t bytes = 0;
  for (std::string_view f : fields) bytes += 4 + f.size();
  engine::SharedFrame* args = engine::SharedFrame::allocate(bytes);
  uint8_t* p = args->data();
  for (std::string_view f : fields) {
    auto n = static_cast<uint32_t>(f.size());
    std::memcpy(p, &n, 4);
    if (n) std::memcpy(p + 4, f.data(), n);
    p += 4 + n;
  }
  args->set_size(bytes);
  Lane& l = *lanes_[static_cast<size_t>(core)];
  uint64_t ev = static_cast<uint8_t>(op) | (reply ? uint64_t{1} << 8 : 0);
  if (!l.out.push(Item{nullptr, args, 4, index, ev, session})) {
    // The ring is full (Redis far behind): refused, as if Redis were unreachable.
    args->release();
    l.dropped.store(l.dropped.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (reply) j.journal_reply(hubs_.hub(core), session, {}, true);
    return;
  }
  l.out_bytes += bytes;
  l.pushed = true;
}

}  // namespace ringcast::cluster

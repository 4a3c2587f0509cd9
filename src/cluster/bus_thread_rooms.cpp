// The bus thread's side of sequenced rooms: snapshots and events through Redis's scripts.
#include <charconv>
#include <cstring>
#include <map>

#include "bus_thread.h"
#include "ringcast/cluster/redis_scripts.h"
#include "ringcast/websocket/frame_encoder.h"

namespace ringcast::cluster {

void RedisBus::Thread::send_snapshot(Room& r) {
  if (!cmd_) return;
  const std::string& base = channel(r.room->name());
  std::string keys[5] = {base + ":meta", base + ":hist", base + ":pres", base + ":state",
                         base + ":order"};
  std::string args[3] = {std::to_string(r.room->history().capacity()), std::to_string(r.seq_floor),
                         std::to_string(r.ev_floor)};
  const char* argv[11] = {"EVALSHA", snapshot_sha_.c_str(), "5"};
  size_t lens[11] = {7, snapshot_sha_.size(), 1};
  for (int i = 0; i < 5; ++i) {
    argv[3 + i] = keys[i].c_str();
    lens[3 + i] = keys[i].size();
  }
  for (int i = 0; i < 3; ++i) {
    argv[8 + i] = args[i].c_str();
    lens[8 + i] = args[i].size();
  }
  redisAppendCommandArgv(cmd_, 11, argv, lens);
  r.room->add_ref();
  pending_.push_back({Pending::kSnapshot, r.room, 0});
}

void RedisBus::Thread::send_event(Item& it) {
  // args: kind, body, field, value, history length, ttl (length-prefixed, see hub_cluster.cpp).
  std::string_view a[6];
  const uint8_t* p = it.frame->data();
  const uint8_t* end = p + it.frame->size();
  for (auto& f : a) {
    uint32_t n = 0;
    if (end - p < 4) {
      bus_.release_item(it);
      return;
    }
    std::memcpy(&n, p, 4);
    p += 4;
    if (static_cast<size_t>(end - p) < n) {
      bus_.release_item(it);
      return;
    }
    f = std::string_view(reinterpret_cast<const char*>(p), n);
    p += n;
  }
  uint32_t token = 0;
  if (a[1].size() >= 40)
    for (char c : a[1].substr(32, 8))
      token = token * 16 + static_cast<uint32_t>(c <= '9' ? c - '0' : c - 'a' + 10);
  if (!cmd_ || !ok_ ||
      sdslen(cmd_->obuf) > std::min(kMaxCommandBuffer, bus_.opts_.max_queue_bytes / 2)) {
    // Went down after the core looked, or Redis is this far behind: refused, as if refused there.
    it.room->add_ref();
    to_core(it.room, nullptr, hub::ClusterArrival::kFailed, token);
    bus_.release_item(it);
    return;
  }
  const std::string& base = channel(it.room->name());
  keys_[0] = base + ":meta";
  keys_[1] = base + ":hist";
  keys_[2] = base + ":pres";
  keys_[3] = base + ":state";
  keys_[4] = base + ":order";
  keys_[5] = base;
  keys_[6] = inst_rooms_key_;
  const std::string& name = it.room->name();
  const char* argv[17] = {"EVALSHA", event_sha_.c_str(), "7"};
  size_t lens[17] = {7, event_sha_.size(), 1};
  for (int i = 0; i < 7; ++i) {
    argv[3 + i] = keys_[i].c_str();
    lens[3 + i] = keys_[i].size();
  }
  for (int i = 0; i < 6; ++i) {
    argv[10 + i] = a[i].data();
    lens[10 + i] = a[i].size();
  }
  argv[16] = name.c_str();
  lens[16] = name.size();
  redisAppendCommandArgv(cmd_, 17, argv, lens);
  pending_.push_back({Pending::kEvent, it.room, token});
  it.room = nullptr;  // the pending reply holds the reference now
  bus_.release_item(it);
}

void RedisBus::Thread::deliver_snapshot(hub::SharedRoom* room, redisReply* r) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 6) return;
  auto num = [](const redisReply* x) -> uint64_t {
    if (x->type == REDIS_REPLY_INTEGER) return static_cast<uint64_t>(x->integer);
    uint64_t v = 0;
    std::string_view s = reply_str(x);
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
  };
  std::string out;
  auto put64 = [&](uint64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); };
  auto put32 = [&](uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); };
  auto str32 = [&](std::string_view v) {
    put32(static_cast<uint32_t>(v.size()));
    out.append(v);
  };
  put64(num(r->element[0]));
  put64(num(r->element[1]));
  const redisReply* h = r->element[2];
  put32(static_cast<uint32_t>(h->elements));
  for (size_t i = 0; i < h->elements; ++i) str32(reply_str(h->element[i]));
  const redisReply* pres = r->element[3];
  put32(static_cast<uint32_t>(pres->elements / 2));
  for (size_t i = 0; i + 1 < pres->elements; i += 2) {
    std::string_view member = reply_str(pres->element[i]);
    if (member.size() == 32 && member.substr(0, 16) != instance_hex_)
      remote_members_[hub::remote_session_id(member)] = std::string(member);
    str32(member);
    str32(reply_str(pres->element[i + 1]));
  }
  std::map<std::string_view, uint64_t> order;
  const redisReply* ord = r->element[5];
  for (size_t i = 0; i + 1 < ord->elements; i += 2)
    order[reply_str(ord->element[i])] = num(ord->element[i + 1]);
  const redisReply* st = r->element[4];
  put32(static_cast<uint32_t>(st->elements / 2));
  for (size_t i = 0; i + 1 < st->elements; i += 2) {
    std::string_view k = reply_str(st->element[i]);
    str32(k);
    str32(reply_str(st->element[i + 1]));
    auto o = order.find(k);
    put64(o == order.end() ? 0 : o->second);
  }
  engine::SharedFrame* f = engine::SharedFrame::allocate(out.size());
  std::memcpy(f->data(), out.data(), out.size());
  f->set_size(out.size());
  room->add_ref();
  to_core(room, f, hub::ClusterArrival::kSnapshot);
}

void RedisBus::Thread::learn_members(std::string_view event) {
  // "<kind><ev>,<n>,<member><token>...": only joins, identity changes and leaves matter here.
  char kind = event[0];
  if (kind != 'j' && kind != 'i' && kind != 'l') return;
  size_t c1 = event.find(',');
  size_t c2 = c1 == std::string_view::npos ? c1 : event.find(',', c1 + 1);
  if (c2 == std::string_view::npos || event.size() < c2 + 1 + 32) return;
  std::string_view member = event.substr(c2 + 1, 32);
  if (member.substr(0, 16) == instance_hex_) return;
  uint64_t id = hub::remote_session_id(member);
  if (kind == 'l')
    remote_members_.erase(id);
  else
    remote_members_[id] = std::string(member);
}

void RedisBus::Thread::send_remote(Item& it) {
  auto m = remote_members_.find(it.n);
  if (!cmd_ || !ok_ || m == remote_members_.end()) {
    bus_.bus_dropped_.fetch_add(1, std::memory_order_relaxed);
    bus_.release_item(it);
    return;
  }
  const std::string& member = m->second;
  std::string ch = bus_.opts_.prefix + "inst:{" + member.substr(0, 16) + "}";
  uint64_t session = 0;
  for (char c : std::string_view(member).substr(16, 16))
    session = session * 16 + static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
  engine::SharedFrame* f = it.frame;
  uint8_t op = f->message_opcode();
  std::span<const uint8_t> body = op ? f->message_payload() : f->bytes();
  payload_.resize(9 + body.size());
  std::memcpy(payload_.data(), &session, 8);
  payload_[8] = static_cast<char>(op);
  if (!body.empty()) std::memcpy(payload_.data() + 9, body.data(), body.size());
  const char* argv[] = {"SPUBLISH", ch.c_str(), payload_.data()};
  size_t lens[] = {8, ch.size(), payload_.size()};
  redisAppendCommandArgv(cmd_, 3, argv, lens);
  pending_.push_back({Pending::kPublish});
  bus_.published_.fetch_add(1, std::memory_order_relaxed);
  bus_.release_item(it);
}

void RedisBus::Thread::deliver_send(std::string_view payload) {
  if (payload.size() < 9) return;
  uint64_t session = 0;
  std::memcpy(&session, payload.data(), 8);
  if (session == 0) return query_answered(payload);  // an answer to this node's query
  int core = static_cast<int>(session >> 48);
  if (core >= static_cast<int>(bus_.lanes_.size())) return;
  auto op = static_cast<uint8_t>(payload[8]);
  std::span<const uint8_t> body(reinterpret_cast<const uint8_t*>(payload.data()) + 9,
                                payload.size() - 9);
  engine::SharedFrame* f;
  if (op == static_cast<uint8_t>(websocket::Opcode::kText) ||
      op == static_cast<uint8_t>(websocket::Opcode::kBinary)) {
    f = websocket::encode_frame(static_cast<websocket::Opcode>(op), body);
  } else {
    f = engine::SharedFrame::allocate(body.size());
    if (!body.empty()) std::memcpy(f->data(), body.data(), body.size());
    f->set_size(body.size());
  }
  bus_.received_.fetch_add(1, std::memory_order_relaxed);
  to_lane(core, Item{nullptr, f, static_cast<uint8_t>(hub::ClusterArrival::kSend), 0, 0, session});
}

}  // namespace ringcast::cluster

// The bus thread's side of the bridge directory (cluster-wide client ids and the current bridge):
// changes through Redis's directory script, and every change told to the profile.
#include <charconv>

#include "bus_thread.h"
#include "ringcast/hub/cluster_bus.h"

namespace ringcast::cluster {

namespace {
constexpr uint64_t kMaxDirectoryId = (uint64_t{1} << 24) - 1;  // BridgeProfile::kMaxClientId
}

void RedisBus::Thread::directory_command(std::initializer_list<std::string_view> args) {
  // EVALSHA <directory script> 5 <ids> <free> <next> <owner> <channel> args...
  std::string_view fixed[8] = {"EVALSHA",    directory_sha_, "5",          dir_keys_[0],
                               dir_keys_[1], dir_keys_[2],   dir_keys_[3], dir_channel_};
  append_command(cmd_, fixed, {args.begin(), args.size()});
}

uint64_t RedisBus::Thread::session_of(std::string_view member) {
  if (member.size() != 32) return 0;
  if (member.substr(0, 16) == instance_hex_) {
    uint64_t s = 0;
    for (char c : member.substr(16))
      s = s * 16 + static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
    return s;
  }
  uint64_t id = hub::remote_session_id(member);
  remote_members_[id] = std::string(member);  // so sends to it find their way
  return id;
}

void RedisBus::Thread::allocated(uint64_t session, uint64_t id) {
  int core = static_cast<int>(session >> 48);
  if (core >= static_cast<int>(bus_.lanes_.size())) return;
  to_lane(core, Item{nullptr, nullptr, static_cast<uint8_t>(hub::ClusterArrival::kAllocated), 0,
                     session, id});
}

void RedisBus::Thread::directory_op(Item& it) {
  // it.token: 1 allocate, 2 release, 3 owner, 4 no owner; it.ev: the session; it.n: the id.
  const uint32_t op = it.token;
  const uint64_t session = it.ev;
  if (!cmd_ || !ok_) {
    if (op == 1) allocated(session, 0);
    return;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  char member[32];
  for (int i = 0; i < 16; ++i) {
    member[i] = instance_hex_[static_cast<size_t>(i)];
    member[16 + i] = kHex[(session >> ((15 - i) * 4)) & 15];
  }
  char num[24];
  uint64_t n = op == 1 ? kMaxDirectoryId : it.n;
  auto r = std::to_chars(num, num + sizeof num, n);
  const char* code = op == 1 ? "a" : op == 2 ? "r" : op == 3 ? "o" : "c";
  directory_command({code, std::string_view(member, 32),
                     std::string_view(num, static_cast<size_t>(r.ptr - num))});
  PendingReply p{op == 1 ? Pending::kAllocate : Pending::kDirectory};
  p.session = session;
  pending_.push_back(p);
}

void RedisBus::Thread::directory_listing(redisReply* r) {
  hub::ClusterDirectory* d = bus_.directory_;
  if (!d || r->type != REDIS_REPLY_ARRAY || r->elements != 2) return;
  d->directory_reset();
  const redisReply* ids = r->element[0];
  for (size_t i = 0; i + 1 < ids->elements; i += 2) {
    std::string_view k = reply_str(ids->element[i]);
    uint64_t id = 0;
    std::from_chars(k.data(), k.data() + k.size(), id);
    if (id) d->directory_id(id, session_of(reply_str(ids->element[i + 1])));
  }
  std::string_view owner = reply_str(r->element[1]);
  d->directory_owner(owner.empty() ? 0 : session_of(owner));
}

void RedisBus::Thread::directory_arrival(std::string_view payload) {
  hub::ClusterDirectory* d = bus_.directory_;
  if (!d || payload.empty()) return;
  char kind = payload[0];
  std::string_view rest = payload.substr(1);
  if (kind == 'o') {
    d->directory_owner(rest.empty() ? 0 : session_of(rest));
    return;
  }
  uint64_t id = 0;
  auto r = std::from_chars(rest.data(), rest.data() + rest.size(), id);
  if (r.ec != std::errc() || id == 0) return;
  if (kind == 'r') {
    d->directory_id(id, 0);
  } else if (kind == 'a' && r.ptr < rest.data() + rest.size() && *r.ptr == ',') {
    std::string_view member(r.ptr + 1, static_cast<size_t>(rest.data() + rest.size() - r.ptr - 1));
    d->directory_id(id, session_of(member));
  }
}

}  // namespace ringcast::cluster

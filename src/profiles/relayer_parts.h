// The relayer profile's private parts, shared by relayer_profile.cpp (the protocol) and
// relayer_cluster.cpp (the directory shared by the nodes of a cluster).
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <time.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "ringcast/hub/hub.h"
#include "ringcast/profiles/relayer_profile.h"
#include "ringcast/websocket/frame_encoder.h"
#include "ringcast/websocket/session.h"

namespace ringcast::profiles {

namespace relayer_detail {

using rapidjson::Value;
using websocket::Session;

// ---- per-session state --------------------------------------------------------------------------

// Replies to one session leave in the order its messages were handled. Most go out at once; one
// that has to wait (connection_success waits for the booth's core) holds a sequence number, and
// replies handled after it wait behind it.
struct RelaySession {
  uint64_t next_seq = 0;  // next reply's number
  uint64_t sent_seq = 0;  // replies below this have been queued to the socket
  std::map<uint64_t, engine::FrameRef> held;
  bool booth = false;    // registered an id at some point: its close must look at the directory
  bool scanner = false;  // attached at some point
  std::vector<std::string> ids;  // the booth ids it registered (canon keys), at most a cap
  // Cluster: the directory call in flight ('r' register_booth, 'c' connect_scanner; 0 none).
  // The session's input is held until it is answered, so replies keep their order.
  char pending = 0;
  bool awaiting_connect = false;  // connect_scanner waits for connection_success
  std::string pending_json;       // the id as this session spelled it
  std::string pending_error;      // connect_scanner's "Booth ... is not available"
};

inline RelaySession* state_of(Session& s) {
  return static_cast<RelaySession*>(s.user);
}

inline void flush_held(Session& s, RelaySession& st) {
  while (!st.held.empty() && st.held.begin()->first == st.sent_seq) {
    s.send_frame(st.held.begin()->second.get());
    st.held.erase(st.held.begin());
    ++st.sent_seq;
  }
}

// Takes the caller's reference.
inline void reply(Session& s, RelaySession& st, engine::SharedFrame* f) {
  engine::FrameRef ref(f);
  if (st.held.empty() && st.next_seq == st.sent_seq) {
    s.send_frame(f);
    ++st.next_seq;
    ++st.sent_seq;
    return;
  }
  st.held.emplace(st.next_seq++, std::move(ref));
}

// To another session through the hub; to this very session (a booth that is also its own scanner)
// among its replies, so it keeps its place behind any held one.
inline void deliver(hub::Hub& hub, Session& s, RelaySession& st, uint64_t target,
                    engine::SharedFrame* f) {
  if (target == s.id()) {
    f->add_ref();
    return reply(s, st, f);
  }
  hub.send_to(target, f);
}

// ---- output -------------------------------------------------------------------------------------

// datetime.now().isoformat(): local time, microseconds (omitted when zero, as Python does).
inline size_t iso_now(char* out, size_t cap) {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  thread_local time_t cached_sec = -1;
  thread_local char prefix[32];
  thread_local size_t prefix_len = 0;
  if (ts.tv_sec != cached_sec) {
    tm t;
    localtime_r(&ts.tv_sec, &t);
    prefix_len = std::strftime(prefix, sizeof prefix, "%Y-%m-%dT%H:%M:%S", &t);
    cached_sec = ts.tv_sec;
  }
  long usec = ts.tv_nsec / 1000;
  std::memcpy(out, prefix, prefix_len);
  if (usec == 0) return prefix_len;
  int n = std::snprintf(out + prefix_len, cap - prefix_len, ".%06ld", usec);
  return prefix_len + static_cast<size_t>(n);
}

// One reply object written straight into a per-thread buffer, non-ASCII escaped as json.dumps
// does, NaN/Infinity written as Python writes them; "timestamp" is added last.
class Reply {
 public:
  using Writer = rapidjson::Writer<rapidjson::StringBuffer, rapidjson::UTF8<>, rapidjson::ASCII<>,
                                   rapidjson::CrtAllocator, rapidjson::kWriteNanAndInfFlag>;
  explicit Reply(std::string_view type) : buf_(scratch()), w_(buf_) {
    buf_.Clear();
    w_.StartObject();
    kv("type", type);
  }
  void key(std::string_view k) { w_.Key(k.data(), static_cast<rapidjson::SizeType>(k.size())); }
  void kv(std::string_view k, std::string_view v) {
    key(k);
    w_.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  }
  void raw(std::string_view k, std::string_view json) {
    key(k);
    w_.RawValue(json.data(), json.size(), rapidjson::kObjectType);
  }
  void value(std::string_view k, const Value* v) {
    key(k);
    if (v)
      v->Accept(w_);
    else
      w_.Null();
  }
  engine::SharedFrame* frame() {
    char ts[48];
    kv("timestamp", {ts, iso_now(ts, sizeof ts)});
    w_.EndObject();
    return websocket::encode_frame(websocket::Opcode::kText,
                                   std::string_view(buf_.GetString(), buf_.GetSize()));
  }

 private:
  static rapidjson::StringBuffer& scratch() {
    thread_local rapidjson::StringBuffer buf;
    return buf;
  }
  rapidjson::StringBuffer& buf_;
  Writer w_;
};

inline engine::SharedFrame* error_frame(std::string_view message) {
  Reply r("error");
  r.kv("message", message);
  return r.frame();
}

inline engine::SharedFrame* booth_event(std::string_view type, std::string_view booth_json) {
  Reply r(type);
  r.raw("booth_id", booth_json);
  return r.frame();
}

}  // namespace relayer_detail

// ---- the directory ------------------------------------------------------------------------------

struct RelayerProfile::Directory {
  struct Booth {
    std::string key_json;  // the id as first registered (a dict keeps its first key object)
    // The holder's session. May be closed: a closed booth's second id stays, as in the seed.
    uint64_t owner = 0;
    uint64_t order = 0;  // insertion order of the id
  };
  struct Scanner {
    std::string canon;       // the booth id it is attached to
    std::string booth_json;  // as the scanner spelled it
    uint64_t order = 0;      // first attachment: "the first scanner" of a booth is the oldest
    std::string member;      // cluster: its node instance and session (32 hex digits)
  };

  std::mutex mutex;
  std::unordered_map<std::string, Booth> booths;   // by canon key
  std::unordered_map<uint64_t, Scanner> scanners;  // by session
  // canon key -> scanner order -> session: kept while scanners are attached, booth or not
  std::unordered_map<std::string, std::map<uint64_t, uint64_t>> attached;
  std::unordered_map<uint64_t, std::vector<std::string>> owned;  // session -> ids it registered
  uint64_t next_order = 1;
  // Cluster: scanners of this node attached to a booth of another node, waiting for that node to
  // have told the booth (scanner -> booth session).
  std::unordered_map<uint64_t, uint64_t> waiting;
  // Cluster, during a listing: what this node's sessions were part of before it.
  struct Before {
    // (booth id, scanner) of this node's booths -> (booth, the scanner's spelling of the id)
    std::map<std::pair<std::string, uint64_t>, std::pair<uint64_t, std::string>> booth_scanners;
    // this node's scanners whose booth was there -> (booth id, the booth's spelling)
    std::unordered_map<uint64_t, std::pair<std::string, std::string>> scanner_booth;
  } before;

  // The id a session acts as: the earliest-inserted id it still holds (the seed scans its dict).
  Booth* booth_of(uint64_t session, const std::string** canon) {
    auto it = owned.find(session);
    if (it == owned.end()) return nullptr;
    Booth* best = nullptr;
    for (const std::string& k : it->second) {
      auto b = booths.find(k);
      if (b == booths.end() || b->second.owner != session) continue;
      if (!best || b->second.order < best->order) {
        best = &b->second;
        *canon = &b->first;
      }
    }
    return best;
  }

  void detach(const std::string& canon, uint64_t order) {
    auto a = attached.find(canon);
    if (a == attached.end()) return;
    a->second.erase(order);
    if (a->second.empty()) attached.erase(a);
  }
};

}  // namespace ringcast::profiles

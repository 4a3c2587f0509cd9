#include "ringcast/profiles/relayer_profile.h"

#include <rapidjson/document.h>
#include <rapidjson/encodings.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "relayer_parts.h"
#include "ringcast/profiles/display_name.h"
#include "ringcast/profiles/json_arena.h"
#include "ringcast/profiles/json_depth.h"
#include "ringcast/profiles/json_frame.h"
#include "ringcast/profiles/json_zero_exponent.h"
#include "ringcast/profiles/python_json.h"
#include "ringcast/profiles/relay_pacing.h"
#include "ringcast/websocket/frame_encoder.h"
#include "ringcast/websocket/utf8_validator.h"

namespace ringcast::profiles {

using rapidjson::Value;
using websocket::Session;
using namespace relayer_detail;

namespace {

// ---- JSON input ---------------------------------------------------------------------------------

// A booth id is shown to the booth's scanners (and the scanner's to the booth): a string id may not
// carry control or bidi characters. Such an id can never be registered, so connect_scanner refuses
// it the same way instead of echoing it in "Booth ... is not available".
constexpr std::string_view kUnsafeBoothId =
    "Invalid booth_id: it must not contain control characters or bidirectional formatting "
    "characters";

constexpr std::string_view kTooManyIds =
    "Too many booth ids: one connection may register at most 64";
static_assert(RelayerProfile::kMaxBoothIdsPerConnection == 64);

bool safe_booth_id(const Value& id) {
  return !id.IsString() || is_display_safe({id.GetString(), id.GetStringLength()});
}

// The id's dict key under Python equality (1, 1.0 and true are one id; "1" is another).
std::string canon_key(const Value& v) {
  std::string k;
  append_py_key(k, v);
  return k;
}

}  // namespace

// ---- the profile --------------------------------------------------------------------------------

struct RelayerProfile::Request {
  JsonArena& mem = json_arena();
  ArenaDocument doc{&mem.value_alloc, sizeof(JsonArena::stack), &mem.stack_alloc};

  const Value* get(std::string_view name) const { return py_get(doc, name); }
};

RelayerProfile::RelayerProfile(hub::HubSystem& hubs)
    : hubs_(hubs), dir_(std::make_unique<Directory>()) {
  if (hub::ClusterBus* bus = hubs_.cluster()) bus->add_journal(this);
}
RelayerProfile::~RelayerProfile() = default;

void RelayerProfile::on_open(Session& s, const websocket::HttpRequest&) {
  s.user = new RelaySession;
}

void RelayerProfile::on_message(Session& s, websocket::Opcode op, std::span<uint8_t> payload) {
  RelaySession* st = state_of(s);
  if (!st) return;
  // json.loads of bytes that are not UTF-8 raises UnicodeDecodeError, which the seed's generic
  // handler answers.
  if (op == websocket::Opcode::kBinary && !websocket::is_valid_utf8(payload.data(), payload.size()))
    return reply(s, *st, error_frame("Internal server error"));
  Request r;
  thread_local std::string text;  // in-situ parsing needs a NUL after the text
  text.assign(reinterpret_cast<const char*>(payload.data()), payload.size());
  zero_exponents_of_zeros(text.data(), text.size());  // 0e196 is 0.0, as Python reads it
  constexpr unsigned kFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseNanAndInfFlag |
                              rapidjson::kParseFullPrecisionFlag;
  r.doc.ParseInsitu<kFlags>(text.data());
  if (r.doc.HasParseError() || std::memchr(payload.data(), 0, payload.size()))
    return reply(s, *st, error_frame("Invalid JSON message"));
  // Valid JSON the handler cannot take (not an object; nested deeper than Python recurses): the
  // seed's handler fails and answers for itself, and the connection stays.
  if (!r.doc.IsObject() ||
      nested_deeper_than({reinterpret_cast<const char*>(payload.data()), payload.size()},
                         kMaxDepth))
    return reply(s, *st, error_frame("Internal server error"));
  handle(s, r);
}

void RelayerProfile::handle(Session& s, Request& r) {
  RelaySession& st = *state_of(s);
  const Value* type = r.get("type");
  std::string_view t = type && type->IsString()
                           ? std::string_view(type->GetString(), type->GetStringLength())
                           : std::string_view();
  if (type && type->IsString()) {
    if (t == "register_booth") return register_booth(s, r);
    if (t == "connect_scanner") return connect_scanner(s, r);
    if (t == "relay_message") return relay(s, r);
    if (t == "ping") return reply(s, st, Reply("pong").frame());
  }
  thread_local std::string msg;
  msg = "Unknown message type: ";
  if (type)
    append_py_str(msg, *type);
  else
    msg += "None";
  reply(s, st, error_frame(msg));
}

void RelayerProfile::register_booth(Session& s, Request& r) {
  RelaySession& st = *state_of(s);
  const Value* id = r.get("booth_id");
  if (!py_truthy(id)) return reply(s, st, error_frame("Missing booth_id in registration"));
  if (!py_hashable(*id)) return reply(s, st, error_frame("Internal server error"));
  if (!safe_booth_id(*id)) return reply(s, st, error_frame(kUnsafeBoothId));
  std::string json = to_json(*id);
  std::string canon = canon_key(*id);
  if (std::find(st.ids.begin(), st.ids.end(), canon) == st.ids.end()) {
    if (st.ids.size() >= kMaxBoothIdsPerConnection) return reply(s, st, error_frame(kTooManyIds));
    st.ids.push_back(canon);
  }
  if (hubs_.cluster()) return cluster_call(s, 'r', std::move(canon), std::move(json), {});
  {
    std::lock_guard lock(dir_->mutex);
    auto [it, inserted] = dir_->booths.try_emplace(canon);
    if (inserted) {
      it->second.key_json = json;
      it->second.order = dir_->next_order++;
    }
    // A second registration of an id takes it over silently; the old holder is not told.
    it->second.owner = s.id();
    auto& mine = dir_->owned[s.id()];
    bool known = false;
    for (const auto& k : mine) known |= k == canon;
    if (!known) mine.push_back(canon);
  }
  st.booth = true;
  reply(s, st, booth_event("registration_success", json));
}

void RelayerProfile::connect_scanner(Session& s, Request& r) {
  RelaySession& st = *state_of(s);
  const Value* id = r.get("booth_id");
  if (!py_truthy(id)) return reply(s, st, error_frame("Missing booth_id for scanner connection"));
  if (!py_hashable(*id)) return reply(s, st, error_frame("Internal server error"));
  if (!safe_booth_id(*id)) return reply(s, st, error_frame(kUnsafeBoothId));
  std::string canon = canon_key(*id);
  std::string json = to_json(*id);
  if (hubs_.cluster()) {
    std::string msg = "Booth ";
    append_py_str(msg, *id);
    msg += " is not available";
    return cluster_call(s, 'c', std::move(canon), std::move(json), std::move(msg));
  }
  uint64_t owner = 0;
  {
    std::lock_guard lock(dir_->mutex);
    auto b = dir_->booths.find(canon);
    if (b != dir_->booths.end()) {
      owner = b->second.owner;
      auto [sc, inserted] = dir_->scanners.try_emplace(s.id());
      if (inserted)
        sc->second.order = dir_->next_order++;
      else
        dir_->detach(sc->second.canon, sc->second.order);  // moves to the new id
      sc->second.canon = canon;
      sc->second.booth_json = json;
      dir_->attached[canon][sc->second.order] = s.id();
    }
  }
  if (!owner) {
    std::string msg = "Booth ";
    append_py_str(msg, *id);
    msg += " is not available";
    return reply(s, st, error_frame(msg));
  }
  st.scanner = true;
  // The booth hears of the scanner before the scanner hears it is connected.
  engine::FrameRef to_booth(booth_event("scanner_connected", json));
  engine::FrameRef to_scanner(booth_event("connection_success", json));
  hub::Hub& hub = hubs_.hub_of(s);
  int booth_core = hub::Hub::core_of(owner);
  if (booth_core == hub.core() || booth_core < 0 || booth_core >= hubs_.cores()) {
    deliver(hub, s, st, owner, to_booth.get());
    return reply(s, st, to_scanner.release_ownership());
  }
  // Across cores: the booth's core queues scanner_connected, then hands connection_success back
  // here, where it takes its place among this session's replies.
  uint64_t seq = st.next_seq++;
  uint64_t scanner = s.id();
  int home = hub.core();
  hub.post_fn(booth_core, [owner, scanner, home, seq, to_booth = std::move(to_booth),
                           to_scanner = std::move(to_scanner)](hub::Hub& h) mutable {
    h.send_to(owner, to_booth.get());
    h.post_fn(home, [scanner, seq, f = std::move(to_scanner)](hub::Hub& hh) mutable {
      Session* s = hh.worker().find_session(scanner);
      RelaySession* st = s ? state_of(*s) : nullptr;
      if (!st) return;  // the scanner is gone
      st->held.emplace(seq, std::move(f));
      flush_held(*s, *st);
    });
  });
}

void RelayerProfile::relay(Session& s, Request& r) {
  RelaySession& st = *state_of(s);
  if (!st.booth && !st.scanner) return;  // neither: ignored, no reply
  const Value* data = r.get("data");
  uint64_t target = 0;
  bool from_scanner = false;
  bool found_booth = false;
  thread_local std::string booth_json;
  {
    std::lock_guard lock(dir_->mutex);
    auto sc = dir_->scanners.find(s.id());
    if (sc != dir_->scanners.end()) {
      from_scanner = true;
      auto b = dir_->booths.find(sc->second.canon);
      if (b != dir_->booths.end()) target = b->second.owner;
    } else {
      const std::string* canon = nullptr;
      if (Directory::Booth* b = dir_->booth_of(s.id(), &canon)) {
        found_booth = true;
        booth_json = b->key_json;
        auto a = dir_->attached.find(*canon);
        if (a != dir_->attached.end() && !a->second.empty()) target = a->second.begin()->second;
      }
    }
  }
  hub::Hub& hub = hubs_.hub_of(s);
  if (from_scanner) {
    if (!target) return reply(s, st, error_frame("Booth is no longer available"));
    Reply m("message_from_scanner");
    m.value("data", data);
    m.kv("original_type", "relay_message");
    engine::FrameRef f(m.frame());
    pace_relay(s, f.get());
    deliver(hub, s, st, target, f.get());
    return;
  }
  if (!found_booth) return;  // no longer holds any id: ignored
  if (!target) return reply(s, st, error_frame("No scanner connected"));
  Reply m("message_from_booth");
  m.value("data", data);
  m.kv("original_type", "relay_message");
  m.raw("booth_id", booth_json);
  engine::FrameRef f(m.frame());
  pace_relay(s, f.get());
  deliver(hub, s, st, target, f.get());
}

void RelayerProfile::on_close(Session& s) {
  RelaySession* st = state_of(s);
  s.user = nullptr;
  if (!st) return;
  if (hub::ClusterBus* bus = hubs_.cluster()) {
    // Every node applies the close from Redis's record and tells its own sessions.
    if (st->booth || st->scanner)
      bus->journal_call(hubs_.hub_of(s).core(), *this, 'q', s.id(), {}, false);
    delete st;
    return;
  }
  std::vector<uint64_t> tell_scanners;
  std::string gone_booth_json;
  uint64_t tell_booth = 0;
  std::string scanner_booth_json;
  if (st->booth || st->scanner) {
    std::lock_guard lock(dir_->mutex);
    if (st->booth) {
      // Only the first id it holds is released (the seed's quirk); scanners stay attached to it.
      const std::string* canon = nullptr;
      if (Directory::Booth* b = dir_->booth_of(s.id(), &canon)) {
        gone_booth_json = b->key_json;
        auto a = dir_->attached.find(*canon);
        if (a != dir_->attached.end())
          for (const auto& [order, sid] : a->second)
            if (sid != s.id()) tell_scanners.push_back(sid);
        dir_->booths.erase(*canon);
      }
      dir_->owned.erase(s.id());
    }
    auto sc = dir_->scanners.find(s.id());
    if (sc != dir_->scanners.end()) {
      auto b = dir_->booths.find(sc->second.canon);
      if (b != dir_->booths.end() && b->second.owner != s.id()) tell_booth = b->second.owner;
      scanner_booth_json = std::move(sc->second.booth_json);
      dir_->detach(sc->second.canon, sc->second.order);
      dir_->scanners.erase(sc);
    }
  }
  delete st;
  hub::Hub& hub = hubs_.hub_of(s);
  if (!tell_scanners.empty()) {
    engine::FrameRef f(booth_event("booth_disconnected", gone_booth_json));
    for (uint64_t sid : tell_scanners) hub.send_to(sid, f.get());
  }
  if (tell_booth) {
    engine::FrameRef f(booth_event("scanner_disconnected", scanner_booth_json));
    hub.send_to(tell_booth, f.get());
  }
}

}  // namespace ringcast::profiles

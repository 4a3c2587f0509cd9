#include "ringcast/profiles/bridge_profile.h"

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "ringcast/profiles/json_zero_exponent.h"
#include "ringcast/profiles/relay_pacing.h"
#include "ringcast/websocket/close_code.h"
#include "ringcast/websocket/frame_encoder.h"

namespace ringcast::profiles {

using websocket::Opcode;
using websocket::Session;

namespace {

// What a session is, packed into Session::user (no allocation): role in the low bits, client id
// above them. nullptr = no first message yet.
enum Role : uintptr_t { kPending = 0, kClient = 1, kBridge = 2, kAllocating = 3 };
constexpr int kRoleBits = 2;

Role role_of(const Session& s) {
  return static_cast<Role>(reinterpret_cast<uintptr_t>(s.user) & ((1u << kRoleBits) - 1));
}
uint32_t client_id_of(const Session& s) {
  return static_cast<uint32_t>(reinterpret_cast<uintptr_t>(s.user) >> kRoleBits);
}
void set_role(Session& s, Role r, uint32_t id = 0) {
  s.user = reinterpret_cast<void*>((static_cast<uintptr_t>(id) << kRoleBits) | r);
}

// A SAX pass over one message (no DOM, no copy, the payload untouched so it can be forwarded as
// is): is it JSON, is the root an object, and the root's "type" and "id" members as the seed reads
// them. Duplicate keys: the last one wins, as in Python's json.loads.
struct TopFields : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, TopFields> {
  enum class Slot : uint8_t { kNone, kType, kId };
  enum class Type : uint8_t { kOther, kBridge, kConnection };
  int depth = 0;
  bool object = false;  // the root is an object
  Slot slot = Slot::kNone;
  Type type = Type::kOther;
  // The root "id" as a client id under Python equality (1 == 1.0 == True); 0: none.
  uint64_t id = 0;

  // A member value of the root (depth 1) that cannot be a client id / a type string.
  void other_value() {
    if (depth == 1) {
      if (slot == Slot::kId) id = 0;
      if (slot == Slot::kType) type = Type::kOther;
    }
    slot = Slot::kNone;
  }
  void number(uint64_t v) {
    if (depth == 1) {
      if (slot == Slot::kId) id = v;
      if (slot == Slot::kType) type = Type::kOther;
    }
    slot = Slot::kNone;
  }
  bool Null() { return other_value(), true; }
  bool Bool(bool b) { return number(b ? 1 : 0), true; }
  bool Int(int i) { return number(i > 0 ? static_cast<uint64_t>(i) : 0), true; }
  bool Uint(unsigned u) { return number(u), true; }
  bool Int64(int64_t i) { return number(i > 0 ? static_cast<uint64_t>(i) : 0), true; }
  bool Uint64(uint64_t u) { return number(u), true; }
  bool Double(double d) {
    // 1.0 == 1 in Python; 1.5 matches nobody.
    bool integral = d >= 1 && d <= 4294967296.0 && std::floor(d) == d;
    return number(integral ? static_cast<uint64_t>(d) : 0), true;
  }
  bool String(const char* str, rapidjson::SizeType len, bool) {
    if (depth == 1 && slot == Slot::kType) {
      std::string_view v(str, len);
      type = v == "bridge" ? Type::kBridge : v == "connection" ? Type::kConnection : Type::kOther;
      slot = Slot::kNone;
      return true;
    }
    return other_value(), true;  // "1" is not client 1
  }
  bool Key(const char* str, rapidjson::SizeType len, bool) {
    if (depth == 1) {
      std::string_view k(str, len);
      slot = k == "type" ? Slot::kType : k == "id" ? Slot::kId : Slot::kNone;
    }
    return true;
  }
  // Deeper than Python's json.loads recurses (RecursionError): not taken as JSON.
  static constexpr int kMaxDepth = 900;
  bool StartObject() {
    if (depth == 0) object = true;
    other_value();
    return ++depth <= kMaxDepth;
  }
  bool EndObject(rapidjson::SizeType) { return --depth, true; }
  bool StartArray() {
    other_value();
    return ++depth <= kMaxDepth;
  }
  bool EndArray(rapidjson::SizeType) { return --depth, true; }
};

// Parses like Python's json.loads (NaN and Infinity accepted); false if it is not JSON. Binary
// frames must also be valid UTF-8 (text frames were checked by the engine).
template <unsigned kExtraFlags = 0>
bool read_json(std::span<const uint8_t> payload, bool binary, TopFields& out) {
  // The reader stops at a NUL, which is never valid JSON anyway; a BOM is refused by Python.
  if (payload.empty() || std::memchr(payload.data(), 0, payload.size())) return false;
  if (payload.size() >= 3 && payload[0] == 0xEF && payload[1] == 0xBB && payload[2] == 0xBF)
    return false;
  thread_local rapidjson::Reader reader;  // keeps its stack between messages
  std::string_view text(reinterpret_cast<const char*>(payload.data()), payload.size());
  if ((kExtraFlags & rapidjson::kParseFullPrecisionFlag) && has_zero_with_exponent(text)) {
    // 0e196 is 0.0 as Python reads it; the payload itself is forwarded unchanged, so a copy.
    thread_local std::string fixed;
    fixed.assign(text);
    zero_exponents_of_zeros(fixed.data(), fixed.size());
    text = fixed;
  }
  rapidjson::MemoryStream ms(text.data(), text.size());
  // Iterative: no recursion on the thread's stack, however deep the input.
  constexpr unsigned kFlags =
      rapidjson::kParseIterativeFlag | rapidjson::kParseNanAndInfFlag | kExtraFlags;
  rapidjson::ParseResult ok =
      binary ? reader.Parse<kFlags | rapidjson::kParseValidateEncodingFlag>(ms, out)
             : reader.Parse<kFlags>(ms, out);
  return !ok.IsError();
}

}  // namespace

BridgeProfile::BridgeProfile(hub::HubSystem& hubs, int64_t first_message_timeout_ms)
    : hubs_(hubs),
      first_message_timeout_ms_(first_message_timeout_ms),
      chunks_(new std::atomic<Chunk*>[kChunks]) {
  for (uint32_t i = 0; i < kChunks; ++i) chunks_[i].store(nullptr, std::memory_order_relaxed);
  if (hub::ClusterBus* bus = hubs_.cluster()) bus->set_directory(this);
}

BridgeProfile::~BridgeProfile() {
  for (uint32_t i = 0; i < kChunks; ++i) delete chunks_[i].load(std::memory_order_relaxed);
}

// ---- client ids ---------------------------------------------------------------------------------

std::atomic<uint64_t>* BridgeProfile::slot(uint32_t id) const {
  Chunk* c = chunks_[id >> kChunkBits].load(std::memory_order_acquire);
  return c ? &c->session[id & (kChunkSize - 1)] : nullptr;
}

std::atomic<uint64_t>& BridgeProfile::slot_made(uint32_t id) {
  std::atomic<Chunk*>& chunk = chunks_[id >> kChunkBits];
  if (!chunk.load(std::memory_order_relaxed)) {
    auto* c = new Chunk;
    for (auto& e : c->session) e.store(0, std::memory_order_relaxed);
    chunk.store(c, std::memory_order_release);
  }
  return *slot(id);
}

uint32_t BridgeProfile::allocate_id(uint64_t session) {
  std::lock_guard lock(ids_mutex_);
  uint32_t id;
  if (!free_ids_.empty()) {
    id = free_ids_.top();  // the smallest free id (seed HEAD: min(available_ids))
    free_ids_.pop();
  } else {
    if (next_id_ > kMaxClientId) return 0;
    id = next_id_++;
  }
  slot_made(id).store(session, std::memory_order_release);
  return id;
}

void BridgeProfile::release_id(uint32_t id) {
  std::lock_guard lock(ids_mutex_);
  slot(id)->store(0, std::memory_order_release);
  free_ids_.push(id);
}

uint64_t BridgeProfile::session_of(uint64_t id) const {
  if (id == 0 || id > kMaxClientId) return 0;
  std::atomic<uint64_t>* e = slot(static_cast<uint32_t>(id));
  return e ? e->load(std::memory_order_acquire) : 0;
}

// ---- sessions -----------------------------------------------------------------------------------

void BridgeProfile::on_open(Session& s, const websocket::HttpRequest&) {
  set_role(s, kPending);
  // The seed sends nothing until the first message, which must come within 5 s (close 1000).
  if (first_message_timeout_ms_ > 0) s.close_unless_message_within(first_message_timeout_ms_);
}

void BridgeProfile::on_message(Session& s, Opcode op, std::span<uint8_t> payload) {
  switch (role_of(s)) {
    case kPending:
      return on_first(s, op, payload);
    case kClient:
      return from_client(s, op, payload);
    case kAllocating:
      return;  // input is held until the id comes; nothing reaches here
    case kBridge:
      return from_bridge(s, op, payload);
  }
}

void BridgeProfile::on_first(Session& s, Opcode op, std::span<const uint8_t> payload) {
  TopFields f;
  // Not JSON, not an object, or another type: the seed closes normally without a word.
  if (!read_json(payload, op == Opcode::kBinary, f) || !f.object ||
      f.type == TopFields::Type::kOther) {
    s.close(websocket::kCloseNormal);
    return;
  }
  if (f.type == TopFields::Type::kBridge) {
    // The newest bridge is the current one; an older one stays connected and keeps routing its
    // messages to clients ([DECIDE]: only the current bridge's close clears it).
    set_role(s, kBridge);
    bridge_.store(s.id(), std::memory_order_release);
    if (hub::ClusterBus* bus = hubs_.cluster())
      bus->directory_owner(s.worker().index(), s.id(), true);
    return;
  }
  if (hub::ClusterBus* bus = hubs_.cluster()) {
    // The smallest id free in the whole cluster: Redis decides. The client's next messages wait
    // for it, as the seed handles them only after the id.
    set_role(s, kAllocating);
    hubs_.hub_of(s).worker().hold_input(s);
    bus->directory_allocate(s.worker().index(), s.id());
    return;
  }
  uint32_t id = allocate_id(s.id());
  if (id == 0) {
    s.close(websocket::kCloseTryAgainLater, "no client id left");
    return;
  }
  set_role(s, kClient, id);
  clients_.fetch_add(1, std::memory_order_relaxed);
  char buf[64];
  int n = std::snprintf(buf, sizeof buf, "{\"code\": 0, \"data\": {\"id\": %u}}", id);
  s.send_text({buf, static_cast<size_t>(n)});
}

void BridgeProfile::from_client(Session& s, Opcode op, std::span<const uint8_t> payload) {
  // Anything that parses goes to the current bridge unchanged (the client puts its own id in it);
  // not JSON, or no bridge: dropped without a word. The client never hears back.
  uint64_t bridge = bridge_.load(std::memory_order_acquire);
  if (!bridge) return;
  TopFields f;
  if (!read_json(payload, op == Opcode::kBinary, f)) return;
  engine::SharedFrame* frame = websocket::encode_frame(Opcode::kText, payload);
  pace_relay(s, frame);
  hubs_.hub_of(s).send_to(bridge, frame);
  frame->release();
}

void BridgeProfile::from_bridge(Session& s, Opcode op, std::span<const uint8_t> payload) {
  // An object whose "id" names a connected client goes, as the original text, to that client only.
  // Anything else (not JSON, not an object, no id, null id, no such client) is dropped.
  TopFields f;
  if (!read_json<rapidjson::kParseFullPrecisionFlag>(payload, op == Opcode::kBinary, f) ||
      !f.object)
    return;
  uint64_t target = session_of(f.id);
  if (!target) return;
  engine::SharedFrame* frame = websocket::encode_frame(op, payload);
  pace_relay(s, frame);
  hubs_.hub_of(s).send_to(target, frame);
  frame->release();
}

void BridgeProfile::on_close(Session& s) {
  switch (role_of(s)) {
    case kClient:
      if (hub::ClusterBus* bus = hubs_.cluster()) {
        // Freed in Redis; every node (this one too) hears it and clears the slot.
        bus->directory_release(s.worker().index(), client_id_of(s), s.id());
        break;
      }
      clients_.fetch_sub(1, std::memory_order_relaxed);
      release_id(client_id_of(s));
      break;
    case kBridge: {
      uint64_t me = s.id();
      bridge_.compare_exchange_strong(me, 0, std::memory_order_acq_rel);
      if (hub::ClusterBus* bus = hubs_.cluster())
        bus->directory_owner(s.worker().index(), s.id(), false);
      break;
    }
    case kAllocating:  // its id, if one comes, is given back then (directory_allocated)
      break;
    case kPending:
      break;
  }
  s.user = nullptr;
}

// ---- the cluster's directory (bus thread, except directory_allocated) -------------------------

void BridgeProfile::directory_id(uint64_t id, uint64_t session) {
  if (id == 0 || id > kMaxClientId) return;
  std::lock_guard lock(ids_mutex_);
  std::atomic<uint64_t>& e = slot_made(static_cast<uint32_t>(id));
  uint64_t before = e.exchange(session, std::memory_order_acq_rel);
  if (!before && session) clients_.fetch_add(1, std::memory_order_relaxed);
  if (before && !session) clients_.fetch_sub(1, std::memory_order_relaxed);
}

void BridgeProfile::directory_owner(uint64_t session) {
  bridge_.store(session, std::memory_order_release);
}

void BridgeProfile::directory_reset() {
  std::lock_guard lock(ids_mutex_);
  for (uint32_t c = 0; c < kChunks; ++c)
    if (Chunk* chunk = chunks_[c].load(std::memory_order_acquire))
      for (auto& e : chunk->session) e.store(0, std::memory_order_release);
  clients_.store(0, std::memory_order_relaxed);
}

void BridgeProfile::directory_allocated(hub::Hub& hub, uint64_t session, uint64_t id) {
  Session* s = hub.worker().find_session(session);
  hub::ClusterBus* bus = hubs_.cluster();
  if (!s || !s->open() || role_of(*s) != kAllocating) {
    if (id && bus) bus->directory_release(hub.core(), id, session);  // gone meanwhile
    return;
  }
  if (id == 0 || id > kMaxClientId) {
    // Redis unreachable (or no id left): the client may try again later.
    s->close(websocket::kCloseTryAgainLater, "no client id available");
    return;
  }
  set_role(*s, kClient, static_cast<uint32_t>(id));
  char buf[64];
  int n = std::snprintf(buf, sizeof buf, "{\"code\": 0, \"data\": {\"id\": %u}}",
                        static_cast<uint32_t>(id));
  s->send_text({buf, static_cast<size_t>(n)});
  hub.worker().release_input(*s);
}

void BridgeProfile::append_health(std::vector<std::pair<std::string, std::string>>& out) const {
  out.emplace_back("connected_clients", std::to_string(clients_.load(std::memory_order_relaxed)));
  out.emplace_back("bridge_connected", bridge_.load(std::memory_order_relaxed) ? "true" : "false");
}

}  // namespace ringcast::profiles

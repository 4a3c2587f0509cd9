// A read-only look at a message's JSON, for MessageHandler::order_key: parses a per-thread copy
// into this thread's arena, so the payload itself is left as it was for on_message.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "ringcast/profiles/json_arena.h"
#include "ringcast/profiles/json_depth.h"
#include "ringcast/profiles/python_json.h"

namespace ringcast::profiles {

// The string value of `field` in the top-level object (last occurrence, as Python's json), or
// empty when the message is not an object, the field is missing or not a string. Valid until the
// next call on this thread (or the next use of the arena).
class JsonPeek {
 public:
  explicit JsonPeek(std::span<const uint8_t> payload) : JsonPeek(payload, json_arena()) {}
  std::string_view string(std::string_view field) const {
    if (!ok_) return {};
    const rapidjson::Value* v = py_get(doc_, field);
    if (!v || !v->IsString()) return {};
    return {v->GetString(), v->GetStringLength()};
  }

 private:
  JsonPeek(std::span<const uint8_t> payload, JsonArena& mem)
      : doc_(&mem.value_alloc, sizeof(JsonArena::stack), &mem.stack_alloc) {
    thread_local std::string text;
    text.assign(reinterpret_cast<const char*>(payload.data()), payload.size());
    if (nested_deeper_than(text)) return;
    doc_.ParseInsitu<rapidjson::kParseIterativeFlag>(text.data());
    ok_ = !doc_.HasParseError() && doc_.IsObject();
  }
  ArenaDocument doc_;
  bool ok_ = false;
};

}  // namespace ringcast::profiles

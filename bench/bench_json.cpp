// In-situ JSON parsing of each profile's main message, the way src/profiles/native_profile.cpp does
// it: copy the payload into a reused per-thread buffer, ParseInsitu a Document, read the dispatch
// key.
#include <benchmark/benchmark.h>
#include <rapidjson/document.h>

#include <string>
#include <string_view>

namespace {

constexpr std::string_view kNativePublish =
    R"({"op":"publish","room":"lobby","data":{"text":"hello world"}})";
constexpr std::string_view kLiveMapPosition =
    R"({"type":"position_update","user_id":"u123","x":12.5,"y":-3.25})";
constexpr std::string_view kGameChatMessage =
    R"({"action":"message","message":"hello there","channel":"general"})";
constexpr std::string_view kBridgeRelay =
    R"({"type":"firework","id":3,"data":{"x":0.5,"y":0.25,"color":"#ff0000"}})";

// Reads the string member a profile dispatches on; nullptr if absent.
const char* dispatch_key(const rapidjson::Document& doc, const char* key) {
  if (!doc.IsObject()) return nullptr;
  auto it = doc.FindMember(key);
  if (it == doc.MemberEnd() || !it->value.IsString()) return nullptr;
  return it->value.GetString();
}

// As the native profile: a fresh Document per message (its allocator and parse stack come from the
// heap on each message).
void BM_JsonInsitu(benchmark::State& state, std::string_view msg, const char* key) {
  std::string text;  // the per-thread buffer of native_profile.cpp, warm after the first copy
  for (auto _ : state) {
    benchmark::DoNotOptimize(msg);
    text.assign(msg.data(), msg.size());
    rapidjson::Document doc;
    doc.ParseInsitu(text.data());
    const char* k = doc.HasParseError() ? nullptr : dispatch_key(doc, key);
    if (!k) {
      state.SkipWithError("parse failed");
      break;
    }
    benchmark::DoNotOptimize(k);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * msg.size()));
  state.SetItemsProcessed(state.iterations());
}

// For comparison: a Document reused across messages whose value pool sits in a fixed buffer, so a
// message costs no heap allocation at all.
void BM_JsonInsituReusedDoc(benchmark::State& state, std::string_view msg, const char* key) {
  std::string text;
  alignas(8) char pool_buf[4096];
  rapidjson::MemoryPoolAllocator<> pool(pool_buf, sizeof pool_buf);
  rapidjson::Document doc(&pool);
  for (auto _ : state) {
    benchmark::DoNotOptimize(msg);
    text.assign(msg.data(), msg.size());
    pool.Clear();  // the previous message's values are dead; the fixed buffer is kept
    doc.ParseInsitu(text.data());
    const char* k = doc.HasParseError() ? nullptr : dispatch_key(doc, key);
    if (!k) {
      state.SkipWithError("parse failed");
      break;
    }
    benchmark::DoNotOptimize(k);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * msg.size()));
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK_CAPTURE(BM_JsonInsitu, native_publish, kNativePublish, "op");
BENCHMARK_CAPTURE(BM_JsonInsitu, livemap_position, kLiveMapPosition, "type");
BENCHMARK_CAPTURE(BM_JsonInsitu, gamechat_message, kGameChatMessage, "action");
BENCHMARK_CAPTURE(BM_JsonInsitu, bridge_relay, kBridgeRelay, "type");
BENCHMARK_CAPTURE(BM_JsonInsituReusedDoc, native_publish, kNativePublish, "op");
BENCHMARK_CAPTURE(BM_JsonInsituReusedDoc, livemap_position, kLiveMapPosition, "type");
BENCHMARK_CAPTURE(BM_JsonInsituReusedDoc, gamechat_message, kGameChatMessage, "action");
BENCHMARK_CAPTURE(BM_JsonInsituReusedDoc, bridge_relay, kBridgeRelay, "type");

}  // namespace

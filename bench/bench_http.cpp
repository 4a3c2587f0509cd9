// HTTP upgrade request parsing and the RFC 6455 opening handshake.
#include <benchmark/benchmark.h>

#include <string>
#include <string_view>

#include "ringcast/websocket/handshake.h"
#include "ringcast/websocket/http_request.h"

using namespace ringcast::websocket;

namespace {

// What a current desktop browser sends to open a WebSocket (about 430 bytes).
constexpr std::string_view kUpgradeRequest =
    "GET /ws?room=lobby HTTP/1.1\r\n"
    "Host: chat.example.com\r\n"
    "Connection: Upgrade\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36\r\n"
    "Upgrade: websocket\r\n"
    "Origin: https://chat.example.com\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "\r\n";

constexpr size_t kMaxHead = 8192;

void BM_ParseHttpRequest(benchmark::State& state) {
  HttpRequest req;
  for (auto _ : state) {
    std::string_view buf = kUpgradeRequest;
    benchmark::DoNotOptimize(buf);  // the parser must not see a constant input
    ParseStatus st = parse_http_request(buf, kMaxHead, req);
    benchmark::DoNotOptimize(st);
    benchmark::DoNotOptimize(req.header_count);
    benchmark::ClobberMemory();
  }
  if (parse_http_request(kUpgradeRequest, kMaxHead, req) != ParseStatus::kComplete)
    state.SkipWithError("request did not parse");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kUpgradeRequest.size()));
  state.SetItemsProcessed(state.iterations());
  state.counters["head_bytes"] = static_cast<double>(kUpgradeRequest.size());
}
BENCHMARK(BM_ParseHttpRequest);

void BM_CheckUpgrade(benchmark::State& state) {
  HttpRequest req;
  if (parse_http_request(kUpgradeRequest, kMaxHead, req) != ParseStatus::kComplete) {
    state.SkipWithError("request did not parse");
    return;
  }
  const HttpRequest* r = &req;
  for (auto _ : state) {
    benchmark::DoNotOptimize(r);
    int status = check_upgrade(*r);
    benchmark::DoNotOptimize(status);
  }
  if (check_upgrade(req) != 0) state.SkipWithError("upgrade refused");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CheckUpgrade);

void BM_WebsocketAccept(benchmark::State& state) {
  std::string_view key = "dGhlIHNhbXBsZSBub25jZQ==";
  for (auto _ : state) {
    benchmark::DoNotOptimize(key);
    std::string accept = websocket_accept(key);
    benchmark::DoNotOptimize(accept.data());
    benchmark::ClobberMemory();
  }
  if (websocket_accept(key) != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") state.SkipWithError("wrong accept");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_WebsocketAccept);

// Everything the server does with an upgrade request before writing the 101 response.
void BM_FullHandshake(benchmark::State& state) {
  HttpRequest req;
  for (auto _ : state) {
    std::string_view buf = kUpgradeRequest;
    benchmark::DoNotOptimize(buf);
    if (parse_http_request(buf, kMaxHead, req) != ParseStatus::kComplete || !wants_upgrade(req) ||
        check_upgrade(req) != 0) {
      state.SkipWithError("handshake failed");
      break;
    }
    std::string accept = websocket_accept(*req.header("Sec-WebSocket-Key"));
    benchmark::DoNotOptimize(accept.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kUpgradeRequest.size()));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FullHandshake);

}  // namespace

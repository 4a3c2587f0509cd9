// Arbitrary bytes into one connection of a real Worker (fake socket, all routes mounted): HTTP
// requests, the upgrade, frames, fragmentation, control frames, close handling, and whatever the
// route's profile does with the messages. The input is split on kSplit into separate reads, with
// a loop pass after each; the first byte picks options. Everything the server writes is checked
// (see OutputChecker) and every session must be freed at the end.
#include <string_view>

#include "harness.h"

namespace {
constexpr std::string_view kSplit = "\xde\xad\xbe\xef";  // also in worker.dict
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  ringcast::fuzz::FakeServer server;
  if (flags & 1) server.set_short_send(7);  // the kernel takes a few bytes per send
  int conn = server.connect();
  int reads = 0;
  while (reads++ < 256) {
    size_t cut = in.find(kSplit);
    std::string_view piece = in.substr(0, cut);
    if (!piece.empty()) server.receive(conn, piece);
    if (cut == std::string_view::npos) break;
    in.remove_prefix(cut + kSplit.size());
  }
  if (flags & 2) server.peer_close(conn);
  return 0;  // ~FakeServer: graceful stop, then every session must be freed
}

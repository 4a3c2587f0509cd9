// permessage-deflate: the Sec-WebSocket-Extensions negotiation parser, and the bounded inflater
// on arbitrary (hostile) compressed input fed in pieces. Whatever inflates must stay within the
// cap, and must come back unchanged through our compressor and a fresh inflater.
#include <cstring>
#include <string>
#include <string_view>

#include "ringcast/websocket/http_request.h"
#include "ringcast/websocket/permessage_deflate.h"

using namespace ringcast::websocket;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  // [header length][Sec-WebSocket-Extensions value][compressed message, split every `step` bytes]
  size_t hlen = std::min<size_t>(data[0], size - 1);
  std::string req = "GET / HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Extensions: ";
  req.append(reinterpret_cast<const char*>(data + 1), hlen);
  req += "\r\n\r\n";
  HttpRequest r;
  if (parse_http_request(req, 8192, r) == ParseStatus::kComplete) {
    if (auto a = negotiate_deflate(r)) {
      if (a->server_window_bits < 9 || a->server_window_bits > 15) __builtin_trap();
    }
  }
  std::string_view in(reinterpret_cast<const char*>(data + 1 + hlen), size - 1 - hlen);
  constexpr size_t kMax = 1 << 16;
  size_t step = in.empty() ? 1 : 1 + static_cast<uint8_t>(in[0]) % 64;
  MessageInflater inf;
  std::string out;
  MessageInflater::Result res = MessageInflater::Result::kOk;
  for (size_t i = 0; i < in.size() && res == MessageInflater::Result::kOk; i += step) {
    auto piece = in.substr(i, step);
    res = inf.feed({reinterpret_cast<const uint8_t*>(piece.data()), piece.size()}, out, kMax);
  }
  if (res == MessageInflater::Result::kOk) res = inf.finish(out, kMax);
  if (out.size() > kMax + 1) __builtin_trap();
  if (res != MessageInflater::Result::kOk) return 0;
  // Round trip through our own compressor.
  MessageDeflater def(1);
  ringcast::engine::SharedFrame* f =
      def.compress(2, {reinterpret_cast<const uint8_t*>(out.data()), out.size()}, 15);
  if (!f) return 0;
  std::span<const uint8_t> b = f->bytes();
  size_t head = (b[1] & 0x7f) == 126 ? 4 : (b[1] & 0x7f) == 127 ? 10 : 2;
  if ((b[0] & 0x40) == 0) __builtin_trap();
  MessageInflater back;
  std::string again;
  if (back.feed(b.subspan(head), again, kMax) != MessageInflater::Result::kOk ||
      back.finish(again, kMax) != MessageInflater::Result::kOk || again != out)
    __builtin_trap();
  f->release();
  return 0;
}

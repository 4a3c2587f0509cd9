#include "ringcast/websocket/permessage_deflate.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <string>
#include <vector>

using namespace ringcast::websocket;

namespace {

std::optional<DeflateAgreement> offer(const std::string& value) {
  static std::string req;
  req = "GET /x HTTP/1.1\r\nHost: a\r\nSec-WebSocket-Extensions: " + value + "\r\n\r\n";
  static HttpRequest r;
  EXPECT_EQ(parse_http_request(req, 8192, r), ParseStatus::kComplete);
  return negotiate_deflate(r);
}

std::string raw_deflate(const std::string& in, int bits = 15) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, -bits, 8, Z_DEFAULT_STRATEGY);
  std::vector<unsigned char> out(deflateBound(&z, in.size()) + 16);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_SYNC_FLUSH);
  size_t n = out.size() - z.avail_out;
  deflateEnd(&z);
  EXPECT_GE(n, 4u);
  // Without the 00 00 ff ff the sync flush ends with (RFC 7692 §7.2.1).
  return std::string(reinterpret_cast<const char*>(out.data()), n >= 4 ? n - 4 : 0);
}

}  // namespace

TEST(PermessageDeflate, Negotiation) {
  EXPECT_EQ(offer("permessage-deflate")->response,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
  EXPECT_EQ(offer("permessage-deflate; server_max_window_bits=11")->server_window_bits, 11);
  EXPECT_FALSE(offer("permessage-deflate; server_max_window_bits=8"));
  EXPECT_FALSE(offer("permessage-deflate; server_max_window_bits=07"));
  EXPECT_FALSE(offer("permessage-deflate; client_max_window_bits=16"));
  EXPECT_FALSE(offer("permessage-deflate; foo=1"));
  EXPECT_FALSE(offer("deflate-frame"));
  EXPECT_EQ(offer("foo, permessage-deflate; bar, permessage-deflate; client_max_window_bits")
                ->server_window_bits,
            15);
}

TEST(PermessageDeflate, RoundTripAndThreshold) {
  MessageDeflater d(1);
  std::string msg;
  for (int i = 0; i < 200; ++i)
    msg += "{\"type\":\"position_update\",\"x\":" + std::to_string(i) + "}";
  auto* f = d.compress(1, {reinterpret_cast<const uint8_t*>(msg.data()), msg.size()}, 15);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->data()[0], 0x80 | 0x40 | 1);
  EXPECT_LT(f->size(), msg.size() / 4);
  size_t head = (f->data()[1] & 0x7f) == 126 ? 4 : 2;
  MessageInflater inf;
  std::string out;
  auto payload = f->bytes().subspan(head);
  // Fed in 3-byte pieces, as frames split across reads would be.
  for (size_t i = 0; i < payload.size(); i += 3)
    ASSERT_EQ(inf.feed(payload.subspan(i, std::min<size_t>(3, payload.size() - i)), out, 1 << 20),
              MessageInflater::Result::kOk);
  ASSERT_EQ(inf.finish(out, 1 << 20), MessageInflater::Result::kOk);
  EXPECT_EQ(out, msg);
  f->release();
  // Random bytes do not shrink: nothing to send compressed.
  std::string noise;
  for (int i = 0; i < 1000; ++i) noise.push_back(static_cast<char>((i * 7919) ^ (i >> 3) * 31));
  EXPECT_EQ(d.compress(2, {reinterpret_cast<const uint8_t*>(noise.data()), noise.size()}, 15),
            nullptr);
}

TEST(PermessageDeflate, InflateIsBoundedByTheCap) {
  std::string bomb = raw_deflate(std::string(10 << 20, '\0'));
  ASSERT_LT(bomb.size(), 20000u);
  MessageInflater inf;
  std::string out;
  auto r = inf.feed({reinterpret_cast<const uint8_t*>(bomb.data()), bomb.size()}, out, 65536);
  EXPECT_EQ(r, MessageInflater::Result::kTooBig);
  EXPECT_LE(out.size(), 65537u);
  inf.reset();
  out.clear();
  std::string exact = raw_deflate(std::string(65536, 'a'));
  ASSERT_EQ(inf.feed({reinterpret_cast<const uint8_t*>(exact.data()), exact.size()}, out, 65536),
            MessageInflater::Result::kOk);
  ASSERT_EQ(inf.finish(out, 65536), MessageInflater::Result::kOk);
  EXPECT_EQ(out.size(), 65536u);
}

TEST(PermessageDeflate, CorruptInputIsBad) {
  MessageInflater inf;
  std::string out;
  const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x12};
  EXPECT_EQ(inf.feed(junk, out, 1 << 20), MessageInflater::Result::kBad);
}

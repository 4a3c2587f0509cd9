// Client-side WebSocket pieces: handshake, masked frames, reassembly of split/fragmented frames.
#include <gtest/gtest.h>
#include <zlib.h>

#include <string>
#include <vector>

#include "load/ws_proto.h"

namespace ringcast::load {
namespace {

TEST(LoadWsProto, AcceptKeyFromRfc6455) {
  EXPECT_EQ(websocket_accept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  const uint8_t nonce[16] = {};
  EXPECT_EQ(base64_encode(nonce, 16), "AAAAAAAAAAAAAAAAAAAAAA==");
}

TEST(LoadWsProto, UpgradeRequest) {
  std::string r = upgrade_request("127.0.0.1:9000", "/raw/a?echo=0", "KEY");
  EXPECT_EQ(r.rfind("GET /raw/a?echo=0 HTTP/1.1\r\n", 0), 0u);
  EXPECT_NE(r.find("\r\nHost: 127.0.0.1:9000\r\n"), std::string::npos);
  EXPECT_NE(r.find("\r\nSec-WebSocket-Key: KEY\r\n"), std::string::npos);
  EXPECT_NE(r.find("\r\nSec-WebSocket-Version: 13\r\n"), std::string::npos);
  EXPECT_TRUE(r.ends_with("\r\n\r\n"));
}

TEST(LoadWsProto, UpgradeResponse) {
  const std::string accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
  const std::string ok =
      "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\nConnection: keep-alive, "
      "Upgrade\r\n"
      "Sec-WebSocket-Accept: " +
      accept + "\r\n\r\n";
  size_t used = 0;
  std::string err;
  EXPECT_EQ(parse_upgrade_response(ok.substr(0, 40), accept, used, err),
            HandshakeStatus::kIncomplete);
  EXPECT_EQ(parse_upgrade_response(ok + "\x82\x01x", accept, used, err), HandshakeStatus::kOk);
  EXPECT_EQ(used, ok.size());

  EXPECT_EQ(parse_upgrade_response("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", accept,
                                   used, err),
            HandshakeStatus::kFailed);
  EXPECT_NE(err.find("404"), std::string::npos);
  std::string wrong = ok;
  wrong.replace(wrong.find(accept), 4, "AAAA");
  EXPECT_EQ(parse_upgrade_response(wrong, accept, used, err), HandshakeStatus::kFailed);
  EXPECT_NE(err.find("wrong Sec-WebSocket-Accept"), std::string::npos);
  EXPECT_EQ(
      parse_upgrade_response("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                             accept, used, err),
      HandshakeStatus::kFailed);
  EXPECT_EQ(
      parse_upgrade_response("HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: " + accept + "\r\n\r\n",
                             accept, used, err),
      HandshakeStatus::kFailed);
  EXPECT_EQ(parse_upgrade_response("garbage\r\n\r\n", accept, used, err), HandshakeStatus::kFailed);
}

// Server-side view of a client frame: unmasks and returns opcode/payload.
struct Decoded {
  bool fin;
  uint8_t op;
  std::string payload;
  size_t size;
};
Decoded decode_client_frame(const std::string& f) {
  auto p = reinterpret_cast<const uint8_t*>(f.data());
  Decoded d{bool(p[0] & 0x80), uint8_t(p[0] & 0x0F), "", 0};
  EXPECT_TRUE(p[1] & 0x80) << "client frames must be masked";
  uint64_t len = p[1] & 0x7F;
  size_t h = 2;
  if (len == 126) {
    len = (uint64_t{p[2]} << 8) | p[3];
    h = 4;
  } else if (len == 127) {
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
    h = 10;
  }
  const uint8_t* key = p + h;
  h += 4;
  for (uint64_t i = 0; i < len; ++i) d.payload += static_cast<char>(p[h + i] ^ key[i % 4]);
  d.size = h + len;
  return d;
}

TEST(LoadWsProto, MaskedClientFramesOfEveryLengthClass) {
  for (size_t n : {0, 1, 7, 8, 9, 125, 126, 127, 65535, 65536, 70001}) {
    std::string payload(n, '\0');
    for (size_t i = 0; i < n; ++i) payload[i] = static_cast<char>(i * 31 + 7);
    std::string out = "prefix";
    append_frame(out, opcode::kBinary, reinterpret_cast<const uint8_t*>(payload.data()), n,
                 0xA1B2C3D4u);
    Decoded d = decode_client_frame(out.substr(6));
    EXPECT_TRUE(d.fin);
    EXPECT_EQ(d.op, opcode::kBinary);
    EXPECT_EQ(d.payload, payload) << n;
    EXPECT_EQ(d.size, out.size() - 6);
  }
}

// Unmasked server frame.
std::string server_frame(uint8_t op, const std::string& payload, bool fin = true) {
  std::string f;
  f += static_cast<char>((fin ? 0x80 : 0) | op);
  size_t n = payload.size();
  if (n < 126) {
    f += static_cast<char>(n);
  } else if (n <= 0xFFFF) {
    f += static_cast<char>(126);
    f += static_cast<char>(n >> 8);
    f += static_cast<char>(n & 0xFF);
  } else {
    f += static_cast<char>(127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>((uint64_t{n} >> (8 * i)) & 0xFF);
  }
  return f + payload;
}

struct Collector {
  std::vector<std::pair<uint8_t, std::string>> got;
  FragmentState st;
  std::string pending;
  const char* err = nullptr;
  // Feeds bytes the way the event loop does: keeps unconsumed bytes for the next read.
  bool feed(const std::string& bytes) {
    pending += bytes;
    long used = consume_frames(
        reinterpret_cast<const uint8_t*>(pending.data()), pending.size(), st,
        [&](uint8_t op, const uint8_t* p, size_t n) {
          got.emplace_back(op, std::string(reinterpret_cast<const char*>(p), n));
          return true;
        },
        &err);
    if (used < 0) return false;
    pending.erase(0, static_cast<size_t>(used));
    return true;
  }
};

TEST(LoadWsProto, FramesSplitAtEveryByte) {
  std::string big16(300, 'b'), big64(70000, 'c');
  std::string stream = server_frame(opcode::kText, "hello") + server_frame(opcode::kBinary, big16) +
                       server_frame(opcode::kBinary, big64) + server_frame(opcode::kPing, "p");
  for (size_t chunk : {size_t{1}, size_t{2}, size_t{3}, size_t{1000}, stream.size()}) {
    Collector c;
    for (size_t i = 0; i < stream.size(); i += chunk) ASSERT_TRUE(c.feed(stream.substr(i, chunk)));
    ASSERT_EQ(c.got.size(), 4u) << chunk;
    EXPECT_EQ(c.got[0], std::make_pair(opcode::kText, std::string("hello")));
    EXPECT_EQ(c.got[1].second, big16);
    EXPECT_EQ(c.got[2].second, big64);
    EXPECT_EQ(c.got[3], std::make_pair(opcode::kPing, std::string("p")));
    EXPECT_TRUE(c.pending.empty());
  }
}

TEST(LoadWsProto, FragmentedMessageWithInterleavedControlFrame) {
  std::string stream = server_frame(opcode::kBinary, "ab", false) +
                       server_frame(opcode::kPing, "x") +
                       server_frame(opcode::kContinuation, "cd", false) +
                       server_frame(opcode::kContinuation, "ef", true);
  Collector c;
  for (char ch : stream) ASSERT_TRUE(c.feed(std::string(1, ch)));
  ASSERT_EQ(c.got.size(), 2u);
  EXPECT_EQ(c.got[0], std::make_pair(opcode::kPing, std::string("x")));
  EXPECT_EQ(c.got[1], std::make_pair(opcode::kBinary, std::string("abcdef")));
}

TEST(LoadWsProto, ProtocolErrors) {
  auto fails = [](const std::string& bytes) {
    Collector c;
    return !c.feed(bytes);
  };
  EXPECT_TRUE(fails(std::string("\x82\x81\x00\x00\x00\x00x", 7)));         // masked
  EXPECT_TRUE(fails(std::string("\xC2\x01x", 3)));                         // RSV1
  EXPECT_TRUE(fails(server_frame(opcode::kContinuation, "x")));            // no start
  EXPECT_TRUE(fails(server_frame(opcode::kPing, std::string(126, 'p'))));  // long control
  EXPECT_TRUE(fails(server_frame(opcode::kPing, "p", false)));             // fragmented ctl
  EXPECT_TRUE(fails(server_frame(0x3, "x")));                              // reserved opcode
  EXPECT_TRUE(fails(server_frame(opcode::kText, "a", false) + server_frame(opcode::kText, "b")));
  EXPECT_TRUE(fails(std::string("\x82\x7F\x80\x00\x00\x00\x00\x00\x00\x00", 10)));  // 2^63
  EXPECT_TRUE(fails(std::string("\x82\x7F\x00\x00\x00\x01\x00\x00\x00\x00", 10)));  // too big
}

TEST(LoadWsProto, StopsWhenCallbackSaysSo) {
  std::string stream = server_frame(opcode::kClose, "\x03\xe8") + server_frame(opcode::kText, "z");
  FragmentState st;
  const char* err = nullptr;
  int calls = 0;
  long used = consume_frames(
      reinterpret_cast<const uint8_t*>(stream.data()), stream.size(), st,
      [&](uint8_t, const uint8_t*, size_t) {
        ++calls;
        return false;
      },
      &err);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(used, 4);
}

}  // namespace
}  // namespace ringcast::load

namespace {
std::string raw_deflate(const std::string& in) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
  std::vector<unsigned char> out(in.size() + 64);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_SYNC_FLUSH);
  size_t n = out.size() - z.avail_out;
  deflateEnd(&z);
  // Without the 00 00 ff ff the sync flush ends with.
  return std::string(reinterpret_cast<const char*>(out.data()), n >= 4 ? n - 4 : 0);
}
}  // namespace

TEST(WsProto, CompressedServerMessages) {
  const std::string msg(5000, 'x');
  std::string z = raw_deflate(msg);
  // One compressed frame, then the same split in two fragments (RSV1 on the first only).
  std::string wire;
  wire.push_back(static_cast<char>(0x80 | 0x40 | 0x1));
  wire.push_back(static_cast<char>(z.size()));
  wire += z;
  wire.push_back(static_cast<char>(0x40 | 0x2));
  wire.push_back(static_cast<char>(3));
  wire += z.substr(0, 3);
  wire.push_back(static_cast<char>(0x80));
  wire.push_back(static_cast<char>(z.size() - 3));
  wire += z.substr(3);
  ASSERT_LT(z.size(), 126u);
  ringcast::load::FragmentState st;
  const char* err = nullptr;
  std::vector<std::pair<int, std::string>> got;
  auto cb = [&](uint8_t op, const uint8_t* p, size_t n) {
    got.emplace_back(op, std::string(reinterpret_cast<const char*>(p), n));
    return true;
  };
  // Without the extension agreed, RSV1 is a protocol error.
  EXPECT_EQ(ringcast::load::consume_frames(reinterpret_cast<const uint8_t*>(wire.data()),
                                           wire.size(), st, cb, &err),
            -1);
  st = {};
  st.deflate = true;
  long used = ringcast::load::consume_frames(reinterpret_cast<const uint8_t*>(wire.data()),
                                             wire.size(), st, cb, &err);
  EXPECT_EQ(used, static_cast<long>(wire.size())) << (err ? err : "");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], std::make_pair(1, msg));
  EXPECT_EQ(got[1], std::make_pair(2, msg));
  std::string req = ringcast::load::upgrade_request("h", "/x", "k", true);
  EXPECT_NE(req.find("Sec-WebSocket-Extensions: permessage-deflate"), std::string::npos);
}

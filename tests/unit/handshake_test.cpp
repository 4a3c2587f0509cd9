#include "ringcast/websocket/handshake.h"

#include <gtest/gtest.h>

using namespace ringcast::websocket;

TEST(Handshake, AcceptValueFromRfc6455) {
  EXPECT_EQ(websocket_accept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(Handshake, KeyValidation) {
  EXPECT_TRUE(valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ=="));
  EXPECT_FALSE(valid_websocket_key(""));
  EXPECT_FALSE(valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ="));  // 15 bytes
  EXPECT_FALSE(valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ!="));
  EXPECT_FALSE(valid_websocket_key("dGhlIHNhbXBsZSBub25j*Q=="));
  EXPECT_FALSE(valid_websocket_key("dGhlIHNhbXBsZSBub25jZZ=="));  // non-zero padding bits
}

namespace {
int check(const std::string& raw) {
  HttpRequest req;
  EXPECT_EQ(parse_http_request(raw, 8192, req), ParseStatus::kComplete);
  return check_upgrade(req);
}
const std::string kKey = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
}  // namespace

TEST(Handshake, UpgradeChecks) {
  EXPECT_EQ(check("GET /echo HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
                  kKey + "Sec-WebSocket-Version: 13\r\n\r\n"),
            0);
  EXPECT_EQ(check("GET /echo HTTP/1.1\r\nHost: a\r\nUpgrade: WebSocket\r\nConnection: keep-alive, "
                  "upgrade\r\n" +
                  kKey + "Sec-WebSocket-Version: 13\r\n\r\n"),
            0);
  EXPECT_EQ(check("GET /echo HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
                  kKey + "Sec-WebSocket-Version: 8\r\n\r\n"),
            426);
  EXPECT_EQ(check("GET /echo HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n"),
            400);
  EXPECT_EQ(check("GET /echo HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n" + kKey +
                  "Sec-WebSocket-Version: 13\r\n\r\n"),
            400);
  EXPECT_EQ(
      check("POST /echo HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            kKey + "Sec-WebSocket-Version: 13\r\n\r\n"),
      400);
  EXPECT_EQ(check("GET /echo HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + kKey +
                  "Sec-WebSocket-Version: 13\r\n\r\n"),
            400);
}

// RFC 6455 §11.3.1/§11.3.5: Sec-WebSocket-Key and Sec-WebSocket-Version appear once; RFC 7230
// §5.4: exactly one Host in HTTP/1.1.
TEST(Handshake, HeadersThatMustAppearOnce) {
  const std::string head =
      "GET /echo HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\n";
  const std::string version = "Sec-WebSocket-Version: 13\r\n";
  EXPECT_EQ(check(head + kKey + kKey + version + "\r\n"), 400);
  EXPECT_EQ(
      check(head + kKey + "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n" + version + "\r\n"),
      400);
  EXPECT_EQ(check(head + kKey + version + version + "\r\n"), 400);
  EXPECT_EQ(check(head + kKey + version + "sec-websocket-version: 8\r\n\r\n"), 400);
  // List-valued headers may repeat.
  EXPECT_EQ(check(head + kKey + version + "Connection: keep-alive\r\nUpgrade: websocket\r\n" +
                  "Sec-WebSocket-Protocol: a\r\nSec-WebSocket-Protocol: b\r\n\r\n"),
            0);
  HttpRequest req;
  EXPECT_EQ(parse_http_request(head + "Host: b\r\n" + kKey + version + "\r\n", 8192, req),
            ParseStatus::kBad);
}

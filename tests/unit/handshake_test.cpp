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
  EXPECT_EQ(check("GET /echo HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + kKey +
                  "Sec-WebSocket-Version: 13\r\n\r\n"),
            0);
  EXPECT_EQ(
      check("GET /echo HTTP/1.1\r\nUpgrade: WebSocket\r\nConnection: keep-alive, upgrade\r\n" +
            kKey + "Sec-WebSocket-Version: 13\r\n\r\n"),
      0);
  EXPECT_EQ(check("GET /echo HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + kKey +
                  "Sec-WebSocket-Version: 8\r\n\r\n"),
            426);
  EXPECT_EQ(check("GET /echo HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n"),
            400);
  EXPECT_EQ(check("GET /echo HTTP/1.1\r\nUpgrade: websocket\r\n" + kKey +
                  "Sec-WebSocket-Version: 13\r\n\r\n"),
            400);
  EXPECT_EQ(check("POST /echo HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + kKey +
                  "Sec-WebSocket-Version: 13\r\n\r\n"),
            400);
  EXPECT_EQ(check("GET /echo HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + kKey +
                  "Sec-WebSocket-Version: 13\r\n\r\n"),
            400);
}

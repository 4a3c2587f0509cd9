#include "ringcast/websocket/http_request.h"

#include <gtest/gtest.h>

#include <string>

using namespace ringcast::websocket;

TEST(HttpRequest, ParsesRequestLineHeadersAndQuery) {
  std::string raw =
      "GET /raw/room?echo=0&x=1 HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n"
      "Upgrade: websocket\r\n\r\nEXTRA";
  HttpRequest req;
  ASSERT_EQ(parse_http_request(raw, 8192, req), ParseStatus::kComplete);
  EXPECT_EQ(req.method, "GET");
  EXPECT_EQ(req.path, "/raw/room");
  EXPECT_EQ(req.query, "echo=0&x=1");
  EXPECT_EQ(req.version_minor, 1);
  EXPECT_EQ(req.head_length, raw.size() - 5);
  EXPECT_EQ(req.header("host"), "a");
  EXPECT_TRUE(req.header_has_token("Connection", "upgrade"));
  EXPECT_FALSE(req.header_has_token("Connection", "close"));
  EXPECT_EQ(query_param(req.query, "echo"), "0");
  EXPECT_EQ(query_param(req.query, "x"), "1");
  EXPECT_FALSE(query_param(req.query, "y").has_value());
  EXPECT_TRUE(req.keep_alive());
}

TEST(HttpRequest, IncompleteUntilBlankLine) {
  HttpRequest req;
  EXPECT_EQ(parse_http_request("GET / HTTP/1.1\r\nHost: a\r\n", 8192, req),
            ParseStatus::kIncomplete);
  EXPECT_EQ(parse_http_request("", 8192, req), ParseStatus::kIncomplete);
}

TEST(HttpRequest, RejectsMalformed) {
  HttpRequest req;
  for (const char* bad :
       {"GET\r\n\r\n", "GET / HTTP/2.0\r\n\r\n", "GET / FOO\r\n\r\n", "G@T / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nNoColon\r\n\r\n", "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
        "GET / HTTP/1.1\r\n folded: x\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n",
        "GET relative HTTP/1.1\r\n\r\n"}) {
    EXPECT_EQ(parse_http_request(bad, 8192, req), ParseStatus::kBad) << bad;
  }
}

TEST(HttpRequest, HostExactlyOnceInHttp11) {
  HttpRequest req;
  EXPECT_EQ(parse_http_request("GET / HTTP/1.1\r\n\r\n", 8192, req), ParseStatus::kBad);
  EXPECT_EQ(parse_http_request("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 8192, req),
            ParseStatus::kBad);
  EXPECT_EQ(parse_http_request("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", 8192, req),
            ParseStatus::kBad);
  EXPECT_EQ(parse_http_request("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 8192, req),
            ParseStatus::kComplete);
  EXPECT_EQ(req.header_count_of("HOST"), 1u);
  EXPECT_EQ(parse_http_request("GET / HTTP/1.0\r\n\r\n", 8192, req), ParseStatus::kComplete);
}

TEST(HttpRequest, BoundsHeadSizeAndHeaderCount) {
  HttpRequest req;
  std::string big = "GET / HTTP/1.1\r\nX: " + std::string(9000, 'a');
  EXPECT_EQ(parse_http_request(big, 8192, req), ParseStatus::kTooLarge);
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 100; ++i) many.append("H").append(std::to_string(i)).append(": v\r\n");
  many += "\r\n";
  EXPECT_EQ(parse_http_request(many, 65536, req), ParseStatus::kTooLarge);
}

TEST(HttpRequest, Http10KeepAliveRules) {
  HttpRequest req;
  ASSERT_EQ(parse_http_request("GET / HTTP/1.0\r\n\r\n", 8192, req), ParseStatus::kComplete);
  EXPECT_FALSE(req.keep_alive());
  ASSERT_EQ(parse_http_request("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 8192, req),
            ParseStatus::kComplete);
  EXPECT_TRUE(req.keep_alive());
  ASSERT_EQ(parse_http_request("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 8192, req),
            ParseStatus::kComplete);
  EXPECT_FALSE(req.keep_alive());
}

TEST(HttpRequest, AbsoluteFormKeepsPath) {
  HttpRequest req;
  ASSERT_EQ(parse_http_request("GET http://h:1/echo?a HTTP/1.1\r\nHost: h:1\r\n\r\n", 8192, req),
            ParseStatus::kComplete);
  EXPECT_EQ(req.path, "/echo");
  EXPECT_EQ(req.query, "a");
}

// HTTP/1.1 responses of the server API as the http-publish scenario reads them.
#include <gtest/gtest.h>

#include <string>

#include "load/http_proto.h"

namespace ringcast::load {
namespace {

const std::string kOk =
    "HTTP/1.1 200 OK\r\nServer: ringcast\r\nContent-Type: application/json\r\n"
    "Content-Length: 23\r\nConnection: keep-alive\r\nCache-Control: no-store\r\n\r\n"
    "{\"room\":\"load\",\"seq\":7}";

TEST(LoadHttpProto, ParsesOneResponse) {
  HttpResponseView r;
  std::string err;
  ASSERT_EQ(parse_http_response(kOk, r, err), HttpParse::kOk) << err;
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.close);
  EXPECT_EQ(r.body, "{\"room\":\"load\",\"seq\":7}");
  EXPECT_EQ(r.consumed, kOk.size());
}

TEST(LoadHttpProto, EveryPrefixIsIncompleteAndPipelinedResponsesSplit) {
  HttpResponseView r;
  std::string err;
  for (size_t n = 0; n < kOk.size(); ++n)
    EXPECT_EQ(parse_http_response(std::string_view(kOk).substr(0, n), r, err),
              HttpParse::kIncomplete)
        << n;
  const std::string err401 =
      "HTTP/1.1 401 Unauthorized\r\ncontent-length: 11\r\nConnection: close\r\n\r\n{\"error\":1}";
  std::string two = kOk + err401 + "HTTP/1.1 2";
  ASSERT_EQ(parse_http_response(two, r, err), HttpParse::kOk);
  std::string_view rest = std::string_view(two).substr(r.consumed);
  ASSERT_EQ(parse_http_response(rest, r, err), HttpParse::kOk) << err;
  EXPECT_EQ(r.status, 401);
  EXPECT_TRUE(r.close);
  EXPECT_EQ(r.body, "{\"error\":1}");
  EXPECT_EQ(parse_http_response(rest.substr(r.consumed), r, err), HttpParse::kIncomplete);
}

TEST(LoadHttpProto, BodylessStatuses) {
  HttpResponseView r;
  std::string err;
  ASSERT_EQ(parse_http_response("HTTP/1.1 204 No Content\r\nServer: x\r\n\r\nHTTP", r, err),
            HttpParse::kOk);
  EXPECT_EQ(r.status, 204);
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(r.consumed, 38u);  // up to the next response
  ASSERT_EQ(parse_http_response("HTTP/1.1 100 Continue\r\n\r\n", r, err), HttpParse::kOk);
  EXPECT_EQ(r.status, 100);
  // HTTP/1.0 closes unless it says keep-alive.
  ASSERT_EQ(parse_http_response("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", r, err),
            HttpParse::kOk);
  EXPECT_TRUE(r.close);
}

TEST(LoadHttpProto, Rejected) {
  HttpResponseView r;
  std::string err;
  auto fails = [&](const std::string& s, const std::string& fragment) {
    err.clear();
    EXPECT_EQ(parse_http_response(s, r, err), HttpParse::kFailed) << s;
    EXPECT_NE(err.find(fragment), std::string::npos)
        << "'" << err << "' lacks '" << fragment << "'";
  };
  fails("HTTP/1.1 200 OK\r\n\r\n", "without Content-Length");
  fails("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "not supported");
  fails("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", "bad Content-Length");
  fails("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "bad Content-Length");
  fails("HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n", "body of");
  fails("SSH-2.0-OpenSSH\r\n\r\n", "status line");
  fails("HTTP/1.1 2000 OK\r\n\r\n", "status line");
  fails("HTTP/1.1 abc OK\r\n\r\n", "status line");
  fails("HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "header line");
  fails(std::string("HTTP/1.1 200 OK\r\nX: ") + std::string(kMaxHttpHead, 'a'), "head over");
}

TEST(LoadHttpProto, PostPrefix) {
  EXPECT_EQ(http_post_prefix("127.0.0.1:8765", "/api/publish", "apikey k"),
            "POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1:8765\r\nAuthorization: apikey k\r\n"
            "Content-Type: application/json\r\nContent-Length: ");
}

}  // namespace
}  // namespace ringcast::load

// Command-line parsing of ringcast-load: accepted forms and rejected ones.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "load/options.h"
#include "load/workloads.h"

namespace ringcast::load {
namespace {

Options parse(std::vector<std::string> args) {
  return parse_args(args);
}

TEST(LoadOptions, EchoDefaultsAndValues) {
  Options o = parse({"echo", "ws://127.0.0.1:9000/echo"});
  EXPECT_EQ(o.scenario, Scenario::kEcho);
  EXPECT_EQ(o.threads, 2);
  EXPECT_EQ(o.duration, 10);
  EXPECT_EQ(o.connections, 10u);
  EXPECT_EQ(o.pipeline, 1u);
  EXPECT_EQ(o.rate, 0);
  EXPECT_EQ(o.url.host, "127.0.0.1");
  EXPECT_EQ(o.url.port, 9000);
  EXPECT_EQ(o.url.path, "/echo");

  o = parse({"echo", "--connections", "100", "--size=20", "--duration", "5", "--pipeline", "4",
             "--threads", "3", "--json", "out.json", "--plot", "p.svg", "ws://localhost:1/echo"});
  EXPECT_EQ(o.connections, 100u);
  EXPECT_EQ(o.size, 20u);
  EXPECT_EQ(o.duration, 5);
  EXPECT_EQ(o.pipeline, 4u);
  EXPECT_EQ(o.threads, 3);
  EXPECT_EQ(o.json_path, "out.json");
  EXPECT_EQ(o.plot_path, "p.svg");
  EXPECT_EQ(o.total_connections(), 100u);

  o = parse({"echo", "ws://127.0.0.1:9000/echo", "--rate", "2500.5", "--text", "--size", "32"});
  EXPECT_DOUBLE_EQ(o.rate, 2500.5);
  EXPECT_TRUE(o.text);
}

TEST(LoadOptions, OtherScenarios) {
  Options o = parse({"broadcast", "--subscribers", "1000", "--publishers", "4", "--rate", "200",
                     "--publisher-echo", "ws://127.0.0.1:8765/raw/room1"});
  EXPECT_EQ(o.scenario, Scenario::kBroadcast);
  EXPECT_EQ(o.subscribers, 1000u);
  EXPECT_EQ(o.publishers, 4u);
  EXPECT_EQ(o.rate, 200);
  EXPECT_TRUE(o.publisher_echo);
  EXPECT_EQ(o.total_connections(), 1004u);
  EXPECT_EQ(parse({"broadcast", "ws://h:1/raw/r"}).rate, 1000);  // default publish rate

  EXPECT_EQ(o.flow, Flow::kRaw);
  o = parse({"broadcast", "--flow", "livemap", "ws://127.0.0.1:8765/map"});
  EXPECT_EQ(o.flow, Flow::kLivemap);
  o = parse({"broadcast", "--flow=gamechat", "--token", "t1", "ws://127.0.0.1:8765/chat"});
  EXPECT_EQ(o.flow, Flow::kGamechat);
  EXPECT_EQ(o.token, "t1");
  EXPECT_STREQ(flow_name(o.flow), "gamechat");
  o = parse({"broadcast", "--flow", "native", "--room", "r1", "ws://127.0.0.1:8765/ws"});
  EXPECT_EQ(o.flow, Flow::kNative);
  EXPECT_EQ(o.room, "r1");

  o = parse({"relay", "--pairs", "50", "ws://127.0.0.1:8765/raw"});
  EXPECT_EQ(o.pairs, 50u);
  EXPECT_EQ(o.total_connections(), 100u);

  o = parse({"connect", "--connections", "2000", "--rate", "500", "--hold", "30", "--source-addrs",
             "4", "ws://127.0.0.1:8765/echo"});
  EXPECT_EQ(o.scenario, Scenario::kConnect);
  EXPECT_EQ(o.connections, 2000u);
  EXPECT_EQ(o.rate, 500);
  EXPECT_EQ(o.hold, 30);
  EXPECT_EQ(o.source_addrs, 4u);
  EXPECT_TRUE(parse({"connect", "--help"}).help);
  EXPECT_TRUE(parse({"-h"}).help);
}

TEST(LoadOptions, HttpPublish) {
  Options o = parse({"http-publish", "--api-key", "k-0123456789abcdef", "ws://127.0.0.1:8765/ws"});
  EXPECT_EQ(o.scenario, Scenario::kHttpPublish);
  EXPECT_STREQ(scenario_name(o.scenario), "http-publish");
  EXPECT_EQ(o.flow, Flow::kNative);  // default: the native protocol
  EXPECT_EQ(o.room, "load");
  EXPECT_EQ(o.rate, 1000);
  EXPECT_EQ(o.subscribers, 10u);
  EXPECT_EQ(o.publishers, 1u);
  EXPECT_EQ(o.total_connections(), 11u);
  EXPECT_EQ(o.api_key, "k-0123456789abcdef");
  // The API defaults to the WebSocket URL's host and port.
  EXPECT_EQ(o.api.scheme, "http");
  EXPECT_EQ(o.api.host, "127.0.0.1");
  EXPECT_EQ(o.api.port, 8765);
  EXPECT_EQ(o.api.str(), "http://127.0.0.1:8765/");

  o = parse({"http-publish", "--subscribers", "100", "--publishers", "4", "--rate", "2000",
             "--room", "bench", "--api=http://[::1]:9001", "--api-key", "x", "--size", "200",
             "--flow", "native", "ws://localhost:8765/ws"});
  EXPECT_EQ(o.subscribers, 100u);
  EXPECT_EQ(o.publishers, 4u);
  EXPECT_EQ(o.rate, 2000);
  EXPECT_EQ(o.room, "bench");
  EXPECT_EQ(o.size, 200u);
  EXPECT_EQ(o.api.host, "::1");
  EXPECT_EQ(o.api.port, 9001);
  EXPECT_EQ(o.total_connections(), 104u);

  // Raw: the room is the URL's.
  o = parse({"http-publish", "--flow", "raw", "--api-key", "x", "ws://127.0.0.1:1/raw/ticker"});
  EXPECT_EQ(o.flow, Flow::kRaw);
  EXPECT_EQ(o.room, "ticker");
  EXPECT_STREQ(flow_name(Flow::kNative), "native");

  Url u = parse_http_url("http://api.local");
  EXPECT_EQ(u.port, 80);
  EXPECT_EQ(u.path, "/");
  EXPECT_EQ(parse_http_url("http://h:81/prefix/").path, "/prefix/");
}

TEST(LoadOptions, Urls) {
  Url u = parse_url("ws://127.0.0.1:8765/raw/room1?x=1");
  EXPECT_EQ(u.host, "127.0.0.1");
  EXPECT_EQ(u.port, 8765);
  EXPECT_EQ(u.path, "/raw/room1");
  EXPECT_EQ(u.query, "x=1");
  EXPECT_EQ(u.target(), "/raw/room1?x=1");
  EXPECT_EQ(u.host_header(), "127.0.0.1:8765");
  u = parse_url("ws://localhost");
  EXPECT_EQ(u.port, 80);
  EXPECT_EQ(u.path, "/");
  u = parse_url("ws://[::1]:9000/echo");
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.host_header(), "[::1]:9000");
  u = parse_url("ws://h:1?a=b");
  EXPECT_EQ(u.path, "/");
  EXPECT_EQ(u.query, "a=b");
  EXPECT_FALSE(u.tls);
  u = parse_url("wss://localhost/echo");
  EXPECT_TRUE(u.tls);
  EXPECT_EQ(u.port, 443);
  EXPECT_EQ(u.str(), "wss://localhost:443/echo");
}

TEST(LoadOptions, RoomTargets) {
  Url u = parse_url("ws://127.0.0.1:1/raw");
  EXPECT_EQ(relay_target(u, 3), "/raw/pair-3");
  EXPECT_EQ(relay_target(parse_url("ws://h:1/raw/"), 0), "/raw/pair-0");
  EXPECT_EQ(relay_target(parse_url("ws://h:1/echo?room={pair}"), 7), "/echo?room=pair-7");
  EXPECT_EQ(relay_target(parse_url("ws://h:1/r/{pair}/x?k=v"), 1), "/r/pair-1/x?k=v");
  EXPECT_EQ(with_query_param(parse_url("ws://h:1/raw/a"), "echo=0"), "/raw/a?echo=0");
  EXPECT_EQ(with_query_param(parse_url("ws://h:1/raw/a?t=1"), "echo=0"), "/raw/a?t=1&echo=0");
}

TEST(LoadOptions, SeveralUrls) {
  // One URL: as before, one node.
  Options o = parse({"echo", "ws://127.0.0.1:9000/echo"});
  ASSERT_EQ(o.urls.size(), 1u);
  EXPECT_EQ(o.urls[0].str(), o.url.str());
  for (uint64_t g = 0; g < 5; ++g) EXPECT_EQ(connection_node(o, g), 0u);

  // echo/connect: round robin over the URLs, options anywhere in between.
  o = parse({"echo", "ws://127.0.0.1:9001/echo", "--connections", "7", "ws://127.0.0.1:9002/echo",
             "ws://[::1]:9003/echo"});
  ASSERT_EQ(o.urls.size(), 3u);
  EXPECT_EQ(o.url.port, 9001);
  EXPECT_EQ(o.urls[1].port, 9002);
  EXPECT_EQ(o.urls[2].host, "::1");
  EXPECT_EQ(o.total_connections(), 7u);
  for (uint64_t g = 0; g < 7; ++g) EXPECT_EQ(connection_node(o, g), g % 3);
  o = parse({"connect", "ws://a:1/echo", "ws://b:1/echo"});
  EXPECT_EQ(connection_node(o, 0), 0u);
  EXPECT_EQ(connection_node(o, 1), 1u);

  // broadcast: subscriber j on URL j % n, publisher i on URL (i + 1) % n.
  o = parse({"broadcast", "--publishers", "3", "--subscribers", "4", "wss://a:1/raw/r",
             "wss://b:2/raw/r"});
  EXPECT_TRUE(o.urls[1].tls);
  EXPECT_EQ(connection_node(o, 0), 1u);  // publishers: gids 0..2
  EXPECT_EQ(connection_node(o, 1), 0u);
  EXPECT_EQ(connection_node(o, 2), 1u);
  EXPECT_EQ(connection_node(o, 3), 0u);  // subscribers: gids 3..6
  EXPECT_EQ(connection_node(o, 4), 1u);
  EXPECT_EQ(connection_node(o, 5), 0u);
  EXPECT_EQ(connection_node(o, 6), 1u);

  // relay: pair i's A on URL i % n, its B on URL (i + 1) % n: never the same node.
  o = parse({"relay", "--pairs", "5", "ws://a:1/raw", "ws://b:1/raw"});
  for (uint64_t i = 0; i < 5; ++i) {
    EXPECT_EQ(connection_node(o, i), i % 2);
    EXPECT_EQ(connection_node(o, 5 + i), (i + 1) % 2);
  }
  o = parse({"relay", "--pairs", "3", "ws://a:1/raw"});
  for (uint64_t g = 0; g < 6; ++g) EXPECT_EQ(connection_node(o, g), 0u);

  // http-publish: one API per WebSocket URL by default, or --api once per node.
  o = parse({"http-publish", "--api-key", "k", "--publishers", "2", "ws://a:1/ws", "ws://b:2/ws"});
  ASSERT_EQ(o.apis.size(), 2u);
  EXPECT_EQ(o.apis[0].str(), "http://a:1/");
  EXPECT_EQ(o.apis[1].str(), "http://b:2/");
  EXPECT_EQ(o.api.str(), "http://a:1/");
  EXPECT_EQ(connection_node(o, 0), 1u);  // API connection 0 -> --api 1
  EXPECT_EQ(connection_node(o, 1), 0u);
  EXPECT_EQ(connection_node(o, 2), 0u);  // subscriber 0
  o = parse({"http-publish", "--api-key", "k", "--publishers", "3", "--api", "http://a:8/p",
             "--api", "http://b:8/p", "--api", "http://c:8/p", "ws://a:1/ws"});
  ASSERT_EQ(o.apis.size(), 3u);
  EXPECT_EQ(o.api.str(), "http://a:8/p");
  EXPECT_EQ(connection_node(o, 0), 1u);
  EXPECT_EQ(connection_node(o, 1), 2u);
  EXPECT_EQ(connection_node(o, 2), 0u);
  EXPECT_EQ(connection_node(o, 3), 0u);  // the subscribers' single URL
}

void expect_rejected(std::vector<std::string> args, const std::string& fragment) {
  try {
    parse_args(args);
    ADD_FAILURE() << "accepted: " << ::testing::PrintToString(args);
  } catch (const ArgError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
        << "message '" << e.what() << "' lacks '" << fragment << "'";
  }
}

TEST(LoadOptions, Rejected) {
  const std::string url = "ws://127.0.0.1:9000/echo";
  expect_rejected({}, "missing scenario");
  expect_rejected({"flood", url}, "unknown scenario");
  expect_rejected({"echo"}, "missing URL");
  expect_rejected({"echo", url, url}, "given twice");
  expect_rejected({"echo", "--bogus", url}, "unknown option");
  expect_rejected({"echo", "--connections", url}, "not a non-negative integer");
  expect_rejected({"echo", url, "--connections"}, "needs a value");
  expect_rejected({"echo", "--connections", "0", url}, "out of range");
  expect_rejected({"echo", "--connections", "-5", url}, "not a non-negative integer");
  expect_rejected({"echo", "--connections", "10x", url}, "not a non-negative integer");
  expect_rejected({"echo", "--threads", "0", url}, "out of range");
  expect_rejected({"echo", "--duration", "abc", url}, "not a number");
  expect_rejected({"echo", "--duration", "0", url}, "out of range");
  expect_rejected({"echo", "--duration", "nan", url}, "not a number");
  expect_rejected({"echo", "--rate", "-1", url}, "out of range");
  expect_rejected({"echo", "--size", "8", url}, "payload header");
  expect_rejected({"echo", "--text", "--size", "20", url}, "payload header");
  expect_rejected({"echo", "--size", "999999999999", url}, "out of range");
  expect_rejected({"echo", "--connections", "1", "--connections", "2", url}, "given twice");
  expect_rejected({"echo", "--text=yes", url}, "takes no value");
  expect_rejected({"echo", "--rate", "100", "--pipeline", "2", url}, "closed-loop");
  expect_rejected({"echo", "--subscribers", "5", url}, "does not apply to scenario echo");
  expect_rejected({"echo", "--hold", "5", url}, "does not apply");
  expect_rejected({"connect", "--size", "100", url}, "does not apply");
  expect_rejected({"connect", "--pairs", "2", url}, "does not apply");
  expect_rejected({"relay", "--connections", "2", url}, "does not apply");
  expect_rejected({"broadcast", "--rate", "0", url}, "publish rate");
  expect_rejected({"broadcast", "--size", "30", "--text", url}, "payload header");
  expect_rejected({"broadcast", "--publishers", "0", url}, "out of range");
  expect_rejected({"broadcast", "--flow", "mqtt", url}, "raw, livemap, gamechat or native");
  expect_rejected({"broadcast", "--flow", "livemap", "--text", url}, "--flow raw only");
  expect_rejected({"broadcast", "--token", "x", url}, "--flow gamechat only");
  expect_rejected({"echo", "--flow", "livemap", url}, "does not apply");
  expect_rejected({"echo", "http://127.0.0.1:9000/echo"}, "must start with ws://");
  expect_rejected({"echo", "--tls-ca", "ca.pem", url}, "wss:// URLs only");
  expect_rejected({"echo", "ws://:9000/echo"}, "missing host");
  expect_rejected({"echo", "ws://127.0.0.1:/echo"}, "empty port");
  expect_rejected({"echo", "ws://127.0.0.1:70000/echo"}, "out of range");
  expect_rejected({"echo", "ws://127.0.0.1:9000/a b"}, "space");
  expect_rejected({"echo", "ws://[::1/echo"}, "unterminated");
  expect_rejected({"echo", "--json", "", url}, "empty file name");

  // http-publish
  const std::string ws = "ws://127.0.0.1:9000/ws";
  expect_rejected({"http-publish", ws}, "--api-key");
  expect_rejected({"http-publish", "--api-key", "", ws}, "empty key");
  expect_rejected({"http-publish", "--api-key", "a b", ws}, "space");
  expect_rejected({"http-publish", "--api-key", "k", "--rate", "0", ws}, "publish rate");
  expect_rejected({"http-publish", "--api-key", "k", "--flow", "gamechat", ws}, "native or raw");
  expect_rejected({"broadcast", "--room", "r", url}, "--flow native only");
  expect_rejected({"http-publish", "--api-key", "k", "--flow", "raw", ws}, "/raw/<room>");
  expect_rejected({"http-publish", "--api-key", "k", "--flow", "raw", "ws://h:1/raw/"},
                  "/raw/<room>");
  expect_rejected({"http-publish", "--api-key", "k", "--flow", "raw", "ws://h:1/raw/a/b"},
                  "/raw/<room>");
  expect_rejected(
      {"http-publish", "--api-key", "k", "--flow", "raw", "--room", "r", "ws://h:1/raw/a"},
      "--flow native only");
  expect_rejected({"http-publish", "--api-key", "k", "--room", "", ws}, "1-128 bytes");
  expect_rejected({"http-publish", "--api-key", "k", "--room", "a\"b", ws}, "quote");
  expect_rejected({"http-publish", "--api-key", "k", "--api", "ws://h:1", ws}, "http://");
  expect_rejected({"http-publish", "--api-key", "k", "--api", "https://h:1", ws}, "TLS");
  expect_rejected({"http-publish", "--api-key", "k", "--api", "http://h:1/?a=1", ws}, "query");
  expect_rejected({"http-publish", "--api-key", "k", "--api", "http://h:0", ws}, "out of range");
  expect_rejected({"http-publish", "--api-key", "k", "--text", ws}, "does not apply");
  expect_rejected({"http-publish", "--api-key", "k", "--publisher-echo", ws}, "does not apply");
  expect_rejected({"http-publish", "--api-key", "k", "--publishers", "0", ws}, "out of range");
  expect_rejected({"broadcast", "--api-key", "k", url}, "does not apply");
  expect_rejected({"echo", "--room", "r", url}, "does not apply");

  // Several URLs: one room on several nodes.
  expect_rejected({"broadcast", "ws://a:1/raw/x", "ws://b:1/raw/y"}, "same path");
  expect_rejected({"echo", "ws://a:1/echo", "ws://b:1/echo?x=1"}, "same path");
  expect_rejected({"echo", "ws://a:1/echo", "wss://b:1/echo"}, "same scheme");
  expect_rejected({"echo", "ws://a:1/echo", "ws://b:1/echo", "ws://a:1/echo"}, "given twice");
  expect_rejected({"echo", "ws://a:1/echo", "b:1/echo"}, "must start with ws://");
  expect_rejected(
      {"http-publish", "--api-key", "k", "--api", "http://a:1/x", "--api", "http://b:1/y", ws},
      "same path");
  expect_rejected(
      {"http-publish", "--api-key", "k", "--api", "http://a:1", "--api", "http://a:1", ws},
      "given twice");
  std::vector<std::string> many = {"connect"};
  for (int i = 1; i <= 257; ++i) many.push_back("ws://h:" + std::to_string(i) + "/echo");
  expect_rejected(many, "too many URLs");
}

}  // namespace
}  // namespace ringcast::load

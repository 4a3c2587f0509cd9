// Message payload encoding and the JSON/SVG/table renderings of results.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "load/payload.h"
#include "load/report.h"

namespace ringcast::load {
namespace {

TEST(LoadPayload, BinaryAndTextRoundTrip) {
  for (bool text : {false, true}) {
    std::vector<uint8_t> buf(64);
    PayloadWriter w(buf.data(), text);
    w.u32(0xDEADBEEF);
    w.u64(kReflectedBit | 12345);
    w.u64(987654321012345ull);
    EXPECT_EQ(w.offset(), text ? 40u : 20u);
    uint64_t salt = payload_salt(3, 12345);
    fill_padding(buf.data(), w.offset(), buf.size(), salt, text);
    if (text) {
      for (uint8_t c : buf) EXPECT_TRUE(c >= 0x20 && c < 0x7F);
    }
    PayloadReader r(buf.data(), buf.size(), text);
    uint32_t a = 0;
    uint64_t b = 0, c = 0;
    ASSERT_TRUE(r.u32(a));
    ASSERT_TRUE(r.u64(b));
    ASSERT_TRUE(r.u64(c));
    EXPECT_EQ(a, 0xDEADBEEFu);
    EXPECT_EQ(b, kReflectedBit | 12345);
    EXPECT_EQ(c, 987654321012345ull);
    EXPECT_EQ(check_padding(buf.data(), r.offset(), buf.size(), salt, text), buf.size());
    buf[50] ^= 1;
    EXPECT_EQ(check_padding(buf.data(), r.offset(), buf.size(), salt, text), 50u);
    EXPECT_NE(check_padding(buf.data(), r.offset(), buf.size(), payload_salt(3, 12346), text),
              buf.size());
  }
}

TEST(LoadPayload, ReaderRejectsShortOrBadInput) {
  const uint8_t shortbuf[5] = {1, 2, 3, 4, 5};
  PayloadReader r(shortbuf, 5, false);
  uint64_t v;
  EXPECT_FALSE(r.u64(v));
  const char bad[] = "0123456789abcdeZ";
  PayloadReader t(reinterpret_cast<const uint8_t*>(bad), 16, true);
  EXPECT_FALSE(t.u64(v));
}

Results sample() {
  Results r;
  r.scenario = "echo";
  r.url = "ws://127.0.0.1:1/echo";
  r.settings = {{"connections", "100"}};
  r.metrics.push_back({"throughput_msg_per_s", "throughput", 1234.5, "msg/s"});
  LatencySeries s{"round_trip", "round trip", {}};
  for (uint64_t i = 1; i <= 1000; ++i) s.hist.record(i * 1000);
  r.latency.push_back(std::move(s));
  r.errors = {{"payload", 0}, {"order", 2}};
  r.loss = 3;
  return r;
}

// The number after the first "key": in j.
double json_number(const std::string& j, const std::string& key) {
  size_t at = j.find("\"" + key + "\": ");
  if (at == std::string::npos) return -1;
  return std::stod(j.substr(at + key.size() + 4));
}

TEST(LoadReport, Json) {
  Results r = sample();
  std::string j = format_json(r);
  EXPECT_NE(j.find("\"scenario\": \"echo\""), std::string::npos);
  EXPECT_NE(j.find("\"passed\": true"), std::string::npos);
  EXPECT_NE(j.find("\"throughput_msg_per_s\": 1234.5"), std::string::npos);
  EXPECT_NEAR(json_number(j, "p50"), 500, 5);
  EXPECT_NEAR(json_number(j, "p99"), 990, 9.9);
  EXPECT_EQ(json_number(j, "max"), 1000);
  EXPECT_NE(j.find("\"errors_total\": 2"), std::string::npos);
  EXPECT_NE(j.find("\"loss\": 3"), std::string::npos);
  r.failures.push_back("a \"quoted\" reason\n");
  j = format_json(r);
  EXPECT_NE(j.find("\"passed\": false"), std::string::npos);
  EXPECT_NE(j.find("a \\\"quoted\\\" reason\\n"), std::string::npos);
}

TEST(LoadReport, PerUrl) {
  Results r = sample();
  std::string before_json = format_json(r), before_table = format_table(r);
  EXPECT_EQ(before_json.find("per_url"), std::string::npos);  // one URL: nothing added
  EXPECT_EQ(before_table.find("per URL"), std::string::npos);
  UrlStats a{"ws://127.0.0.1:1/raw/x", 6, 5, 1, 0, {}};
  a.metrics.push_back(Metric{"deliveries", "deliveries", 42, ""});
  r.per_url = {a, UrlStats{"ws://127.0.0.1:2/raw/x", 5, 5, 0, 2, {}}};
  std::string j = format_json(r);
  EXPECT_NE(j.find("\"per_url\": [\n    {\"url\": \"ws://127.0.0.1:1/raw/x\", \"connections\": 6, "
                   "\"opened\": 5, \"failed\": 1, \"closed\": 0, \"deliveries\": 42}"),
            std::string::npos)
      << j;
  EXPECT_NE(j.find("{\"url\": \"ws://127.0.0.1:2/raw/x\", \"connections\": 5, \"opened\": 5, "
                   "\"failed\": 0, \"closed\": 2}"),
            std::string::npos)
      << j;
  std::string t = format_table(r);
  EXPECT_NE(t.find("per URL\n  ws://127.0.0.1:1/raw/x\n    connections 6, opened 5, failed 1, "
                   "closed 0, deliveries 42\n"),
            std::string::npos)
      << t;
}

TEST(LoadReport, TableAndSvg) {
  Results r = sample();
  std::string t = format_table(r);
  EXPECT_NE(t.find("round trip"), std::string::npos);
  EXPECT_NE(t.find("PASS"), std::string::npos);
  EXPECT_NE(t.find("order 2"), std::string::npos);
  std::string svg = format_svg(r);
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
  EXPECT_NE(svg.find("<polyline"), std::string::npos);
  EXPECT_TRUE(svg.ends_with("</svg>\n"));
  r.latency.clear();
  EXPECT_NE(format_svg(r).find("no samples"), std::string::npos);
}

}  // namespace
}  // namespace ringcast::load

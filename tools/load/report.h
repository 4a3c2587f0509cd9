// Results of a run and their renderings: the final table, JSON and an SVG percentile plot.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "load/histogram.h"

namespace ringcast::load {

struct Metric {
  std::string key;    // JSON key, e.g. "throughput_msg_per_s"
  std::string label;  // table label, e.g. "throughput"
  double value = 0;
  std::string unit;  // e.g. "msg/s"
};

struct LatencySeries {
  std::string key;    // JSON key, e.g. "round_trip"
  std::string label;  // table/plot label
  Histogram hist;     // nanoseconds
};

// One server URL of a run over several (a node of a cluster): how its connections fared, plus
// scenario counts (broadcast: publishers, subscribers, deliveries received there).
struct UrlStats {
  std::string url;
  uint64_t connections = 0;  // planned
  uint64_t opened = 0;
  uint64_t failed = 0;  // never opened
  uint64_t closed = 0;  // closed during the run
  std::vector<Metric> metrics;
};

struct Results {
  std::string scenario;
  std::string url;
  std::vector<std::pair<std::string, std::string>> settings;  // options as given, for JSON
  std::vector<Metric> metrics;
  std::vector<LatencySeries> latency;
  std::vector<UrlStats> per_url;  // filled only when the run spans several URLs
  std::vector<std::pair<std::string, uint64_t>> errors;  // kind -> count (all kinds listed)
  uint64_t loss = 0;
  std::vector<std::string> failures;  // why the run failed; empty = passed
  bool passed() const { return failures.empty(); }
};

// Percentiles shown in the table and the JSON summary.
inline constexpr double kReportPercentiles[] = {50, 90, 99, 99.9};

std::string format_table(const Results& r);
std::string format_json(const Results& r);
// Latency percentile curves of every non-empty series: x = percentile on a log(1/(1-p)) axis up
// to 99.999 %, y = latency in µs.
std::string format_svg(const Results& r);

// JSON string literal with quotes.
std::string json_string(const std::string& s);

}  // namespace ringcast::load

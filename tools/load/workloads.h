// The scenarios (echo, broadcast, relay, connect, http-publish) as Workloads plus their result
// summaries.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "load/engine.h"
#include "load/options.h"
#include "load/report.h"

namespace ringcast::load {

class ScenarioWorkload : public Workload {
 public:
  // Called once after every worker thread has been joined. Adds metrics, latency series, loss and
  // scenario-specific failures; `seconds` is the length of the measured phase (connect: of the
  // connect phase).
  virtual void finish(std::vector<std::unique_ptr<Worker>>& workers, double seconds,
                      Results& r) = 0;
};

std::unique_ptr<ScenarioWorkload> make_workload(const Options& o, Run& run);

// Request target with `param` (e.g. "echo=0") added to the URL's query.
std::string with_query_param(const Url& u, const std::string& param);

// Request target of relay pair i: "{pair}" in path or query replaced by "pair-<i>", otherwise
// "/pair-<i>" appended to the path.
std::string relay_target(const Url& u, uint64_t pair);

}  // namespace ringcast::load

// Drives one run: raises the fd limit, resolves the URL, starts the worker threads, walks the
// phases (connect, run/hold, drain, close), prints progress and the results.
#pragma once

#include "load/options.h"

namespace ringcast::load {

// Returns the process exit status: 0 passed, 1 failed (connections or checks).
int run_load(const Options& o);

}  // namespace ringcast::load

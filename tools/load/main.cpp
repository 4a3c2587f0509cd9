// ringcast-load: load generator for ringcast (echo, broadcast, relay, connect and http-publish
// scenarios).
#include <cstdio>
#include <exception>

#include "load/options.h"
#include "load/runner.h"

int main(int argc, char** argv) {
  using namespace ringcast::load;
  Options o;
  try {
    o = parse_args(argc, argv);
  } catch (const ArgError& e) {
    std::fprintf(stderr, "ringcast-load: %s\n(ringcast-load --help for usage)\n", e.what());
    return 2;
  }
  if (o.help) {
    std::fputs(usage().c_str(), stdout);
    return 0;
  }
  try {
    return run_load(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ringcast-load: %s\n", e.what());
    return 1;
  }
}

// The config parser: TOML text -> Config through load_config_file (from a memfd, so the real file
// path is taken), then validate_config and make_settings. Any failure must be a ConfigError
// with a message; any other exception escaping (or a crash) is a finding.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "ringcast/app/config.h"

namespace {
int config_fd() {
  static int fd = memfd_create("ringcast-fuzz.toml", MFD_CLOEXEC);
  return fd;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  int fd = config_fd();
  if (fd < 0 || ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != static_cast<ssize_t>(size))
    std::abort();
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  ringcast::app::Config cfg;
  try {
    ringcast::app::load_config_file(path, cfg);
    ringcast::app::validate_config(cfg);
    (void)ringcast::app::make_settings(cfg);
  } catch (const ringcast::app::ConfigError& e) {
    // A clean error says what is wrong: file errors start with FILE:LINE, cross-field ones name
    // the key.
    if (std::string(e.what()).size() < 8) {
      std::fprintf(stderr, "config error without a message: '%s'\n", e.what());
      std::abort();
    }
  }
  return 0;
}

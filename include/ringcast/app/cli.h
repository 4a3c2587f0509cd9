// Command-line flags. They override the config file, which overrides the built-in defaults.
#pragma once

#include <string>

#include "ringcast/app/config.h"

namespace ringcast::app {

struct CliAction {
  bool check_config = false;
  bool show_version = false;
  bool show_help = false;
};

// Builds the effective configuration from argv (reading --config's file in between).
// Throws ConfigError on a bad flag, value or file.
CliAction parse_command_line(int argc, char** argv, Config& cfg);

// The configuration a start with these flags would have now: built-in defaults, then
// $STATE_DIRECTORY, then the file named by --config (re-read), then the flags. Validated; throws
// ConfigError. What SIGHUP compares the running configuration with.
Config effective_config(const std::vector<CliFlag>& flags);

std::string usage_text();

}  // namespace ringcast::app

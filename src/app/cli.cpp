#include "ringcast/app/cli.h"

#include <charconv>
#include <cstdlib>
#include <vector>

namespace ringcast::app {
namespace {

template <typename T>
T parse_number(const std::string& flag, const std::string& text, long long lo, long long hi) {
  long long v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || v < lo || v > hi) {
    throw ConfigError(flag + ": expected an integer between " + std::to_string(lo) + " and " +
                      std::to_string(hi) + ", got '" + text + "'");
  }
  return static_cast<T>(v);
}

}  // namespace

std::string usage_text() {
  return "usage: ringcast [options]\n"
         "  --config FILE        TOML configuration file\n"
         "  --host ADDR          address to listen on (default 0.0.0.0)\n"
         "  --port N             WebSocket port (default 8765)\n"
         "  --http-port N        health/HTTP port, 0 to disable (default 8000)\n"
         "  --threads N          worker threads, 0 = one per CPU (default 0)\n"
         "  --backend NAME       auto | io_uring | epoll (default auto)\n"
         "  --data-dir DIR       durable state directory (default ./data, $STATE_DIRECTORY under "
         "systemd)\n"
         "  --log-level LEVEL    trace | debug | info | warn | error (default info)\n"
         "  --check-config       validate the configuration and exit\n"
         "  --version            print the version and exit\n"
         "  --help               this text\n";
}

CliAction parse_command_line(int argc, char** argv, Config& cfg) {
  std::vector<CliFlag> flags;
  CliAction action;
  static const char* kWithValue[] = {"--config",  "--host",    "--port",     "--http-port",
                                     "--threads", "--backend", "--data-dir", "--log-level"};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--check-config") {
      action.check_config = true;
      continue;
    }
    if (arg == "--version") {
      action.show_version = true;
      continue;
    }
    if (arg == "--help" || arg == "-h") {
      action.show_help = true;
      continue;
    }
    std::string name = arg, value;
    bool has_value = false;
    if (size_t eq = arg.find('='); arg.starts_with("--") && eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    bool known = false;
    for (const char* k : kWithValue) known |= name == k;
    if (!known) throw ConfigError("unknown option '" + arg + "' (see --help)");
    if (!has_value) {
      if (i + 1 >= argc) throw ConfigError(name + ": missing value");
      value = argv[++i];
    }
    flags.push_back({name, value});
  }
  cfg = effective_config(flags);
  return action;
}

Config effective_config(const std::vector<CliFlag>& flags) {
  Config cfg;
  cfg.flags = flags;
  if (const char* state = std::getenv("STATE_DIRECTORY"); state && *state) {
    // systemd's StateDirectory= may list several paths separated by ':'; the first is ours.
    std::string dir = state;
    cfg.data_dir = dir.substr(0, dir.find(':'));
  }
  for (const auto& f : flags)
    if (f.name == "--config") cfg.config_path = f.value;
  if (!cfg.config_path.empty()) load_config_file(cfg.config_path, cfg);
  for (const auto& f : flags) {
    if (f.name == "--host")
      cfg.host = f.value;
    else if (f.name == "--port")
      cfg.port = parse_number<uint16_t>(f.name, f.value, 1, 65535);
    else if (f.name == "--http-port")
      cfg.http_port = parse_number<uint16_t>(f.name, f.value, 0, 65535);
    else if (f.name == "--threads")
      cfg.threads = parse_number<int>(f.name, f.value, 0, 1024);
    else if (f.name == "--backend")
      cfg.backend = f.value;
    else if (f.name == "--data-dir")
      cfg.data_dir = f.value;
    else if (f.name == "--log-level")
      cfg.log_level = f.value;
  }
  validate_config(cfg);
  return cfg;
}

}  // namespace ringcast::app

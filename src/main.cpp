// ringcast: one daemon for real-time WebSocket relay and broadcast.
#include <cstdio>

#include "ringcast/app/cli.h"
#include "ringcast/app/jwt_loader.h"
#include "ringcast/app/server.h"

int main(int argc, char** argv) {
  using namespace ringcast::app;
  Server::block_signals();
  Config cfg;
  CliAction action;
  try {
    action = parse_command_line(argc, argv, cfg);
    // [jwt] public_key_file must be usable at start (a reload that breaks it keeps the old keys).
    if (!action.show_help && !action.show_version) load_jwt_verifier(cfg.jwt);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "ringcast: configuration error: %s\n", e.what());
    return 2;
  }
  if (action.show_help) {
    std::fputs(usage_text().c_str(), stdout);
    return 0;
  }
  if (action.show_version) {
    std::printf("ringcast %s\n", RINGCAST_VERSION);
    return 0;
  }
  if (action.check_config) {
    std::printf("config ok\n");
    return 0;
  }
  Server server(std::move(cfg));
  return server.run();
}

// One profile's message handler, on open sessions of a real Worker + Hub (fake sockets): the input
// is a sequence of client actions separated by 0xFF. Each action's first byte is
//   bits 0-1  which of four connections acts (each opens, with a valid upgrade to
//             RINGCAST_FUZZ_PATH, on first use or after the server closed it)
//   bits 2-4  0-2 text message, 3 text message in two fragments, 4 binary message, 5 ping,
//             6 close frame (code 1000), 7 the peer disconnects
//   bit 5     the frame arrives in two reads
// and the rest is the payload. Text payloads need not be UTF-8 (the engine must refuse those).
// Everything the server sends is checked (see OutputChecker), JSON text where the profile only
// speaks JSON, and every session must be freed at the end.
#include <string>
#include <string_view>

#include "harness.h"

#ifndef RINGCAST_FUZZ_PATH
#error "RINGCAST_FUZZ_PATH must name the route"
#endif
#ifndef RINGCAST_FUZZ_JSON
#define RINGCAST_FUZZ_JSON 0
#endif

using ringcast::fuzz::append_client_frame;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ringcast::fuzz::ServerOptions opts;
  opts.json_text = RINGCAST_FUZZ_JSON;
  ringcast::fuzz::FakeServer server(opts);
  int conns[4] = {-1, -1, -1, -1};
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string wire;
  for (int actions = 0; actions < 512 && !in.empty(); ++actions) {
    size_t cut = in.find('\xff');
    std::string_view action = in.substr(0, cut);
    in.remove_prefix(cut == std::string_view::npos ? in.size() : cut + 1);
    if (action.empty()) continue;
    const auto ctl = static_cast<uint8_t>(action[0]);
    std::string_view payload = action.substr(1);
    int& conn = conns[ctl & 3];
    if (conn < 0 || !server.alive(conn)) {
      conn = server.connect();
      server.receive(conn, ringcast::fuzz::upgrade_request(RINGCAST_FUZZ_PATH));
      if (!server.alive(conn)) continue;
    }
    wire.clear();
    switch ((ctl >> 2) & 7) {
      case 0:
      case 1:
      case 2:
        append_client_frame(wire, 0x1, true, payload);
        break;
      case 3: {
        size_t half = payload.size() / 2;
        append_client_frame(wire, 0x1, false, payload.substr(0, half));
        append_client_frame(wire, 0x0, true, payload.substr(half));
        break;
      }
      case 4:
        append_client_frame(wire, 0x2, true, payload);
        break;
      case 5:
        append_client_frame(wire, 0x9, true, payload.substr(0, 125));
        break;
      case 6: {
        std::string close = "\x03\xe8";
        close += payload.substr(0, 123);
        append_client_frame(wire, 0x8, true, close);
        break;
      }
      case 7:
        server.peer_close(conn);
        continue;
    }
    if (ctl & 0x20) {
      server.receive(conn, std::string_view(wire).substr(0, 3));
      server.receive(conn, std::string_view(wire).substr(3));
    } else {
      server.receive(conn, wire);
    }
  }
  // Let cross-core style work (home-core tasks, joins) settle before the graceful stop.
  for (int i = 0; i < 4; ++i) server.pass();
  return 0;
}

// Command line of ringcast-load: `ringcast-load SCENARIO [options] URL [URL...]`.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ringcast::load {

// Largest --size (the server's default max_message_size is 1 MiB).
inline constexpr uint64_t kMaxMessageSize = uint64_t{64} << 20;
// Most server URLs (nodes) one run spreads its connections over.
inline constexpr size_t kMaxUrls = 256;

class ArgError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// ws://HOST[:PORT][/PATH][?QUERY] (http:// for the server API of http-publish)
struct Url {
  std::string scheme = "ws";
  std::string host;    // without brackets for IPv6 literals
  uint16_t port = 80;  //
  std::string path;    // starts with '/'
  std::string query;   // without '?', may be empty
  bool tls = false;    // wss://
  std::string host_header() const;
  std::string target() const { return query.empty() ? path : path + "?" + query; }
  std::string str() const { return scheme + "://" + host_header() + target(); }
};

// Throws ArgError for anything but a ws:// or wss:// URL.
Url parse_url(std::string_view s);
// The same for http://HOST[:PORT][/PREFIX] (port 80 by default); no query.
Url parse_http_url(std::string_view s);

enum class Scenario { kEcho, kBroadcast, kRelay, kConnect, kHttpPublish };

// What the subscribers speak. broadcast: raw frames (/raw/<room>, any broadcast endpoint) or a
// seed profile's own messages (live-map position_update on /map, game-chat messages on /chat).
// http-publish: the native protocol (join a room on /ws) or raw (/raw/<room>).
enum class Flow { kRaw, kLivemap, kGamechat, kNative };
const char* flow_name(Flow f);
const char* scenario_name(Scenario s);

struct Options {
  Scenario scenario = Scenario::kEcho;
  Url url;                // the first (or only) WebSocket URL: urls[0]
  std::vector<Url> urls;  // every WebSocket URL given (one per node), same scheme and target
  bool help = false;

  // common
  int threads = 2;
  double duration = 10;         // s: measured phase (echo/broadcast/relay), connect phase (connect)
  double connect_timeout = 10;  // s: all connections must be open within this (not connect)
  double drain = 2;             // s: after the measured phase, time allowed for replies in flight
  uint32_t source_addrs = 1;    // > 1: bind to 127.0.0.1 .. 127.0.0.N before connect
  uint32_t max_pending = 512;   // handshakes in progress per thread
  std::string tls_ca;  // wss://: verify the server against this PEM bundle (empty: no check)
  std::string json_path;
  std::string plot_path;
  bool quiet = false;    // no per-second progress
  bool deflate = false;  // offer permessage-deflate; the server must agree (received messages
                         // are inflated; sent ones go uncompressed, which RFC 7692 allows)

  // message scenarios
  uint64_t size = 64;  // bytes per message
  bool text = false;   // text frames (hex-encoded header, printable padding)
  uint32_t pipeline = 1;
  double rate = 0;  // echo/relay: messages/s total (0 = closed loop); broadcast: publishes/s total;
                    // connect: connections/s (0 = as fast as possible)

  uint64_t connections = 10;  // echo, connect
  uint32_t subscribers = 10;  // broadcast
  uint32_t publishers = 1;    // broadcast
  bool publisher_echo = false;
  Flow flow = Flow::kRaw;      // broadcast
  std::string token = "load";  // broadcast --flow gamechat: login token
  uint32_t pairs = 10;         // relay
  double hold = 5;             // connect: idle hold time, s

  // http-publish (also uses subscribers, publishers = API connections, rate, size, flow)
  Url api;                    // server API base (default: the WebSocket URL's host and port)
  std::vector<Url> apis;      // every --api given (default: one per WebSocket URL); api = apis[0]
  std::string api_key;        // Authorization: apikey <key>
  std::string room = "load";  // native flow: the room subscribers join; raw: from the URL

  // Number of WebSocket connections the scenario opens.
  uint64_t total_connections() const;
};

// Which URL connection `gid` goes to: an index into Options::urls, or into Options::apis for
// http-publish's API connections (gids below `publishers`). Round robin, so that a run spreads
// over several nodes:
//   echo, connect: connection i -> URL i % n
//   relay: pair i's A -> URL i % n, its B -> URL (i + 1) % n (the two sides on different nodes)
//   broadcast: subscriber j -> URL j % n, publisher i -> URL (i + 1) % n
//   http-publish: subscriber j -> URL j % n, API connection i -> --api (i + 1) % m
// With one URL every connection goes to it.
uint32_t connection_node(const Options& o, uint64_t gid);

// Smallest --size the scenario's payload header fits in.
uint64_t min_message_size(Scenario s, bool text);

// Parses argv (argv[0] is the program name). Throws ArgError with a one-line message on any bad
// scenario, option, value or URL. `--help` sets help and skips the other checks.
Options parse_args(int argc, const char* const* argv);
Options parse_args(const std::vector<std::string>& args);  // args without the program name

std::string usage();

}  // namespace ringcast::load

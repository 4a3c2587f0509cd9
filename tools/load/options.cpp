#include "load/options.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>

namespace ringcast::load {

namespace {

constexpr unsigned kEcho = 1, kBroadcast = 2, kRelay = 4, kConnect = 8, kHttpPublish = 16,
                   kAll = 31;

unsigned bit(Scenario s) {
  switch (s) {
    case Scenario::kEcho:
      return kEcho;
    case Scenario::kBroadcast:
      return kBroadcast;
    case Scenario::kRelay:
      return kRelay;
    case Scenario::kConnect:
      return kConnect;
    case Scenario::kHttpPublish:
      return kHttpPublish;
  }
  return 0;
}

uint64_t parse_uint(std::string_view opt, std::string_view v, uint64_t lo, uint64_t hi) {
  uint64_t x = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (v.empty() || ec != std::errc() || p != v.data() + v.size())
    throw ArgError(std::string(opt) + ": not a non-negative integer: '" + std::string(v) + "'");
  if (x < lo || x > hi)
    throw ArgError(std::string(opt) + ": " + std::string(v) + " out of range [" +
                   std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return x;
}

std::string fmt(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", x);
  return b;
}

double parse_double(std::string_view opt, std::string_view v, double lo, double hi) {
  double x = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (v.empty() || ec != std::errc() || p != v.data() + v.size() || !std::isfinite(x))
    throw ArgError(std::string(opt) + ": not a number: '" + std::string(v) + "'");
  if (x < lo || x > hi)
    throw ArgError(std::string(opt) + ": " + std::string(v) + " out of range [" + fmt(lo) + ", " +
                   fmt(hi) + "]");
  return x;
}

}  // namespace

std::string Url::host_header() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

namespace {

Url parse_any_url(std::string_view s, bool http) {
  std::string orig(s);
  Url u;
  if (http) {
    if (s.starts_with("https://"))
      throw ArgError("URL '" + orig +
                     "': https:// (TLS) is not supported for the server API: give a plain port");
    if (!s.starts_with("http://")) throw ArgError("URL '" + orig + "': must start with http://");
    s.remove_prefix(7);
    u.scheme = "http";
  } else if (s.starts_with("wss://")) {
    u.tls = true;
    u.port = 443;
    u.scheme = "wss";
    s.remove_prefix(6);
  } else if (s.starts_with("ws://")) {
    s.remove_prefix(5);
  } else {
    throw ArgError("URL '" + orig + "': must start with ws:// or wss://");
  }
  size_t slash = s.find_first_of("/?");
  std::string_view authority = s.substr(0, slash);
  std::string_view rest = slash == std::string_view::npos ? std::string_view() : s.substr(slash);
  if (authority.find('@') != std::string_view::npos)
    throw ArgError("URL '" + orig + "': user info is not supported");
  std::string_view port;
  if (authority.starts_with("[")) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) throw ArgError("URL '" + orig + "': unterminated '['");
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') throw ArgError("URL '" + orig + "': junk after ']'");
      port = after.substr(1);
      if (port.empty()) throw ArgError("URL '" + orig + "': empty port");
    }
  } else {
    size_t colon = authority.find(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) throw ArgError("URL '" + orig + "': empty port");
    }
  }
  if (u.host.empty()) throw ArgError("URL '" + orig + "': missing host");
  if (!port.empty()) u.port = static_cast<uint16_t>(parse_uint("URL port", port, 1, 65535));
  size_t q = rest.find('?');
  std::string_view path = rest.substr(0, q);
  // Built whole, not assigned "/" afterwards: GCC 12 at -O3 reports a false -Wrestrict overlap
  // for that assignment.
  u.path = path.empty() ? std::string("/") : std::string(path);
  if (q != std::string_view::npos) u.query = std::string(rest.substr(q + 1));
  if (u.path.find('#') != std::string::npos || u.query.find('#') != std::string::npos)
    throw ArgError("URL '" + orig + "': fragments are not allowed");
  for (char c : u.path + u.query)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F)
      throw ArgError("URL '" + orig + "': control character or space in path");
  if (http && !u.query.empty()) throw ArgError("URL '" + orig + "': no query allowed");
  return u;
}

}  // namespace

namespace {

// Every URL of a run names the same room on a different node: same scheme, same path and query,
// each host:port once.
void check_same_room(const std::vector<Url>& urls, const std::string& what) {
  for (size_t i = 1; i < urls.size(); ++i) {
    const Url& a = urls[0];
    const Url& b = urls[i];
    if (a.scheme != b.scheme)
      throw ArgError("all " + what + " must use the same scheme: '" + a.str() + "' and '" +
                     b.str() + "' differ");
    if (a.target() != b.target())
      throw ArgError("all " + what + " must name the same path (the same room on every node): '" +
                     a.target() + "' and '" + b.target() + "' differ");
    for (size_t k = 0; k < i; ++k)
      if (urls[k].host_header() == b.host_header())
        throw ArgError(what + ": '" + b.str() + "' given twice (give each node once)");
  }
}

}  // namespace

Url parse_url(std::string_view s) {
  return parse_any_url(s, false);
}

Url parse_http_url(std::string_view s) {
  return parse_any_url(s, true);
}

const char* scenario_name(Scenario s) {
  switch (s) {
    case Scenario::kEcho:
      return "echo";
    case Scenario::kBroadcast:
      return "broadcast";
    case Scenario::kRelay:
      return "relay";
    case Scenario::kConnect:
      return "connect";
    case Scenario::kHttpPublish:
      return "http-publish";
  }
  return "?";
}

const char* flow_name(Flow f) {
  switch (f) {
    case Flow::kRaw:
      return "raw";
    case Flow::kLivemap:
      return "livemap";
    case Flow::kGamechat:
      return "gamechat";
    case Flow::kNative:
      return "native";
  }
  return "?";
}

uint64_t Options::total_connections() const {
  switch (scenario) {
    case Scenario::kEcho:
    case Scenario::kConnect:
      return connections;
    case Scenario::kBroadcast:
    case Scenario::kHttpPublish:
      return uint64_t{subscribers} + publishers;
    case Scenario::kRelay:
      return 2 * uint64_t{pairs};
  }
  return 0;
}

uint32_t connection_node(const Options& o, uint64_t gid) {
  uint64_t n = o.urls.empty() ? 1 : o.urls.size();
  switch (o.scenario) {
    case Scenario::kEcho:
    case Scenario::kConnect:
      return static_cast<uint32_t>(gid % n);
    case Scenario::kRelay:
      // gids [0, pairs) are the A sides, [pairs, 2 * pairs) the B sides.
      return static_cast<uint32_t>(gid < o.pairs ? gid % n : (gid - o.pairs + 1) % n);
    case Scenario::kBroadcast:
    case Scenario::kHttpPublish:
      // gids [0, publishers) publish, the rest subscribe. Publishers start one URL further on so
      // that with several URLs most deliveries cross nodes.
      if (gid >= o.publishers) return static_cast<uint32_t>((gid - o.publishers) % n);
      if (o.scenario == Scenario::kHttpPublish) n = o.apis.empty() ? 1 : o.apis.size();
      return static_cast<uint32_t>((gid + 1) % n);
  }
  return 0;
}

uint64_t min_message_size(Scenario s, bool text) {
  switch (s) {
    case Scenario::kEcho:
    case Scenario::kRelay:
      return text ? 32 : 16;  // sequence + send time
    case Scenario::kBroadcast:
      return text ? 40 : 20;  // publisher id + sequence + send time
    case Scenario::kConnect:
    case Scenario::kHttpPublish:  // JSON fields, padded up to --size
      return 0;
  }
  return 0;
}

Options parse_args(int argc, const char* const* argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  return parse_args(args);
}

Options parse_args(const std::vector<std::string>& args) {
  Options o;
  for (const auto& a : args)
    if (a == "-h" || a == "--help") {
      o.help = true;
      return o;
    }
  if (args.empty())
    throw ArgError("missing scenario (echo, broadcast, relay, connect or http-publish)");
  const std::string& sc = args[0];
  if (sc == "echo") {
    o.scenario = Scenario::kEcho;
  } else if (sc == "broadcast") {
    o.scenario = Scenario::kBroadcast;
  } else if (sc == "relay") {
    o.scenario = Scenario::kRelay;
  } else if (sc == "connect") {
    o.scenario = Scenario::kConnect;
  } else if (sc == "http-publish") {
    o.scenario = Scenario::kHttpPublish;
    o.flow = Flow::kNative;
  } else {
    throw ArgError("unknown scenario '" + sc +
                   "' (expected echo, broadcast, relay, connect or http-publish)");
  }
  unsigned me = bit(o.scenario);
  bool rate_set = false;
  std::vector<std::string> url_args;
  std::map<std::string, bool> seen;

  struct Spec {
    unsigned scenarios;
    bool takes_value;
  };
  static const std::map<std::string, Spec> kSpecs = {
      {"--threads", {kAll, true}},
      {"--duration", {kAll, true}},
      {"--connect-timeout", {kEcho | kBroadcast | kRelay | kHttpPublish, true}},
      {"--drain", {kEcho | kBroadcast | kRelay | kHttpPublish, true}},
      {"--source-addrs", {kAll, true}},
      {"--max-pending", {kAll, true}},
      {"--json", {kAll, true}},
      {"--plot", {kAll, true}},
      {"--quiet", {kAll, false}},
      {"--tls-ca", {kAll, true}},
      {"--deflate", {kAll, false}},
      {"--size", {kEcho | kBroadcast | kRelay | kHttpPublish, true}},
      {"--text", {kEcho | kBroadcast | kRelay, false}},
      {"--pipeline", {kEcho | kRelay, true}},
      {"--rate", {kAll, true}},
      {"--connections", {kEcho | kConnect, true}},
      {"--subscribers", {kBroadcast | kHttpPublish, true}},
      {"--publishers", {kBroadcast | kHttpPublish, true}},
      {"--publisher-echo", {kBroadcast, false}},
      {"--flow", {kBroadcast | kHttpPublish, true}},
      {"--api", {kHttpPublish, true}},
      {"--api-key", {kHttpPublish, true}},
      {"--room", {kBroadcast | kHttpPublish, true}},
      {"--token", {kBroadcast, true}},
      {"--pairs", {kRelay, true}},
      {"--hold", {kConnect, true}},
  };

  for (size_t i = 1; i < args.size(); ++i) {
    std::string a = args[i];
    if (!a.starts_with("--")) {
      url_args.push_back(a);  // URLs: one per node
      continue;
    }
    std::string name = a, value;
    bool inline_value = false;
    if (size_t eq = a.find('='); eq != std::string::npos) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
      inline_value = true;
    }
    auto it = kSpecs.find(name);
    if (it == kSpecs.end()) throw ArgError("unknown option '" + name + "'");
    if (!(it->second.scenarios & me))
      throw ArgError("option " + name + " does not apply to scenario " + sc);
    if (seen[name] && name != "--api") throw ArgError("option " + name + " given twice");
    seen[name] = true;
    if (it->second.takes_value) {
      if (!inline_value) {
        if (i + 1 >= args.size()) throw ArgError("option " + name + " needs a value");
        value = args[++i];
      }
    } else if (inline_value) {
      throw ArgError("option " + name + " takes no value");
    }
    const std::string& v = value;
    if (name == "--threads") {
      o.threads = static_cast<int>(parse_uint(name, v, 1, 256));
    } else if (name == "--duration") {
      o.duration = parse_double(name, v, 0.001, 86400);
    } else if (name == "--connect-timeout") {
      o.connect_timeout = parse_double(name, v, 0.001, 3600);
    } else if (name == "--drain") {
      o.drain = parse_double(name, v, 0, 3600);
    } else if (name == "--source-addrs") {
      o.source_addrs = static_cast<uint32_t>(parse_uint(name, v, 1, 65534));
    } else if (name == "--max-pending") {
      o.max_pending = static_cast<uint32_t>(parse_uint(name, v, 1, 1000000));
    } else if (name == "--json") {
      if (v.empty()) throw ArgError("--json: empty file name");
      o.json_path = v;
    } else if (name == "--plot") {
      if (v.empty()) throw ArgError("--plot: empty file name");
      o.plot_path = v;
    } else if (name == "--quiet") {
      o.quiet = true;
    } else if (name == "--tls-ca") {
      if (v.empty()) throw ArgError("--tls-ca: empty file name");
      o.tls_ca = v;
    } else if (name == "--deflate") {
      o.deflate = true;
    } else if (name == "--size") {
      o.size = parse_uint(name, v, 0, kMaxMessageSize);
    } else if (name == "--text") {
      o.text = true;
    } else if (name == "--pipeline") {
      o.pipeline = static_cast<uint32_t>(parse_uint(name, v, 1, 1000000));
    } else if (name == "--rate") {
      o.rate = parse_double(name, v, 0, 1e9);
      rate_set = true;
    } else if (name == "--connections") {
      o.connections = parse_uint(name, v, 1, 1000000);
    } else if (name == "--subscribers") {
      o.subscribers = static_cast<uint32_t>(parse_uint(name, v, 0, 1000000));
    } else if (name == "--publishers") {
      o.publishers = static_cast<uint32_t>(parse_uint(name, v, 1, 100000));
    } else if (name == "--publisher-echo") {
      o.publisher_echo = true;
    } else if (name == "--flow" && o.scenario == Scenario::kHttpPublish) {
      if (v == "native")
        o.flow = Flow::kNative;
      else if (v == "raw")
        o.flow = Flow::kRaw;
      else
        throw ArgError("--flow: expected native or raw (got '" + v + "')");
    } else if (name == "--flow") {
      if (v == "raw")
        o.flow = Flow::kRaw;
      else if (v == "livemap")
        o.flow = Flow::kLivemap;
      else if (v == "gamechat")
        o.flow = Flow::kGamechat;
      else if (v == "native")
        o.flow = Flow::kNative;
      else
        throw ArgError("--flow: expected raw, livemap, gamechat or native (got '" + v + "')");
    } else if (name == "--api") {
      o.apis.push_back(parse_http_url(v));  // may be given once per node
    } else if (name == "--api-key") {
      // Sent in a request header: it must stay one token on one line.
      if (v.empty()) throw ArgError("--api-key: empty key");
      for (char ch : v)
        if (static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7F)
          throw ArgError("--api-key: control character or space in the key");
      o.api_key = v;
    } else if (name == "--room") {
      if (v.empty() || v.size() > 128) throw ArgError("--room: must be 1-128 bytes");
      for (char ch : v)
        if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7F || ch == '"' || ch == '\\')
          throw ArgError("--room: control character, quote or backslash in the name");
      o.room = v;
    } else if (name == "--token") {
      if (v.empty()) throw ArgError("--token: empty token");
      o.token = v;
    } else if (name == "--pairs") {
      o.pairs = static_cast<uint32_t>(parse_uint(name, v, 1, 500000));
    } else if (name == "--hold") {
      o.hold = parse_double(name, v, 0, 86400);
    }
  }
  if (url_args.empty()) throw ArgError("missing URL (ws://HOST:PORT/PATH)");
  if (url_args.size() > kMaxUrls)
    throw ArgError("too many URLs (" + std::to_string(url_args.size()) + ", at most " +
                   std::to_string(kMaxUrls) + ")");
  for (const auto& u : url_args) o.urls.push_back(parse_url(u));
  check_same_room(o.urls, "URLs");
  o.url = o.urls[0];
  if (o.apis.size() > kMaxUrls)
    throw ArgError("too many --api URLs (" + std::to_string(o.apis.size()) + ", at most " +
                   std::to_string(kMaxUrls) + ")");
  check_same_room(o.apis, "--api URLs");
  if (!o.apis.empty()) o.api = o.apis[0];

  if (o.scenario == Scenario::kBroadcast) {
    if (!rate_set) o.rate = 1000;
    if (o.rate <= 0) throw ArgError("--rate: broadcast needs a publish rate > 0");
    if (o.flow != Flow::kRaw && (o.text || o.publisher_echo))
      throw ArgError(
          "--text and --publisher-echo apply to --flow raw only (profile flows are JSON)");
    if (seen["--token"] && o.flow != Flow::kGamechat)
      throw ArgError("--token applies to --flow gamechat only");
    if (seen["--room"] && o.flow != Flow::kNative)
      throw ArgError("--room applies to --flow native only (other flows: the URL's room)");
    if (static_cast<uint64_t>(o.subscribers) * o.publishers > 10'000'000)
      throw ArgError("--subscribers x --publishers too large (order tracking needs S*P entries)");
  }
  if (o.scenario == Scenario::kHttpPublish) {
    if (!rate_set) o.rate = 1000;
    if (o.rate <= 0) throw ArgError("--rate: http-publish needs a publish rate > 0");
    if (o.api_key.empty()) throw ArgError("http-publish needs --api-key KEY (a key of [api] keys)");
    if (o.apis.empty()) {
      // The API connections speak plain HTTP: a wss:// port would need --api for a plain one.
      if (o.url.tls)
        throw ArgError(
            "http-publish with a wss:// URL needs --api http://HOST:PORT (a plain port)");
      // One API per WebSocket URL: each node's WebSocket port answers the API too.
      for (const Url& u : o.urls) {
        // Built whole, not assigned from literals: GCC 12 at -O3 reports a false -Wrestrict
        // overlap for string = "literal" here (as in parse_any_url).
        Url api;
        api.scheme = std::string("http");
        api.host = u.host;
        api.port = u.port;
        api.path = std::string(1, '/');
        o.apis.push_back(std::move(api));
      }
      o.api = o.apis[0];
    }
    if (o.flow == Flow::kRaw) {
      // The room is the URL's: /raw/<room>.
      constexpr std::string_view kRaw = "/raw/";
      std::string_view path = o.url.path;
      if (!path.starts_with(kRaw) || path.size() == kRaw.size() ||
          path.find('/', kRaw.size()) != std::string_view::npos)
        throw ArgError("--flow raw: the URL must name the room: ws://HOST:PORT/raw/<room>");
      if (seen["--room"]) throw ArgError("--room applies to --flow native only (raw: URL path)");
      o.room = std::string(path.substr(kRaw.size()));
      for (char ch : o.room)
        if (ch == '"' || ch == '\\' || ch == '%')
          throw ArgError("--flow raw: quote, backslash or escape in the room name");
    }
    if (static_cast<uint64_t>(o.subscribers) * o.publishers > 10'000'000)
      throw ArgError("--subscribers x --publishers too large (order tracking needs S*P entries)");
  }
  if (o.scenario != Scenario::kConnect) {
    uint64_t lo = min_message_size(o.scenario, o.text);
    if (o.size < lo)
      throw ArgError("--size: " + std::to_string(o.size) + " is below the " + std::to_string(lo) +
                     "-byte payload header of " + sc + (o.text ? " with --text" : ""));
  }
  if (!o.tls_ca.empty() && !o.url.tls) throw ArgError("--tls-ca applies to wss:// URLs only");
  if (seen["--pipeline"] && o.rate > 0)
    throw ArgError("--pipeline applies to closed-loop runs only (without --rate)");
  return o;
}

std::string usage() {
  return R"(usage: ringcast-load SCENARIO [options] ws[s]://HOST:PORT/PATH [ws[s]://HOST2:PORT2/PATH ...]

several URLs (one per node of a cluster; same scheme, path and query, each host:port once):
  connections are spread round robin: echo/connect connection i -> URL i % n; relay pair i:
  A -> URL i % n, B -> URL (i+1) % n; broadcast/http-publish subscriber j -> URL j % n,
  publisher i -> URL (i+1) % n (http-publish: --api (i+1) % m). The report adds connections
  per URL and, for broadcast/http-publish, delivery latency split into same node as the
  publisher and other node (cross-node)

scenarios:
  echo       N connections send messages to an echo endpoint and check every reply
             --connections N (10)  --size BYTES (64)  --pipeline K (1, closed loop)
             --rate MSG/S (total, fixed rate; 0 = closed loop)  --text
  broadcast  S subscribers and P publishers in one room (URL path, e.g. /raw/room1)
             --subscribers S (10)  --publishers P (1)  --rate PUBLISHES/S (1000, total)
             --size BYTES (64)  --text  --publisher-echo (publishers connect without ?echo=0)
             --flow raw|livemap|gamechat|native (raw): what the clients speak; livemap
               publishes position_update on /map, gamechat logs in (--token T, default "load")
               and sends chat messages on /chat, native joins --room R (default "load") on /ws
               and publishes with {"op":"publish"}; latency and order are checked the same way
  relay      N pairs A,B in room <path>/pair-<i> (or the URL with {pair} replaced); A sends,
             B sends it back, A measures the round trip
             --pairs N (10)  --size BYTES (64)  --pipeline K (1)  --rate MSG/S (0)  --text
  connect    open N connections, report connect rate and handshake latency, hold them idle
             --connections N (10)  --rate CONN/S (0 = as fast as possible)  --hold SEC (5)
  http-publish  S WebSocket subscribers in one room, P keep-alive HTTP connections publishing
             through the server API (POST /api/publish) at a fixed total rate
             --api-key KEY (required)  --api http://HOST:PORT (default: each URL's host:port;
               may be given once per node, in the order of the WebSocket URLs)
             --subscribers S (10)  --publishers P (1)  --rate PUBLISHES/S (1000, total)
             --size BYTES (64: "data" padded to about that)
             --flow native|raw (native): native subscribers join --room R (default "load")
               on the URL (e.g. ws://HOST:PORT/ws); raw subscribers use ws://HOST:PORT/raw/<room>

common options:
  --threads N (2)  --duration SEC (10; connect: limit of the connect phase)
  --connect-timeout SEC (10)  --drain SEC (2)  --source-addrs N (1: bind 127.0.0.1..N)
  --max-pending N (512 handshakes in progress per thread)  --json FILE  --plot FILE.svg  --quiet
  --tls-ca FILE (wss://: verify the server's certificate and name; without it, no check)
  --deflate  offer permessage-deflate (the server must agree); received messages are inflated,
             the line bytes received (wire) shows what compression saved

exit status: 0 success, 1 connection failure or failed correctness check, 2 bad usage
)";
}

}  // namespace ringcast::load

#include "harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <rapidjson/document.h>
#include <zlib.h>

#include <cstdio>
#include <cstdlib>

#include "ringcast/app/jwt_loader.h"
#include "ringcast/profiles/bridge_profile.h"
#include "ringcast/profiles/chatroom_profile.h"
#include "ringcast/profiles/gamechat_profile.h"
#include "ringcast/profiles/livemap_profile.h"
#include "ringcast/profiles/relayer_profile.h"
#include "ringcast/websocket/close_code.h"
#include "ringcast/websocket/utf8_validator.h"

namespace ringcast::fuzz {

namespace {

[[noreturn]] void finding(const char* what, std::string_view context = {}) {
  std::fprintf(stderr, "fuzz harness: server output is wrong: %s\n", what);
  if (!context.empty()) {
    std::fprintf(stderr, "  context (%zu bytes): ", context.size());
    for (size_t i = 0; i < context.size() && i < 200; ++i) {
      unsigned char c = static_cast<unsigned char>(context[i]);
      std::fprintf(stderr, c >= 32 && c < 127 ? "%c" : "\\x%02x", c);
    }
    std::fprintf(stderr, "\n");
  }
  std::abort();
}

}  // namespace

// ---- OutputChecker ------------------------------------------------------------------------------

namespace {

// A compressed server message as a client inflates it (RFC 7692 §7.2.2); a finding if it fails.
std::string inflate_message(const std::string& in) {
  z_stream z{};
  if (inflateInit2(&z, -15) != Z_OK) std::abort();
  std::string data = in + std::string("\x00\x00\xff\xff", 4);
  std::string out;
  z.next_in = reinterpret_cast<Bytef*>(data.data());
  z.avail_in = static_cast<uInt>(data.size());
  int rc = Z_OK;
  while (rc == Z_OK && (z.avail_in > 0 || out.size() == z.total_out)) {
    char buf[16384];
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_SYNC_FLUSH);
    out.append(buf, sizeof buf - z.avail_out);
    if (z.avail_out != 0) break;
  }
  inflateEnd(&z);
  if (rc != Z_OK && rc != Z_BUF_ERROR) finding("compressed message does not inflate", in);
  return out;
}

}  // namespace

void OutputChecker::feed(const uint8_t* p, size_t n) {
  if (mode_ == Mode::kIgnore) return;
  if (mode_ == Mode::kClosed) finding("bytes after the close frame");
  buf_.append(reinterpret_cast<const char*>(p), n);
  while (true) {
    if (mode_ == Mode::kHead) {
      static constexpr std::string_view kStart = "HTTP/1.1 ";
      if (buf_.compare(0, std::min(buf_.size(), kStart.size()), kStart.substr(0, buf_.size())) != 0)
        finding("the first bytes are not an HTTP/1.1 response", buf_);
      size_t end = buf_.find("\r\n\r\n");
      if (end == std::string::npos) return;
      if (buf_.size() < 12) finding("short status line", buf_);
      if (buf_.compare(9, 3, "101") != 0) {
        // Plain HTTP answers (and their bodies) are not checked further: a HEAD reply has a
        // Content-Length without a body, so the stream cannot be split without the request.
        mode_ = Mode::kIgnore;
        buf_.clear();
        return;
      }
      deflate_ = buf_.substr(0, end).find("\r\nSec-WebSocket-Extensions: permessage-deflate") !=
                 std::string::npos;
      buf_.erase(0, end + 4);
      mode_ = Mode::kFrames;
      continue;
    }
    if (mode_ == Mode::kClosed) {
      if (!buf_.empty()) finding("bytes after the close frame");
      return;
    }
    // A server frame: never masked, minimal length encoding.
    if (buf_.size() < 2) return;
    const auto* b = reinterpret_cast<const uint8_t*>(buf_.data());
    bool fin = b[0] & 0x80;
    uint8_t rsv = b[0] & 0x70, opcode = b[0] & 0x0f;
    // RSV1: a compressed message, only where agreed and only on a data message's first frame.
    if (rsv && !(rsv == 0x40 && deflate_ && (opcode == 1 || opcode == 2)))
      finding("reserved bits set");
    if (b[1] & 0x80) finding("server frame is masked");
    uint64_t len = b[1] & 0x7f;
    size_t header = 2;
    if (len == 126) {
      if (buf_.size() < 4) return;
      len = uint64_t{b[2]} << 8 | b[3];
      header = 4;
      if (len < 126) finding("non-minimal 16-bit length");
    } else if (len == 127) {
      if (buf_.size() < 10) return;
      len = 0;
      for (int i = 2; i < 10; ++i) len = len << 8 | b[i];
      header = 10;
      if (len < 65536 || len >> 63) finding("bad 64-bit length");
    }
    if (buf_.size() < header + len) return;
    std::string payload = buf_.substr(header, len);
    buf_.erase(0, header + len);
    bool control = opcode & 0x8;
    if (control) {
      if (!fin || len > 125) finding("bad control frame");
      if (opcode == 0x8) {
        if (len == 1) finding("close frame with a 1-byte payload");
        if (len >= 2) {
          uint16_t code = static_cast<uint16_t>(uint8_t(payload[0]) << 8 | uint8_t(payload[1]));
          if (!websocket::valid_close_code_on_wire(code)) finding("illegal close code", payload);
          if (!websocket::is_valid_utf8(reinterpret_cast<const uint8_t*>(payload.data()) + 2,
                                        len - 2))
            finding("close reason is not UTF-8", payload);
        }
        mode_ = Mode::kClosed;
        if (!buf_.empty()) finding("bytes after the close frame");
        return;
      }
      if (opcode != 0x9 && opcode != 0xA) finding("unknown control opcode");
      continue;
    }
    if (opcode == 0) {
      if (!in_message_) finding("continuation without a message");
    } else {
      if (opcode != 1 && opcode != 2) finding("unknown data opcode");
      if (in_message_) finding("new message inside a fragmented one");
      in_message_ = true;
      message_opcode_ = opcode;
      message_.clear();
      compressed_ = rsv == 0x40;
    }
    message_ += payload;
    if (fin) {
      in_message_ = false;
      if (compressed_) message_ = inflate_message(message_);
      check_message(message_opcode_, message_);
    }
  }
}

void OutputChecker::check_message(uint8_t opcode, const std::string& payload) {
  if (opcode != 1) return;
  const auto* p = reinterpret_cast<const uint8_t*>(payload.data());
  if (!websocket::is_valid_utf8(p, payload.size())) finding("text frame is not UTF-8", payload);
  if (json_text_) {
    rapidjson::Document d;
    // Python's json.dumps writes NaN and Infinity, and the seed profiles answer as it does.
    d.Parse<rapidjson::kParseNanAndInfFlag>(payload.data(), payload.size());
    // A number past double range is valid JSON that rapidjson will not read (Python reads inf).
    if (d.HasParseError() && d.GetParseError() != rapidjson::kParseErrorNumberTooBig)
      finding("text frame is not JSON", payload);
  }
}

// ---- Client helpers -----------------------------------------------------------------------------

void append_client_frame(std::string& out, uint8_t opcode, bool fin, std::string_view payload) {
  out.push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
  size_t n = payload.size();
  if (n < 126) {
    out.push_back(static_cast<char>(0x80 | n));
  } else if (n < 65536) {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n));
  } else {
    out.push_back(static_cast<char>(0x80 | 127));
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>(uint64_t{n} >> (8 * i)));
  }
  static constexpr uint8_t kMask[4] = {0x37, 0xfa, 0x21, 0x3d};
  out.append(reinterpret_cast<const char*>(kMask), 4);
  for (size_t i = 0; i < n; ++i) out.push_back(static_cast<char>(payload[i] ^ kMask[i % 4]));
}

std::string upgrade_request(std::string_view path) {
  std::string r = "GET ";
  r += path;
  r += " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
       "Origin: http://localhost:8000\r\n\r\n";
  return r;
}

// ---- FakeServer ---------------------------------------------------------------------------------

FakeServer::FakeServer(ServerOptions opts) : opts_(opts) {
  // The shipped defaults, with logins the fuzzers can reach: a table token and an HS256 secret.
  cfg_.threads = 1;
  cfg_.tokens["change-me"] = hub::Identity{"u1", "Alice", ""};
  cfg_.tokens["token-2"] = hub::Identity{"u2", "", ""};
  cfg_.gamechat.hs256_secret = "fuzz-secret";
  cfg_.jwt.hs256_secret = "fuzz-secret";   // native auth/refresh with JWTs (exp, expiry timer)
  cfg_.limits.max_message_size = 1 << 16;  // frames past it are the same code path, only slower
  cfg_.compression.enabled = true;         // agreed only when the input offers it
  cfg_.compression.threshold_bytes = 16;
  stats_ = std::make_unique<websocket::ServerStats>(1);
  settings_ = std::make_unique<websocket::SettingsStore>(app::make_settings(cfg_));
  std::vector<hub::HistoryRule> rules = {{"gamechat:*", size_t(cfg_.gamechat.history_limit)},
                                         {"chatroom:*", 0}};
  hubs_ = std::make_unique<hub::HubSystem>(1, cfg_.history_size, rules);
  hub::RoomLimits room_limits;  // the shipped limits, as Server sets them
  room_limits.max_rooms = cfg_.max_rooms;
  room_limits.max_rooms_per_connection = cfg_.max_rooms_per_connection;
  room_limits.history_ttl_ms = cfg_.history_ttl_s * 1000;
  room_limits.max_state_keys = cfg_.max_state_keys;
  room_limits.max_state_value_bytes = cfg_.max_state_value_bytes;
  hubs_->set_limits(room_limits);
  tokens_.set(cfg_.tokens);
  jwt_.set(app::load_jwt_verifier(cfg_.jwt));
  raw_ = std::make_unique<profiles::RawProfile>(*hubs_);
  native_ = std::make_unique<profiles::NativeProfile>(*hubs_, tokens_, jwt_);
  router_.add("/echo", false, &echo_);
  router_.add(std::string(profiles::RawProfile::kPrefix), true, raw_.get());
  router_.add("/ws", false, native_.get());
  health_ =
      std::make_unique<app::HealthService>(cfg_, router_, *stats_, engine::BackendKind::kEpoll);
  health_->set_rooms(&hubs_->rooms());
  // The server API, with a key the fuzzers can reach (worker.dict, the worker seeds).
  api_ = std::make_unique<app::ApiService>(*hubs_, "fuzz:1");
  api_->set_keys({"fuzz-api-key-0123456789"});
  health_->set_api(api_.get());
  auto bridge = std::make_unique<profiles::BridgeProfile>(*hubs_, 5000);
  router_.add("/", false, bridge.get());
  health_->add_fields(bridge.get());
  seeds_.push_back(std::move(bridge));
  auto relayer = std::make_unique<profiles::RelayerProfile>(*hubs_);
  router_.add("/relay", false, relayer.get());
  seeds_.push_back(std::move(relayer));
  auto chat = std::make_unique<profiles::GamechatProfile>(
      *hubs_, tokens_, jwt_, app::gamechat_secret_verifier(cfg_.gamechat.hs256_secret));
  router_.add("/chat", false, chat.get());
  seeds_.push_back(std::move(chat));
  using profiles::ChatroomProfile;
  auto text =
      std::make_unique<ChatroomProfile>(*hubs_, ChatroomProfile::Variant::kText, "PROD", 1000);
  router_.add("/chatroom", false, text.get());
  seeds_.push_back(std::move(text));
  auto json =
      std::make_unique<ChatroomProfile>(*hubs_, ChatroomProfile::Variant::kJson, "PROD", 1000);
  router_.add("/chatroom/json", false, json.get());
  seeds_.push_back(std::move(json));
  auto livemap = std::make_unique<profiles::LivemapProfile>(*hubs_, app::livemap_limits(cfg_));
  router_.add("/map", false, livemap.get());
  seeds_.push_back(std::move(livemap));

  shared_.settings = settings_.get();
  shared_.router = &router_;
  shared_.http = health_.get();
  shared_.stats = stats_.get();
  shared_.backend = engine::BackendKind::kEpoll;
  shared_.listeners.push_back({"127.0.0.1", 8765, true});
  shared_.pin_threads = false;
  worker_ = std::make_unique<websocket::Worker>(0, 0, shared_);
  shared_.workers.push_back(worker_.get());
  hubs_->hub(0).attach_worker(worker_.get());
  shared_.hooks.push_back(&hubs_->hub(0));
  auto backend =
      std::make_unique<FakeBackend>(*worker_, static_cast<FakeBackend::Observer&>(*this));
  backend_ = backend.get();
  worker_->start_with(std::move(backend));
}

FakeServer::~FakeServer() {
  // A graceful stop (close frames and goodbyes), then every peer goes away; bounded, so a session
  // that never ends is a finding rather than a hang.
  shared_.stopping.store(true);
  pass();
  for (int round = 0; round < 100; ++round) {
    bool any = false;
    for (size_t i = 0; i < conns_.size(); ++i) {
      if (!conns_[i].socket) continue;
      any = true;
      if (!conns_[i].socket->closing) worker_->on_read_end(conns_[i].socket, 0);
    }
    if (!any) break;
    pass();
  }
  for (auto& c : conns_)
    if (c.socket) finding("a session was never freed after its peer went away");
}

FakeServer::Conn* FakeServer::find(engine::Socket* s) {
  for (auto& c : conns_)
    if (c.socket == s) return &c;
  return nullptr;
}

void FakeServer::sent(engine::Socket* s, const uint8_t* p, size_t n) {
  if (Conn* c = find(s)) c->checker.feed(p, n);
}

void FakeServer::finished(engine::Socket* s) {
  if (Conn* c = find(s)) c->socket = nullptr;
}

int FakeServer::connect() {
  sockaddr_storage peer{};
  auto& in = reinterpret_cast<sockaddr_in&>(peer);
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = htonl(0x7f000001);
  attached_ = nullptr;
  conns_.emplace_back();
  conns_.back().checker.set_json_text(opts_.json_text);
  worker_->on_accept(0, -1, peer);
  conns_.back().socket = attached_;
  if (!attached_) finding("on_accept did not attach the connection");
  return static_cast<int>(conns_.size() - 1);
}

void FakeServer::receive(int conn, std::span<const uint8_t> bytes) {
  // A paused reader gets nothing until the loop resumes it (the kernel would hold the bytes).
  for (int i = 0; i < 16 && conns_[conn].socket && conns_[conn].socket->read_paused; ++i) pass();
  engine::Socket* s = conns_[conn].socket;
  if (!s || s->closing || !s->recv_armed || s->read_paused) return;
  worker_->on_data(s, bytes);
  pass();
}

void FakeServer::peer_close(int conn) {
  engine::Socket* s = conns_[conn].socket;
  if (!s || s->closing) return;
  s->recv_armed = false;
  worker_->on_read_end(s, 0);
  pass();
}

}  // namespace ringcast::fuzz

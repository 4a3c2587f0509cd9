#include "load/ws_proto.h"

#include <openssl/evp.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>

namespace ringcast::load {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// True if the comma-separated token list contains `token` (case-insensitive).
bool has_token(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = trim(list.substr(0, comma));
    if (iequals(item, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

std::string base64_encode(const uint8_t* data, size_t n) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  int len =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
  out.resize(static_cast<size_t>(len));
  return out;
}

std::string websocket_accept(std::string_view key) {
  static constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::string input;
  input.reserve(key.size() + kGuid.size());
  input.append(key).append(kGuid);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int dlen = 0;
  EVP_Digest(input.data(), input.size(), digest, &dlen, EVP_sha1(), nullptr);
  return base64_encode(digest, dlen);
}

std::string upgrade_request(std::string_view host, std::string_view target, std::string_view key,
                            bool deflate) {
  std::string r;
  r.reserve(160 + host.size() + target.size());
  r.append("GET ").append(target).append(" HTTP/1.1\r\nHost: ").append(host);
  r.append("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ").append(key);
  r.append("\r\nSec-WebSocket-Version: 13\r\nUser-Agent: ringcast-load\r\n");
  if (deflate) r.append("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n");
  r.append("\r\n");
  return r;
}

HandshakeStatus parse_upgrade_response(std::string_view data, std::string_view expected_accept,
                                       size_t& consumed, std::string& error, bool* deflate_agreed) {
  if (deflate_agreed) *deflate_agreed = false;
  size_t end = data.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (data.size() > 16384) {
      error = "upgrade response head too large";
      return HandshakeStatus::kFailed;
    }
    return HandshakeStatus::kIncomplete;
  }
  consumed = end + 4;
  std::string_view head = data.substr(0, end + 2);
  size_t eol = head.find("\r\n");
  std::string_view status_line = head.substr(0, eol);
  // "HTTP/1.1 101 Switching Protocols"
  if (!status_line.starts_with("HTTP/1.1 ") || status_line.size() < 12) {
    error = "malformed status line: " + std::string(status_line.substr(0, 80));
    return HandshakeStatus::kFailed;
  }
  std::string_view code = status_line.substr(9, 3);
  if (code != "101") {
    error = "upgrade refused: " + std::string(status_line.substr(9, 80));
    return HandshakeStatus::kFailed;
  }
  bool upgrade_ok = false, connection_ok = false, accept_ok = false;
  std::string accept_seen;
  size_t pos = eol + 2;
  while (pos < head.size()) {
    size_t next = head.find("\r\n", pos);
    std::string_view line = head.substr(pos, next - pos);
    pos = next + 2;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      error = "malformed header line in upgrade response";
      return HandshakeStatus::kFailed;
    }
    std::string_view name = trim(line.substr(0, colon));
    std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "Upgrade")) {
      upgrade_ok = iequals(value, "websocket");
    } else if (iequals(name, "Connection")) {
      connection_ok = has_token(value, "upgrade");
    } else if (iequals(name, "Sec-WebSocket-Accept")) {
      accept_seen = std::string(value);
      accept_ok = value == expected_accept;
    } else if (iequals(name, "Sec-WebSocket-Extensions") && deflate_agreed) {
      *deflate_agreed = value.substr(0, 18) == "permessage-deflate";
    }
  }
  if (!upgrade_ok || !connection_ok) {
    error = "101 response without Upgrade: websocket / Connection: upgrade";
    return HandshakeStatus::kFailed;
  }
  if (!accept_ok) {
    error = accept_seen.empty() ? "101 response without Sec-WebSocket-Accept"
                                : "wrong Sec-WebSocket-Accept: " + accept_seen;
    return HandshakeStatus::kFailed;
  }
  return HandshakeStatus::kOk;
}

void append_frame(std::string& out, uint8_t op, const uint8_t* payload, size_t n, uint32_t mask,
                  bool fin) {
  uint8_t head[14];
  size_t h = 0;
  head[h++] = static_cast<uint8_t>((fin ? 0x80 : 0x00) | (op & 0x0F));
  if (n < 126) {
    head[h++] = static_cast<uint8_t>(0x80 | n);
  } else if (n <= 0xFFFF) {
    head[h++] = 0x80 | 126;
    head[h++] = static_cast<uint8_t>(n >> 8);
    head[h++] = static_cast<uint8_t>(n);
  } else {
    head[h++] = 0x80 | 127;
    for (int i = 7; i >= 0; --i)
      head[h++] = static_cast<uint8_t>(static_cast<uint64_t>(n) >> (8 * i));
  }
  uint8_t key[4] = {static_cast<uint8_t>(mask >> 24), static_cast<uint8_t>(mask >> 16),
                    static_cast<uint8_t>(mask >> 8), static_cast<uint8_t>(mask)};
  std::memcpy(head + h, key, 4);
  h += 4;
  size_t base = out.size();
  out.resize(base + h + n);
  char* dst = out.data() + base;
  std::memcpy(dst, head, h);
  dst += h;
  // Mask eight bytes at a time; the 4-byte key repeated twice keeps its phase.
  uint64_t key8;
  uint8_t k8[8] = {key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
  std::memcpy(&key8, k8, 8);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, payload + i, 8);
    w ^= key8;
    std::memcpy(dst + i, &w, 8);
  }
  for (; i < n; ++i) dst[i] = static_cast<char>(payload[i] ^ key[i & 3]);
}

const std::string* inflate_message(const uint8_t* data, size_t n) {
  struct Inflater {
    z_stream z{};
    std::string out;
    Inflater() { inflateInit2(&z, -15); }
    ~Inflater() { inflateEnd(&z); }
  };
  thread_local Inflater inf;
  static const uint8_t kTail[4] = {0x00, 0x00, 0xff, 0xff};
  inf.out.clear();
  inflateReset(&inf.z);
  for (int part = 0; part < 2; ++part) {
    inf.z.next_in = const_cast<Bytef*>(part == 0 ? data : kTail);
    inf.z.avail_in = static_cast<uInt>(part == 0 ? n : 4);
    for (;;) {
      size_t old = inf.out.size();
      if (old >= kMaxClientMessage) return nullptr;
      inf.out.resize(old + 16384);  // capacity is kept: no allocation once warm
      inf.z.next_out = reinterpret_cast<Bytef*>(inf.out.data() + old);
      inf.z.avail_out = 16384;
      int rc = inflate(&inf.z, Z_SYNC_FLUSH);
      inf.out.resize(old + 16384 - inf.z.avail_out);
      if (rc == Z_STREAM_END) return &inf.out;
      if (rc != Z_OK && rc != Z_BUF_ERROR) return nullptr;
      if (inf.z.avail_out != 0) break;  // everything this input gives is out
    }
  }
  return &inf.out;
}

}  // namespace ringcast::load

#include "ringcast/websocket/handshake.h"

#include <openssl/evp.h>

namespace ringcast::websocket {
namespace {
constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

bool is_b64(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}
}  // namespace

bool wants_upgrade(const HttpRequest& req) {
  return req.header_has_token("Upgrade", "websocket");
}

bool valid_websocket_key(std::string_view key) {
  // 16 bytes encode to 22 characters plus "==".
  if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
  for (size_t i = 0; i < 22; ++i)
    if (!is_b64(key[i])) return false;
  // The last character before the padding carries only 2 significant bits.
  static constexpr std::string_view kLast = "AQgw";
  return kLast.find(key[21]) != std::string_view::npos;
}

int check_upgrade(const HttpRequest& req) {
  if (req.method != "GET" || req.version_minor < 1) return 400;
  if (!req.header_has_token("Connection", "upgrade")) return 400;
  // RFC 6455 §11.3.1 and §11.3.5: each appears at most once in a request. Two keys would leave
  // the accept value ambiguous, so both are refused rather than one picked.
  if (req.header_count_of("Sec-WebSocket-Key") > 1 ||
      req.header_count_of("Sec-WebSocket-Version") > 1)
    return 400;
  auto version = req.header("Sec-WebSocket-Version");
  auto key = req.header("Sec-WebSocket-Key");
  if (!key || !valid_websocket_key(*key)) return 400;
  if (!version || *version != "13") return 426;
  return 0;
}

std::string websocket_accept(std::string_view key) {
  std::string input;
  input.reserve(key.size() + kGuid.size());
  input.append(key).append(kGuid);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  EVP_Digest(input.data(), input.size(), digest, &digest_len, EVP_sha1(), nullptr);
  unsigned char out[64];
  int n = EVP_EncodeBlock(out, digest, static_cast<int>(digest_len));
  return std::string(reinterpret_cast<char*>(out), n);
}

}  // namespace ringcast::websocket

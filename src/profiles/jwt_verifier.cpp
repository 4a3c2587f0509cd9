#include "ringcast/profiles/jwt_hs256.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <rapidjson/document.h>

#include <array>
#include <cmath>

#include "ringcast/profiles/python_json.h"

namespace ringcast::profiles {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

// A JSON object from a base64url segment, or false.
bool decode_object(std::string_view segment, rapidjson::Document& doc) {
  auto bytes = base64url_decode(segment);
  if (!bytes) return false;
  doc.Parse<rapidjson::kParseIterativeFlag>(bytes->data(), bytes->size());
  return !doc.HasParseError() && doc.IsObject();
}

// PyJWT reads header and claims with json.loads: a repeated claim counts with its last value.
const rapidjson::Value* member(const rapidjson::Value& obj, const char* name) {
  return py_get(obj, name);
}

// A NumericDate claim (seconds; fractions allowed), or nullopt when it is not a finite number.
std::optional<double> numeric_date(const rapidjson::Value& v) {
  if (!v.IsNumber()) return std::nullopt;
  double d = v.GetDouble();
  if (!std::isfinite(d)) return std::nullopt;
  return d;
}

}  // namespace

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  size_t i = 0;
  auto b = [&](size_t k) { return static_cast<uint8_t>(bytes[k]); };
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (b(i) << 16) | (b(i + 1) << 8) | b(i + 2);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest == 1) {
    uint32_t v = b(i) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
  } else if (rest == 2) {
    uint32_t v = (b(i) << 16) | (b(i + 1) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = sextet(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

JwtResult verify_hs256(std::string_view token, std::string_view secret, int64_t now,
                       JwtClaims& claims) {
  size_t d1 = token.find('.');
  if (d1 == std::string_view::npos) return JwtResult::kMalformed;
  size_t d2 = token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
    return JwtResult::kMalformed;
  std::string_view header_b64 = token.substr(0, d1);
  std::string_view payload_b64 = token.substr(d1 + 1, d2 - d1 - 1);
  std::string_view sig_b64 = token.substr(d2 + 1);
  rapidjson::Document header, payload;
  if (!decode_object(header_b64, header) || !decode_object(payload_b64, payload))
    return JwtResult::kMalformed;
  auto sig = base64url_decode(sig_b64);
  if (!sig) return JwtResult::kMalformed;

  if (secret.empty()) return JwtResult::kInvalid;
  const rapidjson::Value* alg = member(header, "alg");
  if (!alg || !alg->IsString() ||
      std::string_view(alg->GetString(), alg->GetStringLength()) != "HS256")
    return JwtResult::kInvalid;
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int mac_len = 0;
  std::string_view signed_part = token.substr(0, d2);
  if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(),
            mac.data(), &mac_len)) {
    return JwtResult::kInvalid;
  }
  // Constant time over the MAC length; the length itself is public (32 bytes).
  if (sig->size() != mac_len || CRYPTO_memcmp(sig->data(), mac.data(), mac_len) != 0)
    return JwtResult::kInvalid;

  if (const rapidjson::Value* exp = member(payload, "exp")) {
    auto t = numeric_date(*exp);
    if (!t || static_cast<double>(now) >= *t) return JwtResult::kInvalid;
  }
  if (const rapidjson::Value* nbf = member(payload, "nbf")) {
    auto t = numeric_date(*nbf);
    if (!t || static_cast<double>(now) < *t) return JwtResult::kInvalid;
  }
  const rapidjson::Value* sub = member(payload, "sub");
  if (!sub || !sub->IsString() || sub->GetStringLength() == 0) return JwtResult::kInvalid;
  claims.sub.assign(sub->GetString(), sub->GetStringLength());
  claims.nickname.reset();
  if (const rapidjson::Value* nick = member(payload, "nickname"); nick && nick->IsString())
    claims.nickname.emplace(nick->GetString(), nick->GetStringLength());
  return JwtResult::kOk;
}

}  // namespace ringcast::profiles

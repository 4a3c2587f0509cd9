#include "ringcast/profiles/jwt_verifier.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <rapidjson/document.h>

#include <array>
#include <cmath>

#include "ringcast/profiles/base64url.h"
#include "ringcast/profiles/python_json.h"

namespace ringcast::profiles {

namespace {

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

std::string_view text_of(const rapidjson::Value& v) {
  return {v.GetString(), v.GetStringLength()};
}

// A NumericDate claim (seconds; fractions allowed), or nullopt when it is not a finite number.
std::optional<double> numeric_date(const rapidjson::Value& v) {
  if (!v.IsNumber()) return std::nullopt;
  double d = v.GetDouble();
  if (!std::isfinite(d)) return std::nullopt;
  return d;
}

bool verify_hmac(const JwtKey& key, std::string_view input, std::string_view sig) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int mac_len = 0;
  if (!HMAC(EVP_sha256(), key.secret.data(), static_cast<int>(key.secret.size()),
            reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac.data(),
            &mac_len))
    return false;
  // Constant time over the MAC; its length is public (32 bytes).
  return sig.size() == mac_len && CRYPTO_memcmp(sig.data(), mac.data(), mac_len) == 0;
}

// JOSE carries an ES256 signature as r || s (32 bytes each); EVP wants DER.
std::optional<std::string> es256_der(std::string_view sig) {
  if (sig.size() != 64) return std::nullopt;
  auto bytes = reinterpret_cast<const unsigned char*>(sig.data());
  BIGNUM* r = BN_bin2bn(bytes, 32, nullptr);
  BIGNUM* s = BN_bin2bn(bytes + 32, 32, nullptr);
  ECDSA_SIG* es = ECDSA_SIG_new();
  if (!r || !s || !es || !ECDSA_SIG_set0(es, r, s)) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return std::nullopt;
  }
  std::optional<std::string> out;
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(es, &der);
  if (len > 0) out.emplace(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  ECDSA_SIG_free(es);  // owns r and s
  return out;
}

bool verify_pkey(const JwtKey& key, std::string_view input, std::string_view sig) {
  std::optional<std::string> der;
  if (key.alg == JwtAlg::kES256) {
    der = es256_der(sig);
    if (!der) return false;
    sig = *der;
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (!ctx) return false;
  // RSA keys default to PKCS#1 v1.5 padding: RS256 exactly.
  bool ok =
      EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key.pkey.get()) == 1 &&
      EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

bool audience_matches(const rapidjson::Value& aud, const std::vector<std::string>& wanted) {
  auto one = [&wanted](const rapidjson::Value& v) {
    if (!v.IsString()) return false;
    for (const auto& w : wanted)
      if (text_of(v) == w) return true;
    return false;
  };
  if (aud.IsString()) return one(aud);
  if (!aud.IsArray()) return false;
  for (const auto& v : aud.GetArray())
    if (one(v)) return true;
  return false;
}

}  // namespace

JwtResult JwtVerifier::verify(std::string_view token, int64_t now, JwtClaims& claims) const {
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

  // The header picks among our keys: alg must be one a configured key verifies ("none" never is),
  // and a kid, when given, must name that key.
  const rapidjson::Value* alg = member(header, "alg");
  if (!alg || !alg->IsString()) return JwtResult::kInvalid;
  std::optional<JwtAlg> want;
  for (JwtAlg a : {JwtAlg::kRS256, JwtAlg::kES256, JwtAlg::kHS256})
    if (text_of(*alg) == jwt_alg_name(a)) want = a;
  if (!want) return JwtResult::kInvalid;
  const rapidjson::Value* kid = member(header, "kid");
  if (kid && !kid->IsString()) return JwtResult::kInvalid;
  // Extensions we do not implement must not be ignored (RFC 7515 section 4.1.11).
  if (member(header, "crit")) return JwtResult::kInvalid;
  std::string_view signed_part = token.substr(0, d2);
  bool verified = false;
  for (const JwtKey& key : keys_.keys()) {
    if (key.alg != *want) continue;
    if (kid && !key.kid.empty() && key.kid != text_of(*kid)) continue;
    verified = key.alg == JwtAlg::kHS256 ? verify_hmac(key, signed_part, *sig)
                                         : verify_pkey(key, signed_part, *sig);
    if (verified) break;
  }
  if (!verified) return JwtResult::kInvalid;

  const double leeway = static_cast<double>(policy_.leeway_s);
  const double t_now = static_cast<double>(now);
  std::optional<double> expires;
  if (const rapidjson::Value* exp = member(payload, "exp")) {
    expires = numeric_date(*exp);
    if (!expires || t_now >= *expires + leeway) return JwtResult::kInvalid;
  }
  if (const rapidjson::Value* nbf = member(payload, "nbf")) {
    auto t = numeric_date(*nbf);
    if (!t || t_now + leeway < *t) return JwtResult::kInvalid;
  }
  if (policy_.check_audience) {
    const rapidjson::Value* aud = member(payload, "aud");
    if (policy_.audiences.empty() ? aud != nullptr
                                  : (!aud || !audience_matches(*aud, policy_.audiences)))
      return JwtResult::kInvalid;
  }
  if (!policy_.issuer.empty()) {
    const rapidjson::Value* iss = member(payload, "iss");
    if (!iss || !iss->IsString() || text_of(*iss) != policy_.issuer) return JwtResult::kInvalid;
  }
  const rapidjson::Value* sub = member(payload, "sub");
  if (!sub || !sub->IsString() || sub->GetStringLength() == 0) return JwtResult::kInvalid;
  claims.sub.assign(sub->GetString(), sub->GetStringLength());
  claims.nickname.reset();
  if (const rapidjson::Value* nick = member(payload, "nickname"); nick && nick->IsString())
    claims.nickname.emplace(nick->GetString(), nick->GetStringLength());
  claims.exp = expires;
  claims.valid_until.reset();
  if (expires) claims.valid_until = *expires + leeway;
  return JwtResult::kOk;
}

}  // namespace ringcast::profiles

// JWT verification and key files. The first byte picks the mode (its two low bits):
//   0: the rest is a token, verified as it is (base64url, segments, key selection, signatures);
//   1: the rest is "<header JSON>\n<payload JSON>", which the harness encodes and signs with the
//      right HS256 secret, so the claim checks (alg, kid, crit, sub, nickname, exp, nbf, aud, iss)
//      see arbitrary JSON;
//   3: likewise, signed with the right ES256 key (r || s);
//   2: the rest is a key file (PEM or JWKS): it loads or throws JwtKeyError, nothing else.
// Also base64url round trips. Claims of an accepted token must be what the contract says.
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ringcast/profiles/base64url.h"
#include "ringcast/profiles/jwt_keys.h"
#include "ringcast/profiles/jwt_verifier.h"

using namespace ringcast::profiles;

namespace {

constexpr std::string_view kSecret = "fuzz-secret";
constexpr int64_t kNow = 1700000000;

// An invariant of the code under test; a failure names its line.
#define require(ok)                                                 \
  do {                                                              \
    if (!(ok)) {                                                    \
      std::fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #ok); \
      std::abort();                                                 \
    }                                                               \
  } while (0)

EVP_PKEY* ec_key() {
  static EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  return k;
}

std::string public_pem(EVP_PKEY* k) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, k);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(len));
  BIO_free(bio);
  return out;
}

JwtVerifier make_verifier(std::string_view secret, bool with_ec) {
  JwtKeySet keys;
  keys.add_hs256_secret(std::string(secret));
  if (with_ec) keys.add_key_file_text(public_pem(ec_key()));
  JwtPolicy policy;
  policy.audiences = {"aud-1"};
  policy.leeway_s = 30;
  return JwtVerifier(std::move(keys), policy);
}

// A verifier that knows the keys, and one whose keys differ (other secret, no EC key).
const JwtVerifier& right() {
  static JwtVerifier v = make_verifier(kSecret, true);
  return v;
}
const JwtVerifier& wrong() {
  static JwtVerifier v = make_verifier("another-secret", false);
  return v;
}

std::string sign_hs256(std::string_view input) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), kSecret.data(), static_cast<int>(kSecret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return base64url_encode({reinterpret_cast<const char*>(mac), len});
}

std::string sign_es256(std::string_view input) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char der[80];
  size_t len = sizeof der;
  require(EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, ec_key()) == 1);
  require(EVP_DigestSign(ctx, der, &len, reinterpret_cast<const unsigned char*>(input.data()),
                         input.size()) == 1);
  EVP_MD_CTX_free(ctx);
  const unsigned char* p = der;
  ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len));
  require(es);
  unsigned char rs[64];
  BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + 32, 32);
  ECDSA_SIG_free(es);
  return base64url_encode({reinterpret_cast<const char*>(rs), sizeof rs});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  const int mode = data[0] & 3;
  if (mode == 2) {
    JwtKeySet keys;
    try {
      keys.add_key_file_text(in);
      require(!keys.empty());
      for (const auto& k : keys.keys()) require(k.pkey && k.alg != JwtAlg::kHS256);
    } catch (const JwtKeyError&) {
    }
    return 0;
  }
  std::string token;
  if (mode & 1) {
    size_t nl = in.find('\n');
    std::string_view header = in.substr(0, nl);
    std::string_view payload = nl == std::string_view::npos ? "" : in.substr(nl + 1);
    token = base64url_encode(header) + "." + base64url_encode(payload);
    token += "." + (mode == 3 ? sign_es256(token) : sign_hs256(token));
  } else {
    token.assign(in);
  }
  JwtClaims claims;
  if (right().verify(token, kNow, claims) == JwtResult::kOk) {
    require(!claims.sub.empty());
    require(claims.exp.has_value() == claims.valid_until.has_value());
    if (claims.valid_until) require(*claims.valid_until > static_cast<double>(kNow));
  }
  // Keys that did not sign it never verify it.
  JwtClaims other;
  require(wrong().verify(token, kNow, other) != JwtResult::kOk);

  // base64url: decoding what was encoded gives the bytes back, and so does re-encoding whatever
  // decoded.
  auto round = base64url_decode(base64url_encode(in));
  require(round && *round == in);
  if (auto bytes = base64url_decode(in)) {
    auto again = base64url_decode(base64url_encode(*bytes));
    require(again && *again == *bytes);
  }
  return 0;
}

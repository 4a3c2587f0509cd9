// HS256 JWT verification. The first byte picks the mode:
//   even: the rest is the token, verified as it is (base64url, segments, signature check);
//   odd:  the rest is "<header JSON>\n<payload JSON>", which the harness encodes and signs with
//         the right secret, so the claim checks (alg, sub, nickname, exp, nbf) see arbitrary JSON.
// Also base64url round trips. Claims of an accepted token must be what the contract says.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ringcast/profiles/jwt_hs256.h"

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

std::string sign(std::string_view signing_input) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), kSecret.data(), static_cast<int>(kSecret.size()),
       reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac,
       &len);
  return base64url_encode({reinterpret_cast<const char*>(mac), len});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string token;
  if (data[0] & 1) {
    size_t nl = in.find('\n');
    std::string_view header = in.substr(0, nl);
    std::string_view payload = nl == std::string_view::npos ? "" : in.substr(nl + 1);
    token = base64url_encode(header) + "." + base64url_encode(payload);
    token += "." + sign(token);
  } else {
    token.assign(in);
  }
  JwtClaims claims;
  JwtResult r = verify_hs256(token, kSecret, kNow, claims);
  if (r == JwtResult::kOk) require(!claims.sub.empty());
  // A wrong secret never verifies.
  JwtClaims other;
  require(verify_hs256(token, "another-secret", kNow, other) != JwtResult::kOk);

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

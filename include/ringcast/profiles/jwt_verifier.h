// JSON Web Token verification (RFC 7519) for logins: RS256, ES256 and HS256 signatures checked
// with OpenSSL against the configured keys, then the claims: `exp` and `nbf` (with leeway), `aud`,
// `iss`; the user id is `sub`, the nickname the `nickname` claim when it is a string. A token's
// header only selects among the configured keys (by `alg` and `kid`); it never chooses how a key
// is used.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ringcast/profiles/jwt_keys.h"

namespace ringcast::profiles {

enum class JwtResult {
  kOk,
  kMalformed,  // not three base64url segments whose header and payload are JSON objects
  kInvalid,    // parseable, but: no key for its alg/kid, bad signature, expired, not yet valid,
               // wrong audience or issuer, a `crit` header, or no non-empty string `sub`
};

struct JwtPolicy {
  // The token's `aud` (a string or an array) must name one of these. Empty: a token that has an
  // `aud` is refused (RFC 7519 section 4.1.3), unless check_audience is false.
  std::vector<std::string> audiences;
  bool check_audience = true;
  std::string issuer;    // non-empty: `iss` must equal it
  int64_t leeway_s = 0;  // clock skew allowed on `exp` and `nbf`
};

struct JwtClaims {
  std::string sub;
  std::optional<std::string> nickname;  // the `nickname` claim when it is a string
  std::optional<double> exp;            // the `exp` claim; none: the token does not expire
  // `exp` + leeway: the first second the token is no longer accepted.
  std::optional<double> valid_until;
};

class JwtVerifier {
 public:
  JwtVerifier(JwtKeySet keys, JwtPolicy policy)
      : keys_(std::move(keys)), policy_(std::move(policy)) {}

  // Checks `token` at time `now` (Unix seconds). Fills `claims` when kOk.
  JwtResult verify(std::string_view token, int64_t now, JwtClaims& claims) const;
  bool has_keys() const { return !keys_.empty(); }
  const JwtPolicy& policy() const { return policy_; }

 private:
  JwtKeySet keys_;
  JwtPolicy policy_;
};

// The verifier in force, replaced on SIGHUP while workers verify logins (a login takes the
// lock once; messages never do).
class JwtVerifierSlot {
 public:
  void set(std::shared_ptr<const JwtVerifier> v) {
    std::lock_guard lock(mutex_);
    current_ = std::move(v);
  }
  std::shared_ptr<const JwtVerifier> get() const {
    std::lock_guard lock(mutex_);
    return current_;
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const JwtVerifier> current_;
};

}  // namespace ringcast::profiles

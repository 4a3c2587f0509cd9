// The keys JWTs are verified with: RSA and EC P-256 public keys (one PEM key, or a JWKS document
// whose keys are told apart by `kid`) and HS256 secrets. Each key knows the one `alg` it verifies,
// so a token can never pick how its signature is checked (no `none`, no HS256 keyed with an RSA
// public key). Built once (start, SIGHUP) and then only read, by every worker.
#pragma once

#include <openssl/types.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ringcast::profiles {

enum class JwtAlg : uint8_t { kRS256, kES256, kHS256 };

// "RS256", "ES256" or "HS256".
std::string_view jwt_alg_name(JwtAlg alg);

// A key file or secret that cannot be used; what() says why.
struct JwtKeyError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct JwtKey {
  JwtAlg alg;
  std::string kid;                 // empty: the key has none (a PEM key, an HS256 secret)
  std::shared_ptr<EVP_PKEY> pkey;  // RS256, ES256
  std::string secret;              // HS256
};

class JwtKeySet {
 public:
  static constexpr size_t kMinRsaBits = 2048;

  // Adds the keys of a key file: a PEM public key ("PUBLIC KEY", "RSA PUBLIC KEY" or a
  // "CERTIFICATE"), or a JWKS document ({"keys": [...]}). RSA keys must have at least kMinRsaBits
  // bits, EC keys must be on P-256. JWKS entries for other uses (`use` other than "sig"), other
  // algorithms or other key types are skipped; a JWKS without one usable key is an error. Throws
  // JwtKeyError.
  void add_key_file_text(std::string_view text);
  // Adds an HS256 secret (non-empty).
  void add_hs256_secret(std::string secret);

  const std::vector<JwtKey>& keys() const { return keys_; }
  bool empty() const { return keys_.empty(); }

 private:
  void add_pem(std::string_view text);
  void add_jwks(std::string_view text);

  std::vector<JwtKey> keys_;
};

}  // namespace ringcast::profiles

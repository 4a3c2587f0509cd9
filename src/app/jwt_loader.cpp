#include "ringcast/app/jwt_loader.h"

#include <cerrno>
#include <cstring>
#include <fstream>

namespace ringcast::app {

namespace {

// Key files are small (a PEM key, a JWKS of a few keys); anything bigger is not one.
constexpr std::streamsize kMaxKeyFileBytes = 1 << 20;

std::string read_key_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw ConfigError("jwt.public_key_file: cannot read '" + path + "': " + std::strerror(errno));
  std::string text(static_cast<size_t>(kMaxKeyFileBytes) + 1, '\0');
  in.read(text.data(), kMaxKeyFileBytes + 1);
  if (in.bad()) throw ConfigError("jwt.public_key_file: cannot read '" + path + "'");
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > static_cast<size_t>(kMaxKeyFileBytes))
    throw ConfigError("jwt.public_key_file: '" + path + "' is larger than 1 MiB");
  return text;
}

}  // namespace

std::shared_ptr<const profiles::JwtVerifier> load_jwt_verifier(const Config::Jwt& jwt) {
  profiles::JwtKeySet keys;
  if (!jwt.public_key_file.empty()) {
    std::string text = read_key_file(jwt.public_key_file);
    try {
      keys.add_key_file_text(text);
    } catch (const profiles::JwtKeyError& e) {
      throw ConfigError("jwt.public_key_file: '" + jwt.public_key_file + "' holds " + e.what());
    }
  }
  if (!jwt.hs256_secret.empty()) keys.add_hs256_secret(jwt.hs256_secret);
  if (keys.empty()) return nullptr;
  profiles::JwtPolicy policy;
  policy.audiences = jwt.audience;
  policy.issuer = jwt.issuer;
  policy.leeway_s = jwt.leeway_s;
  return std::make_shared<const profiles::JwtVerifier>(std::move(keys), std::move(policy));
}

std::shared_ptr<const profiles::JwtVerifier> gamechat_secret_verifier(const std::string& secret) {
  if (secret.empty()) return nullptr;
  profiles::JwtKeySet keys;
  keys.add_hs256_secret(secret);
  profiles::JwtPolicy policy;
  policy.check_audience = false;
  policy.leeway_s = 0;
  return std::make_shared<const profiles::JwtVerifier>(std::move(keys), std::move(policy));
}

}  // namespace ringcast::app

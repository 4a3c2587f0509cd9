// Builds the JWT verifiers the profiles use from the configuration: reads [jwt] public_key_file
// (at start and on SIGHUP) and the HS256 secrets.
#pragma once

#include <memory>
#include <string>

#include "ringcast/app/config.h"
#include "ringcast/profiles/jwt_verifier.h"

namespace ringcast::app {

// The verifier for [jwt], or nullptr when it configures no key. Throws ConfigError naming the
// file when public_key_file is missing, unreadable or holds no usable key.
std::shared_ptr<const profiles::JwtVerifier> load_jwt_verifier(const Config::Jwt& jwt);

// [profiles.gamechat] hs256_secret, as it always worked: HS256 only, `exp`/`nbf` without leeway,
// `aud` and `iss` not looked at. nullptr for an empty secret.
std::shared_ptr<const profiles::JwtVerifier> gamechat_secret_verifier(const std::string& secret);

}  // namespace ringcast::app

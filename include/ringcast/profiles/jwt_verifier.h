// HS256-signed JSON Web Tokens, as the game-chat profile accepts them for login: the signature is
// an HMAC-SHA-256 of "header.payload" with the operator's secret, `sub` is the user id, an optional
// string `nickname` claim the nickname, and `exp` / `nbf` (Unix seconds) are honoured when present.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ringcast::profiles {

enum class JwtResult {
  kOk,
  kMalformed,  // not three base64url segments whose header and payload are JSON objects
  kInvalid,    // parseable, but: no secret, alg not HS256, bad signature, expired, not yet valid,
               // or no non-empty string `sub`
};

struct JwtClaims {
  std::string sub;
  std::optional<std::string> nickname;  // the `nickname` claim when it is a string
};

// Checks `token` against `secret` at time `now` (Unix seconds). Fills `claims` when kOk.
JwtResult verify_hs256(std::string_view token, std::string_view secret, int64_t now,
                       JwtClaims& claims);

// base64url without padding (RFC 7515 section 2); for tests and tooling.
std::string base64url_encode(std::string_view bytes);
// Accepts base64url with or without '=' padding; nullopt on any other character or a bad length.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace ringcast::profiles

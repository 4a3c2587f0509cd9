// base64url (RFC 4648 section 5), the encoding of every JWT segment and JWK number.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ringcast::profiles {

// Without padding (RFC 7515 section 2).
std::string base64url_encode(std::string_view bytes);
// Accepts base64url with or without '=' padding; nullopt on any other character or a bad length.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace ringcast::profiles

// The server API's credential check: `Authorization: apikey <key>` against [api] keys.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringcast::app {

// True when `authorization` is "apikey <k>" (scheme case-insensitive) for one of `keys`. Every
// configured key is compared, through SHA-256 digests, so the time taken says nothing about how
// much of a key matched or how long it is.
bool api_key_allows(const std::vector<std::string>& keys,
                    std::optional<std::string_view> authorization);

}  // namespace ringcast::app

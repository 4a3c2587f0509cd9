#include "ringcast/app/api_key.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <array>

namespace ringcast::app {

namespace {

std::array<unsigned char, SHA256_DIGEST_LENGTH> digest(std::string_view s) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> d{};
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d.data());
  return d;
}

}  // namespace

bool api_key_allows(const std::vector<std::string>& keys,
                    std::optional<std::string_view> authorization) {
  if (keys.empty() || !authorization) return false;
  std::string_view v = *authorization;
  constexpr std::string_view kScheme = "apikey";
  if (v.size() <= kScheme.size() + 1) return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    char c = v[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kScheme[i]) return false;
  }
  if (v[kScheme.size()] != ' ') return false;
  v.remove_prefix(kScheme.size() + 1);
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  auto given = digest(v);
  bool ok = false;
  for (const auto& k : keys) {
    auto want = digest(k);
    ok |= CRYPTO_memcmp(given.data(), want.data(), want.size()) == 0;
  }
  return ok;
}

}  // namespace ringcast::app

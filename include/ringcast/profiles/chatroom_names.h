// The chatroom seed's generated user names: a capitalised adjective glued to a capitalised animal
// ("BraveOtter", "Big-heartedLynx"); never a space.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace ringcast::profiles {

// The built-in word lists (each word already capitalised).
std::span<const std::string_view> chatroom_adjectives();
std::span<const std::string_view> chatroom_animals();

// A random name, drawn with a per-thread generator.
std::string chatroom_random_name();

}  // namespace ringcast::profiles

// Names that other users are shown: chat names, nicknames and user ids, room and endpoint names,
// booth ids, map player names. Someone else's client renders them, so they must not carry
// characters that change how text around them is displayed. Every profile checks such names here
// and answers a refused one with its own error reply.
//
// Refused: bytes that are not UTF-8; NUL and every other C0 control (U+0000-U+001F, tab and newline
// included), DEL (U+007F) and the C1 controls (U+0080-U+009F); the Unicode bidirectional
// formatting characters: embeddings and overrides U+202A-U+202E, isolates U+2066-U+2069, and the
// marks U+200E, U+200F and U+061C (a name could otherwise render reversed, pose as another, or
// reorder the rest of the line it is shown in).
#pragma once

#include <string_view>

namespace ringcast::profiles {

// What a refused name's error message says about it (one wording for every profile).
inline constexpr std::string_view kDisplayNameRule =
    "must not contain control characters or bidirectional formatting characters";

// True when `name` is valid UTF-8 without any of the characters above. Empty is allowed (callers
// have their own length rules).
bool is_display_safe(std::string_view name);

}  // namespace ringcast::profiles

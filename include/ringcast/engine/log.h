// Leveled logging to stderr. One formatted line per call, written with a single write(2) so lines
// from different workers never interleave. Nothing on the message path logs at info or above.
#pragma once

#include <atomic>
#include <cstdarg>
#include <optional>
#include <string_view>

namespace ringcast::log {

enum class Level : int { kTrace = 0, kDebug = 1, kInfo = 2, kWarn = 3, kError = 4 };

// Current threshold; messages below it are dropped before formatting.
extern std::atomic<int> g_level;

std::optional<Level> parse_level(std::string_view name);
std::string_view level_name(Level level);
inline void set_level(Level level) {
  g_level.store(static_cast<int>(level));
}
inline bool enabled(Level level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

void write(Level level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace ringcast::log

#define RC_LOG(level, ...)                                                           \
  do {                                                                               \
    if (::ringcast::log::enabled(level)) ::ringcast::log::write(level, __VA_ARGS__); \
  } while (0)
#define RC_TRACE(...) RC_LOG(::ringcast::log::Level::kTrace, __VA_ARGS__)
#define RC_DEBUG(...) RC_LOG(::ringcast::log::Level::kDebug, __VA_ARGS__)
#define RC_INFO(...) RC_LOG(::ringcast::log::Level::kInfo, __VA_ARGS__)
#define RC_WARN(...) RC_LOG(::ringcast::log::Level::kWarn, __VA_ARGS__)
#define RC_ERROR(...) RC_LOG(::ringcast::log::Level::kError, __VA_ARGS__)

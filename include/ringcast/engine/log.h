// Leveled logging to stderr. One formatted line per call, written with a single write(2) so lines
// from different workers never interleave. Nothing on the message path logs at info or above.
#pragma once

#include <atomic>
#include <cstdarg>
#include <cstdint>
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

// Lets one line through per interval, from any number of threads, and counts the ones it held
// back: for conditions that can repeat at loop speed (a failing accept), where one line per event
// would flood the log.
class Throttle {
 public:
  explicit Throttle(int64_t interval_ms) : interval_ms_(interval_ms) {}
  // True if a line may be written at now_ms (monotonic); `held_back` gets how many calls were
  // refused since the last line that went through.
  bool allow(int64_t now_ms, uint64_t& held_back);

 private:
  const int64_t interval_ms_;
  std::atomic<int64_t> next_ms_{0};
  std::atomic<uint64_t> held_{0};
};

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

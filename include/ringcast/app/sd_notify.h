// Minimal sd_notify(3): one datagram to $NOTIFY_SOCKET (path or abstract '@name'). No libsystemd
// needed, and a no-op outside systemd.
#pragma once

#include <cstdint>
#include <string_view>

namespace ringcast::app {

bool sd_notify_send(std::string_view state);
// Watchdog interval from $WATCHDOG_USEC (0 if the watchdog is off or meant for another process).
uint64_t sd_watchdog_usec();

}  // namespace ringcast::app

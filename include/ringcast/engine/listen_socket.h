// Listening sockets: one per worker and port, bound with SO_REUSEPORT so the kernel spreads new
// connections over the workers.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>

namespace ringcast::engine {

// Returns a non-blocking listening socket, or -errno. `error` gets a readable reason on failure.
int open_listener(const std::string& host, uint16_t port, int backlog, std::string& error);

// True if nothing listens on host:port, including another process's SO_REUSEPORT group (which
// the workers' own SO_REUSEPORT sockets would silently join and share traffic with).
bool port_is_free(const std::string& host, uint16_t port, std::string& error);

// "1.2.3.4" / "::1" form of a peer address (for logs and per-IP limits).
std::string address_string(const sockaddr_storage& addr);

// Pins the calling thread to one CPU; returns false if the kernel refused.
bool pin_current_thread(int cpu);

}  // namespace ringcast::engine

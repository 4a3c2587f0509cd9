#include "ringcast/engine/listen_socket.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ringcast::engine {

namespace {

int bind_socket(const std::string& host, uint16_t port, bool reuse_port, int backlog,
                std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0) {
    error = "cannot resolve host '" + host + "': " + gai_strerror(rc);
    return -EINVAL;
  }
  int last_err = EINVAL;
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      last_err = errno;
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (ai->ai_family == AF_INET6) {
      int zero = 0;  // "::" serves IPv4 too
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    }
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
        (backlog < 0 || ::listen(fd, backlog) == 0)) {
      freeaddrinfo(res);
      return fd;
    }
    last_err = errno;
    ::close(fd);
  }
  freeaddrinfo(res);
  error = "cannot listen on " + host + ":" + service + ": " + std::strerror(last_err);
  return -last_err;
}

}  // namespace

int open_listener(const std::string& host, uint16_t port, int backlog, std::string& error) {
  return bind_socket(host, port, true, backlog, error);
}

bool port_is_free(const std::string& host, uint16_t port, std::string& error) {
  // A plain bind (no SO_REUSEPORT) fails while any socket listens on the port.
  int fd = bind_socket(host, port, false, -1, error);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

std::string address_string(const sockaddr_storage& addr) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (addr.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(addr).sin_addr, buf, sizeof buf);
  } else if (addr.ss_family == AF_INET6) {
    const auto& a6 = reinterpret_cast<const sockaddr_in6&>(addr);
    if (IN6_IS_ADDR_V4MAPPED(&a6.sin6_addr)) {
      inet_ntop(AF_INET, &a6.sin6_addr.s6_addr[12], buf, sizeof buf);
    } else {
      inet_ntop(AF_INET6, &a6.sin6_addr, buf, sizeof buf);
    }
  }
  return buf;
}

bool pin_current_thread(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

}  // namespace ringcast::engine

// The server's TLS configuration (OpenSSL 3): certificate chain, key and optional client CA,
// shared by every worker. A reload swaps in a new SSL_CTX for handshakes that start afterwards;
// connections keep the context they were created with (each SSL holds a reference to it).
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

namespace ringcast::engine {

struct TlsFiles {
  std::string cert;  // PEM: leaf certificate first, then its chain
  std::string key;   // PEM private key
  std::string ca;    // PEM CA bundle; non-empty: clients must present a certificate it signed
  bool operator==(const TlsFiles&) const = default;
};

// Process-wide TLS counters, read by /health. Touched per handshake and close, never per message.
struct TlsCounters {
  std::atomic<int64_t> ktls{0};       // open sessions whose sending side is kernel TLS
  std::atomic<int64_t> userspace{0};  // open sessions encrypted in user space
  std::atomic<uint64_t> handshake_failures{0};
  std::atomic<bool> fallback_logged{false};  // the kTLS fallback is logged once per process
};

class TlsContext {
 public:
  TlsContext() = default;
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // Builds a context from `files`; on failure keeps the current one (if any), fills `error` with
  // OpenSSL's reason and returns false.
  bool load(const TlsFiles& files, std::string& error);
  // The current context with a reference taken (SSL_CTX_free it), or nullptr before load().
  SSL_CTX* acquire() const;
  // Moves on every successful load(): a worker re-acquires only when it changed.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  TlsCounters counters;

 private:
  mutable std::mutex mutex_;
  SSL_CTX* ctx_ = nullptr;
  std::atomic<uint64_t> generation_{0};
};

// Builds the SSL_CTX the server uses: TLS 1.2 and 1.3 only, ECDHE + AEAD suites for 1.2 (OpenSSL's
// defaults for 1.3), ALPN http/1.1, no session tickets or cache (nothing to rotate or leak), kTLS
// allowed. Exposed for tests.
SSL_CTX* make_server_ctx(const TlsFiles& files, std::string& error);

}  // namespace ringcast::engine

#include "ringcast/engine/tls_context.h"

#include <openssl/err.h>

#include <cstring>

namespace ringcast::engine {
namespace {

std::string openssl_error(const std::string& what) {
  std::string out = what;
  unsigned long e;
  char buf[256];
  bool first = true;
  while ((e = ERR_get_error()) != 0) {
    ERR_error_string_n(e, buf, sizeof buf);
    out += first ? ": " : "; ";
    out += buf;
    first = false;
  }
  return out;
}

// ALPN: this server speaks HTTP/1.1 (and WebSocket over it) only. A client that offers ALPN
// without http/1.1 would misread our bytes, so it is refused with the RFC 7301 alert; a client
// that offers no ALPN at all is served.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
  static const unsigned char kHttp11[] = {'h', 't', 't', 'p', '/', '1', '.', '1'};
  for (unsigned i = 0; i < inlen;) {
    unsigned len = in[i];
    if (i + 1 + len > inlen) break;
    if (len == sizeof kHttp11 && std::memcmp(in + i + 1, kHttp11, len) == 0) {
      *out = in + i + 1;
      *outlen = static_cast<unsigned char>(len);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

}  // namespace

SSL_CTX* make_server_ctx(const TlsFiles& files, std::string& error) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) {
    error = openssl_error("SSL_CTX_new failed");
    return nullptr;
  }
  auto fail = [&](const std::string& what) {
    error = openssl_error(what);
    SSL_CTX_free(ctx);
    return nullptr;
  };
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  // TLS 1.2: forward secrecy and AEAD only. TLS 1.3 suites are all AEAD (OpenSSL's defaults).
  if (SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL") != 1)
    return fail("tls: cipher list");
  // Tickets and the session cache are off: no ticket key to rotate, no per-session memory kept
  // after a connection ends, and (for kTLS) no post-handshake record OpenSSL would write itself.
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_ENABLE_KTLS);
  SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  // Idle connections give their record buffers back.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
  if (SSL_CTX_use_certificate_chain_file(ctx, files.cert.c_str()) != 1)
    return fail("tls.cert: cannot load '" + files.cert + "'");
  if (SSL_CTX_use_PrivateKey_file(ctx, files.key.c_str(), SSL_FILETYPE_PEM) != 1)
    return fail("tls.key: cannot load '" + files.key + "'");
  if (SSL_CTX_check_private_key(ctx) != 1)
    return fail("tls: the key in '" + files.key + "' does not match the certificate");
  if (!files.ca.empty()) {
    if (SSL_CTX_load_verify_file(ctx, files.ca.c_str()) != 1)
      return fail("tls.ca: cannot load '" + files.ca + "'");
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.ca.c_str());
    if (!names) return fail("tls.ca: no certificate in '" + files.ca + "'");
    SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  return ctx;
}

TlsContext::~TlsContext() {
  if (ctx_) SSL_CTX_free(ctx_);
}

bool TlsContext::load(const TlsFiles& files, std::string& error) {
  SSL_CTX* next = make_server_ctx(files, error);
  if (!next) return false;
  SSL_CTX* old;
  {
    std::lock_guard lock(mutex_);
    old = ctx_;
    ctx_ = next;
  }
  generation_.fetch_add(1, std::memory_order_release);
  if (old) SSL_CTX_free(old);  // sessions made from it hold their own reference
  return true;
}

SSL_CTX* TlsContext::acquire() const {
  std::lock_guard lock(mutex_);
  if (ctx_) SSL_CTX_up_ref(ctx_);
  return ctx_;
}

}  // namespace ringcast::engine

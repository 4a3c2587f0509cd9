// The TLS decorator between a worker and its backend, driven in-process: an OpenSSL client on
// memory BIOs talks to it through a fake backend. The kernel has no `tls` ULP here, so the
// kernel-TLS branches run with a fake setsockopt (the keys OpenSSL hands over are checked, not
// installed).
#include "ringcast/engine/tls_backend.h"

#include <gtest/gtest.h>
#include <linux/tls.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

using namespace ringcast::engine;

namespace {

// A self-signed P-256 certificate for "localhost", written to temporary PEM files.
// The paths name the process: CTest runs these tests in parallel, each in its own process.
struct TestCert {
  std::string cert_path = "/tmp/ringcast-tls-unit-" + std::to_string(getpid()) + "-cert.pem";
  std::string key_path = "/tmp/ringcast-tls-unit-" + std::to_string(getpid()) + "-key.pem";
  TestCert() {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_sign(x, key, EVP_sha256());
    FILE* f = std::fopen(cert_path.c_str(), "w");
    PEM_write_X509(f, x);
    std::fclose(f);
    f = std::fopen(key_path.c_str(), "w");
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
  }
  ~TestCert() {
    std::remove(cert_path.c_str());
    std::remove(key_path.c_str());
  }
};

class FakeBackend final : public Backend {
 public:
  explicit FakeBackend(BackendKind kind) : kind_(kind) {}
  BackendKind kind() const override { return kind_; }
  void add_listener(int, int) override {}
  void close_listeners() override {}
  void attach(Socket* s, int fd) override { s->fd = fd; }
  void pause_read(Socket*) override {}
  void resume_read(Socket*) override {}
  void send(Socket*, msghdr* msg) override {
    last_msg = msg;
    ++sends;
    for (size_t i = 0; i < msg->msg_iovlen; ++i)
      sent.append(static_cast<const char*>(msg->msg_iov[i].iov_base), msg->msg_iov[i].iov_len);
  }
  void close(Socket* s) override { s->closing = true; }
  void poll(int) override {}
  void wake() override {}

  BackendKind kind_;
  msghdr* last_msg = nullptr;
  int sends = 0;
  std::string sent;  // bytes of every send since the last take
};

struct Outer final : public BackendEvents {
  Backend* backend = nullptr;
  Socket sock;
  std::string data;
  std::vector<int> send_done;
  int read_end = 1;  // 1: not called
  void on_accept(int, int fd, const sockaddr_storage&) override { backend->attach(&sock, fd); }
  void on_data(Socket*, std::span<const uint8_t> d) override {
    data.append(reinterpret_cast<const char*>(d.data()), d.size());
  }
  void on_read_end(Socket*, int err) override { read_end = err; }
  void on_send_done(Socket*, int res) override { send_done.push_back(res); }
  void on_closed(Socket*) override {}
  void on_wake() override {}
};

std::vector<std::pair<int, int>> g_ktls_calls;  // (level, name) the fake setsockopt saw
int fake_setsockopt(int, int level, int name, const void* value, socklen_t len) {
  g_ktls_calls.emplace_back(level, name);
  if (level == SOL_TLS) {
    // What OpenSSL hands over must be a kernel crypto_info for TLS 1.2/1.3.
    auto* info = static_cast<const tls_crypto_info*>(value);
    EXPECT_TRUE(info->version == TLS_1_3_VERSION || info->version == TLS_1_2_VERSION);
    EXPECT_GE(len, sizeof(tls12_crypto_info_aes_gcm_128));
  }
  return 0;
}

class TlsBackendTest : public ::testing::Test {
 protected:
  void start(BackendKind kind) {
    std::string error;
    ASSERT_TRUE(context.load({cert.cert_path, cert.key_path, ""}, error)) << error;
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    backend = make_tls_backend(outer, context, {true}, [&](BackendEvents& ev) {
      events = &ev;
      auto f = std::make_unique<FakeBackend>(kind);
      fake = f.get();
      return f;
    });
    outer.backend = backend.get();
    sockaddr_storage peer{};
    events->on_accept(0, fds[0], peer);
    ASSERT_NE(outer.sock.tls, nullptr);
    client_ctx = SSL_CTX_new(TLS_client_method());
    client = SSL_new(client_ctx);
    SSL_set_bio(client, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_connect_state(client);
  }
  void TearDown() override {
    if (backend && !closed) {
      backend->close(&outer.sock);
      events->on_closed(&outer.sock);
    }
    if (client) SSL_free(client);
    if (client_ctx) SSL_CTX_free(client_ctx);
    if (fds[0] >= 0) ::close(fds[0]);
    if (fds[1] >= 0) ::close(fds[1]);
    set_ktls_setsockopt_for_testing(nullptr);
    g_ktls_calls.clear();
  }
  // Server output (through the fake backend, completed at once, or written straight to the
  // socket by the kTLS switch) goes to the client.
  void to_client() {
    if (!fake->sent.empty()) {
      BIO_write(SSL_get_rbio(client), fake->sent.data(), static_cast<int>(fake->sent.size()));
      int n = static_cast<int>(fake->sent.size());
      fake->sent.clear();
      events->on_send_done(&outer.sock, n);
    }
    char buf[65536];
    ssize_t n;
    while ((n = ::read(fds[1], buf, sizeof buf)) > 0) BIO_write(SSL_get_rbio(client), buf, n);
  }
  void to_server() {
    char* p = nullptr;
    long n = BIO_get_mem_data(SSL_get_wbio(client), &p);
    if (n <= 0) return;
    std::string bytes(p, static_cast<size_t>(n));
    (void)BIO_reset(SSL_get_wbio(client));
    events->on_data(&outer.sock, {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
  }
  void handshake() {
    for (int i = 0; i < 20 && SSL_do_handshake(client) != 1; ++i) {
      to_server();
      to_client();
    }
    ASSERT_EQ(SSL_is_init_finished(client), 1);
    to_server();
    to_client();
  }

  // After the handshake: the sending keys went to the (fake) kernel, never receiving keys; the
  // worker's iovecs pass through untouched; the client's records are still decrypted here.
  void expect_kernel_sends() {
    handshake();
    EXPECT_EQ(context.counters.ktls.load(), 1);
    EXPECT_EQ(context.counters.userspace.load(), 0);
    bool ulp = false, tx = false;
    for (auto [level, name] : g_ktls_calls) {
      ulp |= level == SOL_TCP && name == TCP_ULP;
      tx |= level == SOL_TLS && name == TLS_TX;
      EXPECT_FALSE(level == SOL_TLS && name == TLS_RX);
    }
    EXPECT_TRUE(ulp && tx);
    char a[] = "frame";
    iovec iov{a, 5};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    backend->send(&outer.sock, &msg);
    EXPECT_EQ(fake->last_msg, &msg);  // a shared frame stays shared
    fake->sent.clear();
    events->on_send_done(&outer.sock, 5);
    ASSERT_EQ(outer.send_done.size(), 1u);
    EXPECT_EQ(outer.send_done[0], 5);
    ASSERT_EQ(SSL_write(client, "ping", 4), 4);
    to_server();
    EXPECT_EQ(outer.data, "ping");
  }

  TestCert cert;
  TlsContext context;
  Outer outer;
  BackendEvents* events = nullptr;
  FakeBackend* fake = nullptr;
  std::unique_ptr<Backend> backend;
  SSL_CTX* client_ctx = nullptr;
  SSL* client = nullptr;
  int fds[2] = {-1, -1};
  bool closed = false;
};

TEST_F(TlsBackendTest, UserSpaceRecordsBothWays) {
  // The real setsockopt: no `tls` ULP on a unix socket.
  ASSERT_NO_FATAL_FAILURE(start(BackendKind::kEpoll));
  handshake();
  EXPECT_EQ(context.counters.userspace.load(), 1);
  EXPECT_EQ(context.counters.ktls.load(), 0);
  // Client -> worker: plaintext arrives.
  ASSERT_EQ(SSL_write(client, "GET / HTTP/1.1\r\n\r\n", 18), 18);
  to_server();
  EXPECT_EQ(outer.data, "GET / HTTP/1.1\r\n\r\n");
  // Worker -> client: small iovecs become one encrypted send, reported as the plaintext size.
  char a[] = "hello ", b[] = "world";
  iovec iov[2] = {{a, 6}, {b, 5}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  int sends = fake->sends;
  backend->send(&outer.sock, &msg);
  EXPECT_EQ(fake->sends, sends + 1);
  EXPECT_NE(fake->last_msg, &msg);  // ciphertext, not the worker's buffers
  to_client();
  ASSERT_EQ(outer.send_done.size(), 1u);
  EXPECT_EQ(outer.send_done[0], 11);
  char got[64];
  int n = SSL_read(client, got, sizeof got);
  ASSERT_EQ(n, 11);
  EXPECT_EQ(std::string(got, 11), "hello world");
  backend->close(&outer.sock);
  events->on_closed(&outer.sock);
  closed = true;
  EXPECT_EQ(context.counters.userspace.load(), 0);
}

TEST_F(TlsBackendTest, GarbageFailsTheHandshakeOnce) {
  ASSERT_NO_FATAL_FAILURE(start(BackendKind::kEpoll));
  const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  events->on_data(&outer.sock, {reinterpret_cast<const uint8_t*>(junk), sizeof junk - 1});
  to_client();  // an alert, if OpenSSL wrote one, is sent before the end is reported
  EXPECT_EQ(outer.read_end, -EPROTO);
  EXPECT_TRUE(outer.data.empty());
  EXPECT_EQ(context.counters.handshake_failures.load(), 1u);
  outer.read_end = 1;
  events->on_read_end(&outer.sock, 0);  // the backend's own end later: not reported twice
  EXPECT_EQ(outer.read_end, 1);
}

TEST_F(TlsBackendTest, KernelTlsSendsTls13) {
  set_ktls_setsockopt_for_testing(fake_setsockopt);
  ASSERT_NO_FATAL_FAILURE(start(BackendKind::kEpoll));
  expect_kernel_sends();
}

TEST_F(TlsBackendTest, KernelTlsSendsOnIoUring) {
  set_ktls_setsockopt_for_testing(fake_setsockopt);
  ASSERT_NO_FATAL_FAILURE(start(BackendKind::kIoUring));
  expect_kernel_sends();
}

TEST_F(TlsBackendTest, Tls12StaysInUserSpace) {
  set_ktls_setsockopt_for_testing(fake_setsockopt);
  ASSERT_NO_FATAL_FAILURE(start(BackendKind::kEpoll));
  SSL_set_max_proto_version(client, TLS1_2_VERSION);
  handshake();
  EXPECT_EQ(context.counters.ktls.load(), 0);
  EXPECT_EQ(context.counters.userspace.load(), 1);
  for (auto [level, name] : g_ktls_calls) EXPECT_NE(level, SOL_TLS);
  ASSERT_EQ(SSL_write(client, "ping", 4), 4);
  to_server();
  EXPECT_EQ(outer.data, "ping");
}

}  // namespace

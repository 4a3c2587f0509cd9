// TLS for a worker loop, as a Backend decorator: it sits between the worker and the real backend
// (io_uring or epoll), so the worker keeps sending and receiving plaintext and knows nothing of
// TLS. Connections accepted on a TLS listener get a TlsStream:
//  - The handshake is a non-blocking state machine driven by receive events: ciphertext from the
//    backend goes straight into OpenSSL through a BIO that reads the receive span in place, and
//    handshake output is sent through the backend like any other send. A slow or stuck client
//    costs a parse of what it sent; the worker's handshake_timeout_ms bounds how long it may take.
//  - Kernel TLS first: OpenSSL (SSL_OP_ENABLE_KTLS) hands the traffic keys to our BIO, which
//    installs them with the `tls` ULP. With the sending side in the kernel the worker's iovecs go
//    to the socket untouched, so a broadcast frame stays one shared buffer for every recipient.
//    Receiving stays in user space (see enable_ktls in tls_backend.cpp for why).
//  - Otherwise (no `tls` module, a cipher the kernel lacks, handshake bytes still in flight) the
//    session falls back to user-space TLS, logged once per process: each send batch the worker
//    hands over is encrypted into one buffer (records of up to 16 KiB, small frames coalesced)
//    and leaves in one send, as the plaintext would; received records are decrypted into a
//    per-loop buffer and passed up.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "ringcast/engine/backend.h"
#include "ringcast/engine/tls_context.h"

namespace ringcast::engine {

// `tls_listeners[id]`: whether connections from listener `id` speak TLS. make_inner builds the
// real backend around the events it is given (the decorator).
std::unique_ptr<Backend> make_tls_backend(
    BackendEvents& events, TlsContext& context, std::vector<bool> tls_listeners,
    const std::function<std::unique_ptr<Backend>(BackendEvents&)>& make_inner);

// Test seam: the setsockopt used to attach the `tls` ULP and install kTLS keys (nullptr restores
// the real one). Lets unit tests drive the kernel-TLS branches on a kernel without the module.
using KtlsSetsockopt = int (*)(int fd, int level, int name, const void* value, socklen_t len);
void set_ktls_setsockopt_for_testing(KtlsSetsockopt fn);

}  // namespace ringcast::engine

// Worker: choosing the backend, and putting TLS in front of it when a listener speaks TLS.
#include "ringcast/engine/log.h"
#include "ringcast/engine/tls_backend.h"
#include "ringcast/websocket/worker.h"

namespace ringcast::websocket {

std::unique_ptr<engine::Backend> Worker::make_backend(const engine::BackendOptions& options) {
  auto make_plain = [this, &options](engine::BackendEvents& events) {
    std::unique_ptr<engine::Backend> b;
    if (shared_.backend == engine::BackendKind::kIoUring) {
      std::string why;
      b = engine::make_io_uring_backend(events, options, why);
      if (!b) RC_WARN("worker %d: io_uring unavailable (%s), using epoll", index_, why.c_str());
    }
    if (!b) b = engine::make_epoll_backend(events, options);
    return b;
  };
  std::vector<bool> tls_listeners;
  bool any_tls = false;
  for (const auto& spec : shared_.listeners) {
    tls_listeners.push_back(spec.tls && shared_.tls);
    any_tls = any_tls || tls_listeners.back();
  }
  if (!any_tls) return make_plain(*this);
  return engine::make_tls_backend(*this, *shared_.tls, std::move(tls_listeners), make_plain);
}

}  // namespace ringcast::websocket

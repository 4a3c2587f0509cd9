#include "ringcast/websocket/router.h"

namespace ringcast::websocket {

void Router::add(std::string path, bool prefix, MessageHandler* handler) {
  auto r = std::make_unique<Route>();
  r->path = std::move(path);
  r->prefix = prefix;
  r->handler = handler;
  routes_.push_back(std::move(r));
}

Route* Router::match(std::string_view path) const {
  Route* best = nullptr;
  for (const auto& r : routes_) {
    if (!r->prefix) {
      if (r->path == path) return r.get();
    } else if (path.starts_with(r->path)) {  // the mount itself too: its handler refuses or not
      if (!best || r->path.size() > best->path.size()) best = r.get();
    }
  }
  return best;
}

}  // namespace ringcast::websocket

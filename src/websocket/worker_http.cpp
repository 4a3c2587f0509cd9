// The worker's HTTP side: request heads on a connection that has not upgraded, the answers of
// the HTTP service (CORS, keep-alive), and the WebSocket upgrade itself. Split from worker.cpp,
// which keeps the loop, sending, timers and WebSocket frames.
#include "ringcast/websocket/handshake.h"
#include "ringcast/websocket/worker.h"

namespace ringcast::websocket {

namespace {

// peer_ip_ holds IPv4 as v4-mapped IPv6: 127.0.0.0/8 or ::1.
bool is_loopback(const std::array<uint8_t, 16>& ip) {
  bool zero10 = true;
  for (int i = 0; i < 10; ++i) zero10 &= ip[i] == 0;
  if (!zero10) return false;
  if (ip[10] == 0xff && ip[11] == 0xff) return ip[12] == 127;
  bool v6_one = ip[10] == 0 && ip[11] == 0 && ip[12] == 0 && ip[13] == 0 && ip[14] == 0;
  return v6_one && ip[15] == 1;
}

}  // namespace

void Worker::handle_http(Session& s, std::span<const uint8_t> data) {
  const Limits& lim = settings_->limits;
  if (!s.http_buf_) s.http_buf_ = take_buffer();
  std::string& buf = *s.http_buf_;
  buf.append(reinterpret_cast<const char*>(data.data()), data.size());
  size_t consumed = 0;
  HttpRequest req;
  while (s.state_ == Session::State::kHttp && !s.close_after_flush_) {
    std::string_view view(buf.data() + consumed, buf.size() - consumed);
    if (view.empty()) break;
    ParseStatus st = parse_http_request(view, lim.max_header_bytes, req);
    if (st == ParseStatus::kIncomplete) break;
    if (st == ParseStatus::kBad || st == ParseStatus::kTooLarge) {
      HttpResponse r =
          json_error(st == ParseStatus::kBad ? 400 : 431,
                     st == ParseStatus::kBad ? "bad request" : "request head too large");
      r.keep_alive = false;
      queue_response(s, r);
      consumed = buf.size();
      break;
    }
    consumed += req.head_length;
    if (!serve_request(s, req)) {
      // Upgraded: the rest of the buffer is WebSocket data.
      std::string rest = buf.substr(consumed);
      give_buffer(s.http_buf_);
      if (!rest.empty() && s.state_ == Session::State::kOpen) {
        handle_ws(s, {reinterpret_cast<const uint8_t*>(rest.data()), rest.size()});
      }
      return;
    }
  }
  if (!s.http_buf_) return;
  buf.erase(0, consumed);
  if (buf.empty()) give_buffer(s.http_buf_);
}

void Worker::queue_response(Session& s, const HttpResponse& resp) {
  engine::SharedFrame* f = resp.encode();
  send_frame(s, f);
  f->release();
  if (!resp.keep_alive) s.close_after_flush_ = true;
}

bool Worker::serve_request(Session& s, const HttpRequest& req) {
  const ServerSettings& cfg = *settings_;
  auto origin = req.header("Origin");
  bool origin_ok = cfg.origins.allows(origin);
  bool has_body = req.header("Transfer-Encoding").has_value() ||
                  (req.header("Content-Length") && *req.header("Content-Length") != "0");

  if (s.websocket_port_ && wants_upgrade(req)) {
    Route* route = shared_.router->match(req.path);
    int refuse = check_upgrade(req);
    HttpResponse r;
    if (refuse) {
      r = json_error(refuse,
                     refuse == 426 ? "unsupported websocket version" : "bad upgrade request");
      if (refuse == 426) r.add_header("Sec-WebSocket-Version", "13");
    } else if (!route) {
      r = json_error(404, "no websocket endpoint at this path");
    } else if (!origin_ok) {
      r = json_error(403, "origin not allowed");
    } else if (stopping_) {
      r = json_error(503, "server shutting down");
    } else if (!shared_.stats->admit(s.peer_ip_, cfg.limits.max_connections,
                                     cfg.limits.max_connections_per_ip)) {
      r = json_error(503, "too many connections");
    } else {
      s.counted_ws_ = true;
      start_websocket(s, req, route);
      return false;
    }
    stats_.metrics.refuse(r.status, stopping_);
    r.keep_alive = false;
    queue_response(s, r);
    return true;
  }

  HttpResponse r;
  if (req.method == "OPTIONS") {
    if (!origin_ok) {
      r = json_error(403, "origin not allowed");
    } else {
      r.status = 204;
      if (origin) {
        r.add_header("Access-Control-Allow-Origin", std::string(*origin));
        r.add_header("Vary", "Origin");
      }
      r.add_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS");
      auto asked = req.header("Access-Control-Request-Headers");
      r.add_header("Access-Control-Allow-Headers", asked ? std::string(*asked) : "Content-Type");
      r.add_header("Access-Control-Max-Age", "86400");
    }
  } else if (req.method != "GET" && req.method != "HEAD") {
    r = json_error(405, "method not allowed");
    r.add_header("Allow", "GET, HEAD, OPTIONS");
  } else {
    HttpContext ctx;
    ctx.websocket_port = s.websocket_port_;
    ctx.loopback_peer = is_loopback(s.peer_ip_);
    r = shared_.http->handle(req, ctx);
    r.head_only = req.method == "HEAD";
    bool has_acao = false;
    for (const auto& h : r.headers) has_acao |= iequals(h.first, "Access-Control-Allow-Origin");
    if (origin && origin_ok && !has_acao) {
      r.add_header("Access-Control-Allow-Origin", std::string(*origin));
      r.add_header("Vary", "Origin");
    }
  }
  r.keep_alive = req.keep_alive() && !has_body && !stopping_;
  queue_response(s, r);
  // Keep-alive: the next request must come within the idle timeout.
  schedule(s, now_ms_ + settings_->limits.idle_timeout_ms);
  return true;
}

void Worker::start_websocket(Session& s, const HttpRequest& req, Route* route) {
  HttpResponse r;
  r.status = 101;
  r.add_header("Upgrade", "websocket");
  r.add_header("Connection", "Upgrade");
  r.add_header("Sec-WebSocket-Accept", websocket_accept(*req.header("Sec-WebSocket-Key")));
  queue_response(s, r);
  s.state_ = Session::State::kOpen;
  s.route_ = route;
  route->connections.fetch_add(1, std::memory_order_relaxed);
  stats_.websockets.fetch_add(1, std::memory_order_relaxed);
  s.last_rx_ms_ = now_ms_;
  if (settings_->limits.ping_interval_ms > 0)
    schedule(s, now_ms_ + settings_->limits.ping_interval_ms);
  else
    timers_.cancel(&s.timer_);
  route->handler->on_open(s, req);
}

}  // namespace ringcast::websocket

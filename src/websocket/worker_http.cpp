// The worker's HTTP side: request heads on a connection that has not upgraded, the answers of
// the HTTP service (CORS, keep-alive), and the WebSocket upgrade itself. Split from worker.cpp,
// which keeps the loop, sending, timers and WebSocket frames.
#include <optional>

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

// Content-Length as RFC 9110 has it: digits only; nullopt if malformed or absurd.
std::optional<size_t> content_length(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  if (v.empty() || v.size() > 15) return std::nullopt;
  size_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<size_t>(c - '0');
  }
  return n;
}

}  // namespace

void Worker::handle_http(Session& s, std::span<const uint8_t> data) {
  const Limits& lim = settings_->limits;
  if (!s.http_buf_) s.http_buf_ = take_buffer();
  std::string& buf = *s.http_buf_;
  buf.append(reinterpret_cast<const char*>(data.data()), data.size());
  if (s.http_waiting_ && !s.http_read_paused_ &&
      buf.size() > lim.max_header_bytes + settings_->max_body_bytes) {
    // Pipelined requests pile up behind a pending answer: read no more until it is sent. (Below
    // this, reading goes on: pausing and resuming per request costs syscalls on both backends.)
    s.http_read_paused_ = true;
    backend_->pause_read(&s);
  }
  size_t consumed = 0;
  HttpRequest req;
  auto refuse = [&](int status, std::string_view why) {
    HttpResponse r = json_error(status, why);
    r.keep_alive = false;
    queue_response(s, r);
    consumed = buf.size();
  };
  // One request at a time: while a deferred answer is pending, what follows waits in the buffer
  // (reads are paused, so it holds at most what had already arrived).
  while (s.state_ == Session::State::kHttp && !s.close_after_flush_ && !s.http_waiting_) {
    std::string_view view(buf.data() + consumed, buf.size() - consumed);
    if (view.empty()) break;
    ParseStatus st = parse_http_request(view, lim.max_header_bytes, req);
    if (st == ParseStatus::kIncomplete) break;
    if (st == ParseStatus::kBad || st == ParseStatus::kTooLarge) {
      refuse(st == ParseStatus::kBad ? 400 : 431,
             st == ParseStatus::kBad ? "bad request" : "request head too large");
      break;
    }
    // The body: Content-Length only (a chunked body would need a decoder no client of this API
    // needs); bounded by [api] max_body_bytes, so a request never holds more than head + body.
    size_t body_len = 0;
    if (req.header("Transfer-Encoding")) {
      refuse(411, "send the request body with Content-Length (chunked bodies are not accepted)");
      break;
    }
    if (auto cl = req.header("Content-Length")) {
      auto n = content_length(*cl);
      if (!n || req.header_count_of("Content-Length") > 1) {
        refuse(400, "bad Content-Length");
        break;
      }
      if (*n > settings_->max_body_bytes) {
        refuse(413, "request body too large");
        break;
      }
      body_len = *n;
    }
    if (view.size() - req.head_length < body_len) break;  // the rest of the body is on its way
    std::string_view body = view.substr(req.head_length, body_len);
    consumed += req.head_length + body_len;
    if (!serve_request(s, req, body)) {
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

bool Worker::serve_request(Session& s, const HttpRequest& req, std::string_view body) {
  const ServerSettings& cfg = *settings_;
  auto origin = req.header("Origin");
  bool origin_ok = cfg.origins.allows(origin);

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
      // As the seeds answered. The server API is for backends (its key must not live in a
      // browser), so preflights do not advertise POST.
      r.add_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS");
      auto asked = req.header("Access-Control-Request-Headers");
      r.add_header("Access-Control-Allow-Headers", asked ? std::string(*asked) : "Content-Type");
      r.add_header("Access-Control-Max-Age", "86400");
    }
  } else if (req.method != "GET" && req.method != "HEAD" && req.method != "POST") {
    r = json_error(405, "method not allowed");
    r.add_header("Allow", "GET, HEAD, POST, OPTIONS");
  } else {
    HttpContext ctx;
    ctx.websocket_port = s.websocket_port_;
    ctx.loopback_peer = is_loopback(s.peer_ip_);
    ctx.worker = index_;
    ctx.session = s.id_;
    ctx.body = body;
    r = shared_.http->handle(req, ctx);
    if (r.deferred) {
      // The service answers through complete_http. Deferred answers are for the server API's
      // backends, not browsers: they carry no CORS headers.
      s.http_waiting_ = true;
      s.http_keep_alive_ = req.keep_alive();
      s.http_head_ = req.method == "HEAD";
      schedule(s, now_ms_ + settings_->limits.idle_timeout_ms);
      return true;
    }
    r.head_only = req.method == "HEAD";
    bool has_acao = false;
    for (const auto& h : r.headers) has_acao |= iequals(h.first, "Access-Control-Allow-Origin");
    if (origin && origin_ok && !has_acao) {
      r.add_header("Access-Control-Allow-Origin", std::string(*origin));
      r.add_header("Vary", "Origin");
    }
  }
  r.keep_alive = req.keep_alive() && !stopping_;
  queue_response(s, r);
  // Keep-alive: the next request must come within the idle timeout.
  schedule(s, now_ms_ + settings_->limits.idle_timeout_ms);
  return true;
}

void Worker::complete_http(uint64_t session, const HttpResponse& resp) {
  Session* s = find_session(session);
  if (!s || s->state_ != Session::State::kHttp || !s->http_waiting_) return;
  HttpResponse r = resp;
  r.deferred = false;
  r.keep_alive = r.keep_alive && s->http_keep_alive_ && !stopping_;
  r.head_only = s->http_head_;
  queue_response(*s, r);
  s->http_waiting_ = false;
  if (s->close_after_flush_) return;
  schedule(*s, now_ms_ + settings_->limits.idle_timeout_ms);
  if (s->http_read_paused_) {
    s->http_read_paused_ = false;
    backend_->resume_read(s);
  }
  if (s->http_buf_) handle_http(*s, {});  // pipelined requests that waited
}

void Worker::start_websocket(Session& s, const HttpRequest& req, Route* route) {
  HttpResponse r;
  r.status = 101;
  r.add_header("Upgrade", "websocket");
  r.add_header("Connection", "Upgrade");
  r.add_header("Sec-WebSocket-Accept", websocket_accept(*req.header("Sec-WebSocket-Key")));
  s.deflate_bits_ = 0;
  if (settings_->compression.enabled) {
    if (auto agreed = negotiate_deflate(req)) {
      r.add_header("Sec-WebSocket-Extensions", std::move(agreed->response));
      s.deflate_bits_ = agreed->server_window_bits;
    }
  }
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

#include "ringcast/websocket/http_response.h"

#include <cstring>

namespace ringcast::websocket {

std::string_view status_text(int status) {
  switch (status) {
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 426:
      return "Upgrade Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

engine::SharedFrame* HttpResponse::encode() const {
  std::string out;
  out.reserve(256 + body.size());
  out += "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  out += status_text(status);
  out += "\r\nServer: ringcast\r\n";
  if (status != 101) {
    if (status != 204) {
      out += "Content-Type: " + content_type + "\r\n";
      out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    }
    out += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  }
  for (const auto& [name, value] : headers) {
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  out += "\r\n";
  if (!head_only && status != 204) out += body;
  engine::SharedFrame* f = engine::SharedFrame::allocate(out.size());
  std::memcpy(f->data(), out.data(), out.size());
  f->set_size(out.size());
  return f;
}

HttpResponse json_error(int status, std::string_view message) {
  HttpResponse r;
  r.status = status;
  r.body = "{\"error\":\"";
  // Messages are ASCII text, but some quote names: escape what JSON requires.
  for (char c : message) {
    if (c == '"' || c == '\\') {
      r.body += '\\';
      r.body += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      r.body += ' ';
    } else {
      r.body += c;
    }
  }
  r.body += "\"}";
  return r;
}

}  // namespace ringcast::websocket

#include "load/http_proto.h"

#include <charconv>

namespace ringcast::load {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// True if the comma-separated header value holds `token` (case-insensitive).
bool has_token(std::string_view v, std::string_view token) {
  while (!v.empty()) {
    size_t comma = v.find(',');
    if (iequals(trim(v.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

HttpParse parse_http_response(std::string_view data, HttpResponseView& out, std::string& error) {
  size_t end = data.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (data.size() > kMaxHttpHead) {
      error = "HTTP response head over " + std::to_string(kMaxHttpHead) + " bytes";
      return HttpParse::kFailed;
    }
    return HttpParse::kIncomplete;
  }
  std::string_view head = data.substr(0, end);
  size_t eol = head.find("\r\n");
  std::string_view status_line = head.substr(0, eol);
  // "HTTP/1.1 200 OK"
  if (!status_line.starts_with("HTTP/1.") || status_line.size() < 12 || status_line[8] != ' ') {
    error = "bad HTTP status line '" + std::string(status_line.substr(0, 80)) + "'";
    return HttpParse::kFailed;
  }
  int status = 0;
  auto [p, ec] = std::from_chars(status_line.data() + 9, status_line.data() + 12, status);
  if (ec != std::errc() || p != status_line.data() + 12 || status < 100 || status > 599 ||
      (status_line.size() > 12 && status_line[12] != ' ')) {
    error = "bad HTTP status line '" + std::string(status_line.substr(0, 80)) + "'";
    return HttpParse::kFailed;
  }
  bool http10 = status_line[7] == '0';
  bool have_length = false, close = http10, keep_alive = false;
  uint64_t length = 0;
  std::string_view rest = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);
  while (!rest.empty()) {
    size_t e = rest.find("\r\n");
    std::string_view line = rest.substr(0, e);
    rest = e == std::string_view::npos ? std::string_view() : rest.substr(e + 2);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      error = "bad HTTP header line '" + std::string(line.substr(0, 80)) + "'";
      return HttpParse::kFailed;
    }
    std::string_view name = line.substr(0, colon), value = trim(line.substr(colon + 1));
    if (iequals(name, "Content-Length")) {
      uint64_t n = 0;
      auto [q, ec2] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (value.empty() || ec2 != std::errc() || q != value.data() + value.size() ||
          (have_length && n != length)) {
        error = "bad Content-Length '" + std::string(value.substr(0, 40)) + "'";
        return HttpParse::kFailed;
      }
      have_length = true;
      length = n;
    } else if (iequals(name, "Transfer-Encoding")) {
      error = "Transfer-Encoding '" + std::string(value.substr(0, 40)) + "' is not supported";
      return HttpParse::kFailed;
    } else if (iequals(name, "Connection")) {
      if (has_token(value, "close")) close = true;
      if (has_token(value, "keep-alive")) keep_alive = true;
    }
  }
  if (http10 && keep_alive) close = false;
  bool bodyless = status < 200 || status == 204 || status == 304;
  if (bodyless) {
    length = 0;
  } else if (!have_length) {
    // A body delimited by the end of the connection cannot be told from the next response.
    error = "HTTP " + std::to_string(status) + " response without Content-Length";
    return HttpParse::kFailed;
  }
  if (length > kMaxHttpBody) {
    error = "HTTP response body of " + std::to_string(length) + " bytes";
    return HttpParse::kFailed;
  }
  size_t total = end + 4 + static_cast<size_t>(length);
  if (data.size() < total) return HttpParse::kIncomplete;
  out.status = status;
  out.close = close;
  out.body = data.substr(end + 4, static_cast<size_t>(length));
  out.consumed = total;
  return HttpParse::kOk;
}

std::string http_post_prefix(std::string_view host, std::string_view target,
                             std::string_view authorization) {
  std::string s = "POST ";
  s += target;
  s += " HTTP/1.1\r\nHost: ";
  s += host;
  s += "\r\nAuthorization: ";
  s += authorization;
  s += "\r\nContent-Type: application/json\r\nContent-Length: ";
  return s;
}

}  // namespace ringcast::load

#include "ringcast/websocket/http_request.h"

namespace ringcast::websocket {
namespace {

bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

std::optional<std::string_view> HttpRequest::header(std::string_view name) const {
  for (size_t i = 0; i < header_count; ++i)
    if (iequals(headers[i].name, name)) return headers[i].value;
  return std::nullopt;
}

size_t HttpRequest::header_count_of(std::string_view name) const {
  size_t n = 0;
  for (size_t i = 0; i < header_count; ++i) n += iequals(headers[i].name, name);
  return n;
}

bool HttpRequest::header_has_token(std::string_view name, std::string_view token) const {
  for (size_t i = 0; i < header_count; ++i) {
    if (!iequals(headers[i].name, name)) continue;
    std::string_view v = headers[i].value;
    while (!v.empty()) {
      size_t comma = v.find(',');
      std::string_view item = trim(v.substr(0, comma));
      if (iequals(item, token)) return true;
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  return false;
}

bool HttpRequest::keep_alive() const {
  if (header_has_token("Connection", "close")) return false;
  if (version_minor == 0) return header_has_token("Connection", "keep-alive");
  return true;
}

ParseStatus parse_http_request(std::string_view buf, size_t max_head_bytes, HttpRequest& out) {
  // Find the end of the head first so a partial request costs one scan, not a failed parse.
  size_t end = buf.find("\r\n\r\n");
  size_t head_len;
  if (end == std::string_view::npos) {
    size_t lf = buf.find("\n\n");  // tolerate bare LF line endings
    if (lf == std::string_view::npos) {
      return buf.size() >= max_head_bytes ? ParseStatus::kTooLarge : ParseStatus::kIncomplete;
    }
    head_len = lf + 2;
  } else {
    size_t lf = buf.substr(0, end).find("\n\n");
    head_len = lf != std::string_view::npos ? lf + 2 : end + 4;
  }
  if (head_len > max_head_bytes) return ParseStatus::kTooLarge;

  std::string_view head = buf.substr(0, head_len);
  auto next_line = [&head]() -> std::optional<std::string_view> {
    size_t nl = head.find('\n');
    if (nl == std::string_view::npos) return std::nullopt;
    std::string_view line = head.substr(0, nl);
    head.remove_prefix(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
  };

  auto first = next_line();
  if (!first || first->empty()) return ParseStatus::kBad;
  std::string_view line = *first;
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return ParseStatus::kBad;
  out.method = line.substr(0, sp1);
  for (char c : out.method)
    if (!is_tchar(c)) return ParseStatus::kBad;
  std::string_view rest = line.substr(sp1 + 1);
  size_t sp2 = rest.find(' ');
  if (sp2 == std::string_view::npos || sp2 == 0) return ParseStatus::kBad;
  out.target = rest.substr(0, sp2);
  std::string_view version = rest.substr(sp2 + 1);
  if (version == "HTTP/1.1") {
    out.version_minor = 1;
  } else if (version == "HTTP/1.0") {
    out.version_minor = 0;
  } else {
    return ParseStatus::kBad;
  }
  for (char c : out.target)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return ParseStatus::kBad;
  if (out.target.front() != '/' && out.target != "*") {
    // Absolute form ("http://host/path"): keep only the path.
    size_t scheme = out.target.find("://");
    if (scheme == std::string_view::npos) return ParseStatus::kBad;
    size_t slash = out.target.find('/', scheme + 3);
    out.target = slash == std::string_view::npos ? std::string_view("/") : out.target.substr(slash);
  }
  size_t q = out.target.find('?');
  out.path = out.target.substr(0, q);
  out.query = q == std::string_view::npos ? std::string_view() : out.target.substr(q + 1);

  out.header_count = 0;
  while (true) {
    auto l = next_line();
    if (!l) return ParseStatus::kBad;
    if (l->empty()) break;
    if (l->front() == ' ' || l->front() == '\t') return ParseStatus::kBad;  // obsolete folding
    size_t colon = l->find(':');
    if (colon == std::string_view::npos || colon == 0) return ParseStatus::kBad;
    std::string_view name = l->substr(0, colon);
    for (char c : name)
      if (!is_tchar(c)) return ParseStatus::kBad;
    std::string_view value = trim(l->substr(colon + 1));
    for (char c : value)
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f)
        return ParseStatus::kBad;
    if (out.header_count == HttpRequest::kMaxHeaders) return ParseStatus::kTooLarge;
    out.headers[out.header_count++] = {name, value};
  }
  // Two Host headers may name two different targets (a request-smuggling tool); HTTP/1.1
  // requires exactly one.
  const size_t hosts = out.header_count_of("Host");
  if (hosts > 1 || (hosts == 0 && out.version_minor >= 1)) return ParseStatus::kBad;
  out.head_length = head_len;
  return ParseStatus::kComplete;
}

std::optional<std::string_view> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    size_t eq = item.find('=');
    std::string_view key = item.substr(0, eq);
    if (key == name) return eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1);
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

}  // namespace ringcast::websocket

#include "ringcast/websocket/permessage_deflate.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "ringcast/websocket/frame_encoder.h"

namespace ringcast::websocket {

namespace {

std::string_view trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// Splits on `sep` outside double quotes.
std::vector<std::string_view> split(std::string_view v, char sep) {
  std::vector<std::string_view> out;
  bool quoted = false;
  size_t start = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '"') quoted = !quoted;
    if (v[i] == sep && !quoted) {
      out.push_back(trim(v.substr(start, i - start)));
      start = i + 1;
    }
  }
  out.push_back(trim(v.substr(start)));
  return out;
}

// A window-bits value: 8..15, plain or quoted (RFC 7692 §7.1.2 allows a quoted-string).
std::optional<int> window_bits(std::string_view v) {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  if (v.size() == 1 && v[0] >= '8' && v[0] <= '9') return v[0] - '0';
  if (v.size() == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5') return 10 + (v[1] - '0');
  return std::nullopt;
}

std::optional<DeflateAgreement> accept_offer(const std::vector<std::string_view>& parts) {
  bool seen_snct = false, seen_cnct = false, seen_smwb = false, seen_cmwb = false;
  int server_bits = 15;
  for (size_t i = 1; i < parts.size(); ++i) {
    std::string_view p = parts[i];
    size_t eq = p.find('=');
    std::string_view name = trim(p.substr(0, eq));
    std::optional<std::string_view> value;
    if (eq != std::string_view::npos) value = trim(p.substr(eq + 1));
    if (name == "server_no_context_takeover") {
      if (seen_snct || value) return std::nullopt;
      seen_snct = true;
    } else if (name == "client_no_context_takeover") {
      if (seen_cnct || value) return std::nullopt;
      seen_cnct = true;
    } else if (name == "server_max_window_bits") {
      if (seen_smwb || !value) return std::nullopt;
      auto bits = window_bits(*value);
      if (!bits) return std::nullopt;
      seen_smwb = true;
      server_bits = *bits;
    } else if (name == "client_max_window_bits") {
      if (seen_cmwb || (value && !window_bits(*value))) return std::nullopt;
      seen_cmwb = true;  // our inflater takes any window up to 15
    } else {
      return std::nullopt;
    }
  }
  if (server_bits < 9) return std::nullopt;  // raw deflate with a 256-byte window: zlib cannot
  DeflateAgreement a;
  a.server_window_bits = static_cast<uint8_t>(server_bits);
  // No context takeover either way (the server may ask it of the client, §7.1.1.2): nothing is
  // kept per connection between messages.
  a.response = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
  if (seen_smwb) a.response += "; server_max_window_bits=" + std::to_string(server_bits);
  return a;
}

}  // namespace

std::optional<DeflateAgreement> negotiate_deflate(const HttpRequest& req) {
  for (size_t h = 0; h < req.header_count; ++h) {
    if (!iequals(req.headers[h].name, "Sec-WebSocket-Extensions")) continue;
    for (std::string_view offer : split(req.headers[h].value, ',')) {
      auto parts = split(offer, ';');
      if (parts.empty() || parts[0] != "permessage-deflate") continue;
      if (auto a = accept_offer(parts)) return a;
    }
  }
  return std::nullopt;
}

// ---- compressing --------------------------------------------------------------------------------

MessageDeflater::~MessageDeflater() {
  for (z_stream* z : streams_) {
    if (!z) continue;
    deflateEnd(z);
    delete z;
  }
}

z_stream* MessageDeflater::stream(int window_bits) {
  z_stream*& z = streams_[window_bits - 8];
  if (!z) {
    z = new z_stream{};
    if (deflateInit2(z, level_, Z_DEFLATED, -window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      delete z;
      z = nullptr;
      throw std::bad_alloc();
    }
  } else {
    deflateReset(z);
  }
  return z;
}

engine::SharedFrame* MessageDeflater::compress(uint8_t opcode, std::span<const uint8_t> payload,
                                               int window_bits) {
  z_stream* z = stream(window_bits);
  // deflateBound covers the data; a sync flush adds an empty stored block (5 bytes) at most.
  size_t bound = deflateBound(z, payload.size()) + 16;
  if (scratch_.size() < bound) scratch_.resize(bound);
  z->next_in = const_cast<Bytef*>(payload.data());
  z->avail_in = static_cast<uInt>(payload.size());
  z->next_out = scratch_.data();
  z->avail_out = static_cast<uInt>(scratch_.size());
  if (deflate(z, Z_SYNC_FLUSH) != Z_OK || z->avail_in != 0 || z->avail_out == 0) return nullptr;
  size_t n = scratch_.size() - z->avail_out;
  // RFC 7692 §7.2.1: drop the 00 00 ff ff the sync flush ends with.
  if (n < 4 || std::memcmp(scratch_.data() + n - 4, "\x00\x00\xff\xff", 4) != 0) return nullptr;
  n -= 4;
  if (n == 0) {
    scratch_[0] = 0;  // an empty message compresses to one empty block (§7.2.3.6)
    n = 1;
  }
  if (n >= payload.size()) return nullptr;  // not worth it: send it as it is
  size_t head = frame_header_size(n);
  engine::SharedFrame* f = engine::SharedFrame::allocate(head + n);
  uint8_t* p = f->data();
  p[0] = static_cast<uint8_t>(0x80 | 0x40 | opcode);  // FIN, RSV1 (compressed), opcode
  if (n < 126) {
    p[1] = static_cast<uint8_t>(n);
  } else if (n <= 0xffff) {
    p[1] = 126;
    p[2] = static_cast<uint8_t>(n >> 8);
    p[3] = static_cast<uint8_t>(n);
  } else {
    p[1] = 127;
    for (int i = 0; i < 8; ++i) p[2 + i] = static_cast<uint8_t>(uint64_t{n} >> (56 - 8 * i));
  }
  std::memcpy(p + head, scratch_.data(), n);
  f->set_size(head + n);
  return f;
}

// ---- inflating ----------------------------------------------------------------------------------

MessageInflater::MessageInflater() {
  if (inflateInit2(&zs_, -15) != Z_OK) throw std::bad_alloc();
}

MessageInflater::~MessageInflater() {
  inflateEnd(&zs_);
}

void MessageInflater::reset() {
  inflateReset(&zs_);
  ended_ = false;
}

MessageInflater::Result MessageInflater::feed(std::span<const uint8_t> in, std::string& out,
                                              size_t max) {
  if (ended_) return Result::kOk;
  zs_.next_in = const_cast<Bytef*>(in.data());
  zs_.avail_in = static_cast<uInt>(in.size());
  for (;;) {
    // Room for one more byte than allowed: producing it proves the message is too big, and the
    // buffer never grows past max + 1 whatever the input claims to expand to.
    size_t old = out.size();
    if (old > max) return Result::kTooBig;
    size_t room = std::min<size_t>(16384, max + 1 - old);
    out.resize(old + room);
    zs_.next_out = reinterpret_cast<Bytef*>(out.data() + old);
    zs_.avail_out = static_cast<uInt>(room);
    int rc = inflate(&zs_, Z_SYNC_FLUSH);
    out.resize(old + room - zs_.avail_out);
    if (out.size() > max) return Result::kTooBig;
    if (rc == Z_STREAM_END) {
      ended_ = true;
      return Result::kOk;
    }
    if (rc == Z_BUF_ERROR) return Result::kOk;  // no progress without more input
    if (rc != Z_OK) return Result::kBad;
    if (zs_.avail_in == 0 && zs_.avail_out != 0) return Result::kOk;  // all in, all out
  }
}

MessageInflater::Result MessageInflater::finish(std::string& out, size_t max) {
  static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};
  Result r = feed(tail, out, max);
  reset();
  return r;
}

}  // namespace ringcast::websocket

// Writing a JSON event straight into a text frame: a per-thread buffer (no allocation once warm)
// and rapidjson's writer, then one copy into a pooled SharedFrame.
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>
#include <string_view>

#include "ringcast/engine/shared_frame.h"
#include "ringcast/websocket/frame_encoder.h"

namespace ringcast::profiles {

// A parsed value written back as JSON text (control paths: an owned string).
inline std::string to_json(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

// The same into a per-thread buffer, for the message path: valid until the next call.
inline std::string_view to_json_scratch(const rapidjson::Value& v) {
  thread_local rapidjson::StringBuffer buf;
  buf.Clear();
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return {buf.GetString(), buf.GetSize()};
}

class JsonFrame {
 public:
  using Writer = rapidjson::Writer<rapidjson::StringBuffer>;
  JsonFrame() : buf_(scratch()), w_(buf_) { buf_.Clear(); }
  Writer& w() { return w_; }
  void key(std::string_view k) { w_.Key(k.data(), static_cast<rapidjson::SizeType>(k.size())); }
  void str(std::string_view v) { w_.String(v.data(), static_cast<rapidjson::SizeType>(v.size())); }
  void kv(std::string_view k, std::string_view v) {
    key(k);
    str(v);
  }
  // Inserts already-serialised JSON as a value.
  void raw(std::string_view json) { w_.RawValue(json.data(), json.size(), rapidjson::kObjectType); }
  std::string_view text() const { return {buf_.GetString(), buf_.GetSize()}; }
  // A new frame (one reference) holding the text as one WebSocket text message.
  engine::SharedFrame* frame() const {
    return websocket::encode_frame(websocket::Opcode::kText, text());
  }

 private:
  static rapidjson::StringBuffer& scratch() {
    // Nested use on one thread is not supported; events are built one at a time.
    thread_local rapidjson::StringBuffer buf;
    return buf;
  }
  rapidjson::StringBuffer& buf_;
  Writer w_;
};

}  // namespace ringcast::profiles

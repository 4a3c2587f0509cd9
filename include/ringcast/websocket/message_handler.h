// What a path of the WebSocket port does with its sessions: the interface every profile implements.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "ringcast/websocket/http_request.h"
#include "ringcast/websocket/opcode.h"

namespace ringcast::websocket {

class Session;

class MessageHandler {
 public:
  virtual ~MessageHandler() = default;
  // Called on the session's worker thread right after the 101 response is queued.
  virtual void on_open(Session& s, const HttpRequest& req) = 0;
  // One complete message. The payload may be modified in place (in-situ parsing) and is only valid
  // during the call.
  virtual void on_message(Session& s, Opcode op, std::span<uint8_t> payload) = 0;
  // Pipelining under input holds: while the session's earlier durable writes to one place are
  // pending (Worker::hold_ordered with a key), a message for which this returns that same key is
  // ordered behind them anyway (it only writes there too), so it may be handled at once instead of
  // waiting; replies it sends this session directly are held back until the earlier writes are in
  // effect. Must not modify the payload. nullptr (the default): the message waits.
  virtual const void* order_key(Session&, Opcode, std::span<const uint8_t>) { return nullptr; }
  // The session is gone (close handshake done, error, or peer vanished). No sends after this.
  virtual void on_close(Session& s) = 0;
  // Graceful stop: called for each open session just before it is closed with 1001, so a profile
  // can say goodbye in its own shape (the chatroom seed does). Sends queued here go out first.
  virtual void on_shutdown(Session&) {}
  // The user this session is logged in as (empty: none), for the server API's disconnect.
  virtual std::string_view user_id(const Session&) const { return {}; }
};

}  // namespace ringcast::websocket

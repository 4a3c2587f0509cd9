// RFC 6455 close status codes used by the server, and which codes a peer may send.
#pragma once

#include <cstdint>

namespace ringcast::websocket {

enum CloseCode : uint16_t {
  kCloseNormal = 1000,
  kCloseGoingAway = 1001,  // server shutting down
  kCloseProtocolError = 1002,
  kCloseUnsupportedData = 1003,
  kCloseNoStatus = 1005,        // never on the wire
  kCloseAbnormal = 1006,        // never on the wire
  kCloseInvalidPayload = 1007,  // e.g. text that is not UTF-8
  kClosePolicyViolation = 1008,
  kCloseMessageTooBig = 1009,
  kCloseInternalError = 1011,  // also: peer stopped answering pings
  kCloseTryAgainLater = 1013,  // slow consumer
};

// Codes a peer may put in a close frame (RFC 6455 section 7.4).
inline bool valid_close_code_on_wire(uint16_t code) {
  if (code >= 3000 && code <= 4999) return true;
  switch (code) {
    case 1000:
    case 1001:
    case 1002:
    case 1003:
    case 1007:
    case 1008:
    case 1009:
    case 1010:
    case 1011:
    case 1012:
    case 1013:
    case 1014:
      return true;
    default:
      return false;
  }
}

}  // namespace ringcast::websocket

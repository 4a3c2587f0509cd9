// RFC 6455 opening handshake: validation of the upgrade request and the Sec-WebSocket-Accept value.
#pragma once

#include <string>
#include <string_view>

#include "ringcast/websocket/http_request.h"

namespace ringcast::websocket {

// True if the request asks for a WebSocket upgrade at all (Upgrade: websocket); such a request is
// then validated by check_upgrade, anything else is plain HTTP.
bool wants_upgrade(const HttpRequest& req);

// 0 if the upgrade request is well formed; otherwise the HTTP status to refuse it with
// (400 malformed, 426 unsupported version).
int check_upgrade(const HttpRequest& req);

// True if `key` is base64 of exactly 16 bytes.
bool valid_websocket_key(std::string_view key);

// base64(SHA-1(key + RFC 6455 GUID)).
std::string websocket_accept(std::string_view key);

}  // namespace ringcast::websocket

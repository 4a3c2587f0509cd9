#!/usr/bin/python3
"""Writes the seed corpora in corpus/<target>/ from the inputs the unit and integration tests and
the README use. Rerun after changing a fuzz target's input format; the files are checked in."""
import base64
import hashlib
import hmac
import json
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SPLIT = b"\xde\xad\xbe\xef"  # worker_fuzz.cpp kSplit
MASK = bytes([0x37, 0xFA, 0x21, 0x3D])


def frame(opcode, payload, fin=True):
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))


def frame_rsv1(opcode, payload, fin=True):
    """A compressed (RSV1) first frame."""
    f = bytearray(frame(opcode, payload, fin))
    f[0] |= 0x40
    return bytes(f)


def deflate(data):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return (c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]


def upgrade(path, extra=b""):
    return (b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n" + extra + b"\r\n")


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for old in os.listdir(d):
        if old.startswith("seed-"):
            os.remove(os.path.join(d, old))
    for s in seeds:
        name = "seed-" + hashlib.sha1(s).hexdigest()[:16]
        with open(os.path.join(d, name), "wb") as f:
            f.write(s)


# ---- HTTP: first byte picks the head limit (64 + 64 * byte) ----
http = [
    upgrade("/echo"),
    upgrade("/raw/room?echo=0", b"Origin: http://localhost:8000\r\n"),
    b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /api/version HTTP/1.1\r\nHost: x\r\n\r\n",
    b"OPTIONS /health HTTP/1.1\r\nOrigin: http://localhost:3000\r\n"
    b"Access-Control-Request-Headers: X-Token\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
    b"Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\nSec-WebSocket-Version: 8\r\n\r\n",
    b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    b"GET /echo HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Key: short\r\n\r\n",
    b"GET  /bad HTTP/1.1\r\n\r\n",
]
write("http", [bytes([0x7F]) + h for h in http] + [bytes([0]) + http[0]])

# ---- worker: flags byte (1: short sends, 2: peer closes at the end), then reads split by SPLIT ----
echo = upgrade("/echo")
worker = [
    b"\x00" + echo + frame(1, "hello") + frame(2, b"\x00\x01\x02"),
    b"\x01" + echo + SPLIT + frame(1, "frag-", fin=False) + frame(9, "ping") + SPLIT
    + frame(0, "ment") + frame(8, b"\x03\xe8bye"),
    b"\x02" + upgrade("/raw/room?echo=0") + frame(1, "x" * 300) + SPLIT + frame(2, b"\xff" * 70000)[:24],
    b"\x00" + upgrade("/raw/room") + frame(1, "a") + frame(8, b""),
    b"\x00" + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" + SPLIT + echo + frame(1, "after"),
    b"\x00" + echo + frame(1, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5")
    + frame(1, b"\xed\xa0\x80"),
    b"\x00" + echo + frame(10, "unsolicited pong") + frame(8, b"\x03\xe9\xff"),
    b"\x02" + upgrade("/ws") + frame(1, '{"op":"join","room":"lobby","presence":true}')
    + frame(1, '{"op":"publish","room":"lobby","data":{"text":"hi"},"id":3}'),
    b"\x00" + echo[:20] + SPLIT + echo[20:] + SPLIT + frame(1, "split head"),
    # permessage-deflate: agreed, compressed both ways, fragmented with a ping in between.
    b"\x00" + upgrade("/echo", b"Sec-WebSocket-Extensions: permessage-deflate\r\n")
    + frame_rsv1(1, deflate(b'{"type":"position_update","x":1.5}' * 10))
    + frame_rsv1(2, deflate(b"\x00" * 5000)[:9], fin=False) + frame(9, "p") + SPLIT
    + frame(0, deflate(b"\x00" * 5000)[9:]),
    b"\x01" + upgrade("/raw/room", b"Sec-WebSocket-Extensions: permessage-deflate; "
                      b"server_max_window_bits=10\r\n") + frame_rsv1(1, deflate(b"abc" * 300)),
]
# The server API: publishes (native and raw), a broadcast, listings, a disconnect, pipelined.
def api(method, path, body=b""):
    head = (method.encode() + b" " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: apikey fuzz-api-key-0123456789\r\n")
    if body:
        head += b"Content-Length: %d\r\n" % len(body)
    return head + b"\r\n" + body


worker += [
    b"\x00" + api("POST", "/api/publish", b'{"room":"lobby","data":{"x":1},"user":"svc"}')
    + api("POST", "/api/broadcast", b'{"rooms":["a","lobby"],"data":"hi"}')
    + api("GET", "/api/rooms?limit=5") + api("GET", "/api/rooms/lobby/history?since=0")
    + api("GET", "/api/rooms/lobby/presence"),
    b"\x00" + api("POST", "/api/publish", b'{"room":"r","kind":"raw","data":"t"}') + SPLIT
    + api("POST", "/api/disconnect", b'{"user":"u1","code":4000}')
    + api("POST", "/api/disconnect", b'{"session":"1"}'),
]
write("worker", worker)

# ---- config: TOML files ----
with open(os.path.join(HERE, "..", "..", "systemd", "ringcast.toml"), "rb") as f:
    shipped = f.read()
config = [
    shipped,
    b'[server]\nhost = "127.0.0.1"\nport = 9000\nhttp_port = 0\nthreads = 2\nbackend = "epoll"\n'
    b'log_level = "debug"\n[limits]\nmax_message_size = 2048\nping_interval_ms = 300\n'
    b'outbound_cap = 65536\n[origins]\ncheck = false\nallowed = ["http://a.example:1-2"]\n'
    b'[api]\nenv = "LOCAL DEV"\n',
    b"[server]\nport = 1\nbogus = 3\n",
    b'[server]\n\nport = "eighty"\n',
    b"[limits]\nmax_message_size = 1\n",
    b'[hub]\nhistory = 10\n[hub.history_by_room]\n"lobby" = 5\n"game*" = 0\n',
    b'[store]\npersistent_rooms = ["lobby", "game*"]\ndurability = "relaxed"\n',
    b'[tokens]\n"secret-1" = { user_id = "u1", nickname = "Alice" }\n',
    b'[profiles.chatroom]\njson_path = ""\n[profiles.bridge]\npath = "/chat"\n',
]
write("config", config)

# ---- jwt: first byte & 3: 0 = token as is, 1/3 = "<header JSON>\n<payload JSON>" signed HS256 /
# ES256, 2 = a key file (PEM or JWKS) ----
jwt = [
    b"\x00eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9l"
    b"IiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    b"\x00eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJITDEiLCJuaWNrbmFtZSI6IkFubiIsImV4cCI6MjAwMDAwMDAwMCwi"
    b"bmJmIjoxMDAwMDAwMDAwfQ.a7By7fVguGobAOTaSmzJjbaBL4NfZfQ7AN92jyisLVU",
    b'\x01{"alg":"HS256","typ":"JWT"}\n{"sub":"u1","nickname":"Ann","exp":2000000000,"nbf":1}',
    b'\x01{"alg":"none"}\n{"sub":"u1"}',
    b'\x01{"alg":"HS256"}\n{"sub":"","exp":1.5e9}',
    b'\x01{"alg":"HS256"}\n{"sub":"x","sub":"y","nickname":null,"exp":"soon"}',
    b"\x00a.b.c",
    b"\x00bad-token",
    b'\x01{"alg":"HS256","kid":"k1","crit":["b64"]}\n{"sub":"u","aud":["aud-1","x"],"iss":"i"}',
    b'\x03{"alg":"ES256"}\n{"sub":"u1","aud":"aud-1","exp":1700000010,"nbf":1700000020}',
    b'\x03{"alg":"RS256"}\n{"sub":"u1","aud":"aud-1"}',
    b'\x02{"keys":[{"kty":"EC","crv":"P-256","kid":"e","x":"AAAA","y":"AAAA"},'
    b'{"kty":"RSA","use":"sig","alg":"RS256","n":"AQAB","e":"AQAB"},{"kty":"oct","k":"c2VjcmV0"}]}',
    b"\x02-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n",
]
write("jwt", jwt)

# ---- python_json: JSON values as clients send them ----
pj = [
    b'{"type":"marker_add","marker":{"type":"enemy","x":500.5,"y":300.2,"user_id":1,'
    b'"description":"Enemy spotted","timestamp":1704110400}}',
    b'{"id":1,"id":1.0,"id":true,"k":[null,1e16,1e-5,-0.0,"\\u00e9\\ud83d\\ude00"]}',
    b"[NaN, Infinity, -Infinity, 123456789012345678901234567890]",
    b'"it\'s \\"quoted\\"\\n\\t\\u0000\\u007f\\u200e"',
    b"0.1",
    struct.pack("<d", 1e16) + b"  ",
]
write("python_json", pj)

# ---- profiles: actions separated by 0xFF; first byte = connection | action << 2 ----
def hs256_jwt(claims, secret=b"fuzz-secret"):  # harness.cpp: [jwt] and gamechat hs256_secret
    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    signing = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps(claims).encode())
    return signing + "." + b64(hmac.new(secret, signing.encode(), hashlib.sha256).digest())



def actions(*items):
    return b"\xff".join((bytes([c]) + (p.encode() if isinstance(p, str) else p)) for c, p in items)


TEXT, FRAG, BIN, PING, CLOSE, GONE = 0, 3 << 2, 4 << 2, 5 << 2, 6 << 2, 7 << 2
profiles = {
    "bridge": [
        actions((0, '{"type":"bridge"}'),
                (1, '{"type":"connection","origin":"https://wizzyworks-frontend.vercel.app",'
                    '"userAgent":"x"}'),
                (1, '{"id":1,"fireworks":[{"outer_layer":"circle","inner_layer":"data:x"}]}'),
                (0, '{"id":1,"data":{"id":1,"status":"ready"}}'), (0, '{"id":true,"x":1}'),
                (2, '{"type":"bridge"}'), (0 | GONE, "")),
        actions((1, '{"type":"connection"}'), (1 | BIN, b'{"id":1}'), (1, "not json"),
                (3, "[1,2]")),
    ],
    "chatroom": [
        actions((0, "hello"), (1, "!setname Big Bird"), (0, "!who"), (1, "!env"), (0, "!help"),
                (1, "!about"), (0, "!ping"), (1, "!nope"), (0 | BIN, b"\x00"), (2, "!SETNAME x")),
        actions((0 | FRAG, "\u00e9" * 600), (1, "!setname "), (1 | CLOSE, "bye")),
    ],
    "chatroom_json": [
        actions((0, "hello"), (1, "!pm BraveOtter hi"), (0, "!setname Bob"), (1, "!pm Bob hi there"),
                (0, "!who"), (1, "!pm"), (2 | GONE, "")),
    ],
    "livemap": [
        actions((0, '{"type":"marker_add","marker":{"type":"enemy","x":500.5,"y":300.2,'
                    '"user_id":1,"description":"Enemy spotted","timestamp":1704110400}}'),
                (1, '{"type":"marker_remove","marker_id":"1_1704110400"}'),
                (0, '{"type":"position_update","player":{"user_id":1,"username":"P1","x":450.0,'
                    '"y":320.0}}'),
                (1, '{"type":"chat_message","username":"Alice","message":"hi"}'),
                (2, '{"type":"ping","timestamp":"2026-01-01T12:00:00"}')),
        actions((0, '{"type":"marker_add","marker":{"user_id":true,"timestamp":1e16,"id":"x"}}'),
                (0, '{"type":"marker_add","marker":[]}'), (1, "[]"), (2, "nope"),
                (3, '{"type":"position_update","player":{"user_id":"1"}}')),
    ],
    "gamechat": [
        actions((0, '{"action": "login", "token": "change-me"}'),
                (0, '{"action": "message", "message": "gg", "channel": 5}'),
                (0, '{"action": "history", "limit": 1, "offset": 0}'),
                (1, '{"action": "message", "message": "before login"}'),
                (1, '{"action": "login", "username": "a", "password": "b"}'),
                (1, '{"action": "login"}'), (2, '{"action": "login", "token": 5}')),
        actions((0, '{"action":"login","token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.x"}'),
                (0, '{"action":"history","limit":null}'), (0 | BIN, b"{}"), (0, "[[[[")),
    ],
    "relayer": [
        actions((0, '{"type":"register_booth","booth_id":"booth_001"}'),
                (1, '{"type":"connect_scanner","booth_id":"booth_001"}'),
                (1, '{"type":"relay_message","data":{"action":"start_scan"}}'),
                (0, '{"type":"relay_message","data":{"status":"ready"}}'), (0 | GONE, ""),
                (1, '{"type":"relay_message","data":1}'), (2, '{"type":"register_booth"}'),
                (2, '{"type":"bogus"}'), (3, "not json")),
    ],
    "native": [
        actions((0, '{"op":"ping","id":1}'), (0, '{"op":"auth","token":"change-me"}'),
                (0, '{"op":"join","room":"lobby","presence":true,"history":20}'),
                (1, '{"op":"join","room":"lobby","since":0}'),
                (0, '{"op":"publish","room":"lobby","data":{"text":"hi"},"echo":false,"id":3}'),
                (1, '{"op":"history","room":"lobby","limit":50,"offset":0}'),
                (1, '{"op":"presence","room":"lobby"}'),
                (0, '{"op":"state.set","room":"lobby","key":"m","value":{"x":3}}'),
                (0, '{"op":"state.del","room":"lobby","key":"m","id":4}'),
                (1, '{"op":"leave","room":"lobby"}')),
        actions((0, '{"op":"register","name":"booth-1"}'), (1, '{"op":"attach","name":"booth-1"}'),
                (1, '{"op":"relay","data":{"a":1}}'), (0, '{"op":"send","to":"1","data":{}}'),
                (2, '{"op":"nope"}'), (2, "{"), (3 | BIN, b"\x01")),
        actions((0, json.dumps({"op": "auth", "id": 1, "token": hs256_jwt({"sub": "j1", "exp": 4102444800})})),
                (0, json.dumps({"op": "refresh", "id": 2, "token": hs256_jwt({"sub": "j1"})})),
                (0, json.dumps({"op": "refresh", "token": hs256_jwt({"sub": "j2", "exp": 4102444800})})),
                (1, json.dumps({"op": "auth", "token": hs256_jwt({"sub": "j3", "nbf": 4102444800})})),
                (1, '{"op":"refresh","token":"change-me"}'), (2, '{"op":"auth","token":"bad-token"}')),
    ],
    "raw": [
        actions((0, "hello"), (1 | BIN, b"\x00\x01"), (2 | FRAG, "fragmented text"),
                (1 | PING, "p"), (0 | CLOSE, ""), (3, "after")),
    ],
}
for name, seeds in profiles.items():
    write("profile_" + name, seeds)

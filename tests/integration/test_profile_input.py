#!/usr/bin/python3
"""Input rules every profile shares (docs/profiles/*.md, docs/native-protocol.md):

- repeated JSON keys: the last one wins, as Python's json.loads has it, on /ws too;
- names other users are shown (chat names, room and endpoint names, nicknames and user ids, booth
  ids, map usernames) may not carry control characters or Unicode bidi formatting characters;
  each profile refuses them with its own error reply.

Run: /usr/bin/python3 tests/integration/test_profile_input.py --binary build/ringcast --backend epoll
"""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import OP_TEXT, RawWebSocket  # noqa: E402
from ws_inbox import WsInbox  # noqa: E402

import websockets  # noqa: E402  (Debian python3-websockets 10.4)

SECRET = "profile-input-secret"
RLO = "\u202e"        # RIGHT-TO-LEFT OVERRIDE
BAD_NAMES = ["Bad" + RLO + "name", "a\u2066b", "x\u200fy", "nul\u0000", "tab\tname", "del\u007f",
             "c1\u0085x"]
RULE = "must not contain control characters or bidirectional formatting characters"


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(claims):
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = hmac.new(SECRET.encode(), ("%s.%s" % (head, body)).encode(), hashlib.sha256).digest()
    return "%s.%s.%s" % (head, body, b64(sig))


def run_async(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def connect(port, path, decode=json.loads):
    ws = await websockets.connect("ws://127.0.0.1:%d%s" % (port, path), ping_interval=None,
                                  compression=None, open_timeout=10, close_timeout=3)
    return WsInbox(ws, path, decode=decode, ensure_ascii=False)


class InputCase(harness.ServerTestCase):
    CONFIG_TEXT = """
[profiles.livemap]
persistent = false
[profiles.gamechat]
persistent = false
hs256_secret = "%s"
[tokens]
"tok-a" = { user_id = "u1", nickname = "Alice" }
""" % SECRET


# --------------------------------------------------------------------------
# repeated keys
# --------------------------------------------------------------------------

class RepeatedKeysTest(InputCase):
    def test_native_last_key_wins(self):
        async def go():
            c = await connect(self.port, "/ws")
            await c.send('{"op":"join","id":1,"room":"a","room":"b"}')
            m = await c.next()
            self.assertEqual((m["type"], m["room"]), ("joined", "b"), m)
            await c.send('{"op":"ping","op":"nope","id":2}')
            m = await c.next()
            self.assertEqual((m["type"], m["code"]), ("error", "unknown_op"), m)
            await c.send('{"op":"publish","room":"b","data":1,"data":{"v":2},"id":3}')
            m = await c.take(lambda m: m["type"] == "message")
            self.assertEqual(m["data"], {"v": 2})
            await c.close()
        run_async(go())

    def test_livemap_marker_is_the_dict_json_loads_makes(self):
        async def go():
            adder = await connect(self.port, "/map")
            watcher = await connect(self.port, "/map", decode=None)   # raw text
            for c, tag in ((adder, "a"), (watcher, "w")):
                await c.send({"type": "ping", "timestamp": tag})
                await c.take(lambda m: tag in m if isinstance(m, str) else m["type"] == "pong")
            await adder.send('{"type":"marker_add","type":"marker_add","marker":'
                             '{"user_id":1,"description":"old","user_id":2,"timestamp":5,'
                             '"description":"new","id":"x","id":"y"}}')
            raw = await watcher.take(lambda m: "marker_added" in m)
            marker = json.loads(raw)["marker"]
            self.assertEqual(marker, {"user_id": 2, "description": "new", "timestamp": 5,
                                      "id": "2_5"})
            # Each key once, at its first position, as the seed's json.dumps writes it.
            self.assertEqual(raw.count('"description"'), 1, raw)
            self.assertEqual(raw.count('"user_id"'), 1, raw)
            self.assertEqual(list(marker), ["user_id", "description", "timestamp", "id"])
            await adder.send({"type": "marker_remove", "marker_id": "2_5"})
            await watcher.take(lambda m: "marker_removed" in m)
            for c in (adder, watcher):
                await c.close()
        run_async(go())

    def test_relayer_gamechat_bridge_last_key_wins(self):
        async def go():
            booth = await connect(self.port, "/relay")
            await booth.send('{"type":"register_booth","booth_id":"dup-first",'
                             '"booth_id":"dup-last"}')
            m = await booth.next()
            self.assertEqual((m["type"], m["booth_id"]), ("registration_success", "dup-last"))
            chat = await connect(self.port, "/chat")
            await chat.send('{"action":"history","action":"login","token":"nope",'
                            '"token":"tok-a"}')
            self.assertEqual(await chat.next(), {"info": "connected"})
            phone = await connect(self.port, "/")
            await phone.send('{"type":"bridge","type":"connection"}')
            m = await phone.next()
            self.assertEqual(m["code"], 0, m)
            for c in (booth, chat, phone):
                await c.close()
        run_async(go())


# --------------------------------------------------------------------------
# names shown to others
# --------------------------------------------------------------------------

class NamesTest(InputCase):
    def test_native_room_and_endpoint_names(self):
        async def go():
            c = await connect(self.port, "/ws")
            for i, name in enumerate(BAD_NAMES):
                for op in ("join", "history", "presence"):
                    await c.send({"op": op, "room": name, "id": i})
                    m = await c.next()
                    self.assertEqual((m["type"], m["code"], m["id"]), ("error", "bad_request", i),
                                     (op, name, m))
                    self.assertIn(RULE, m["message"])
                await c.send({"op": "register", "name": name, "id": i})
                m = await c.next()
                self.assertEqual((m["type"], m["code"]), ("error", "bad_request"), (name, m))
            # Ordinary non-ASCII names are fine.
            await c.send({"op": "join", "room": "Zoë’s room", "id": "ok"})
            m = await c.next()
            self.assertEqual((m["type"], m["room"]), ("joined", "Zoë’s room"), m)
            await c.close()
        run_async(go())

    def test_raw_room_name(self):
        # The path is taken as sent (not percent-decoded): U+202E as its UTF-8 bytes.
        path = "/raw/a" + "\u202e".encode().decode("latin-1") + "b"
        ws = RawWebSocket(self.port, path)
        try:
            f = ws.read_frame()
            self.assertEqual(f.close_code, 1008, f)
        finally:
            ws.close()
        ws = RawWebSocket(self.port, "/raw/" + "é".encode().decode("latin-1"))
        try:
            ws.send_text("hi")
            f = ws.read_frame()
            self.assertEqual((f.opcode, f.payload), (OP_TEXT, b"hi"))
        finally:
            ws.close()

    def test_chatroom_setname(self):
        async def go():
            for path, shape in (("/chatroom", lambda m: m), ("/chatroom/json",
                                                            lambda m: json.loads(m)["body"])):
                me = await connect(self.port, path, decode=None)
                other = await connect(self.port, path, decode=None)
                greeting = shape(await me.next())
                name = greeting.split(",")[1].split("(")[0].strip()
                await other.next()
                await me.take(lambda m: "has connected" in shape(m))
                for bad in BAD_NAMES:
                    if "".join(bad.split()) != bad:
                        continue   # whitespace (tab, U+0085) is removed from names, as the seed does
                    await me.send("!setname " + bad)
                    m = await me.next()
                    self.assertEqual(shape(m), "!setname error: a name " + RULE, m)
                    if path.endswith("json"):
                        self.assertEqual(json.loads(m)["origin"], "SERVER")
                await me.send("!who")
                who = shape(await me.next())
                self.assertIn(name, who)
                await me.send("!setname Good")
                self.assertIn('has changed their name to "Good"', shape(await me.next()))
                # The other user heard only the good rename.
                m = await other.take(lambda m: "changed their name" in shape(m))
                self.assertEqual(shape(m), '"%s" has changed their name to "Good"' % name)
                self.assertEqual([x for x in other.inbox if "changed" in shape(x)], [])
                await me.close()
                await other.close()
        run_async(go())

    def test_gamechat_jwt_identity(self):
        async def go():
            exp = int(time.time()) + 3600
            for claims in ({"sub": "u9", "nickname": "Al" + RLO + "ice", "exp": exp},
                           {"sub": "u\u0000", "exp": exp}):
                c = await connect(self.port, "/chat")
                await c.send({"action": "login", "token": jwt(claims)})
                m = await c.next()
                self.assertIn("error", m)
                self.assertIn(RULE, m["error"])
                await c.send({"action": "history"})   # still not logged in
                self.assertEqual(await c.next(), {"error": "you need to authenticate first"})
                await c.close()
            c = await connect(self.port, "/chat")
            await c.send({"action": "login", "token": jwt({"sub": "u9", "nickname": "Zoë",
                                                          "exp": exp})})
            self.assertEqual(await c.next(), {"info": "connected"})
            await c.close()
        run_async(go())

    def test_relayer_booth_ids(self):
        async def go():
            c = await connect(self.port, "/relay")
            for bad in BAD_NAMES:
                for t in ("register_booth", "connect_scanner"):
                    await c.send({"type": t, "booth_id": bad})
                    m = await c.next()
                    self.assertEqual(m["type"], "error", m)
                    self.assertEqual(m["message"], "Invalid booth_id: it " + RULE)
            await c.send({"type": "register_booth", "booth_id": 7})   # numbers are fine
            self.assertEqual((await c.next())["type"], "registration_success")
            await c.close()
        run_async(go())

    def test_livemap_usernames(self):
        async def go():
            sender = await connect(self.port, "/map")
            watcher = await connect(self.port, "/map")
            for c, tag in ((sender, "s"), (watcher, "w")):
                await c.send({"type": "ping", "timestamp": tag})
                await c.take(lambda m: m["type"] == "pong")
            watcher.inbox.clear()
            await sender.send({"type": "chat_message", "username": "Al" + RLO + "ice",
                               "message": "hi"})
            m = await sender.next()
            self.assertEqual(m["type"], "error", m)
            self.assertIn(RULE, m["message"])
            await sender.send({"type": "position_update",
                               "player": {"user_id": 42, "username": "P\u200e1", "x": 1, "y": 2}})
            m = await sender.next()
            self.assertEqual(m["type"], "error", m)
            await sender.send({"type": "chat_message", "username": "Alice", "message": "ok"})
            got = await watcher.take(lambda m: m["type"] == "chat_message")
            self.assertEqual(got["username"], "Alice")
            self.assertEqual(watcher.inbox, [])   # neither refused message reached anyone
            probe = await connect(self.port, "/map")
            await probe.send({"type": "ping", "timestamp": "p"})
            await probe.take(lambda m: m["type"] == "pong")
            self.assertEqual([m for m in probe.inbox if m["type"] == "positions_sync"], [])
            for c in (sender, watcher, probe):
                await c.close()
        run_async(go())


if __name__ == "__main__":
    harness.main()

#!/usr/bin/python3
"""permessage-deflate (RFC 7692) with [compression] enabled: negotiation as the RFC has it,
compressed frames on the wire both ways, fragmented compressed messages with control frames in
between, the reserved-bit rules of RFC 6455/7692, corrupt and oversized (bomb) input, a broadcast
compressed once for subscribers on both workers, and python3-websockets (which offers
permessage-deflate by default) against the native protocol and /raw.

Run: /usr/bin/python3 tests/integration/test_deflate.py --binary build/ringcast --backend epoll
"""

import asyncio
import json
import os
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import OP_BINARY, OP_CONT, OP_PING, OP_PONG, OP_TEXT  # noqa: E402

import websockets  # noqa: E402  (Debian python3-websockets 10.4)
from websockets.extensions import permessage_deflate  # noqa: E402

EXT = "Sec-WebSocket-Extensions"
MAX = 1 << 20  # max_message_size of the test server


def deflate(data, wbits=15):
    """A message compressed as RFC 7692 §7.2.1 has it (no context takeover)."""
    c = zlib.compressobj(6, zlib.DEFLATED, -wbits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def inflate(data):
    d = zlib.decompressobj(-15)
    return d.decompress(data + b"\x00\x00\xff\xff")


def position_update(i):
    return json.dumps({"type": "position_update", "user_id": "player-%d" % (i % 7),
                       "username": "Player %d" % (i % 7), "x": 1234.5 + i, "y": -87.25,
                       "z": 12.0, "rotation": 90, "health": 100, "map": "overworld",
                       "timestamp": 1795463392227 + i}).encode()


class DeflateCase(harness.ServerTestCase):
    CONFIG_TEXT = ("[compression]\nenabled = true\nthreshold_bytes = 64\n"
                   "[limits]\nmax_message_size = %d\n" % MAX)

    def ws(self, path="/echo", offer="permessage-deflate"):
        return harness.RawWebSocket(self.port, path, headers=[(EXT, offer)] if offer else None)

    # -- negotiation ----------------------------------------------------------

    def test_negotiation(self):
        agreed = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        cases = [
            ("permessage-deflate", agreed),
            ("permessage-deflate; client_max_window_bits", agreed),
            ("permessage-deflate; client_max_window_bits=10; server_no_context_takeover", agreed),
            ("permessage-deflate; server_max_window_bits=10", agreed + "; server_max_window_bits=10"),
            ('permessage-deflate; server_max_window_bits="12"', agreed + "; server_max_window_bits=12"),
            # Declined offers (RFC 7692 §7.1): unknown or repeated parameters, bad values, and a
            # 256-byte window zlib cannot produce; the next acceptable offer is taken.
            ("permessage-deflate; server_max_window_bits=8", None),
            ("permessage-deflate; server_max_window_bits=16", None),
            ("permessage-deflate; server_max_window_bits", None),
            ("permessage-deflate; client_no_context_takeover=1", None),
            ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", None),
            ("permessage-deflate; mystery", None),
            ("x-webkit-deflate-frame", None),
            ("permessage-deflate; mystery, permessage-deflate; server_max_window_bits=9",
             agreed + "; server_max_window_bits=9"),
        ]
        for offer, want in cases:
            with self.subTest(offer=offer), self.ws(offer=offer) as c:
                self.assertEqual(c.handshake_response.header(EXT), want)
        with self.ws(offer=None) as c:
            self.assertIsNone(c.handshake_response.header(EXT))

    def test_disabled_server_never_agrees(self):
        srv = harness.Server(config_text="[compression]\nenabled = false\n")
        srv.start()
        try:
            with harness.RawWebSocket(srv.port, "/echo", headers=[(EXT, "permessage-deflate")]) as c:
                self.assertIsNone(c.handshake_response.header(EXT))
                c.send_frame(OP_TEXT, deflate(b"x" * 200), rsv=4)
                self.assertEqual(c.read_close()[0], 1002)
        finally:
            srv.stop()
            srv.cleanup()

    # -- data -----------------------------------------------------------------

    def test_compressed_both_ways(self):
        with self.ws() as c:
            for payload in (position_update(1), b"a" * 100000, "h\u00e9llo w\u00f6rld ".encode() * 40):
                c.send_frame(OP_TEXT, deflate(payload), rsv=4)
                f = c.read_frame()
                self.assertEqual((f.opcode, f.rsv, f.fin), (OP_TEXT, 4, True))
                self.assertLess(len(f.payload), len(payload))
                self.assertEqual(inflate(f.payload), payload)
            # Under the threshold, or not smaller once compressed: sent as it is (RSV1 clear).
            c.send_frame(OP_TEXT, deflate(b"short"), rsv=4)
            f = c.read_frame()
            self.assertEqual((f.rsv, f.payload), (0, b"short"))
            noise = os.urandom(4000)
            c.send_frame(OP_BINARY, deflate(noise), rsv=4)
            f = c.read_frame()
            self.assertEqual((f.opcode, f.rsv, f.payload), (OP_BINARY, 0, noise))
            # An uncompressed message on a compressed connection is fine too.
            c.send_frame(OP_TEXT, b"plain " * 30)
            f = c.read_frame()
            self.assertEqual(inflate(f.payload) if f.rsv else f.payload, b"plain " * 30)
            # An empty compressed message (a single empty block).
            c.send_frame(OP_BINARY, b"\x00", rsv=4)
            self.assertEqual(c.read_frame().payload, b"")

    def test_limited_server_window(self):
        with self.ws(offer="permessage-deflate; server_max_window_bits=9") as c:
            payload = (b"0123456789abcdef" * 64 + b"-") * 40  # repeats farther back than 512 B
            c.send_frame(OP_BINARY, deflate(payload), rsv=4)
            f = c.read_frame()
            self.assertEqual(f.rsv, 4)
            d = zlib.decompressobj(-9)  # a 512-byte window must be enough
            self.assertEqual(d.decompress(f.payload + b"\x00\x00\xff\xff"), payload)

    def test_fragmented_with_interleaved_control_frames(self):
        payload = position_update(7) * 50
        z = deflate(payload)
        parts = [z[i:i + 97] for i in range(0, len(z), 97)]
        with self.ws() as c:
            for i, p in enumerate(parts):
                first, last = i == 0, i == len(parts) - 1
                c.send_frame(OP_TEXT if first else OP_CONT, p, fin=last, rsv=4 if first else 0)
                if i % 5 == 2:
                    c.send_frame(OP_PING, b"p%d" % i)
            op, got = None, None
            pongs = 0
            while got is None:
                f = c.read_frame()
                if f.opcode == OP_PONG:
                    pongs += 1
                    continue
                op, got = f.opcode, (inflate(f.payload) if f.rsv else f.payload)
            self.assertEqual((op, got), (OP_TEXT, payload))
            while pongs < len([i for i in range(len(parts)) if i % 5 == 2]):
                self.assertEqual(c.read_frame().opcode, OP_PONG)
                pongs += 1

    def test_reserved_bit_rules(self):
        z = deflate(b"x" * 300)
        cases = {
            "RSV1 on a continuation": [(OP_TEXT, z[:10], False, 4), (OP_CONT, z[10:], True, 4)],
            "RSV1 on a ping": [(OP_PING, b"", True, 4)],
            "RSV2": [(OP_TEXT, b"hi", True, 2)],
            "RSV3 with RSV1": [(OP_TEXT, z, True, 5)],
        }
        for name, frames in cases.items():
            with self.subTest(name), self.ws() as c:
                for op, p, fin, rsv in frames:
                    c.send_frame(op, p, fin=fin, rsv=rsv)
                self.assertEqual(c.read_close()[0], 1002)
        with self.subTest("RSV1 without the extension"), self.ws(offer=None) as c:
            c.send_frame(OP_TEXT, z, rsv=4)
            self.assertEqual(c.read_close()[0], 1002)

    def test_bad_compressed_data(self):
        with self.subTest("not deflate"), self.ws() as c:
            c.send_frame(OP_BINARY, b"\xff\xff\xff\xff garbage", rsv=4)
            self.assertEqual(c.read_close()[0], 1007)
        with self.subTest("text not UTF-8 once inflated"), self.ws() as c:
            c.send_frame(OP_TEXT, deflate(b"ok \xc3\x28 not utf-8" * 10), rsv=4)
            self.assertEqual(c.read_close()[0], 1007)

    def test_decompression_bomb(self):
        # 64 MiB of zeros deflate to ~64 KiB: the inflated size hits max_message_size (1 MiB)
        # and the connection is closed with 1009 without the server holding more than the cap.
        bomb = deflate(b"\x00" * (64 << 20))
        rss0 = harness.rss_kb(type(self).server.proc.pid)
        for fragmented in (False, True):
            with self.subTest(fragmented=fragmented), self.ws() as c:
                if fragmented:
                    step = 4096
                    try:
                        for i in range(0, len(bomb), step):
                            last = i + step >= len(bomb)
                            c.send_frame(OP_BINARY if i == 0 else OP_CONT, bomb[i:i + step],
                                         fin=last, rsv=4 if i == 0 else 0)
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # closed once the cap was passed
                else:
                    c.send_frame(OP_BINARY, bomb, rsv=4)
                self.assertEqual(c.read_close()[0], 1009)
        if not harness.sanitized():
            grown = harness.rss_kb(type(self).server.proc.pid) - rss0
            self.assertLess(grown, 16 * 1024, "RSS grew %d kB after two bombs" % grown)
        # Just under the cap is fine.
        with self.ws() as c:
            ok = b"\x00" * (MAX - 1)
            c.send_frame(OP_BINARY, deflate(ok), rsv=4)
            f = c.read_frame()
            self.assertEqual(inflate(f.payload) if f.rsv else f.payload, ok)

    # -- fan-out and real clients ----------------------------------------------

    def test_broadcast_compressed_once_for_both_workers(self):
        async def go():
            subs = [await websockets.connect("ws://127.0.0.1:%d/raw/pos" % self.port)
                    for _ in range(10)]
            plain = [await websockets.connect("ws://127.0.0.1:%d/raw/pos" % self.port,
                                              compression=None) for _ in range(4)]
            raws = [self.ws("/raw/pos") for _ in range(4)]
            try:
                for s in subs:
                    self.assertIn("permessage-deflate", s.response_headers.get(EXT, ""))
                pub = await websockets.connect("ws://127.0.0.1:%d/raw/pos?echo=0" % self.port)
                msgs = [position_update(i).decode() for i in range(50)]
                for m in msgs:
                    await pub.send(m)
                for s in subs + plain:
                    got = [await asyncio.wait_for(s.recv(), 10) for _ in msgs]
                    self.assertEqual(got, msgs)
                wire = []
                for r in raws:
                    frames = [await asyncio.to_thread(r.read_frame) for _ in msgs]
                    self.assertTrue(all(f.rsv == 4 for f in frames))
                    self.assertEqual([inflate(f.payload).decode() for f in frames], msgs)
                    wire.append([f.payload for f in frames])
                # Every recipient got the very same compressed bytes.
                self.assertTrue(all(w == wire[0] for w in wire))
                await pub.close()
            finally:
                for s in subs + plain:
                    await s.close()
                for r in raws:
                    r.close()
        asyncio.run(go())

    def test_native_protocol_with_websockets_defaults(self):
        async def go():
            limited = permessage_deflate.ClientPerMessageDeflateFactory(
                server_max_window_bits=10, client_max_window_bits=10)
            a = await websockets.connect("ws://127.0.0.1:%d/ws" % self.port)
            b = await websockets.connect("ws://127.0.0.1:%d/ws" % self.port, extensions=[limited])
            try:
                self.assertIn("server_max_window_bits=10", b.response_headers.get(EXT, ""))
                for c in (a, b):
                    await c.send(json.dumps({"op": "join", "room": "zz", "id": 1}))
                    self.assertEqual(json.loads(await c.recv())["type"], "joined")
                big = {"text": "compress me " * 500}
                for i in range(20):
                    await a.send(json.dumps({"op": "publish", "room": "zz", "data": dict(big, i=i)}))
                for c in (a, b):
                    for i in range(20):
                        m = json.loads(await asyncio.wait_for(c.recv(), 10))
                        self.assertEqual((m["type"], m["data"]["i"]), ("message", i))
            finally:
                await a.close()
                await b.close()
        asyncio.run(go())

    def test_idle_compressed_connections_cost_little(self):
        # Each connection has had a compressed message each way (the inflater it leased went
        # back to the worker's pool), then sits idle. A fresh server per mode, warmed the same
        # way, so the two growths compare like with like.
        if harness.sanitized():
            self.skipTest("RSS under ASan says nothing about the release build")
        n = 1500

        async def growth(compression):
            srv = harness.Server(config_text=self.CONFIG_TEXT)
            srv.start()
            try:
                async def open_many(k):
                    conns = []
                    for _ in range(k):
                        ws = await websockets.connect("ws://127.0.0.1:%d/echo" % srv.port,
                                                      compression=compression)
                        await ws.send("hello " * 40)
                        await ws.recv()
                        conns.append(ws)
                    return conns
                for ws in await open_many(200):  # pools and first-touch costs
                    await ws.close()
                await asyncio.sleep(0.3)
                before = harness.rss_kb(srv.proc.pid)
                conns = await open_many(n)
                await asyncio.sleep(0.3)
                after = harness.rss_kb(srv.proc.pid)
                for ws in conns:
                    await ws.close()
                return (after - before) * 1024 / n
            finally:
                srv.stop()
                srv.cleanup()

        async def both():
            return await growth(None), await growth("deflate")
        plain, packed = asyncio.run(both())
        print("idle connection: %.0f B uncompressed, %.0f B with permessage-deflate" % (plain, packed))
        # (The absolute figure includes the backend's first touch of its receive buffers, which
        # io_uring spreads over the first ~10k connections; the difference is the extension's.)
        self.assertLess(packed - plain, 512)


if __name__ == "__main__":
    harness.main()

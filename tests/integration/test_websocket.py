#!/usr/bin/python3
"""WebSocket framing, validation, close handshake and keepalive on /echo.

Run: /usr/bin/python3 tests/integration/test_websocket.py --binary build/ringcast --backend epoll
"""

import asyncio
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,  # noqa: E402
                     Closed, RawWebSocket, build_frame)

MiB = 1 << 20


class WsCase(harness.ServerTestCase):

    def ws(self, path="/echo"):
        w = RawWebSocket(self.port, path)
        self.addCleanup(w.close)
        return w

    def finish_close(self, ws):
        """After the server's close frame: answer it and expect the TCP connection to end."""
        try:
            ws.send_close(1000)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            ws.wait_closed(3.0)
        except socket.timeout:
            self.fail("server did not close TCP within 3 s after its close frame")

    def expect_close(self, ws, code, timeout=5.0):
        try:
            got, reason = ws.read_close(timeout=timeout)
        except Closed:
            self.fail("TCP closed without a close frame (expected close %d)" % code)
        except socket.timeout:
            self.fail("no close frame within %.1fs (expected close %d)" % (timeout, code))
        self.assertEqual(got, code, "close code (reason %r)" % reason)
        self.finish_close(ws)


class EchoTest(WsCase):

    def test_echo_text(self):
        ws = self.ws()
        for s in ("hello", "héllo wörld ✓ 𝄞", "x" * 125, "y" * 126, "z" * 65535, "w" * 65536):
            with self.subTest(length=len(s)):
                self.assertEqual(ws.echo(OP_TEXT, s.encode()), (OP_TEXT, s.encode()))

    def test_echo_binary(self):
        ws = self.ws()
        for n in (1, 125, 126, 65535, 65536, 100000):
            data = os.urandom(n)
            with self.subTest(length=n):
                self.assertEqual(ws.echo(OP_BINARY, data), (OP_BINARY, data))

    def test_echo_empty(self):
        ws = self.ws()
        self.assertEqual(ws.echo(OP_TEXT, b""), (OP_TEXT, b""))
        self.assertEqual(ws.echo(OP_BINARY, b""), (OP_BINARY, b""))

    def test_fragmented_text_with_ping_interleaved(self):
        ws = self.ws()
        ws.send_frame(OP_TEXT, b"Hello, ", fin=False)
        ws.send_frame(OP_PING, b"mid-ping")
        ws.send_frame(OP_CONT, "wörld".encode(), fin=False)
        ws.send_frame(OP_CONT, b"!", fin=True)
        self.assertEqual(ws.read_message(), (OP_TEXT, "Hello, wörld!".encode()))
        pongs = [f for f in ws.controls if f.opcode == OP_PONG]
        self.assertEqual([f.payload for f in pongs], [b"mid-ping"])

    def test_fragmented_binary_with_ping_interleaved(self):
        ws = self.ws()
        parts = [os.urandom(1000), os.urandom(70000), os.urandom(3)]
        ws.send_frame(OP_BINARY, parts[0], fin=False)
        ws.send_frame(OP_CONT, parts[1], fin=False)
        ws.send_frame(OP_PING, b"\x00\x01\x02")
        ws.send_frame(OP_CONT, parts[2], fin=True)
        self.assertEqual(ws.read_message(), (OP_BINARY, b"".join(parts)))
        self.assertEqual([f.payload for f in ws.controls if f.opcode == OP_PONG], [b"\x00\x01\x02"])

    def test_many_small_fragments(self):
        ws = self.ws()
        msg = b"abcdefghij" * 20
        frames = [build_frame(OP_TEXT if i == 0 else OP_CONT, msg[i:i + 1], fin=(i == len(msg) - 1))
                  for i in range(len(msg))]
        ws.send(b"".join(frames))
        self.assertEqual(ws.read_message(), (OP_TEXT, msg))

    def test_fragmented_empty_first_fragment(self):
        ws = self.ws()
        ws.send_frame(OP_TEXT, b"", fin=False)
        ws.send_frame(OP_CONT, b"tail", fin=True)
        self.assertEqual(ws.read_message(), (OP_TEXT, b"tail"))

    def test_1mib_message_ok(self):
        ws = self.ws()
        data = os.urandom(MiB)
        self.assertEqual(ws.echo(OP_BINARY, data, timeout=15), (OP_BINARY, data))
        text = b"a" * MiB
        self.assertEqual(ws.echo(OP_TEXT, text, timeout=15), (OP_TEXT, text))

    def test_1mib_fragmented_ok(self):
        ws = self.ws()
        data = os.urandom(MiB)
        q = MiB // 4
        for i in range(4):
            ws.send_frame(OP_BINARY if i == 0 else OP_CONT, data[i * q:(i + 1) * q], fin=(i == 3))
        self.assertEqual(ws.read_message(timeout=15), (OP_BINARY, data))

    def test_pipelined_messages_in_one_write(self):
        ws = self.ws()
        n = 300
        blob = b"".join(build_frame(OP_TEXT if i % 3 else OP_BINARY, b"msg-%d" % i) for i in range(n))
        ws.send(blob)
        for i in range(n):
            self.assertEqual(ws.read_message(), (OP_TEXT if i % 3 else OP_BINARY, b"msg-%d" % i), i)

    def test_ping_pong_payload(self):
        ws = self.ws()
        for payload in (b"", b"ping-data", os.urandom(125)):
            with self.subTest(length=len(payload)):
                ws.send_frame(OP_PING, payload)
                f = ws.read_frame()
                self.assertEqual(f.opcode, OP_PONG, f)
                self.assertTrue(f.fin)
                self.assertEqual(f.payload, payload)

    def test_unsolicited_pong_ignored(self):
        ws = self.ws()
        ws.send_frame(OP_PONG, b"whatever")
        self.assertEqual(ws.echo(OP_TEXT, b"after pong"), (OP_TEXT, b"after pong"))

    def test_valid_utf8_split_across_fragments(self):
        ws = self.ws()
        # U+20AC (E2 82 AC) and U+1D11E (F0 9D 84 9E) split inside the code point.
        ws.send_frame(OP_TEXT, b"a\xe2\x82", fin=False)
        ws.send_frame(OP_CONT, b"\xac b \xf0", fin=False)
        ws.send_frame(OP_CONT, b"\x9d", fin=False)
        ws.send_frame(OP_CONT, b"\x84\x9e", fin=True)
        self.assertEqual(ws.read_message(), (OP_TEXT, "a€ b 𝄞".encode()))

    def test_binary_not_utf8_checked(self):
        ws = self.ws()
        self.assertEqual(ws.echo(OP_BINARY, b"\xff\xfe\xc0"), (OP_BINARY, b"\xff\xfe\xc0"))

    # -- close handshake ------------------------------------------------------

    def test_client_close_echoed(self):
        for code in (1000, 4000, 1001, 3000, 4999):
            with self.subTest(code=code):
                ws = self.ws()
                ws.send_close(code, b"bye")
                f = ws.read_frame()
                self.assertEqual(f.opcode, OP_CLOSE, f)
                self.assertEqual(f.close_code, code)
                try:
                    ws.wait_closed(3.0)
                except socket.timeout:
                    self.fail("server did not close TCP after the close handshake")

    def test_client_close_without_code_gets_1000(self):
        ws = self.ws()
        ws.send_close()
        f = ws.read_frame()
        self.assertEqual(f.opcode, OP_CLOSE, f)
        self.assertEqual(f.close_code, 1000)
        ws.wait_closed(3.0)

    def test_no_echo_after_close(self):
        ws = self.ws()
        ws.send(build_frame(OP_CLOSE, struct.pack("!H", 1000)) + build_frame(OP_TEXT, b"late"))
        f = ws.read_frame()
        self.assertEqual(f.opcode, OP_CLOSE, f)
        self.assertEqual(ws.wait_closed(3.0), b"", "data after the close frame")


class ProtocolErrorTest(WsCase):

    def check(self, raw, code, prefix_msgs=True):
        ws = self.ws()
        if prefix_msgs:  # the connection is healthy before the bad frame
            self.assertEqual(ws.echo(OP_TEXT, b"ok"), (OP_TEXT, b"ok"))
        ws.send(raw)
        self.expect_close(ws, code)

    # 1007
    def test_invalid_utf8_1007(self):
        for payload in (b"\xff", b"abc\xc0\xaf", b"\xed\xa0\x80", b"abc\xe2\x82", b"\xf4\x90\x80\x80"):
            with self.subTest(payload=payload):
                self.check(build_frame(OP_TEXT, payload), 1007)

    def test_invalid_utf8_split_across_fragments_1007(self):
        with self.subTest(case="bad continuation byte in next fragment"):
            self.check(build_frame(OP_TEXT, b"ok \xe2\x82", fin=False) + build_frame(OP_CONT, b"A"), 1007)
        with self.subTest(case="message ends inside a code point"):
            self.check(build_frame(OP_TEXT, b"ok", fin=False) + build_frame(OP_CONT, b"\xe2\x82"), 1007)

    # 1009
    def test_over_max_message_size_1009(self):
        # Declared length 1 MiB + 1: the server must close as soon as it sees the header;
        # only 64 KiB of payload is ever sent.
        ws = self.ws()
        ws.send(_header_only(OP_BINARY, MiB + 1) + b"\x00" * 65536)
        self.expect_close(ws, 1009)

    def test_header_alone_declaring_too_much_1009(self):
        # Only the header is sent, no payload byte: the declared length alone earns the close,
        # for a 2 GiB frame (64-bit length form), one byte over the limit, and a continuation
        # frame that would take the message over it.
        cases = [("2 GiB", _header_only(OP_BINARY, 2 << 30)),
                 ("limit + 1", _header_only(OP_TEXT, MiB + 1)),
                 ("continuation", build_frame(OP_BINARY, b"x" * 1000, fin=False)
                  + _header_only(OP_CONT, MiB - 999))]
        for name, raw in cases:
            with self.subTest(case=name):
                ws = self.ws()
                ws.send(raw)
                self.expect_close(ws, 1009, timeout=3.0)

    def test_header_split_from_payload_still_echoed(self):
        # The header arriving before its payload (separate segments) changes nothing for a frame
        # within the limit.
        ws = self.ws()
        payload = os.urandom(70000)
        frame = build_frame(OP_BINARY, payload)
        ws.send(frame[:14])
        time.sleep(0.05)
        ws.send(frame[14:])
        self.assertEqual(ws.read_message(timeout=10), (OP_BINARY, payload))

    def test_over_max_message_size_fragmented_1009(self):
        ws = self.ws()
        ws.send_frame(OP_BINARY, b"\x01" * (MiB - 10), fin=False)
        ws.send_frame(OP_CONT, b"\x02" * 11, fin=True)
        self.expect_close(ws, 1009)

    # 1002
    def test_rsv_bits_1002(self):
        for rsv in (4, 2, 1):
            with self.subTest(rsv=rsv):
                self.check(build_frame(OP_TEXT, b"x", rsv=rsv), 1002)

    def test_reserved_opcodes_1002(self):
        for op in (3, 7, 0xB, 0xF):
            with self.subTest(opcode=op):
                self.check(build_frame(op, b"x"), 1002)

    def test_unmasked_frame_1002(self):
        self.check(build_frame(OP_TEXT, b"hello", mask=False), 1002)

    def test_continuation_without_start_1002(self):
        self.check(build_frame(OP_CONT, b"x", fin=True), 1002)

    def test_new_data_frame_inside_fragmented_message_1002(self):
        self.check(build_frame(OP_TEXT, b"a", fin=False) + build_frame(OP_TEXT, b"b"), 1002)

    def test_control_frame_126_bytes_1002(self):
        for op in (OP_PING, OP_PONG, OP_CLOSE):
            with self.subTest(opcode=op):
                payload = struct.pack("!H", 1000) + b"r" * 124 if op == OP_CLOSE else b"p" * 126
                self.check(build_frame(op, payload), 1002)

    def test_fragmented_ping_1002(self):
        self.check(build_frame(OP_PING, b"frag", fin=False), 1002)

    def test_invalid_close_codes_1002(self):
        for code in (999, 1005, 1006, 1015, 5000, 0):
            with self.subTest(code=code):
                self.check(build_frame(OP_CLOSE, struct.pack("!H", code)), 1002)

    def test_one_byte_close_payload_1002(self):
        self.check(build_frame(OP_CLOSE, b"\x03"), 1002)

    def test_close_reason_invalid_utf8_1002(self):
        self.check(build_frame(OP_CLOSE, struct.pack("!H", 1000) + b"\xff\xfe"), 1002)

    def test_error_without_prior_message(self):
        # The very first frame being bad is handled the same way.
        self.check(build_frame(OP_TEXT, b"x", rsv=4), 1002, prefix_msgs=False)

    def test_other_connections_unaffected(self):
        good = self.ws()
        self.check(build_frame(5, b"x"), 1002)
        self.assertEqual(good.echo(OP_TEXT, b"still fine"), (OP_TEXT, b"still fine"))


def _header_only(opcode, length):
    """Masked frame header declaring `length` payload bytes (mask key all zero: payload as is)."""
    b0 = 0x80 | opcode
    if length < 126:
        hdr = struct.pack("!BB", b0, 0x80 | length)
    elif length < 65536:
        hdr = struct.pack("!BBH", b0, 0x80 | 126, length)
    else:
        hdr = struct.pack("!BBQ", b0, 0x80 | 127, length)
    return hdr + b"\x00\x00\x00\x00"


class KeepaliveTest(WsCase):
    CONFIG = {"limits": {"ping_interval_ms": 300, "ping_timeout_ms": 300}}

    # Several connections per test, so that (with 2 workers) both workers' timers are exercised.
    N_CONNS = 8

    def test_server_ping_then_1011(self):
        socks = [self.ws() for _ in range(self.N_CONNS)]
        t0 = time.monotonic()
        for i, ws in enumerate(socks):
            try:
                f = ws.read_frame(timeout=max(0.01, t0 + 0.3 + 3.0 - time.monotonic()))
            except socket.timeout:
                self.fail("connection %d: no server ping within ping_interval_ms + 3 s" % i)
            except Closed:
                self.fail("connection %d: dropped before any ping" % i)
            self.assertEqual(f.opcode, OP_PING, "connection %d: %r" % (i, f))
            if i == 0:
                t_ping = time.monotonic()
                self.assertGreaterEqual(t_ping - t0, 0.1, "ping long before ping_interval_ms")
        # nobody answers: every connection gets close 1011, then TCP is dropped
        for i, ws in enumerate(socks):
            try:
                f = ws.read_frame(timeout=max(0.01, t0 + 0.6 + 4.0 - time.monotonic()))
            except socket.timeout:
                self.fail("connection %d: no close within ping_timeout_ms + 3 s of the unanswered ping" % i)
            except Closed:
                self.fail("connection %d: TCP dropped without a close 1011 frame" % i)
            self.assertEqual(f.opcode, OP_CLOSE, "connection %d: %r" % (i, f))
            self.assertEqual(f.close_code, 1011, "connection %d" % i)
            if i == 0:
                self.assertGreaterEqual(time.monotonic() - t_ping, 0.1, "closed long before ping_timeout_ms")
        for i, ws in enumerate(socks):
            try:
                ws.wait_closed(max(0.01, t0 + 0.6 + 6.0 - time.monotonic()))
            except socket.timeout:
                self.fail("connection %d: not dropped after close 1011" % i)

    def test_first_ping_not_early_after_idle_period(self):
        # ping_interval_ms is measured from the last inbound traffic (here: the handshake) even
        # when the worker was blocked in its poll for a long time before the connection came.
        time.sleep(1.0)  # precondition: server idle for > 3 x ping_interval_ms, no assertion
        socks = []
        for i in range(4):
            socks.append((self.ws(), time.monotonic()))
        for i, (ws, t_open) in enumerate(socks):
            try:
                f = ws.read_frame(timeout=max(0.01, t_open + 0.3 + 3.0 - time.monotonic()))
            except socket.timeout:
                self.fail("connection %d: no server ping within ping_interval_ms + 3 s" % i)
            self.assertEqual(f.opcode, OP_PING, "connection %d: %r" % (i, f))
            if i == 0:
                self.assertGreaterEqual(time.monotonic() - t_open, 0.15,
                                        "first ping long before ping_interval_ms")

    def test_raw_client_answering_pings_stays(self):
        socks = [self.ws() for _ in range(self.N_CONNS)]
        pings = [0] * len(socks)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            for i, ws in enumerate(socks):
                try:
                    f = ws.read_frame(timeout=0.02)
                except socket.timeout:
                    continue
                except Closed:
                    self.fail("connection %d: server dropped a client that answers pings" % i)
                self.assertNotEqual(f.opcode, OP_CLOSE,
                                    "connection %d: server closed (code %r)" % (i, f.close_code))
                self.assertEqual(f.opcode, OP_PING, f)
                pings[i] += 1
                ws.send_frame(OP_PONG, f.payload)
        self.assertTrue(all(n >= 2 for n in pings),
                        "pings per connection in 2 s at 300 ms interval: %r" % pings)
        for ws in socks:
            self.assertEqual(ws.echo(OP_TEXT, b"alive"), (OP_TEXT, b"alive"))

    def test_inbound_traffic_defers_ping(self):
        socks = [self.ws() for _ in range(4)]
        for i in range(15):  # a message every ~100 ms for 1.5 s (> 4 ping intervals)
            for ws in socks:
                self.assertEqual(ws.echo(OP_TEXT, b"m%d" % i), (OP_TEXT, b"m%d" % i))
            time.sleep(0.1)
        for i, ws in enumerate(socks):
            self.assertEqual([f for f in ws.controls if f.opcode == OP_PING], [],
                             "connection %d: server pinged although the client was sending" % i)

    def test_websockets_library_client_stays_connected(self):
        import websockets
        from websockets.legacy.client import WebSocketClientProtocol

        class CountingProtocol(WebSocketClientProtocol):
            def __init__(self, *a, **kw):
                super().__init__(*a, **kw)
                self.pongs_sent = 0

            async def pong(self, data=b""):
                self.pongs_sent += 1
                return await super().pong(data)

        async def one(i):
            async with websockets.connect("ws://127.0.0.1:%d/echo" % self.port, ping_interval=None,
                                          create_protocol=CountingProtocol, open_timeout=5,
                                          close_timeout=5) as ws:
                # Wait ~2.1 s (7 ping intervals; an unanswered ping would be closed after 0.6 s).
                # recv() must not return anything: the server only sends pings here.
                try:
                    msg = await asyncio.wait_for(ws.recv(), 2.1)
                    return ("unexpected message", msg)
                except asyncio.TimeoutError:
                    pass
                except websockets.ConnectionClosed as e:
                    return ("closed", e.code)
                if ws.closed:
                    return ("closed", ws.close_code)
                await ws.send("still connected %d" % i)
                reply = await asyncio.wait_for(ws.recv(), 5)
                return ("ok", reply, ws.pongs_sent >= 2, ws.pongs_sent)

        async def all_clients():
            return await asyncio.gather(*(one(i) for i in range(self.N_CONNS)))

        results = asyncio.run(asyncio.wait_for(all_clients(), 20))
        for i, r in enumerate(results):
            self.assertEqual(r[:3], ("ok", "still connected %d" % i, True),
                             "client %d: %r (last item: pongs sent = pings received)" % (i, r))


class MessageRateLimitTest(WsCase):
    # 20 messages/s with bursts of 10: a flood is closed with 1008, a client within the rate is not.
    CONFIG = {"limits": {"max_messages_per_second": 20, "message_burst": 10}}

    def test_flood_closed_1008(self):
        ws = self.ws()
        ws.send(b"".join(build_frame(OP_TEXT, b"m%d" % i) for i in range(50)))
        echoed = 0
        try:
            while True:
                op, _ = ws.read_message(timeout=5)
                echoed += 1
        except harness.ConnectionClosedByServer as e:
            self.assertEqual(e.code, 1008, e.reason)
        except Closed:
            self.fail("TCP closed without a close frame (expected 1008)")
        self.assertIn(echoed, (10, 11), "the burst is 10 messages")
        self.finish_close(ws)

    def test_ping_flood_closed_1008(self):
        # Each ping costs the server a pong, so pings count like messages: 500 pings in one
        # write get the burst's worth of pongs, then close 1008.
        ws = self.ws()
        ws.send(b"".join(build_frame(OP_PING, b"p%d" % i) for i in range(500)))
        code, reason = ws.read_close(timeout=5)
        self.assertEqual(code, 1008, reason)
        pongs = [f for f in ws.controls if f.opcode == OP_PONG]
        self.assertIn(len(pongs), (10, 11), "the burst is 10 messages")
        self.finish_close(ws)

    def test_pings_and_messages_share_the_budget(self):
        # 8 messages and 8 pings: each kind alone fits in the burst of 10, together they do not.
        ws = self.ws()
        frames = []
        for i in range(16):
            frames.append(build_frame(OP_PING if i % 2 else OP_TEXT, b"x%d" % i))
        ws.send(b"".join(frames))
        code, reason = ws.read_close(timeout=5)
        self.assertEqual(code, 1008, reason)

    def test_within_rate_stays_open(self):
        ws = self.ws()
        for i in range(25):  # 25 messages at ~12/s: under the rate, beyond one burst
            self.assertEqual(ws.echo(OP_TEXT, b"ok %d" % i), (OP_TEXT, b"ok %d" % i))
            time.sleep(0.08)

    def test_fragments_count_once(self):
        ws = self.ws()
        for i in range(8):  # one message of 30 fragments, 8 times: 8 messages, within the burst
            frames = [build_frame(OP_TEXT if k == 0 else OP_CONT, b"f", fin=(k == 29))
                      for k in range(30)]
            ws.send(b"".join(frames))
            self.assertEqual(ws.read_message(timeout=5), (OP_TEXT, b"f" * 30))


if __name__ == "__main__":
    harness.main()

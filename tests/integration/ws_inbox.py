"""One asyncio WebSocket client for the integration tests: a reader task appends every message to
`inbox` as it arrives, waits are bounded, and the close code is kept once the connection ends.

The profiles' tests differ only in small ways, passed as parameters:
  decode(m)      turns each received frame into the inbox item (default: kept as is; see
                 json_decoder for "JSON text, Binary for binary frames, a marker for junk");
  on_message(x)  is called with each item as it arrives (counters); returning True keeps the item
                 out of the inbox (swallowed);
  check(x)       is called on each item `next` returns, in the test's task (shape assertions).
"""

import asyncio
import json
import time

import websockets  # Debian python3-websockets 10.4

DEFAULT_TIMEOUT = 5.0


class Binary:
    """A binary frame in the inbox."""

    def __init__(self, data):
        self.data = data

    def __repr__(self):
        return "<Binary %d %r>" % (len(self.data), self.data[:40])


def json_decoder(unparseable, binary=Binary):
    """decode: text frames parsed as JSON (unparseable(m) when they are not), binary frames as
    binary(m)."""
    def decode(m):
        if isinstance(m, bytes):
            return binary(m)
        try:
            return json.loads(m)
        except ValueError:
            return unparseable(m)
    return decode


def short(obj, limit=300):
    s = repr(obj)
    return s if len(s) <= limit else s[:limit] + "...(%d chars)" % len(s)


def _matches(pred, m):
    try:
        return pred(m)
    except (KeyError, TypeError, AttributeError):
        return False


class WsInbox:
    def __init__(self, ws, name="connection", decode=None, on_message=None, check=None,
                 ensure_ascii=True):
        self.ws = ws
        self.name = name
        self.inbox = []
        self.closed_code = None  # set when the connection has ended (-1: no close code)
        self._decode = decode
        self._on_message = on_message
        self._check = check
        self._ensure_ascii = ensure_ascii
        self._event = asyncio.Event()
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self):
        try:
            async for m in self.ws:
                item = self._decode(m) if self._decode else m
                if self._on_message and self._on_message(item):
                    continue
                self.inbox.append(item)
                self._event.set()
        except websockets.ConnectionClosed:
            pass
        except Exception as e:  # noqa: BLE001 - the test sees it in the inbox
            self.inbox.append({"type": "<reader-error>", "error": repr(e)})
        self.closed_code = self.ws.close_code if self.ws.close_code is not None else -1
        self._event.set()

    @property
    def closed(self):
        """True once the connection has ended (tests read it; the methods here use closed_code, so
        a subclass may name a method `closed`)."""
        return self.closed_code is not None

    @property
    def close_code(self):
        """The close code as websockets reports it (None while open or without one)."""
        return self.ws.close_code

    async def _wait(self, deadline):
        """Waits for the next arrival or the end of the connection, at most until deadline; False
        once the deadline has passed."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self._event.clear()
        try:
            await asyncio.wait_for(self._event.wait(), remaining)
        except asyncio.TimeoutError:
            pass
        return True

    async def next(self, timeout=DEFAULT_TIMEOUT, what="a message"):
        """Removes and returns the oldest message (after `check`)."""
        deadline = time.monotonic() + timeout
        while not self.inbox:
            if self.closed_code is not None:
                raise AssertionError("%s: closed (code %r) while waiting for %s"
                                     % (self.name, self.closed_code, what))
            if not await self._wait(deadline):
                raise AssertionError("%s: no %s within %.1fs" % (self.name, what, timeout))
        m = self.inbox.pop(0)
        if self._check:
            self._check(m)
        return m

    async def take(self, pred, timeout=DEFAULT_TIMEOUT, what="message"):
        """Removes and returns the first message matching pred (others stay in the inbox)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, m in enumerate(self.inbox):
                if _matches(pred, m):
                    return self.inbox.pop(i)
            if self.closed_code is not None:
                raise AssertionError("%s: closed (code %r) while waiting for %s; inbox tail %s"
                                     % (self.name, self.closed_code, what, short(self.inbox[-5:])))
            if not await self._wait(deadline):
                raise AssertionError("%s: no %s within %.1fs; inbox tail %s"
                                     % (self.name, what, timeout, short(self.inbox[-5:])))

    async def wait_for(self, pred, timeout=DEFAULT_TIMEOUT, what="message"):
        """Waits until pred(inbox) is true; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            v = pred(self.inbox)
            if v:
                return v
            if self.closed_code is not None:
                raise AssertionError("%s: closed (%r) while waiting for %s; inbox %s"
                                     % (self.name, self.close_code, what, short(self.inbox)))
            if not await self._wait(deadline):
                raise AssertionError("%s: no %s within %.1fs; inbox %s"
                                     % (self.name, what, timeout, short(self.inbox)))

    async def drain(self, seconds):
        """Everything that arrives within `seconds` (and was waiting), removed from the inbox."""
        await asyncio.sleep(seconds)
        got, self.inbox[:] = list(self.inbox), []
        return got

    async def wait_closed(self, timeout=DEFAULT_TIMEOUT):
        """The close code once the connection has ended."""
        deadline = time.monotonic() + timeout
        while self.closed_code is None:
            if not await self._wait(deadline):
                raise AssertionError("%s: still open after %.1fs" % (self.name, timeout))
        return self.closed_code

    async def send(self, m):
        """Text or bytes as they are, anything else as JSON text."""
        if not isinstance(m, (str, bytes)):
            m = json.dumps(m, ensure_ascii=self._ensure_ascii)
        await self.ws.send(m)

    async def close(self):
        try:
            await asyncio.wait_for(self.ws.close(), 3)
        except Exception:  # noqa: BLE001 - best effort
            pass
        try:
            await asyncio.wait_for(asyncio.shield(self.reader), 3)
        except Exception:  # noqa: BLE001
            self.reader.cancel()

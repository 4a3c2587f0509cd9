#!/usr/bin/python3
"""GET /dashboard in headless Chromium, driven over the DevTools protocol: the page loads with no
console error and no uncaught exception, its numbers move when load is applied (WebSocket
clients and a broadcast), and a screenshot is kept under the build directory as a test artifact
(its path is printed). Access: without [api] keys the page and its data answer loopback clients
(the test is one); with keys the data needs `Authorization: apikey <key>` (401 JSON without it,
200 with it), and the page asks for the key and keeps it in sessionStorage.

Run: /usr/bin/python3 tests/integration/test_dashboard.py --binary build/ringcast --backend epoll
"""

import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import websockets  # noqa: E402  (Debian python3-websockets 10.4)

CHROMIUM = os.environ.get("RINGCAST_CHROMIUM", "/usr/bin/chromium")
KEY = "dashboard-test-key"


class Chromium:
    """Headless Chromium with a DevTools endpoint; one page, driven over its WebSocket."""

    def __init__(self):
        if not os.access(CHROMIUM, os.X_OK):
            raise AssertionError("%s missing: tools/dev.sh deps installs Debian's chromium" % CHROMIUM)
        self.profile = tempfile.mkdtemp(prefix="ringcast-chromium-")
        self.port = harness.free_port()
        args = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-extensions", "--window-size=1400,1000",
                "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=%d" % self.port,
                "--user-data-dir=" + self.profile, "about:blank"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.events = []
        self.ws = None
        self._id = 0
        self._waiters = {}
        self._reader = None

    def page_ws_url(self):
        def targets():
            with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % self.port, timeout=2) as r:
                return [t for t in json.load(r) if t.get("type") == "page"]
        return harness.wait_until(targets, timeout=30, what="Chromium's DevTools endpoint")[0][
            "webSocketDebuggerUrl"]

    async def attach(self):
        self.ws = await websockets.connect(self.page_ws_url(), max_size=None)
        self._reader = asyncio.ensure_future(self._read())
        for domain in ("Runtime", "Log", "Page"):
            await self.call(domain + ".enable")

    async def _read(self):
        async for raw in self.ws:
            m = json.loads(raw)
            if "id" in m and m["id"] in self._waiters:
                self._waiters.pop(m["id"]).set_result(m)
            elif "method" in m:
                self.events.append(m)

    async def call(self, method, **params):
        self._id += 1
        fut = asyncio.get_running_loop().create_future()
        self._waiters[self._id] = fut
        await self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        m = await asyncio.wait_for(fut, 30)
        if "error" in m:
            raise AssertionError("%s: %r" % (method, m["error"]))
        return m["result"]

    async def eval(self, expr):
        r = await self.call("Runtime.evaluate", expression=expr, returnByValue=True,
                            awaitPromise=True)
        if "exceptionDetails" in r:
            raise AssertionError("evaluating %s: %r" % (expr, r["exceptionDetails"]))
        return r["result"].get("value")

    async def wait_eval(self, expr, timeout, what):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = await self.eval(expr)
            except AssertionError as e:  # the document is still loading
                last = e
            else:
                if last:
                    return last
            await asyncio.sleep(0.2)
        raise AssertionError("timed out after %ss waiting for %s (last %r)" % (timeout, what, last))

    def errors(self):
        """Console errors, uncaught exceptions and browser log errors seen so far."""
        out = []
        for e in self.events:
            p = e["params"]
            if e["method"] == "Runtime.exceptionThrown":
                out.append(p["exceptionDetails"].get("text", "") + " " +
                           json.dumps(p["exceptionDetails"].get("exception", {}))[:300])
            elif e["method"] == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
                out.append("console.%s: %r" % (p["type"], p["args"]))
            elif e["method"] == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append("log: %s (%s)" % (p["entry"]["text"], p["entry"].get("url", "")))
        return out

    async def close(self):
        if self._reader:
            self._reader.cancel()
        if self.ws:
            await self.ws.close()

    def kill(self):
        self.proc.kill()
        self.proc.wait(10)
        shutil.rmtree(self.profile, ignore_errors=True)


def artifact_dir():
    """The build directory (where the binary is) holds the test's artifacts."""
    d = os.path.join(os.path.dirname(os.path.abspath(harness.BINARY)), "test-artifacts")
    os.makedirs(d, exist_ok=True)
    return d


async def apply_load(port, stop):
    """WebSocket clients on /echo and a room with a broadcast, until stop is set."""
    echo = [await websockets.connect("ws://127.0.0.1:%d/echo" % port) for _ in range(4)]
    room = "ws://127.0.0.1:%d/raw/dashboard-room" % port
    subs = [await websockets.connect(room) for _ in range(3)]
    pub = await websockets.connect(room + "?echo=0")
    try:
        i = 0
        while not stop.is_set():
            for ws in echo:
                await ws.send("e%d" % i)
                await asyncio.wait_for(ws.recv(), 10)
            await pub.send(b"b%d" % i)
            for ws in subs:
                await asyncio.wait_for(ws.recv(), 10)
            i += 1
            await asyncio.sleep(0.01)
    finally:
        for ws in echo + subs + [pub]:
            await ws.close()


class DashboardLoopbackTest(harness.ServerTestCase):
    def test_page_loads_updates_and_moves_under_load(self):
        r = harness.http_request(self.port, "GET", "/dashboard")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("Content-Type").startswith("text/html"))
        body = r.body.decode()
        # Self-contained: nothing loaded from anywhere else.
        for needle in ("http://", "https://", "<link rel=\"stylesheet\"", "src=\""):
            self.assertNotIn(needle, body)
        data = harness.http_request(self.http_port, "GET", "/dashboard/data")
        self.assertEqual(data.status, 200)
        self.assertIn("top_rooms", json.loads(data.body))

        browser = Chromium()
        try:
            asyncio.run(self.drive(browser))
        finally:
            browser.kill()

    async def drive(self, b):
        await b.attach()
        await b.call("Page.navigate", url="http://127.0.0.1:%d/dashboard" % self.http_port)
        await b.wait_eval("Number(document.body.dataset.updates || 0) >= 2", 20,
                          "two dashboard updates")
        idle_conns = await b.eval("document.getElementById('stat-connections').textContent")
        self.assertEqual(idle_conns, "0")
        stop = asyncio.Event()
        load = asyncio.ensure_future(apply_load(self.port, stop))
        try:
            await b.wait_eval("document.getElementById('stat-connections').textContent === '8'",
                              20, "8 WebSocket connections shown")
            await b.wait_eval("Number(document.getElementById('stat-msgs-in').textContent) > 0",
                              20, "messages in per second above zero")
            await b.wait_eval("Number(document.getElementById('stat-msgs-out').textContent) > 0",
                              20, "messages out per second above zero")
            await b.wait_eval(
                "[...document.querySelectorAll('#rooms td:first-child')]"
                ".some(td => td.textContent === 'dashboard-room')", 20, "the room in top rooms")
            await b.wait_eval("document.getElementById('stat-fanout-p99').textContent !== '–'",
                              20, "a fan-out percentile")
            shot = await b.call("Page.captureScreenshot", format="png")
        finally:
            stop.set()
            await load
        path = os.path.join(artifact_dir(), "dashboard-%s.png" % harness.BACKEND)
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        print("\ndashboard screenshot: %s" % path)
        self.assertGreater(os.path.getsize(path), 10000)
        await b.wait_eval("document.getElementById('stat-connections').textContent === '0'", 20,
                          "connections back to 0 after the load")
        self.assertEqual(b.errors(), [])
        await b.close()


class DashboardKeyTest(harness.ServerTestCase):
    CONFIG = {"api": {"keys": [KEY]}}

    def test_data_needs_the_key(self):
        for port in (self.port, self.http_port):
            r = harness.http_request(port, "GET", "/dashboard/data")
            self.assertEqual(r.status, 401)
            self.assertIn("error", json.loads(r.body))
            r = harness.http_request(port, "GET", "/dashboard/data",
                                     headers=[("Authorization", "apikey wrong")])
            self.assertEqual(r.status, 401)
            r = harness.http_request(port, "GET", "/dashboard/data",
                                     headers=[("Authorization", "apikey " + KEY)])
            self.assertEqual(r.status, 200)
            self.assertIn("workers", json.loads(r.body))
            # The page holds no data: it is served, and asks for the key.
            self.assertEqual(harness.http_request(port, "GET", "/dashboard").status, 200)
            # /metrics stays open, like /health.
            self.assertEqual(harness.http_request(port, "GET", "/metrics").status, 200)

    def test_page_asks_for_the_key_once(self):
        browser = Chromium()
        try:
            asyncio.run(self.drive(browser))
        finally:
            browser.kill()

    async def drive(self, b):
        await b.attach()
        await b.call("Page.navigate", url="http://127.0.0.1:%d/dashboard" % self.http_port)
        await b.wait_eval("getComputedStyle(document.getElementById('login')).display === 'flex'",
                          20, "the key prompt")
        await b.eval("document.getElementById('key').value = %s;"
                     "document.getElementById('key-submit').click(); true" % json.dumps(KEY))
        await b.wait_eval("Number(document.body.dataset.updates || 0) >= 2", 20,
                          "updates with the key")
        self.assertEqual(await b.eval("sessionStorage.getItem('ringcast.dashboard.apikey')"), KEY)
        self.assertEqual(
            await b.eval("getComputedStyle(document.getElementById('login')).display"), "none")
        # A reload keeps the key for the session: no prompt, data flows.
        await b.call("Page.reload")
        await b.wait_eval("Number(document.body.dataset.updates || 0) >= 1", 20,
                          "updates after a reload")
        # The first, keyless request was a 401 (the browser logs it); nothing else went wrong.
        errors = [e for e in b.errors() if "401" not in e]
        self.assertEqual(errors, [])
        await b.close()


if __name__ == "__main__":
    harness.main()

"""The fireworks web app's flow in a real browser (headless Debian Chromium) against the bridge
profile: the page is served from an allowed origin, connects to `/`, sends the app's
`{"type":"connection",...}`, gets its id, sends a several-hundred-KiB drawing payload that a
python3-websockets bridge receives and answers; a page from an origin not on the allow-list is
refused (HTTP 403 on the upgrade), which the browser reports as a failed WebSocket.

The pages report what they saw to the little HTTP server that serves them (GET /report?...), so
every step is checked from this test, and a browser that never ran makes the test fail.
"""

import asyncio
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import websockets  # noqa: E402  (Debian python3-websockets 10.4)

CHROMIUM = os.environ.get("RINGCAST_CHROMIUM", "/usr/bin/chromium")

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>fireworks</title></head><body><script>
const report = (q) => fetch('/report?' + new URLSearchParams(q)).catch(() => {});
const ws = new WebSocket('ws://127.0.0.1:%(ws_port)d/');
let id = null;
ws.onopen = () => {
  report({event: 'open', extensions: ws.extensions});
  ws.send(JSON.stringify({type: 'connection', origin: location.origin,
                          userAgent: navigator.userAgent}));
};
ws.onmessage = (ev) => {
  const m = JSON.parse(ev.data);
  if (m.code === 0 && m.data && id === null) {
    id = m.data.id;
    report({event: 'id', id: id});
    // What the web app sends: up to 9 fireworks with base64 PNG drawings.
    const png = 'data:image/png;base64,' + 'iVBORw0KGgo'.repeat(30000);
    const fireworks = [];
    for (let i = 0; i < 3; i++)
      fireworks.push({outer_layer: 'circle', outer_layer_color: [255, 0, i],
                      outer_layer_second_color: [0, 0, 255], path_speed: 1.5, path_wobble: 0.2,
                      outer_layer_specialfx: 'none', inner_layer: png});
    ws.send(JSON.stringify({id: id, fireworks: fireworks}));
  } else if (m.data && m.data.status) {
    report({event: 'status', status: m.data.status, id: m.id});
  }
};
ws.onerror = () => report({event: 'error'});
ws.onclose = (ev) => report({event: 'close', code: ev.code});
</script></body></html>"""


class PageServer:
    """Serves PAGE on a free 127.0.0.1 port and records the page's /report calls."""

    def __init__(self, page=PAGE):
        self.page = page
        self.reports = []
        self.cond = threading.Condition()
        self.ws_port = None  # set once the ringcast server is up
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                if url.path == "/report":
                    with outer.cond:
                        outer.reports.append(dict(urllib.parse.parse_qsl(url.query)))
                        outer.cond.notify_all()
                    body = b""
                elif url.path == "/":
                    body = (outer.page % {"ws_port": outer.ws_port}).encode()
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def origin(self):
        return "http://127.0.0.1:%d" % self.port

    def wait_report(self, pred, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for r in self.reports:
                    if pred(r):
                        return r
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no matching report from the page within %.0f s; got %r"
                                         % (timeout, self.reports))
                self.cond.wait(left)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Browser:
    """Headless Chromium on one URL (flags from the machine notes: no network chatter)."""

    def __init__(self, url, extra_args=()):
        if not os.access(CHROMIUM, os.X_OK):
            raise AssertionError("%s missing: tools/dev.sh deps installs Debian's chromium" % CHROMIUM)
        self.profile = tempfile.mkdtemp(prefix="ringcast-chromium-")
        args = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-extensions", "--user-data-dir=" + self.profile,
                *extra_args, url]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)

    def close(self):
        self.proc.kill()
        self.proc.wait(10)
        shutil.rmtree(self.profile, ignore_errors=True)


class BrowserBridgeTest(harness.ServerTestCase):
    @classmethod
    def setUpClass(cls):
        # Allow exactly the first page server's origin; the second one's is not on the list.
        cls.allowed_page = PageServer()
        cls.refused_page = PageServer()
        cls.CONFIG = {"origins": {"allowed": [cls.allowed_page.origin]}}
        super().setUpClass()
        for p in (cls.allowed_page, cls.refused_page):
            p.ws_port = cls.port

    @classmethod
    def tearDownClass(cls):
        for p in (cls.allowed_page, cls.refused_page):
            p.close()
        super().tearDownClass()

    def health(self):
        r = harness.http_request(self.http_port, "GET", "/health")
        return json.loads(r.body)

    def test_web_app_flow_through_bridge(self):
        page = self.allowed_page

        async def go():
            bridge = await websockets.connect("ws://127.0.0.1:%d/" % self.port, max_size=None)
            await bridge.send(json.dumps({"type": "bridge"}))
            browser = Browser(page.origin + "/")
            try:
                raw = await asyncio.wait_for(bridge.recv(), 30)
                m = json.loads(raw)
                self.assertIsInstance(m.get("id"), int, m.keys())
                self.assertEqual(len(m["fireworks"]), 3)
                self.assertGreater(len(raw), 900_000, "the drawings arrive whole")
                self.assertTrue(m["fireworks"][0]["inner_layer"].startswith("data:image/png;base64,"))
                r = await asyncio.to_thread(page.wait_report, lambda r: r.get("event") == "id", 10)
                self.assertEqual(int(r["id"]), m["id"])
                self.assertEqual(self.health()["connected_clients"], 1)
                await bridge.send(json.dumps({"id": m["id"], "data": {"id": m["id"], "status": "ready"}}))
                r = await asyncio.to_thread(page.wait_report,
                                            lambda r: r.get("event") == "status", 10)
                self.assertEqual(r, {"event": "status", "status": "ready", "id": str(m["id"])})
            finally:
                browser.close()
                await bridge.close()
            # The browser is gone: its id is free again.
            harness.wait_until(lambda: self.health()["connected_clients"] == 0, 10,
                               what="connected_clients back to 0")
        asyncio.run(go())

    DEFLATE = False  # [compression] enabled in this class's server

    def test_page_extensions(self):
        # Off by default: the browser's permessage-deflate offer is declined; on, it is agreed
        # without context takeover either way.
        page = self.allowed_page
        browser = Browser(page.origin + "/")
        try:
            r = page.wait_report(lambda r: r.get("event") == "open", 30)
            ext = r.get("extensions", "")
            if self.DEFLATE:
                self.assertIn("permessage-deflate", ext)
                self.assertIn("client_no_context_takeover", ext)
            else:
                self.assertEqual(ext, "")
        finally:
            browser.close()

    def test_refused_origin_gets_no_session(self):
        page = self.refused_page
        self.assertNotIn(page.origin, self.CONFIG["origins"]["allowed"])
        browser = Browser(page.origin + "/")
        try:
            r = page.wait_report(lambda r: r.get("event") == "close", 30)
            # A failed handshake reaches the page as close code 1006 (after onerror).
            self.assertEqual(r["code"], "1006")
            # Reports are separate requests: the error one may land after the close one.
            page.wait_report(lambda r: r.get("event") == "error", 10)
            self.assertFalse(any(r.get("event") == "id" for r in page.reports))
            self.assertEqual(self.health()["connected_clients"], 0)
        finally:
            browser.close()


class BrowserDeflateTest(BrowserBridgeTest):
    """The same web-app flow with [compression] enabled: Chromium agrees permessage-deflate and
    its 1 MB drawings arrive compressed, are inflated, and reach the bridge whole."""

    @classmethod
    def setUpClass(cls):
        cls.allowed_page = PageServer()
        cls.refused_page = PageServer()
        cls.CONFIG = {"origins": {"allowed": [cls.allowed_page.origin]},
                      "compression": {"enabled": True}}
        harness.ServerTestCase.setUpClass.__func__(cls)
        for p in (cls.allowed_page, cls.refused_page):
            p.ws_port = cls.port

    DEFLATE = True


if __name__ == "__main__":
    harness.main()

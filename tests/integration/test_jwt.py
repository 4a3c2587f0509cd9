#!/usr/bin/python3
"""JWT logins ([jwt]): RS256/ES256 tokens that the test makes itself (keys from the `openssl` CLI,
signatures from `openssl dgst -sign`, HS256 with Python's hmac), on the game chat (the seed's real
server: RS256, audience heavenland-api, user_id = sub; every bad token, even "bad-token", is
"the access token is expired or invalid") and on the native protocol (`auth`, `refresh`, and the
close with 4001 once a token expires), key rotation on SIGHUP (a broken key file keeps the keys in
force), and a key file that cannot be used at start.

Run: /usr/bin/python3 tests/integration/test_jwt.py --binary build/ringcast --backend epoll
"""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from ws_inbox import WsInbox, json_decoder  # noqa: E402

import websockets  # noqa: E402  (Debian python3-websockets 10.4)

CONNECTED = {"info": "connected"}
TOKEN_INVALID = {"error": "the access token is expired or invalid"}
AUD = "heavenland-api"
CLOSE_TOKEN_EXPIRED = 4001

KEYS = {}      # name -> private key path; name + ".pub" -> public key path
KEY_DIR = None


def openssl(*args, data=None):
    return subprocess.run(["openssl"] + list(args), input=data, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, check=True, timeout=60).stdout


def setUpModule():
    global KEY_DIR
    KEY_DIR = tempfile.mkdtemp(prefix="ringcast-jwt-keys-")
    for name, opts in (("rsa1", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
                       ("rsa2", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
                       ("ec1", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])):
        key = os.path.join(KEY_DIR, name + ".key")
        pub = os.path.join(KEY_DIR, name + ".pub")
        openssl("genpkey", *opts, "-out", key)
        openssl("pkey", "-in", key, "-pubout", "-out", pub)
        KEYS[name] = key
        KEYS[name + ".pub"] = pub


def tearDownModule():
    shutil.rmtree(KEY_DIR, True)


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def der_to_jose(der):
    """An ECDSA signature as OpenSSL writes it (DER SEQUENCE of r, s) as JOSE's r || s."""
    assert der[0] == 0x30, der
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02, der
        n = der[i + 1]
        out += der[i + 2:i + 2 + n].lstrip(b"\0").rjust(32, b"\0")
        i += 2 + n
    return out


def make_jwt(claims, key="rsa1", alg=None, header=None):
    """A token signed with KEYS[key] (RS256 or ES256 by the key type) or, for alg HS256, with `key`
    as the secret (bytes or str)."""
    if alg is None:
        alg = "ES256" if key.startswith("ec") else "RS256"
    head = {"alg": alg, "typ": "JWT"}
    head.update(header or {})
    signing = (b64url(json.dumps(head).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
    if alg == "HS256":
        secret = key if isinstance(key, bytes) else key.encode()
        sig = hmac.new(secret, signing, hashlib.sha256).digest()
    else:
        sig = openssl("dgst", "-sha256", "-sign", KEYS[key], data=signing)
        if alg == "ES256":
            sig = der_to_jose(sig)
    return signing.decode() + "." + b64url(sig)


def rsa_jwk(name, kid):
    modulus = openssl("rsa", "-pubin", "-in", KEYS[name + ".pub"], "-noout", "-modulus").decode()
    n = bytes.fromhex(modulus.strip().split("=", 1)[1])
    # openssl genpkey's default public exponent is 65537
    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64url(n), "e": "AQAB"}


def run_async(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class JwtCase(harness.ProcessTestCase):
    def setUp(self):
        super().setUp()
        self._clients = []
        self._files = []

    def tearDown(self):
        for srv in self._servers:
            if srv.proc is not None and srv.alive():
                rc = srv.stop(signal.SIGTERM)
                self.assertEqual(rc, 0, "ringcast did not stop cleanly (%r)\n%s" % (rc, srv.stderr_text()))
            text = srv.stderr_text()
            for marker in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
                self.assertNotIn(marker, text, text)
        for p in self._files:
            try:
                os.unlink(p)
            except OSError:
                pass
        super().tearDown()

    def key_file(self, text):
        path = harness.write_temp(text, suffix=".pem")
        self._files.append(path)
        return path

    def start(self, jwt, extra=""):
        lines = ["[jwt]"]
        for k, v in jwt.items():
            lines.append("%s = %s" % (k, json.dumps(v)))
        text = "\n".join(lines) + "\n" + extra
        text += "[profiles.gamechat]\npersistent = false\n"
        text += '[tokens]\n"tok-a" = { user_id = "u1", nickname = "Alice" }\n'
        return self.new_server(config_text=text)

    async def connect(self, srv, path):
        ws = await websockets.connect("ws://127.0.0.1:%d%s" % (srv.port, path), ping_interval=None,
                                      compression=None, open_timeout=10, close_timeout=3)
        c = WsInbox(ws, path, decode=json_decoder(lambda m: {"<unparseable>": m}),
                    ensure_ascii=False)
        self._clients.append(c)
        return c

    def scenario(self, fn, timeout=60):
        async def wrapped():
            try:
                await fn()
            finally:
                await asyncio.gather(*(c.close() for c in self._clients))
                self._clients = []
        run_async(wrapped(), timeout)

    async def native_auth(self, srv, token, want="authed"):
        c = await self.connect(srv, "/ws")
        await c.send({"op": "auth", "id": 1, "token": token})
        r = await c.next(what="the auth reply")
        self.assertEqual(r.get("type"), want, r)
        return c, r


class GamechatJwtTest(JwtCase):
    def test_heavenland_rs256_login(self):
        """The seed's real deployment: RS256, audience heavenland-api, user_id from sub. A game
        client logs in unchanged; every bad token of any form gets the seed's one error text."""
        srv = self.start({"public_key_file": KEYS["rsa1.pub"], "audience": AUD})
        now = int(time.time())
        good = {"sub": "HL365393213667", "aud": AUD, "iat": now, "exp": now + 600}
        pub_pem = read(KEYS["rsa1.pub"], "rb")
        bad = [
            ("not a JWT", "bad-token"),
            ("a number", 12345),
            ("expired beyond the leeway", make_jwt(dict(good, exp=now - 120))),
            ("not yet valid", make_jwt(dict(good, nbf=now + 600))),
            ("another audience", make_jwt(dict(good, aud="other-api"))),
            ("no audience", make_jwt({"sub": "HL1", "exp": now + 600})),
            ("signed by another RSA key", make_jwt(good, key="rsa2")),
            ("ES256 with a key not configured", make_jwt(good, key="ec1")),
            ("HS256 keyed with the public key (alg confusion)", make_jwt(good, key=pub_pem, alg="HS256")),
            ("alg none", b64url(json.dumps({"alg": "none"}).encode()) + "."
             + b64url(json.dumps(good).encode()) + "."),
        ]

        async def run():
            c = await self.connect(srv, "/chat")
            for label, token in bad:
                await c.send({"action": "login", "token": token})
                self.assertEqual(await c.next(what=label), TOKEN_INVALID, label)
            await c.send({"action": "login", "token": make_jwt(good)})
            self.assertEqual(await c.next(what="the login reply"), CONNECTED)
            await c.send({"action": "message", "message": "hello", "channel": "General"})
            echo = await c.next(what="the chat echo")
            self.assertEqual(echo["user_id"], "HL365393213667")
            self.assertIsNone(echo["nickname"])  # the real server fetched it; no claim here
            # A nickname claim, when the token has one, is the chat's nickname.
            d = await self.connect(srv, "/chat")
            await d.send({"action": "login", "token": make_jwt(dict(good, sub="HL2", nickname="Hero"))})
            self.assertEqual(await d.next(), CONNECTED)
            await d.send({"action": "message", "message": "hi"})
            echo = await d.next(what="the second echo")
            self.assertEqual((echo["user_id"], echo["nickname"]), ("HL2", "Hero"))
            # The [tokens] table keeps working next to JWTs.
            t = await self.connect(srv, "/chat")
            await t.send({"action": "login", "token": "tok-a"})
            self.assertEqual(await t.next(), CONNECTED)
        self.scenario(run)

    def test_hs256_in_jwt_section(self):
        srv = self.start({"hs256_secret": "jwt-section-secret", "leeway_s": 0})
        now = int(time.time())

        async def run():
            c = await self.connect(srv, "/chat")
            await c.send({"action": "login", "token": make_jwt({"sub": "HL5", "exp": now - 2},
                                                              key="jwt-section-secret", alg="HS256")})
            self.assertEqual(await c.next(), TOKEN_INVALID)  # no leeway configured
            await c.send({"action": "login", "token": make_jwt({"sub": "HL5", "exp": now + 60},
                                                              key="jwt-section-secret", alg="HS256")})
            self.assertEqual(await c.next(), CONNECTED)
        self.scenario(run)


class NativeJwtTest(JwtCase):
    def test_auth_refresh_and_close_at_expiry(self):
        srv = self.start({"public_key_file": KEYS["ec1.pub"], "leeway_s": 0})

        async def run():
            now = time.time()
            # A token that expires in ~3 s, refreshed in time: the session outlives the first exp.
            exp1 = int(now) + 3
            c, r = await self.native_auth(srv, make_jwt({"sub": "u9", "nickname": "Nine", "exp": exp1},
                                                        key="ec1"))
            self.assertEqual((r["user_id"], r["nickname"], r["expires"]), ("u9", "Nine", exp1))
            await c.send({"op": "refresh", "id": 2,
                          "token": make_jwt({"sub": "u9", "exp": int(now) + 120}, key="ec1")})
            r = await c.next(what="the refresh reply")
            self.assertEqual(r, {"type": "refreshed", "id": 2, "expires": int(now) + 120})

            # Another, never refreshed: closed with 4001 at its expiry.
            d, _ = await self.native_auth(srv, make_jwt({"sub": "u10", "exp": int(now) + 3}, key="ec1"))
            code = await d.wait_closed(timeout=15)
            self.assertEqual(code, CLOSE_TOKEN_EXPIRED)
            self.assertEqual(d.ws.close_reason, "token expired")
            self.assertGreaterEqual(time.time(), exp1 - 0.05)
            # The refreshed session is still open past the first token's exp.
            while time.time() < exp1 + 1.0:
                await asyncio.sleep(0.2)
            await c.send({"op": "ping", "id": 3})
            self.assertEqual(await c.next(what="a pong after the first exp"), {"type": "pong", "id": 3})
        self.scenario(run)

    def test_refresh_rules_and_bad_tokens(self):
        srv = self.start({"public_key_file": KEYS["ec1.pub"], "leeway_s": 0})
        now = int(time.time())

        async def run():
            c, _ = await self.native_auth(srv, make_jwt({"sub": "u1", "exp": now + 600}, key="ec1"))
            for label, token in (("another user", make_jwt({"sub": "u2", "exp": now + 900}, key="ec1")),
                                 ("expired", make_jwt({"sub": "u1", "exp": now - 5}, key="ec1")),
                                 ("not a JWT", "bad-token"),
                                 ("a table token", "tok-a")):
                await c.send({"op": "refresh", "id": label, "token": token})
                r = await c.next(what=label)
                self.assertEqual((r["type"], r["id"], r["code"]), ("error", label, "auth_failed"), r)
            await c.send({"op": "refresh", "id": 9})
            self.assertEqual((await c.next())["code"], "bad_request")
            # refresh on a session that logged in with the token table (which does not expire)
            t, r = await self.native_auth(srv, "tok-a")
            self.assertNotIn("expires", r)
            await t.send({"op": "refresh", "token": make_jwt({"sub": "u1", "exp": now + 60}, key="ec1")})
            self.assertEqual((await t.next())["code"], "auth_failed")
            # bad tokens for auth
            for token in ("bad-token", make_jwt({"sub": "u1", "exp": now + 60}, key="rsa1"),
                          make_jwt({"sub": "u1", "nbf": now + 600}, key="ec1")):
                b, r = await self.native_auth(srv, token, want="error")
                self.assertEqual(r["code"], "auth_failed")
            # A token without exp never expires: authed without "expires".
            n, r = await self.native_auth(srv, make_jwt({"sub": "forever"}, key="ec1"))
            self.assertNotIn("expires", r)
        self.scenario(run)


class KeyFileTest(JwtCase):
    def test_sighup_rotation_and_broken_file(self):
        path = self.key_file(read(KEYS["rsa1.pub"]))
        srv = self.start({"public_key_file": path, "audience": AUD})
        now = int(time.time())
        claims = {"sub": "HL7", "aud": AUD, "exp": now + 600}

        async def logins(want1, want2):
            for key, want in (("rsa1", want1), ("rsa2", want2)):
                c = await self.connect(srv, "/chat")
                await c.send({"action": "login", "token": make_jwt(claims, key=key)})
                self.assertEqual(await c.next(), want, key)
                await c.close()

        self.scenario(lambda: logins(CONNECTED, TOKEN_INVALID))
        with open(path + ".tmp", "w") as f:
            f.write(read(KEYS["rsa2.pub"]))
        os.replace(path + ".tmp", path)
        srv.send_signal(signal.SIGHUP)
        harness.wait_until(lambda: srv.stderr_text().count("configuration reloaded") >= 1, timeout=10,
                           what="the reload")
        self.scenario(lambda: logins(TOKEN_INVALID, CONNECTED))
        # A key file that cannot be used: the keys in force stay, and the error is logged.
        with open(path, "w") as f:
            f.write("not a key\n")
        srv.send_signal(signal.SIGHUP)
        harness.wait_until(lambda: srv.stderr_text().count("configuration reloaded") >= 2, timeout=10,
                           what="the second reload")
        self.assertIn("keeping the JWT keys in force", srv.stderr_text())
        self.scenario(lambda: logins(TOKEN_INVALID, CONNECTED))
        os.unlink(path)
        srv.send_signal(signal.SIGHUP)
        harness.wait_until(lambda: srv.stderr_text().count("configuration reloaded") >= 3, timeout=10,
                           what="the third reload")
        self.scenario(lambda: logins(TOKEN_INVALID, CONNECTED))

    def test_jwks_keys_by_kid(self):
        jwks = {"keys": [rsa_jwk("rsa1", "k1"), rsa_jwk("rsa2", "k2")]}
        srv = self.start({"public_key_file": self.key_file(json.dumps(jwks)), "audience": [AUD, "x"]})
        now = int(time.time())
        claims = {"sub": "HL8", "aud": AUD, "exp": now + 600}

        async def run():
            for key, kid, want in (("rsa1", "k1", CONNECTED), ("rsa2", "k2", CONNECTED),
                                   ("rsa2", "k1", TOKEN_INVALID), ("rsa1", "k3", TOKEN_INVALID),
                                   ("rsa2", None, CONNECTED)):
                c = await self.connect(srv, "/chat")
                header = {"kid": kid} if kid else {}
                await c.send({"action": "login", "token": make_jwt(claims, key=key, header=header)})
                self.assertEqual(await c.next(), want, (key, kid))
                await c.close()
        self.scenario(run)

    def test_unusable_key_file_at_start(self):
        for text in (None, "not a key\n", read(KEYS["rsa1"])):
            path = self.key_file(text) if text is not None else "/nonexistent/ringcast-jwt.pem"
            cfg = harness.write_temp('[jwt]\npublic_key_file = "%s"\n' % path)
            self._files.append(cfg)
            for extra in ([], ["--check-config"]):
                r = harness.run_binary(["--config", cfg, "--port", str(harness.free_port())] + extra)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(b"jwt.public_key_file", r.stderr)


if __name__ == "__main__":
    harness.main()

#!/usr/bin/python3
"""The seed stack's baseline: an echo server on Debian's python3-websockets (the library four of
the five seed servers use), for same-session ratios against ringcast's /echo.

    /usr/bin/python3 tools/python-echo-baseline.py --port 9100 &
    build/tools/ringcast-load echo --connections 100 --size 20 --duration 10 ws://127.0.0.1:9100/echo
"""
import argparse
import asyncio

import websockets


async def echo(ws, _path=None):
    async for message in ws:
        await ws.send(message)


async def main(host, port):
    # The seeds' settings: 1 MiB max message, library pings every 20 s.
    async with websockets.serve(echo, host, port, max_size=1 << 20):
        await asyncio.Future()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9100)
    a = ap.parse_args()
    try:
        asyncio.run(main(a.host, a.port))
    except KeyboardInterrupt:
        pass

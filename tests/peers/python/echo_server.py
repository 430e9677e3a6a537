"""Echo server for wsstream's interop tests, on the Python `websockets` library.

Usage: echo_server.py HOST PORT [--tls CERT KEY] [--protocols a,b]

Binds HOST:PORT (PORT 0 picks a free port), prints "PORT <n>" as the first
line on stdout, then serves until stdin reaches end of file (the test that
started it exited or dropped its handle) or it is killed.

Behaviour by request path:
  /echo               echoes every message, text as text and binary as binary
  /close-after-first  echoes the first message, then closes with 4001
                      "server says bye"
  /protocol           sends the negotiated subprotocol as a text message
                      ("none" without one), then echoes
  /ping               sends a ping with payload "are you there?", waits up to
                      5 s for the matching pong, sends the text message
                      "pong received" (or "no pong"), then echoes
Any other path is refused with close code 4004.
"""

import argparse
import asyncio
import logging
import ssl
import sys

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def handler(ws):
    path = ws.request.path
    try:
        if path == "/echo":
            await echo(ws)
        elif path == "/close-after-first":
            message = await ws.recv()
            await ws.send(message)
            await ws.close(4001, "server says bye")
        elif path == "/protocol":
            await ws.send(ws.subprotocol or "none")
            await echo(ws)
        elif path == "/ping":
            pong = await ws.ping(b"are you there?")
            try:
                await asyncio.wait_for(pong, 5)
                await ws.send("pong received")
            except TimeoutError:
                await ws.send("no pong")
            await echo(ws)
        else:
            await ws.close(4004, f"no such path {path}")
    except ConnectionClosed:
        pass


async def wait_for_stdin_eof():
    """Returns when stdin is closed, so no server outlives its test."""
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.buffer.read)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--protocols", help="comma-separated subprotocols the server supports")
    args = parser.parse_args()

    context = None
    if args.tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls[0], args.tls[1])
    protocols = args.protocols.split(",") if args.protocols else None

    async with serve(
        handler,
        args.host,
        args.port,
        ssl=context,
        subprotocols=protocols,
        # The tests send messages of a few MiB; the default limit is 1 MiB.
        max_size=64 * 2**20,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        await wait_for_stdin_eof()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(main())

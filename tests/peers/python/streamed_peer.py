"""Peer for wsstream's streamed-message interop tests, on the Python `websockets`
library (its asyncio implementation: `recv_streaming` and `send` of an async
iterator, which sends each item as a fragment of one message).

Usage:
  streamed_peer.py serve HOST PORT [--deflate MODE]
  streamed_peer.py connect URL [--deflate MODE]

`serve` binds HOST:PORT (PORT 0 picks a free port), prints "PORT <n>" as the
first line on stdout, then serves every connection until stdin reaches end of
file (the test that started it exited or dropped its handle) or it is killed.
`connect` opens one connection to URL, prints "EXTENSIONS <response header>",
serves it until it closes, prints "CLOSED <code> <reason>" (the close frame
received from the server) and exits 0; any error exits 1 with the reason on
stderr.

MODE is how permessage-deflate is offered (client) or accepted (server):
  off                  none (the default)
  default              websockets' defaults: context takeover both ways
  no-context-takeover  server_no_context_takeover and client_no_context_takeover

Every message received is read with `recv_streaming()`, fragment by fragment
(text is decoded, so its UTF-8 is checked). A text message starting with "CMD "
is a command; any other message is answered with the text message
  GOT <text|binary> <length> <sha1 hex> <fragments> <largest fragment>
(length and sizes in bytes of the payload, after inflating; a text fragment is
counted as websockets decodes it, so it may include up to 3 bytes of a
character begun in the fragment before). Commands:
  CMD SEND <text|binary> <size> <seed> <pause>
      sends a generated message of about <size> bytes (text: 1- to 4-byte
      characters, exactly <size> bytes or up to 3 more; binary: exactly <size>)
      as fragments of varied sizes that split characters, then the text
      message "SENT <kind> <length> <sha1 hex> <fragments>". If <pause> is not
      0, it stops once it has sent at least <pause> bytes and waits for the
      text message "GO" before sending the rest.
  CMD WHOLE <text|binary> <size> <seed>
      sends such a message unfragmented, then "SENT <kind> <length> <sha1> 1".
  CMD ACK <n>
      while the next data message arrives, sends "HALF <received>" as soon as
      at least <n> of its bytes have arrived, before reading the rest.
Anything else (an unknown command, "GO" out of place, a non-UTF-8 text) fails
the connection with close code 4000 and the reason on stderr.
"""

import argparse
import asyncio
import hashlib
import logging
import random
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)

# Sizes of the fragments sent, in turn: 1-, 2- and 3-byte ones split
# characters, 250000 is larger than the reader's buffer.
FRAGMENT_SIZES = [65536, 1, 3, 100003, 2, 7, 32768, 250000, 65521, 5]

# Characters of 1, 2, 3 and 4 bytes in UTF-8.
ALPHABET = ["a", "z", " ", "\n", "é", "ü", "ж", "Ω", "€", "✓", "中", "🦀", "😀", "𝄞"]

MAX_SIZE = 64 * 2**20


class PeerError(Exception):
    """The test broke this peer's protocol."""


def generate(kind, size, seed):
    """The payload of a generated message, as bytes."""
    rng = random.Random(seed)
    if kind == "binary":
        half = size // 2
        pattern = bytes(range(251)) * ((size - half) // 251 + 1)
        return rng.randbytes(half) + pattern[: size - half]
    if kind != "text":
        raise PeerError(f"unknown kind {kind!r}")
    parts = []
    length = 0
    while length < size:
        chars = "".join(rng.choices(ALPHABET, k=max(1, (size - length) // 3)))
        encoded = chars.encode()
        parts.append(encoded)
        length += len(encoded)
    payload = b"".join(parts)
    # Cut at a character boundary at or after `size`.
    end = size
    while end < len(payload) and (payload[end] & 0xC0) == 0x80:
        end += 1
    return payload[:end]


def digest(payload):
    return hashlib.sha1(payload).hexdigest()


async def send_fragmented(ws, kind, payload, pause):
    """Sends `payload` as one message, one frame per item; returns how many."""
    count = 0

    async def fragments():
        nonlocal count
        offset, i, paused = 0, 0, pause == 0
        while offset < len(payload):
            size = FRAGMENT_SIZES[i % len(FRAGMENT_SIZES)]
            i += 1
            chunk = payload[offset : offset + size]
            offset += len(chunk)
            count += 1
            yield chunk
            if not paused and offset >= pause:
                paused = True
                go = await ws.recv()
                if go != "GO":
                    raise PeerError(f"expected GO after {offset} bytes, got {go[:80]!r}")

    # Bytes items with text=True: text frames whose payloads split characters.
    await ws.send(fragments(), text=(kind == "text"))
    # websockets ends the message with an empty final frame.
    return count + 1


async def command(ws, words, state):
    match words:
        case ["SEND", kind, size, seed, pause]:
            payload = generate(kind, int(size), int(seed))
            count = await send_fragmented(ws, kind, payload, int(pause))
            await ws.send(f"SENT {kind} {len(payload)} {digest(payload)} {count}")
        case ["WHOLE", kind, size, seed]:
            payload = generate(kind, int(size), int(seed))
            await ws.send(payload, text=(kind == "text"))
            await ws.send(f"SENT {kind} {len(payload)} {digest(payload)} 1")
        case ["ACK", n]:
            state["ack"] = int(n)
        case _:
            raise PeerError(f"unknown command {' '.join(words)!r}")


async def handle(ws):
    """Serves one connection until it closes; raises PeerError on misuse."""
    state = {"ack": None}
    while True:
        sha1 = hashlib.sha1()
        kind, length, count, largest, head = None, 0, 0, 0, b""
        ack = state["ack"]
        state["ack"] = None
        async for fragment in ws.recv_streaming():
            if isinstance(fragment, str):
                kind, data = "text", fragment.encode()
            else:
                kind, data = "binary", fragment
            sha1.update(data)
            length += len(data)
            count += 1
            largest = max(largest, len(data))
            if len(head) < 256:
                head += data[: 256 - len(head)]
            if ack is not None and length >= ack:
                await ws.send(f"HALF {length}")
                ack = None
        if kind == "text" and length < 256 and head.startswith(b"CMD "):
            await command(ws, head.decode().split()[1:], state)
        else:
            if ack is not None:
                raise PeerError(f"the message ended at {length} bytes, before ACK {ack}")
            await ws.send(f"GOT {kind} {length} {sha1.hexdigest()} {count} {largest}")


async def handle_or_fail(ws):
    try:
        await handle(ws)
    except ConnectionClosed:
        pass
    except PeerError as err:
        print(f"streamed_peer.py: {err}", file=sys.stderr, flush=True)
        await ws.close(4000, str(err)[:120])


async def wait_for_stdin_eof():
    """Returns when stdin is closed, so no server outlives its test."""
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.buffer.read)


def deflate_args(mode, factory):
    """The `compression` and `extensions` arguments for `mode`."""
    if mode == "off":
        return {"compression": None}
    if mode == "default":
        return {"compression": "deflate"}
    return {
        "compression": None,
        "extensions": [factory(server_no_context_takeover=True, client_no_context_takeover=True)],
    }


async def run_server(args):
    options = deflate_args(args.deflate, ServerPerMessageDeflateFactory)
    async with serve(handle_or_fail, args.host, args.port, max_size=MAX_SIZE, **options) as server:
        print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
        await wait_for_stdin_eof()


async def run_client(args):
    options = deflate_args(args.deflate, ClientPerMessageDeflateFactory)
    async with connect(args.url, max_size=MAX_SIZE, **options) as ws:
        header = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        print(f"EXTENSIONS {header}", flush=True)
        try:
            await handle(ws)
        except ConnectionClosedOK:
            pass
        except PeerError as err:
            await ws.close(4000, str(err)[:120])
            raise
    print(f"CLOSED {ws.close_code} {ws.close_reason}", flush=True)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="role", required=True)
    serve_parser = sub.add_parser("serve")
    serve_parser.add_argument("host")
    serve_parser.add_argument("port", type=int)
    connect_parser = sub.add_parser("connect")
    connect_parser.add_argument("url")
    for p in (serve_parser, connect_parser):
        p.add_argument("--deflate", choices=["off", "default", "no-context-takeover"], default="off")
    args = parser.parse_args()
    try:
        asyncio.run(run_server(args) if args.role == "serve" else run_client(args))
    except Exception as err:  # noqa: BLE001 - the test reads the reason on stderr
        print(f"streamed_peer.py: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    main()

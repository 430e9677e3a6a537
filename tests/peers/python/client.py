"""Client for wsstream's interop tests, on the Python `websockets` library.

Usage: client.py URL [--count N] [--size BYTES] [--no-compression]

Connects to URL (offering permessage-deflate, websockets' default, unless
--no-compression), sends N messages (default 20) alternating text and
binary of about BYTES bytes each (default 10000; compressible text, and
binary that is half pattern, half noise), checks that each comes back
unchanged, then closes with 1000. Prints "EXTENSIONS <response header>"
after the handshake and "OK <n>" at the end; exits 1 with the reason on
stderr on any mismatch or error.
"""

import argparse
import asyncio
import random
import sys

from websockets.asyncio.client import connect


def message(i, size):
    if i % 2 == 0:
        record = f'{{"seq":{i},"kind":"quote","bid":101.25,"ask":101.5,"note":"ünïcødé ✓"}}'
        return (record * (size // len(record) + 1))[:size]
    rng = random.Random(i)
    half = size // 2
    return bytes(j % 251 for j in range(half)) + rng.randbytes(size - half)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--no-compression", action="store_true")
    args = parser.parse_args()

    compression = None if args.no_compression else "deflate"
    async with connect(args.url, compression=compression, max_size=64 * 2**20) as ws:
        print(f"EXTENSIONS {ws.response.headers.get('Sec-WebSocket-Extensions', '')}", flush=True)
        for i in range(args.count):
            sent = message(i, args.size)
            await ws.send(sent)
            echoed = await asyncio.wait_for(ws.recv(), 30)
            if echoed != sent:
                print(f"message {i} came back different", file=sys.stderr)
                sys.exit(1)
        await ws.close(1000, "done")
    print(f"OK {args.count}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())

#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/seed-*.

Each seed is a small, meaningful input in the format its target reads (see
the comment at the top of each fuzz_targets/*.rs): valid frames of every
opcode and length form, valid and invalid handshakes, and operation
sequences that open, talk and close. Run it after changing an input format:

    python3 fuzz/make_seeds.py
"""

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def frame(opcode, payload=b"", fin=True, mask=None, rsv=0, long_form=None):
    """One frame. long_form forces the 16- or 64-bit length encoding."""
    b0 = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if long_form == 64 or (long_form is None and n > 0xFFFF):
        head = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    elif long_form == 16 or (long_form is None and n > 125):
        head = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, mbit | n])
    if mask:
        head += bytes(mask)
        payload = bytes(p ^ mask[i % 4] for i, p in enumerate(payload))
    return head + payload


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- frame_decoder
# [config] [n] [n chunk sizes] [wire]; config bit 0 role (1 = server, frames
# masked), bits 1-3 index into [0, 1, 125, 126, 1000, 65535, 65536, 1 << 30].


def frame_decoder():
    client, server = 6 << 1, (6 << 1) | 1
    big = 7 << 1
    key = [0x37, 0xFA, 0x21, 0x3D]
    whole = bytes([0])
    bytewise = bytes([1, 1])
    odd = bytes([3, 3, 1, 7])
    for role, m in (("client", None), ("server", key)):
        cfg = client if role == "client" else server
        write("frame_decoder", f"{role}-text", bytes([cfg]) + whole + frame(TEXT, b"Hello", mask=m))
        write("frame_decoder", f"{role}-binary-16bit", bytes([cfg]) + odd + frame(BINARY, bytes(range(200)), mask=m))
        write(
            "frame_decoder",
            f"{role}-fragments-and-controls",
            bytes([cfg])
            + bytewise
            + frame(TEXT, b"Hel", fin=False, mask=m)
            + frame(PING, b"ping", mask=m)
            + frame(CONT, b"lo", mask=m)
            + frame(PONG, b"", mask=m)
            + frame(CLOSE, struct.pack(">H", 1000) + b"bye", mask=m),
        )
    write("frame_decoder", "client-64bit-length", bytes([big]) + odd + frame(BINARY, b"0123456789", long_form=64))
    write("frame_decoder", "server-16bit-short", bytes([server]) + whole + frame(BINARY, b"abc", mask=key, long_form=16))
    write("frame_decoder", "client-over-limit", bytes([2 << 1]) + whole + frame(BINARY, b"x" * 126))
    write("frame_decoder", "client-rsv1-allowed", bytes([client | 0x10]) + whole + frame(BINARY, b"z", rsv=0x40))
    write("frame_decoder", "client-huge-announced", bytes([big]) + whole + bytes([0x82, 127, 0, 0, 0, 0, 0x10, 0, 0, 0]) + b"abc")
    write("frame_decoder", "server-unmasked", bytes([server]) + whole + frame(TEXT, b"no mask"))
    write("frame_decoder", "client-reserved-opcode", bytes([client]) + whole + bytes([0x83, 0]))


# ---------------------------------------------------------- handshake_response
# [mode] [n] [n chunk sizes] [response]; mode bit 0 inserts the right
# Sec-WebSocket-Accept after the status line, bit 1 replaces "$A" with it,
# bit 2 pads with (mode >> 3) * 2200 bytes of filler fields.

OK_HEAD = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"


def handshake_response():
    write("handshake_response", "valid-inserted-accept", bytes([1, 0]) + OK_HEAD + b"\r\n")
    write(
        "handshake_response",
        "valid-placeholder-protocol-and-frame",
        bytes([2, 2, 5, 9]) + OK_HEAD + b"Sec-WebSocket-Accept: $A\r\nSec-WebSocket-Protocol: b\r\n\r\n\x81\x02hi",
    )
    write(
        "handshake_response",
        "valid-bytewise-lowercase",
        bytes([2, 1, 1]) + b"HTTP/1.1 101 OK\r\nupgrade: WebSocket\r\nconnection: keep-alive, upgrade\r\nsec-websocket-accept: $A\r\n\r\n",
    )
    write("handshake_response", "wrong-accept", bytes([0, 0]) + OK_HEAD + b"Sec-WebSocket-Accept: AAAA\r\n\r\n")
    write("handshake_response", "unoffered-protocol", bytes([1, 0]) + OK_HEAD + b"Sec-WebSocket-Protocol: c\r\n\r\n")
    write("handshake_response", "extension", bytes([1, 0]) + OK_HEAD + b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
    write("handshake_response", "redirect", bytes([0, 0]) + b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n")
    write("handshake_response", "too-long", bytes([1 | 4 | (31 << 3), 1, 200]) + OK_HEAD + b"\r\n")
    write("handshake_response", "lf-only", bytes([2, 0]) + b"HTTP/1.1 101 x\nUpgrade: websocket\nConnection: upgrade\nSec-WebSocket-Accept: $A\n\n")


# -------------------------------------------------------------- server_request
# [mode] [n] [n chunk sizes] [request]; mode picks the protocol answered
# (none or one offered), bit 7 pads with filler fields.

REQ = (
    b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)


def server_request():
    write("server_request", "rfc-example", bytes([1, 0]) + REQ + b"Sec-WebSocket-Protocol: chat, superchat\r\n\r\n")
    write("server_request", "bytewise-with-frame", bytes([2, 1, 1]) + REQ + b"Sec-WebSocket-Protocol: a\r\nSec-WebSocket-Protocol: b\r\n\r\n\x81\x82abcd\x01\x02")
    write("server_request", "no-protocol", bytes([0, 2, 7, 30]) + REQ + b"Origin: http://example.com\r\n\r\n")
    write("server_request", "post", bytes([0, 0]) + b"POST / HTTP/1.1\r\nHost: x\r\n\r\n")
    write("server_request", "http10", bytes([0, 0]) + REQ.replace(b"HTTP/1.1", b"HTTP/1.0") + b"\r\n")
    write("server_request", "version-8", bytes([0, 0]) + REQ.replace(b"Version: 13", b"Version: 8") + b"\r\n")
    write("server_request", "bad-key", bytes([0, 0]) + REQ.replace(b"dGhlIHNhbXBsZSBub25jZQ==", b"c2hvcnQ=") + b"\r\n")
    write("server_request", "too-long", bytes([0x80 | 120, 1, 200]) + REQ + b"\r\n")


# ------------------------------------------------------------------ connection
# [config] [op]...; config bit 0 role (1 = server), bits 1-2 limits, bits 3-4
# the streamed limit (0 the message limit, 1 none). Ops are `op % 22`, with
# parameters read as fuzz/src/lib.rs's Input reads them.


def text_p(length, seed=1):
    # Input::text: size() (u8 % 16 in 0..=9, then below(64)), two seed bytes.
    return bytes([0, length % 64, seed, seed])


def bin_p(length, seed=1):
    return bytes([0, length % 64, seed])


def deliver(n):
    return bytes([11, n])


def peer_key(role):
    """The masking key a peer op reads: only when the peer is a client."""
    return b"\x11\x22\x33\x44" if role == 1 else b""


def peer_msg(role, text, length, cuts=(), ping_between=False):
    """Op 4: a message from the peer in len(cuts) + 1 fragments."""
    out = bytes([4, 1 if text else 0]) + (text_p(length) if text else bin_p(length))
    out += bytes([1 if ping_between else 0, len(cuts)]) + bytes(cuts)
    for i in range(len(cuts) + 1):
        out += peer_key(role)
        if i < len(cuts) and ping_between:
            out += bytes([1, 1]) + bin_p(3, seed=i) + peer_key(role)
    return out


def peer_msg_sized(role, text, size, cuts=()):
    """Op 4 with a size of up to 2047 bytes (Input::size's below(2048))."""
    sel = bytes([12]) + struct.pack(">I", size) + bytes([5])
    if text:
        sel += bytes([1])  # Input::text reads a start byte after the seed
    out = bytes([4, 1 if text else 0]) + sel + bytes([0, len(cuts)]) + bytes(cuts)
    for _ in range(len(cuts) + 1):
        out += peer_key(role)
    return out


def fragment(text, length, last, seed=1):
    """Op 19: send_fragment of a text or binary payload."""
    return bytes([19, 1 if text else 0, 0 if last else 1]) + (text_p(length, seed) if text else bin_p(length, seed))


def peer_close(role, code=True):
    if not code:
        return bytes([8, 0]) + peer_key(role)
    return bytes([8, 1, 0]) + text_p(3) + peer_key(role)


# Parameters of each broken-frame kind after its selector (see peer_broken).
BROKEN_ARGS = {0: [2], 2: [1], 5: [3], 8: [0, 0]}


def broken(role, kind):
    out = bytes([10]) + peer_key(role) + bytes([kind])
    if kind == 1:
        out += b"\x55\x66\x77\x88" if role == 0 else b""
    out += bytes(BROKEN_ARGS.get(kind, []))
    if kind == 8:
        out += peer_key(role)
    if kind == 10:
        out += peer_key(role)
    return out


def connection():
    SEND_TEXT, SEND_BIN, PING_, CLOSE_, FLOOD, RAW = 0, 1, 2, 3, 7, 9
    WRITE, WRITEV, TAKE_PONG = 13, 14, 15
    drain = bytes([WRITE, 0xFF, 0xFF])
    for role in (0, 1):
        name = "client" if role == 0 else "server"
        # Messages both ways, a ping, closes, everything written.
        write(
            "connection",
            f"{name}-conversation",
            bytes([role])
            + bytes([SEND_TEXT]) + text_p(20)
            + bytes([SEND_BIN, 1]) + bin_p(40)
            + bytes([PING_]) + bin_p(4)
            + peer_msg(role, True, 30)
            + deliver(7) + deliver(200)
            + bytes([WRITEV, 3, 0, 5]) + drain
            + bytes([CLOSE_, 1, 0]) + text_p(5)
            + peer_close(role)
            + deliver(200) + drain,
        )
        # A fragmented message with pings between fragments, fed in pieces.
        write(
            "connection",
            f"{name}-fragments",
            bytes([role])
            + peer_msg(role, False, 50, cuts=(10, 20, 45), ping_between=True)
            + peer_msg(role, True, 9, cuts=(4,))
            + deliver(3) + deliver(5) + deliver(200) + bytes([TAKE_PONG]) + drain
            + peer_close(role, code=False) + deliver(200) + drain,
        )
        write(
            "connection",
            f"{name}-ping-flood",
            bytes([role, FLOOD, 63]) + peer_key(role) * 64 + deliver(255)
            + bytes([WRITE, 0, 3]) + bytes([FLOOD, 40]) + peer_key(role) * 41 + deliver(255) + drain,
        )
        for kind in range(12):
            write(
                "connection",
                f"{name}-broken-{kind}",
                bytes([role, SEND_TEXT]) + text_p(3) + broken(role, kind) + deliver(200) + drain,
            )
    STREAM, CANCEL, DISCARD, ABANDON = 16, 17, 18, 21
    events = lambda n: bytes([12, n])  # deliver through receive_event
    for role in (0, 1):
        name = "client" if role == 0 else "server"
        # Messages read in chunks as their bytes arrive; one discarded
        # part-way, the next whole; a request withdrawn before it began.
        write(
            "connection",
            f"{name}-streamed-read",
            bytes([role])
            + peer_msg(role, True, 50, cuts=(10, 20, 45), ping_between=True)
            + peer_msg(role, False, 40, cuts=(13,))
            + peer_msg(role, True, 30, cuts=(7,))
            + bytes([STREAM]) + events(5) + events(9) + events(30) + events(200)
            + bytes([STREAM]) + events(12) + bytes([DISCARD]) + events(4) + events(200)
            + bytes([STREAM, CANCEL]) + deliver(200) + bytes([TAKE_PONG]) + drain
            + peer_close(role) + events(200) + drain,
        )
        # A message reassembled whole, then asked for in chunks part-way;
        # then `receive` drops the chunks of the next one.
        write(
            "connection",
            f"{name}-streamed-switch",
            bytes([role])
            + peer_msg(role, False, 60, cuts=(20, 40))
            + peer_msg(role, True, 33, cuts=(5, 6))
            + peer_msg(role, False, 8)
            # Exactly the first frame (a request while a frame is half
            # read is a known bug: fuzz/artifacts/connection/).
            + deliver(22 if role == 0 else 26) + bytes([STREAM])
            + events(51 if role == 0 else 63) + bytes([STREAM]) + events(3)
            + deliver(200) + drain,
        )
        # Fragments out with a ping between; a whole message after; then a
        # message abandoned part-way: close 1011.
        write(
            "connection",
            f"{name}-fragments-out",
            bytes([role])
            + fragment(True, 10, False) + bytes([PING_]) + bin_p(4) + fragment(False, 0, False)
            + fragment(True, 20, True) + bytes([SEND_BIN, 0]) + bin_p(9)
            + bytes([WRITE, 0, 7]) + fragment(False, 30, False, seed=2) + bytes([ABANDON]) + drain
            + peer_close(role) + deliver(200) + drain,
        )
        # A whole message sent in the middle of a fragmented one abandons it.
        write(
            "connection",
            f"{name}-send-inside-fragments",
            bytes([role])
            + fragment(False, 5, False) + bytes([SEND_TEXT]) + text_p(3) + drain
            + fragment(False, 5, True) + bytes([ABANDON]) + drain,
        )
    # Limits of 125 with no streamed limit: 135 bytes in two frames is over
    # the message limit only, and arrives in chunks.
    write(
        "connection",
        "client-streamed-past-message-limit",
        bytes([(1 << 1) | (1 << 3)])
        + bytes([STREAM]) + peer_msg_sized(0, False, 135, cuts=(70,)) + events(255)
        + peer_msg_sized(0, True, 60) + events(255) + drain,
    )
    # Tight limits (125): a 126-byte message fails with 1009.
    write(
        "connection",
        "client-over-limit",
        bytes([1 << 1]) + bytes([4, 0, 10, 3, 9, 0, 0]) + deliver(255) + drain,
    )
    write("connection", "client-raw", bytes([0, RAW, 7]) + b"\x81\x05hello" + deliver(20) + drain)


# ---------------------------------------------------------------------- stream
# [config] [op]...; config bits 0-2 pick the server's answer (0-4 valid),
# bit 3 a 1 KiB high-water mark, bit 4 vectored writes. Ops are `op % 28`.

# Streamed reads (op 24): [24, mode (0 Stream, 1 AsyncRead, 2 mixed), buffer
# size index (1, 2, 3, 5, 64, 1000, 70000), chunks - 1, patience].
STREAM_READ = 24
# Streamed writes (op 26): [26, text, fragment size index (0 default, 1, 2, 3,
# 125, 126, ...)] + source + [patience, steps - 1] (+ a bool with the default
# size), then steps: [0, 0, n] a Sink chunk of n (< 8) bytes, [0, 3] a Sink
# chunk of the rest, [4, 3] the rest as Utf8Bytes, [5, b, k] invalid text,
# [6, 3] poll_write of the rest, [8, as_sink] flush, [10, as_sink] finish.
STREAM_WRITE = 26


def stream_read(mode, buf, chunks, patience=0):
    return bytes([STREAM_READ, mode, buf, chunks - 1, patience])


def stream_write(text, size_index, source, steps, patience=0):
    out = bytes([STREAM_WRITE, 1 if text else 0, size_index]) + source
    out += bytes([patience, len(steps) - 1])
    if size_index == 0:
        out += bytes([0])
    return out + b"".join(steps)


def peer_fragments(text, length, cuts, seed=1):
    """Peer op 0: one message in len(cuts) + 1 fragments, no pings between."""
    out = bytes([17, 0, 1 if text else 0]) + (text_p(length, seed) if text else bin_p(length, seed))
    return out + bytes([len(cuts)]) + bytes(cuts) + bytes([1] * len(cuts))


def stream():
    OPENED, SEND, POLL_SEND, CANCEL_SEND, FLUSH, CLOSE_W, NEXT, WS_CLOSE = 0, 3, 5, 7, 8, 9, 10, 13
    CLOSED, DROP_CLOSED, DROP, PEER, PLAN, WAKE, YIELD, ADVANCE = 14, 15, 16, 17, 19, 21, 22, 23
    open_ = bytes([YIELD, 7, OPENED, YIELD, 7, OPENED])
    peer_text = bytes([PEER, 0, 1]) + text_p(12) + bytes([0])
    peer_close = bytes([PEER, 6, 1, 0]) + text_p(4)
    write(
        "stream",
        "conversation",
        bytes([0]) + open_
        + bytes([SEND, 1]) + text_p(10) + bytes([1])
        + peer_text + bytes([NEXT, 2])
        + bytes([SEND, 0]) + bin_p(30) + bytes([0]) + bytes([FLUSH])
        + bytes([WS_CLOSE, 0, 0]) + text_p(3) + bytes([FLUSH])
        + peer_close + bytes([NEXT, 3, CLOSED, 0, CLOSED, 0]),
    )
    write(
        "stream",
        "partial-io-and-backpressure",
        bytes([8 | 16]) + open_
        + bytes([PLAN, 6, 0, 16, 32, 8, 24, 11, 0, 16])
        + bytes([PLAN, 3, 1, 0, 4, 8, 0])
        + bytes([SEND, 0, 14, 2, 9, 1]) + bytes([POLL_SEND, 3, WAKE, POLL_SEND, 3])
        + peer_text + bytes([NEXT, 3, CANCEL_SEND, FLUSH, WAKE, FLUSH]),
    )
    write(
        "stream",
        "keepalive",
        bytes([0]) + open_ + bytes([NEXT, 0, ADVANCE, 3, NEXT, 0, PEER, 5, NEXT, 0, ADVANCE, 3, NEXT, 0, ADVANCE, 3, NEXT, 0]),
    )
    write(
        "stream",
        "closed-only-then-peer-close",
        bytes([4]) + bytes([CLOSED, 0, YIELD, 7]) + peer_text + peer_close + bytes([CLOSED, 0, DROP, 2]),
    )
    write(
        "stream",
        "reader-dropped-writer-closes",
        bytes([0]) + open_ + bytes([DROP, 0]) + bytes([PEER, 4, 1, 0, 4, 9]) + bytes([CLOSE_W, CLOSE_W]) + peer_close + bytes([FLUSH]),
    )
    # A fragmented text message read as a Stream of chunks, then the next
    # one whole; a third read through AsyncRead with a 1-byte buffer and
    # dropped after 3 reads, then a fourth whole: it must still come.
    write(
        "stream",
        "streamed-read",
        bytes([0]) + open_
        + peer_fragments(True, 40, (10, 20, 30)) + peer_fragments(False, 50, (25,), seed=2)
        + peer_fragments(True, 60, (7, 33), seed=3) + peer_fragments(False, 20, (), seed=4)
        + stream_read(0, 4, 16, patience=1) + bytes([NEXT, 0])
        + stream_read(1, 0, 3) + bytes([NEXT, 0])
        + bytes([WS_CLOSE, 0, 0]) + text_p(3) + peer_close + bytes([FLUSH, NEXT, 3, CLOSED, 0]),
    )
    # next_streamed before anything arrived (dropped pending), then the
    # message arrives and a plain next() takes it; mixed polling after.
    write(
        "stream",
        "streamed-read-cancelled",
        bytes([0]) + open_
        + stream_read(0, 4, 4) + peer_fragments(False, 60, (30,)) + bytes([NEXT, 0])
        + peer_fragments(True, 30, (3, 4, 5)) + stream_read(2, 2, 16, patience=2) + bytes([1, 0, 1, 0, 1, 0, 1, 0])
        + peer_close + bytes([NEXT, 3, CLOSED, 0]),
    )
    # A text message written in 3-byte fragments: a Sink chunk, an
    # AsyncWrite, a flush, a finish; then an ordinary message after it.
    write(
        "stream",
        "streamed-write",
        bytes([0]) + open_
        + stream_write(True, 3, text_p(20), [bytes([0, 0, 5]), bytes([6, 3]), bytes([8, 1]), bytes([0, 3]), bytes([10, 1])])
        + bytes([SEND, 0]) + bin_p(10) + bytes([1])
        + bytes([WS_CLOSE, 0, 0]) + text_p(3) + peer_close + bytes([FLUSH, NEXT, 3, CLOSED, 0]),
    )
    # A binary message dropped part-way (after 2-byte fragments were
    # flushed): the close handshake starts with 1011.
    write(
        "stream",
        "streamed-write-abandoned",
        bytes([0]) + open_
        + stream_write(False, 2, bin_p(30), [bytes([0, 0, 7]), bytes([8, 0]), bytes([0, 0, 3])])
        + bytes([FLUSH]) + peer_close + bytes([FLUSH, NEXT, 3, CLOSED, 0]),
    )
    # Text with invalid chunks between valid ones, as Bytes and Utf8Bytes,
    # on a small write high-water mark with partial writes.
    write(
        "stream",
        "streamed-write-invalid-text",
        bytes([8]) + open_ + bytes([PLAN, 2, 0, 16, 32, 24])
        + stream_write(True, 0, text_p(40), [bytes([0, 0, 6]), bytes([5, 3, 1]), bytes([4, 3]), bytes([5, 0, 0]), bytes([10, 0])], patience=3)
        + bytes([FLUSH, WAKE, FLUSH]) + peer_close + bytes([NEXT, 3, CLOSED, 0]),
    )
    write("stream", "garbage-from-server", bytes([0]) + open_ + bytes([PEER, 7, 6]) + b"\x8f\x00\x81\x80ab" + bytes([NEXT, 3]))
    write("stream", "bad-accept", bytes([5]) + open_ + bytes([CLOSED, 0]))
    write("stream", "read-error", bytes([0]) + open_ + bytes([PLAN, 0, 1, 7, NEXT, 2]))


def deflate():
    # [offer] [policy] then ops: 0 = the client sends a message (size byte,
    # pattern seed, text flag, then piece sizes), 1/2 = a raw frame.
    send_small = bytes([0, 5, 7, 1, 0])
    send_large = bytes([0, 12, 200, 0, 0, 3, 0, 9])
    write("deflate", "defaults", bytes([0, 0]) + send_small + send_large + send_small)
    write("deflate", "no-takeover-8-bits", bytes([0b00000011, 0b00000011]) + send_large + send_large)
    write("deflate", "15-bits-threshold", bytes([0xFC | 0x10, 0xE0]) + send_small + send_large)
    write("deflate", "raw-after-send", bytes([0, 0]) + send_small + bytes([1, 5, 3, 1, 1, 0, 1]))


if __name__ == "__main__":
    deflate()
    frame_decoder()
    handshake_response()
    server_request()
    connection()
    stream()

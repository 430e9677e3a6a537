'use strict';
// Peer for wsstream's streamed-message interop tests, on the Node.js `ws`
// library: it sends messages in fragments with `ws.send(chunk, { fin: false })`
// ... `{ fin: true }`, and digests the messages it receives (ws hands them over
// whole, however they were fragmented).
//
// Usage: node streamed_peer.js [--connect URL] [--deflate
//            [--server-no-context-takeover] [--client-no-context-takeover]
//            [--server-max-window-bits N] [--client-max-window-bits N]]
//
// Without --connect it listens on 127.0.0.1 on a free port, prints
// "PORT <n>" as the first line on stdout, then serves every connection until
// stdin reaches end of file (the test that started it exited or dropped its
// handle) or it is killed. With --connect it opens one connection to URL,
// serves it, and exits 0 once it is closed (1 on any error, with the reason on
// stderr). The deflate flags are those of echo_server.js (deflate_flags.js):
// without --deflate no extension is offered or accepted.
//
// Every message received that is not a command is answered with the text
// message
//   GOT <text|binary> <length> <sha1 hex>
// A text message starting with "CMD " is a command:
//   CMD SEND <text|binary> <size> <seed> <pause>
//       sends a generated message of about <size> bytes (text: 1- to 4-byte
//       characters, exactly <size> bytes or up to 3 more; binary: exactly
//       <size>) with ws.send(chunk, { fin }) in fragments of varied sizes
//       (some empty, some splitting characters; the last one carries data and
//       fin), then the text message "SENT <kind> <length> <sha1 hex>
//       <fragments>". If <pause> is not 0, it stops once it has sent at least
//       <pause> bytes and waits for the text message "GO" before the rest.
//   CMD WHOLE <text|binary> <size> <seed>
//       sends such a message unfragmented, then "SENT <kind> <length> <sha1> 1".
// Anything else (an unknown command, a message other than GO during a pause)
// closes the connection with 4000 and writes the reason to stderr.
//
// On stdout, for each connection:
//   EXTENSIONS <Sec-WebSocket-Extensions of the 101 response, or empty>
//   CLOSED <code> <reason>   when the connection is closed (the code of the
//                            peer's close frame; 1006 when none came)
//   ERROR <message>          when ws fails the connection

const crypto = require('crypto');
const { WebSocket, WebSocketServer } = require('ws');
const deflateFlags = require('./deflate_flags');
const { usage, fail, number } = require('./cli').forScript('streamed_peer.js');

// Sizes of the fragments sent, in turn: 0 is an empty fragment, 1, 2 and 3
// split characters, 250000 is larger than the reader's buffer.
const FRAGMENT_SIZES = [65536, 1, 3, 0, 100003, 2, 7, 32768, 250000, 65521, 5];

// Characters of 1, 2, 3 and 4 bytes in UTF-8.
const ALPHABET = ['a', 'z', ' ', '\n', 'é', 'ü', 'ж', 'Ω', '€', '✓', '中', '🦀', '😀', '𝄞'];
const LENGTHS = ALPHABET.map((c) => Buffer.byteLength(c));

function parseArgs(argv) {
  const args = { connect: undefined, ...deflateFlags.defaults() };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--connect') {
      args.connect = argv[++i];
      if (args.connect === undefined) usage('--connect needs a URL');
    } else if (!deflateFlags.apply(args, flag, () => argv[++i], number)) {
      usage(`unknown argument ${flag}`);
    }
  }
  if (deflateFlags.needDeflate(args)) {
    usage('the permessage-deflate flags need --deflate');
  }
  return args;
}

// One line, never split, whatever the value holds.
function line(text) {
  process.stdout.write(`${String(text).replace(/[\r\n]/g, ' ')}\n`);
}

// A generator of 32-bit numbers from `seed` (xorshift32).
function rng(seed) {
  let state = (seed * 2654435761 + 1) >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
}

function generate(kind, size, seed) {
  const next = rng(seed);
  if (kind === 'binary') {
    const payload = Buffer.alloc(size);
    const half = size >> 1;
    for (let i = 0; i < half; i++) payload[i] = next() & 0xff;
    for (let i = half; i < size; i++) payload[i] = (i - half) % 251;
    return payload;
  }
  if (kind !== 'text') throw new PeerError(`unknown kind ${kind}`);
  const chars = [];
  let length = 0;
  while (length < size) {
    const index = next() % ALPHABET.length;
    chars.push(ALPHABET[index]);
    length += LENGTHS[index];
  }
  return Buffer.from(chars.join(''), 'utf8');
}

function sha1(data) {
  return crypto.createHash('sha1').update(data).digest('hex');
}

class PeerError extends Error {}

// Sends `payload` as fragments; calls `done(count)` after the last one. When
// paused, sets `conn.resume` to the function that sends the rest.
function sendFragmented(conn, kind, payload, pause, done) {
  const binary = kind === 'binary';
  let offset = 0;
  let i = 0;
  let count = 0;
  let paused = pause === 0;
  const sendRest = () => {
    while (offset < payload.length) {
      const size = FRAGMENT_SIZES[i++ % FRAGMENT_SIZES.length];
      const chunk = payload.subarray(offset, offset + size);
      offset += chunk.length;
      count++;
      const fin = offset >= payload.length;
      conn.ws.send(chunk, { binary, fin });
      if (!fin && !paused && offset >= pause) {
        paused = true;
        conn.resume = sendRest;
        return;
      }
    }
    done(count);
  };
  sendRest();
}

function command(conn, words) {
  const [name, kind, size, seed, pause] = words;
  if (name === 'SEND' && words.length === 5) {
    const payload = generate(kind, Number(size), Number(seed));
    sendFragmented(conn, kind, payload, Number(pause), (count) => {
      conn.ws.send(`SENT ${kind} ${payload.length} ${sha1(payload)} ${count}`);
    });
  } else if (name === 'WHOLE' && words.length === 4) {
    const payload = generate(kind, Number(size), Number(seed));
    conn.ws.send(payload, { binary: kind === 'binary' });
    conn.ws.send(`SENT ${kind} ${payload.length} ${sha1(payload)} 1`);
  } else {
    throw new PeerError(`unknown command ${words.join(' ')}`);
  }
}

function onMessage(conn, data, isBinary) {
  if (conn.resume !== null) {
    if (isBinary || data.toString() !== 'GO') {
      throw new PeerError(`expected GO during a pause, got ${data.length} bytes`);
    }
    const resume = conn.resume;
    conn.resume = null;
    resume();
    return;
  }
  if (!isBinary && data.length < 256 && data.toString('latin1').startsWith('CMD ')) {
    command(conn, data.toString().split(' ').slice(1));
    return;
  }
  conn.ws.send(`GOT ${isBinary ? 'binary' : 'text'} ${data.length} ${sha1(data)}`);
}

// Serves one connection; `closed(code, reason)` is called when it ends.
function serve(ws, closed) {
  const conn = { ws, resume: null };
  ws.on('message', (data, isBinary) => {
    try {
      onMessage(conn, data, isBinary);
    } catch (err) {
      process.stderr.write(`streamed_peer.js: ${err.stack || err}\n`);
      ws.close(4000, String(err.message).slice(0, 120));
    }
  });
  ws.on('error', (err) => line(`ERROR ${err.message} (code ${err.code || 'none'})`));
  ws.on('close', (code, reason) => closed(code, reason.toString()));
}

const args = parseArgs(process.argv.slice(2));
const perMessageDeflate = deflateFlags.perMessageDeflate(args);

if (args.connect !== undefined) {
  const ws = new WebSocket(args.connect, { perMessageDeflate });
  ws.on('upgrade', (res) => line(`EXTENSIONS ${res.headers['sec-websocket-extensions'] || ''}`));
  ws.on('unexpected-response', (req, res) => fail(`handshake refused: ${res.statusCode}`));
  serve(ws, (code, reason) => {
    line(`CLOSED ${code} ${reason}`.trimEnd());
    process.exit(code === 1000 ? 0 : 1);
  });
} else {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate });
  const kResponseExtensions = Symbol('response extensions');
  server.on('headers', (headers, req) => {
    const prefix = 'sec-websocket-extensions:';
    const header = headers.find((h) => h.toLowerCase().startsWith(prefix));
    req[kResponseExtensions] = header ? header.slice(prefix.length).trim() : '';
  });
  server.on('connection', (ws, req) => {
    line(`EXTENSIONS ${req[kResponseExtensions] || ''}`);
    serve(ws, (code, reason) => line(`CLOSED ${code} ${reason}`.trimEnd()));
  });
  server.on('error', (err) => fail(`${err.stack || err}`));
  server.on('listening', () => line(`PORT ${server.address().port}`));
  // No server outlives its test: stop when stdin closes.
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}

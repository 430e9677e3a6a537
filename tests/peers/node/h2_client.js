'use strict';
// WebSocket client over HTTP/2 (RFC 8441, extended CONNECT) for wsstream's
// interop tests: Node.js's own `node:http2` for HTTP/2 and the `ws` library's
// `Receiver` and `Sender` for the WebSocket framing on each stream.
//
// Usage: node h2_client.js URL [--streams N] [--messages M]
//            [--protocols a,b] [--expect-protocol P] [--ca FILE]
//
// URL is ws://HOST:PORT/PATH (cleartext HTTP/2 with prior knowledge) or
// wss://HOST:PORT/PATH (TLS with ALPN h2; --ca names the PEM file of the CA to
// trust). The client opens ONE HTTP/2 session, waits for the server's SETTINGS
// to allow extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL), then opens
// --streams WebSockets (default 4) on it at once: each a CONNECT request with
// `:protocol websocket`, `sec-websocket-version: 13` and, with --protocols,
// `sec-websocket-protocol`. On each it sends --messages messages (default 12)
// without waiting for the echoes: text and binary by turns, of sizes from 0
// bytes to 300000 (a few larger than 64 KiB, so that HTTP/2 flow control
// stalls and resumes both directions), text with multibyte UTF-8. The
// client's frames are masked, and the server's must not be (ws's Receiver in
// client mode fails a masked frame). Every echo is checked against what was
// sent, by type and content, in order. When all came back it closes the
// WebSocket with 1000 "done", waits for the server's close frame, ends its
// side of the stream and waits (up to 5 s) for the server to end its side.
//
// Prints on stdout:
//   SESSION {"alpn":"h2c","connectProtocol":true}
//   STREAM {"stream":1,"status":200,"protocol":"chat","messages":12,
//           "bytes":123456,"code":1000,"reason":"done","serverEnded":true}
//                     one per WebSocket, in the order they finished:
//                     "protocol" is the response's sec-websocket-protocol
//                     ("" if none), "code"/"reason" the server's close frame
//                     (1005: no code in it), "serverEnded" whether the server
//                     ended the stream (END_STREAM) after the close handshake
//   OK streams=<N> messages=<all echoed> bytes=<all payload bytes echoed>
//   CLOSED <code> <code> ...   the close codes received, one per WebSocket
// and exits 0. On any failure (no extended CONNECT, a status other than 200,
// a subprotocol other than --expect-protocol, a message that came back
// different, a close code other than 1000, a stream reset, 45 s in all) it
// writes what happened to stderr and exits 1.

const fs = require('fs');
const http2 = require('http2');
const { Receiver, Sender } = require('ws');
const { usage, fail, number } = require('./cli').forScript('h2_client.js');

const LIMIT_MS = 45000;
const END_WAIT_MS = 5000;
const SIZES = [0, 1, 125, 126, 1000, 65535, 65536, 70000, 16, 131079, 4000, 300000];

function parseArgs(argv) {
  const args = {
    url: undefined,
    streams: 4,
    messages: 12,
    protocols: [],
    expectProtocol: undefined,
    ca: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    switch (flag) {
      case '--streams':
        args.streams = number(flag, argv[++i], 1, 1000);
        break;
      case '--messages':
        args.messages = number(flag, argv[++i], 0, 100000);
        break;
      case '--protocols':
        if (argv[i + 1] === undefined) usage('--protocols needs a comma-separated list');
        args.protocols = String(argv[++i])
          .split(',')
          .map((p) => p.trim())
          .filter((p) => p.length > 0);
        break;
      case '--expect-protocol':
        if (argv[i + 1] === undefined) usage('--expect-protocol needs a value');
        args.expectProtocol = argv[++i];
        break;
      case '--ca':
        if (argv[i + 1] === undefined) usage('--ca needs a file');
        args.ca = argv[++i];
        break;
      default:
        if (flag.startsWith('--') || args.url !== undefined) usage(`unknown argument ${flag}`);
        args.url = flag;
    }
  }
  if (args.url === undefined) usage('no URL');
  return args;
}

// Message `index` of WebSocket `stream`: its type and payload, different for
// every stream and index so that a crossed or reordered echo is noticed.
function message(stream, index) {
  const size = SIZES[index % SIZES.length];
  if ((stream + index) % 2 === 0) {
    const unit = `héllo wörld — ${stream}/${index} 🦀 こんにちは {"bid":101.25} `;
    const whole = Buffer.from(unit.repeat(Math.ceil(size / unit.length) + 1));
    // Cut at `size` bytes, moved back to the start of a character.
    let cut = size;
    while (cut > 0 && (whole[cut] & 0xc0) === 0x80) cut--;
    return { binary: false, data: whole.subarray(0, cut) };
  }
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i++) data[i] = (i * 31 + stream * 7 + index) & 0xff;
  return { binary: true, data };
}

function describe(msg) {
  return `${msg.binary ? 'binary' : 'text'} of ${msg.data.length} bytes`;
}

const args = parseArgs(process.argv.slice(2));
let target;
try {
  target = new URL(args.url);
} catch (err) {
  usage(`bad URL ${args.url}: ${err.message}`);
}
if (target.protocol !== 'ws:' && target.protocol !== 'wss:') usage(`not a ws:// or wss:// URL: ${args.url}`);
const secure = target.protocol === 'wss:';
const origin = `${secure ? 'https' : 'http'}://${target.host}`;
const path = `${target.pathname || '/'}${target.search}`;

const pending = new Set();
setTimeout(() => {
  fail(`not done after ${LIMIT_MS} ms; WebSockets still open: ${[...pending].join('; ') || 'none'}`);
}, LIMIT_MS).unref();

const connectOptions = {};
if (args.ca) connectOptions.ca = fs.readFileSync(args.ca);
const session = http2.connect(origin, connectOptions);
session.on('error', (err) => fail(`HTTP/2 session error: ${err.stack || err}`));
session.once('remoteSettings', (settings) => {
  const connectProtocol = settings.enableConnectProtocol === true;
  process.stdout.write(
    `SESSION ${JSON.stringify({ alpn: session.alpnProtocol || '', connectProtocol })}\n`,
  );
  if (!connectProtocol) fail('the server did not send SETTINGS_ENABLE_CONNECT_PROTOCOL = 1');
  run().then(
    (results) => {
      const messages = results.reduce((sum, r) => sum + r.messages, 0);
      const bytes = results.reduce((sum, r) => sum + r.bytes, 0);
      process.stdout.write(`OK streams=${results.length} messages=${messages} bytes=${bytes}\n`);
      process.stdout.write(`CLOSED ${results.map((r) => r.code).join(' ')}\n`);
      session.close(() => process.exit(0));
    },
    (err) => fail(err.stack || String(err)),
  );
});

async function run() {
  const streams = [];
  for (let s = 0; s < args.streams; s++) streams.push(webSocket(s));
  return Promise.all(streams);
}

// One WebSocket on a stream of the session; resolves to its STREAM fields
// once closed cleanly, rejects on any failure.
function webSocket(number) {
  return new Promise((resolve, reject) => {
    const label = `WebSocket ${number}`;
    const headers = {
      ':method': 'CONNECT',
      ':protocol': 'websocket',
      ':scheme': secure ? 'https' : 'http',
      ':authority': target.host,
      ':path': path,
      'sec-websocket-version': '13',
    };
    if (args.protocols.length > 0) headers['sec-websocket-protocol'] = args.protocols.join(', ');
    const stream = session.request(headers, { endStream: false });
    const state = {
      stream: undefined,
      status: undefined,
      protocol: '',
      messages: 0,
      bytes: 0,
      code: undefined,
      reason: '',
      serverEnded: false,
    };
    const status = (what) => `${label} (stream ${stream.id}): ${what}`;
    pending.add(label);
    let settled = false;
    const failWith = (what) => {
      if (settled) return;
      settled = true;
      pending.delete(label);
      reject(new Error(status(what)));
    };
    const succeed = () => {
      if (settled) return;
      settled = true;
      pending.delete(label);
      process.stdout.write(`STREAM ${JSON.stringify(state)}\n`);
      resolve(state);
    };

    stream.on('error', (err) => failWith(`stream error: ${err.message}`));
    stream.on('end', () => {
      state.serverEnded = true;
    });
    stream.on('close', () => {
      if (state.code === undefined) {
        failWith(`stream closed before the server's close frame (rst code ${stream.rstCode})`);
      } else {
        succeed();
      }
    });

    stream.on('response', (response) => {
      state.stream = stream.id;
      state.status = response[':status'];
      state.protocol = response['sec-websocket-protocol'] || '';
      if (state.status !== 200) {
        failWith(`answered :status ${state.status}, not 200`);
        return;
      }
      if (response['sec-websocket-accept'] !== undefined) {
        failWith('the response carries sec-websocket-accept, which RFC 8441 leaves out');
        return;
      }
      if (args.expectProtocol !== undefined && state.protocol !== args.expectProtocol) {
        failWith(`subprotocol ${JSON.stringify(state.protocol)}, expected ${JSON.stringify(args.expectProtocol)}`);
        return;
      }

      const sender = new Sender(stream);
      const receiver = new Receiver({ isServer: false, maxPayload: 64 * 1024 * 1024 });
      const sent = [];
      receiver.on('message', (data, isBinary) => {
        const expected = sent[state.messages];
        if (expected === undefined) {
          failWith(`an unexpected ${isBinary ? 'binary' : 'text'} message of ${data.length} bytes`);
          return;
        }
        if (expected.binary !== isBinary || !expected.data.equals(data)) {
          const got = describe({ binary: isBinary, data });
          failWith(`echo ${state.messages} came back as ${got}, sent ${describe(expected)}`);
          return;
        }
        state.messages += 1;
        state.bytes += data.length;
        if (state.messages === args.messages) sender.close(1000, 'done', true);
      });
      receiver.on('ping', (data) => sender.pong(data, true));
      receiver.on('pong', () => {});
      receiver.on('conclude', (code, reason) => {
        state.code = code;
        state.reason = reason.toString();
        if (state.messages !== args.messages) {
          failWith(`the server closed with ${code} ${state.reason} after ${state.messages} echoes`);
          return;
        }
        if (code !== 1000) {
          failWith(`the server's close frame has code ${code} ${state.reason}, not 1000`);
          return;
        }
        stream.end();
        // The server should end its side too; if it does not, stop waiting.
        setTimeout(() => {
          if (!state.serverEnded) {
            succeed();
            stream.close(http2.constants.NGHTTP2_NO_ERROR);
          }
        }, END_WAIT_MS).unref();
      });
      receiver.on('error', (err) => failWith(`ws's Receiver failed: ${err.message} (${err.code})`));
      stream.pipe(receiver);

      for (let i = 0; i < args.messages; i++) {
        const msg = message(number, i);
        sent.push(msg);
        sender.send(msg.data, { binary: msg.binary, fin: true, mask: true, compress: false });
      }
      if (args.messages === 0) sender.close(1000, 'done', true);
    });
  });
}

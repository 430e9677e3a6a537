'use strict';
// WebSocket echo server over HTTP/2 (RFC 8441, extended CONNECT) for
// wsstream's interop tests: Node.js's own `node:http2` for HTTP/2 and the
// `ws` library's `Receiver` and `Sender` for the WebSocket framing on each
// stream.
//
// Usage: node h2_server.js [--tls CERT KEY] [--protocols a,b]
//
// Listens on 127.0.0.1 on a free port, prints "PORT <n>" as the first line on
// stdout, then serves until stdin reaches end of file (the test that started
// it exited or dropped its handle) or it is killed. Without --tls it speaks
// cleartext HTTP/2 with prior knowledge (h2c, no HTTP/1.1 at all); with it,
// TLS with the PEM certificate chain and key, and ALPN `h2` only.
//
// Every session advertises SETTINGS_ENABLE_CONNECT_PROTOCOL. A stream whose
// request is `:method CONNECT` with `:protocol websocket` and
// `sec-websocket-version: 13` is answered `:status 200` (with the chosen
// subprotocol, if any) and becomes a WebSocket: every message is echoed with
// its type (text as text, binary as binary), pings are answered with pongs,
// and a close frame is answered with the same code and reason, after which
// the server ends its side of the stream. The server's frames are not
// masked, and the client's must be (ws's Receiver in server mode fails an
// unmasked frame with 1002). Any other request gets 400 (405 for another
// method than CONNECT), and is logged as REJECTED.
//
// --protocols lists the subprotocols the server supports; it selects the
// first one of the client's `sec-websocket-protocol` offer that it supports,
// and none if there is no match (the WebSocket is still accepted).
//
// Output lines on stdout, after PORT, one JSON object after the first word
// (lines of different streams may interleave):
//   SESSION  {"session":1,"alpn":"h2c"}    a new HTTP/2 connection
//   STREAM   {"session":1,"stream":1,"http":"2","method":"CONNECT",
//             "protocol":"websocket","scheme":"http","path":"/a",
//             "authority":"127.0.0.1:1234","version":"13",
//             "offered":"chat, superchat","selected":"chat",
//             "key":false,"extensions":""}
//                                           a WebSocket accepted; "offered"
//                                           and "extensions" are the request's
//                                           headers ("" when absent); "key" is
//                                           whether it carried a
//                                           sec-websocket-key (RFC 8441 says
//                                           it must not)
//   REJECTED {"session":1,"stream":3,"status":400,"why":"..."}
//   ERROR    {"session":1,"stream":1,"message":"...","code":"WS_ERR_..."}
//                                           ws's Receiver failed the stream
//                                           (answered with a close frame)
//   CLOSED   {"session":1,"stream":1,"code":1000,"reason":"done",
//             "messages":12,"bytes":123456}
//                                           the stream's WebSocket ended:
//                                           the code and reason of the
//                                           client's close frame (1005: none
//                                           in it, 1006: no close frame at
//                                           all), messages and payload bytes
//                                           echoed
//   ENDED    {"session":1,"stream":1,"clientEnded":true,"rstCode":0}
//                                           the stream closed: whether the
//                                           client ended its side
//                                           (END_STREAM), and the RST_STREAM
//                                           code if either side reset it (0,
//                                           NO_ERROR, when none did)
//   SESSION_CLOSED {"session":1,"streams":3}
//                                           an HTTP/2 connection ended, with
//                                           how many WebSockets it carried

const fs = require('fs');
const http2 = require('http2');
const { Receiver, Sender } = require('ws');
const { usage } = require('./cli').forScript('h2_server.js');

function parseArgs(argv) {
  const args = { tls: undefined, protocols: [] };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    switch (flag) {
      case '--tls': {
        const cert = argv[++i];
        const key = argv[++i];
        if (cert === undefined || key === undefined) usage('--tls needs CERT KEY');
        args.tls = { cert, key };
        break;
      }
      case '--protocols': {
        const list = argv[++i];
        if (list === undefined) usage('--protocols needs a comma-separated list');
        args.protocols = splitList(list);
        break;
      }
      default:
        usage(`unknown argument ${flag}`);
    }
  }
  return args;
}

function splitList(value) {
  return String(value)
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

// One line, never split: the kind, then the fields as JSON (which escapes
// line breaks).
function line(kind, fields) {
  process.stdout.write(`${kind} ${JSON.stringify(fields)}\n`);
}

// The close code ws's Receiver means by each of its errors (RFC 6455 7.4.1).
function closeCodeOf(err) {
  switch (err.code) {
    case 'WS_ERR_INVALID_UTF8':
      return 1007;
    case 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH':
      return 1009;
    default:
      return 1002;
  }
}

const args = parseArgs(process.argv.slice(2));
const settings = { enableConnectProtocol: true };
const server = args.tls
  ? http2.createSecureServer({
      cert: fs.readFileSync(args.tls.cert),
      key: fs.readFileSync(args.tls.key),
      settings,
      allowHTTP1: false,
    })
  : http2.createServer({ settings });

let nextSession = 1;
const kSession = Symbol('session number');
const kWebSockets = Symbol('websockets on the session');

server.on('session', (session) => {
  const number = nextSession++;
  session[kSession] = number;
  session[kWebSockets] = 0;
  line('SESSION', { session: number, alpn: session.alpnProtocol || '' });
  session.on('close', () => {
    line('SESSION_CLOSED', { session: number, streams: session[kWebSockets] });
  });
  session.on('error', () => {});
});

server.on('stream', (stream, headers) => {
  const session = stream.session[kSession];
  const reject = (status, why) => {
    line('REJECTED', { session, stream: stream.id, status, why });
    const response = { ':status': status };
    if (status === 400 && why.includes('version')) response['sec-websocket-version'] = '13';
    stream.respond(response, { endStream: true });
  };
  stream.on('error', () => {});

  const method = headers[':method'];
  if (method !== 'CONNECT') {
    reject(405, `method ${method}, not CONNECT`);
    return;
  }
  if (headers[':protocol'] !== 'websocket') {
    reject(400, `:protocol ${headers[':protocol']}, not websocket`);
    return;
  }
  if (headers['sec-websocket-version'] !== '13') {
    reject(400, `sec-websocket-version ${headers['sec-websocket-version']}, not 13`);
    return;
  }

  const offered = headers['sec-websocket-protocol'] || '';
  const selected = splitList(offered).find((p) => args.protocols.includes(p));
  stream.session[kWebSockets] += 1;
  line('STREAM', {
    session,
    stream: stream.id,
    // node:http2 without allowHTTP1: the request came as an HTTP/2 stream.
    http: '2',
    method,
    protocol: headers[':protocol'],
    scheme: headers[':scheme'] || '',
    path: headers[':path'] || '',
    authority: headers[':authority'] || '',
    version: headers['sec-websocket-version'],
    offered,
    selected: selected || '',
    key: headers['sec-websocket-key'] !== undefined,
    extensions: headers['sec-websocket-extensions'] || '',
  });

  const response = { ':status': 200 };
  if (selected) response['sec-websocket-protocol'] = selected;
  stream.respond(response);
  serveWebSocket(stream, session);
});

// The WebSocket on one accepted stream: ws's Receiver (server mode: frames
// must be masked) reads the stream, ws's Sender (no mask) writes it.
function serveWebSocket(stream, session) {
  const receiver = new Receiver({ isServer: true, maxPayload: 64 * 1024 * 1024 });
  const sender = new Sender(stream);
  let messages = 0;
  let bytes = 0;
  let closed = false;

  const finish = (code, reason) => {
    if (closed) return;
    closed = true;
    line('CLOSED', { session, stream: stream.id, code, reason, messages, bytes });
  };

  receiver.on('message', (data, isBinary) => {
    messages += 1;
    bytes += data.length;
    sender.send(data, { binary: isBinary, fin: true, mask: false, compress: false });
  });
  receiver.on('ping', (data) => sender.pong(data, false));
  receiver.on('pong', () => {});
  receiver.on('conclude', (code, reason) => {
    finish(code, reason.toString());
    const answer = (cb) =>
      code === 1005 ? sender.close(undefined, undefined, false, cb) : sender.close(code, reason, false, cb);
    answer(() => stream.end());
  });
  receiver.on('error', (err) => {
    line('ERROR', { session, stream: stream.id, message: err.message, code: err.code || '' });
    const code = closeCodeOf(err);
    stream.unpipe(receiver);
    sender.close(code, '', false, () => stream.end());
    finish(1006, '');
  });

  let clientEnded = false;
  stream.on('end', () => {
    clientEnded = true;
  });
  stream.on('close', () => {
    finish(1006, `stream closed, rst code ${stream.rstCode}`);
    line('ENDED', { session, stream: stream.id, clientEnded, rstCode: stream.rstCode });
  });
  stream.pipe(receiver);
}

server.on('error', (err) => {
  process.stderr.write(`h2_server.js: ${err.stack || err}\n`);
  process.exit(1);
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`PORT ${server.address().port}\n`);
});

// No server outlives its test: stop when stdin closes.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();

'use strict';
// Client for wsstream's interop tests, on the Node.js `ws` library.
//
// Usage: node client.js URL [--deflate [--server-no-context-takeover]
//            [--client-no-context-takeover] [--server-max-window-bits N]
//            [--client-max-window-bits N]] [--count N] [--size BYTES]
//            [--binary]
//
// Connects to URL, sends --count messages (default 10) of --size bytes
// (default 1000) one at a time, and checks that each comes back unchanged and
// with its type before sending the next. Text messages repeat a JSON-like
// pattern (they compress well); --binary sends binary messages of a byte
// pattern instead. Then it closes with 1000 and waits for the server's close.
//
// Without --deflate the client offers no extension (ws's client would offer
// permessage-deflate by default). With it, it offers permessage-deflate with
// `threshold: 0` and the --*-context-takeover / --*-max-window-bits flags
// mapped to ws's serverNoContextTakeover, clientNoContextTakeover,
// serverMaxWindowBits and clientMaxWindowBits.
//
// Prints on stdout:
//   OFFER <Sec-WebSocket-Extensions it sent, or empty>
//   EXTENSIONS <Sec-WebSocket-Extensions of the 101 response, or empty>
//   OK <number of messages echoed>
//   CLOSED <close code received from the server>
// and exits 0. On any failure (handshake refused, a message that came back
// different, an error, a step that takes longer than 30 s) it writes what
// happened to stderr and exits 1.

const WebSocket = require('ws');
const deflateFlags = require('./deflate_flags');
const { usage, fail, number } = require('./cli').forScript('client.js');

const STEP_MS = 30000;

function parseArgs(argv) {
  const args = {
    url: undefined,
    ...deflateFlags.defaults(),
    count: 10,
    size: 1000,
    binary: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    switch (flag) {
      case '--count':
        args.count = number(flag, argv[++i], 0, 1e9);
        break;
      case '--size':
        args.size = number(flag, argv[++i], 0, 2 ** 31 - 1);
        break;
      case '--binary':
        args.binary = true;
        break;
      default:
        if (deflateFlags.apply(args, flag, () => argv[++i], number)) {
          break;
        }
        if (flag.startsWith('--') || args.url !== undefined) {
          usage(`unknown argument ${flag}`);
        }
        args.url = flag;
    }
  }
  if (args.url === undefined) usage('no URL');
  if (deflateFlags.needDeflate(args)) {
    usage('the permessage-deflate flags need --deflate');
  }
  return args;
}

// Message `index`, `size` bytes long. Text is ASCII, so any length is valid
// UTF-8; every message differs from the one before.
function payload(index, size, binary) {
  if (binary) {
    const bytes = Buffer.alloc(size);
    for (let i = 0; i < size; i++) bytes[i] = (i * 7 + index * 13 + (i >> 8)) & 0xff;
    return bytes;
  }
  const unit = `{"seq":${index},"name":"wsstream","values":[1,2,3,5,8],"ok":true},`;
  return Buffer.from(unit.repeat(Math.ceil(size / unit.length)).slice(0, size), 'latin1');
}

// One line, never split, whatever the value holds.
function line(text) {
  process.stdout.write(`${String(text).replace(/[\r\n]/g, ' ')}\n`);
}

const args = parseArgs(process.argv.slice(2));
const ws = new WebSocket(args.url, {
  perMessageDeflate: deflateFlags.perMessageDeflate(args),
  maxPayload: Math.max(args.size, 100 * 1024 * 1024),
});

let timer = null;
function step(what) {
  clearTimeout(timer);
  timer = setTimeout(() => fail(`timed out after ${STEP_MS} ms: ${what}`), STEP_MS);
}
step('the opening handshake');

let sent = 0;
let expected = null;
let closing = false;

function sendNext() {
  if (sent === args.count) {
    line(`OK ${sent}`);
    closing = true;
    step('the closing handshake');
    ws.close(1000);
    return;
  }
  expected = payload(sent, args.size, args.binary);
  sent += 1;
  step(`the echo of message ${sent - 1}`);
  ws.send(expected, { binary: args.binary });
}

// The request is gone by the time of 'upgrade': take the offer now. (`_req`
// is ws's own handle on it, the only way to see the header it generated.)
const offer = (ws._req && ws._req.getHeader('sec-websocket-extensions')) || '';

ws.on('upgrade', (res) => {
  line(`OFFER ${offer}`);
  line(`EXTENSIONS ${res.headers['sec-websocket-extensions'] || ''}`);
});

ws.on('unexpected-response', (req, res) => {
  let body = '';
  res.on('data', (chunk) => {
    body += chunk;
  });
  res.on('end', () => fail(`handshake refused: ${res.statusCode} ${res.statusMessage}: ${body}`));
  res.on('error', () => fail(`handshake refused: ${res.statusCode} ${res.statusMessage}`));
});

ws.on('open', sendNext);

ws.on('message', (data, isBinary) => {
  const index = sent - 1;
  if (expected === null) fail(`unexpected message (${data.length} bytes)`);
  if (isBinary !== args.binary) {
    fail(`message ${index} came back as ${isBinary ? 'binary' : 'text'}`);
  }
  if (!expected.equals(data)) {
    fail(`message ${index} came back different (${expected.length} bytes sent, ${data.length} received)`);
  }
  expected = null;
  sendNext();
});

ws.on('error', (err) => fail(`${err.message} (code ${err.code || 'none'})`));

ws.on('close', (code, reason) => {
  if (!closing) {
    fail(`closed by the server after ${sent} messages sent: ${code} ${reason.toString()}`);
  }
  clearTimeout(timer);
  line(`CLOSED ${code}`);
  process.exit(0);
});

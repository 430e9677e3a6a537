'use strict';
// Echo server for wsstream's interop tests, on the Node.js `ws` library.
//
// Usage: node echo_server.js [--deflate [--server-no-context-takeover]
//            [--client-no-context-takeover] [--server-max-window-bits N]
//            [--client-max-window-bits N]] [--max-payload N]
//
// Listens on 127.0.0.1 on a free port, prints "PORT <n>" as the first line on
// stdout, then serves until stdin reaches end of file (the test that started
// it exited or dropped its handle) or it is killed. Every message on every
// path is echoed back with its type: text as text, binary as binary. A close
// frame is answered with the same code and reason (ws does that by itself).
//
// Without --deflate the server has perMessageDeflate off and answers no
// extension. With it, ws negotiates permessage-deflate with `threshold: 0`
// and the --*-context-takeover / --*-max-window-bits flags mapped to ws's
// serverNoContextTakeover, clientNoContextTakeover, serverMaxWindowBits and
// clientMaxWindowBits. --max-payload sets ws's maxPayload (the largest
// message, after decompression, that it accepts; default 100 MiB).
//
// For each connection it prints, on stdout:
//   OFFER <Sec-WebSocket-Extensions of the request, or empty>
//   EXTENSIONS <Sec-WebSocket-Extensions of ws's 101 response, or empty>
//   ERROR <message> (code <ws error code>)   when ws fails the connection
//   ERROR <message> (handshake refused)      when ws refuses the handshake
//                                            (answered 400, as ws does)
//   CLOSED <code> <reason>                   when the connection is closed
// CLOSED carries the code ws received in the client's close frame (1005 for
// none, 1006 when the connection dropped without one) and the reason, if
// any. Lines of different connections may interleave.

const { STATUS_CODES } = require('http');
const { WebSocketServer } = require('ws');
const deflateFlags = require('./deflate_flags');
const { usage, number } = require('./cli').forScript('echo_server.js');

function parseArgs(argv) {
  const args = {
    ...deflateFlags.defaults(),
    maxPayload: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    switch (flag) {
      case '--max-payload':
        args.maxPayload = number(flag, argv[++i], 0, Number.MAX_SAFE_INTEGER);
        break;
      default:
        if (!deflateFlags.apply(args, flag, () => argv[++i], number)) {
          usage(`unknown argument ${flag}`);
        }
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

const args = parseArgs(process.argv.slice(2));
const options = {
  host: '127.0.0.1',
  port: 0,
  perMessageDeflate: deflateFlags.perMessageDeflate(args),
};
if (args.maxPayload !== undefined) options.maxPayload = args.maxPayload;

const server = new WebSocketServer(options);
const kResponseExtensions = Symbol('response extensions');

// The 101 response's header lines, just before ws writes them: the only place
// the negotiated parameters are visible (`ws.extensions` holds only names).
server.on('headers', (headers, req) => {
  const prefix = 'sec-websocket-extensions:';
  const header = headers.find((h) => h.toLowerCase().startsWith(prefix));
  req[kResponseExtensions] = header ? header.slice(prefix.length).trim() : '';
});

server.on('connection', (ws, req) => {
  line(`OFFER ${req.headers['sec-websocket-extensions'] || ''}`);
  line(`EXTENSIONS ${req[kResponseExtensions] || ''}`);
  ws.on('message', (data, isBinary) => {
    ws.send(data, { binary: isBinary });
  });
  ws.on('error', (err) => {
    line(`ERROR ${err.message} (code ${err.code || 'none'})`);
  });
  ws.on('close', (code, reason) => {
    line(`CLOSED ${code} ${reason.toString()}`.trimEnd());
  });
});

// A handshake that ws refuses (a bad or unacceptable extension offer, say):
// logged, then answered as ws answers it without this listener.
server.on('wsClientError', (err, socket) => {
  line(`ERROR ${err.message} (handshake refused)`);
  const status = err.message === 'Invalid HTTP method' ? 405 : 400;
  const headers = [
    'Connection: close',
    'Content-Type: text/html',
    `Content-Length: ${Buffer.byteLength(err.message)}`,
  ];
  if (err.message.includes('Sec-WebSocket-Version')) {
    headers.push('Sec-WebSocket-Version: 13, 8');
  }
  socket.once('finish', socket.destroy);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${headers.join('\r\n')}\r\n\r\n${err.message}`,
  );
});

server.on('error', (err) => {
  process.stderr.write(`echo_server.js: ${err.stack || err}\n`);
  process.exit(1);
});

server.on('listening', () => {
  line(`PORT ${server.address().port}`);
});

// No server outlives its test: stop when stdin closes.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();

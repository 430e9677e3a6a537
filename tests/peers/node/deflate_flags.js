'use strict';
// The permessage-deflate flags that client.js and echo_server.js both take:
// --deflate, --server-no-context-takeover, --client-no-context-takeover,
// --server-max-window-bits N and --client-max-window-bits N (8..=15).

function defaults() {
  return {
    deflate: false,
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: undefined,
    clientMaxWindowBits: undefined,
  };
}

// Applies `flag` to `args`, taking its value from `next()` if it has one;
// returns false if `flag` is not one of these. `number(flag, value, min,
// max)` checks a numeric value.
function apply(args, flag, next, number) {
  switch (flag) {
    case '--deflate':
      args.deflate = true;
      return true;
    case '--server-no-context-takeover':
      args.serverNoContextTakeover = true;
      return true;
    case '--client-no-context-takeover':
      args.clientNoContextTakeover = true;
      return true;
    case '--server-max-window-bits':
      args.serverMaxWindowBits = number(flag, next(), 8, 15);
      return true;
    case '--client-max-window-bits':
      args.clientMaxWindowBits = number(flag, next(), 8, 15);
      return true;
    default:
      return false;
  }
}

// Whether a parameter flag was given without --deflate.
function needDeflate(args) {
  const parameters =
    args.serverNoContextTakeover ||
    args.clientNoContextTakeover ||
    args.serverMaxWindowBits !== undefined ||
    args.clientMaxWindowBits !== undefined;
  return parameters && !args.deflate;
}

// ws's perMessageDeflate option for `args`: false without --deflate, and
// threshold 0 so that every message is compressed.
function perMessageDeflate(args) {
  if (!args.deflate) return false;
  const options = { threshold: 0 };
  if (args.serverNoContextTakeover) options.serverNoContextTakeover = true;
  if (args.clientNoContextTakeover) options.clientNoContextTakeover = true;
  if (args.serverMaxWindowBits !== undefined) {
    options.serverMaxWindowBits = args.serverMaxWindowBits;
  }
  if (args.clientMaxWindowBits !== undefined) {
    options.clientMaxWindowBits = args.clientMaxWindowBits;
  }
  return options;
}

module.exports = { defaults, apply, needDeflate, perMessageDeflate };

'use strict';
// The command-line handling the peer scripts share: a usage error (exit
// code 2) and a failure (exit code 1), each written to stderr after the
// script's name, and the check of an integer flag's value.
//
//   const { usage, fail, number } = require('./cli').forScript('client.js');

function forScript(name) {
  function usage(message) {
    process.stderr.write(`${name}: ${message}\n`);
    process.exit(2);
  }

  function fail(message) {
    process.stderr.write(`${name}: ${message}\n`);
    process.exit(1);
  }

  // The value of `flag` as an integer in min..=max; a usage error if it is
  // missing or anything else.
  function number(flag, value, min, max) {
    const n = Number(value);
    if (value === undefined || !Number.isInteger(n) || n < min || n > max) {
      usage(`${flag} needs an integer in ${min}..=${max}, got ${value}`);
    }
    return n;
  }

  return { usage, fail, number };
}

module.exports = { forScript };

// js_driver.js: the driver of a JavaScript execution context
// (helper/hd_ctx.c).
//
// sp-helperd starts it inside the sandbox through /bin/sh, which moves the
// descriptors (node cannot dup2): `exec node -e <this file> 3<&0 4>&1
// </dev/null >&2`; it runs for the life of the context. Requests and frames are those of
// py_driver.py: one JSON request a line on stdin ({"id","code",
// "timeout_ms"}), and on stdout only frames (0x1e, JSON, "\n"):
// stdout/stderr ({"b": base64 bytes}), result ({"data":{"text/plain"}}),
// error ({name, message, traceback}) and done ({"id", "status"?, "count":
// the number of runs so far, E2B's execution count}).
//
// Descriptors: requests come on fd 3 and frames go to fd 4; fd 0 is
// /dev/null and fd 1 is the pipe of fd 2. What the code prints through
// console or process.stdout/stderr is framed here, in order and
// synchronously; what a subprocess writes to an inherited fd 1 or 2
// reaches the helper as the driver's stderr, never as a frame. (fds 3 and
// 4 are inherited by subprocesses too: one that writes to fd 4 on purpose
// ends its own context with a malformed frame.)
//
// Each run is a vm.Script in one persistent context: globals, `var`s,
// functions and required modules survive between runs; top-level `let`,
// `const` and `class` survive as well (V8 keeps a script context per
// global), but declaring the same name again is a SyntaxError. The
// completion value of the script is the result (util.inspect); a Promise
// is awaited first. A run's timeout is vm's `timeout` option; SIGINT from
// the helper interrupts a run (breakOnSigint) or an awaited Promise.
'use strict';
const fs = require('fs');
const path = require('path');
const readline = require('readline');
const stream = require('stream');
const util = require('util');
const vm = require('vm');
const { createRequire } = require('module');

const reqFd = 3;
const frameFd = 4;

function send(obj) {
  const buf = Buffer.from('\x1e' + JSON.stringify(obj) + '\n');
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(frameFd, buf, off, buf.length - off);
    } catch (e) {
      if (e.code !== 'EAGAIN' && e.code !== 'EINTR')
        process.exit(1); // the helper is gone
    }
  }
}

function output(name) {
  return new stream.Writable({
    write(chunk, enc, cb) {
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk, enc);
      send({ t: name, b: b.toString('base64') });
      cb();
    },
  });
}

const stdout = output('stdout');
const stderr = output('stderr');
stdout.isTTY = stderr.isTTY = false;
for (const [name, s] of [['stdout', stdout], ['stderr', stderr]])
  Object.defineProperty(process, name, {
    configurable: true, enumerable: true, get: () => s,
  });

const cwd = process.cwd();
const sandbox = {
  console: new console.Console({ stdout, stderr }),
  process,
  Buffer,
  require: createRequire(path.join(cwd, '[context]')),
  module: { exports: {} },
  __dirname: cwd,
  __filename: path.join(cwd, '[context]'),
  setTimeout, clearTimeout, setInterval, clearInterval,
  setImmediate, clearImmediate, queueMicrotask, structuredClone,
  URL, URLSearchParams, TextEncoder, TextDecoder, AbortController,
  atob, btoa, fetch: globalThis.fetch,
};
const context = vm.createContext(sandbox);
vm.runInContext('globalThis.global = globalThis', context);

let cells = 0;
let current = null; // {id, finish} while a run is under way
const pending = [];

// Keep the driver's own frames out of a traceback.
function traceback(e) {
  const stack = e && typeof e.stack === 'string' ? e.stack : String(e);
  return stack.split('\n')
    .filter((l) => !/^\s+at .*(node:[\w/]+:\d|\[eval\])/.test(l))
    .join('\n');
}

function report(e) {
  const isObj = e !== null && typeof e === 'object';
  send({
    t: 'error',
    name: isObj && e.name ? String(e.name) : 'Error',
    message: isObj && 'message' in e ? String(e.message) : String(e),
    traceback: traceback(e),
  });
}

function run(req) {
  const cell = `cell-${++cells}.js`;
  const timeout = req.timeout_ms > 0 ? req.timeout_ms : undefined;
  let done = false;
  let timer = null;
  const finish = (value, err, status) => {
    if (done)
      return;
    done = true;
    clearTimeout(timer);
    if (err !== undefined)
      report(err);
    else if (value !== undefined)
      send({ t: 'result', data: { 'text/plain': util.inspect(value) } });
    const frame = { t: 'done', id: req.id, count: cells };
    if (status)
      frame.status = status;
    send(frame);
    current = null;
    next();
  };
  current = { id: req.id, finish };
  let value;
  try {
    const script = new vm.Script(String(req.code || ''), { filename: cell });
    value = script.runInContext(context, {
      timeout, breakOnSigint: true, displayErrors: false,
    });
  } catch (e) {
    finish(undefined, e,
      e && e.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT' ? 'timeout' : null);
    return;
  }
  if (value !== null && typeof value === 'object' &&
      typeof value.then === 'function') {
    if (timeout)
      timer = setTimeout(() => finish(undefined,
        new Error(`Promise not settled within ${timeout}ms`), 'timeout'),
      timeout);
    Promise.resolve(value).then((v) => finish(v),
      (e) => finish(undefined, e === undefined ? null : e));
    return;
  }
  finish(value);
}

function next() {
  if (current === null && pending.length > 0)
    run(pending.shift());
}

// A SIGINT outside a script (breakOnSigint handles it inside) ends an
// awaited Promise; it never ends the driver.
process.on('SIGINT', () => {
  if (current !== null)
    current.finish(undefined, new Error('Script execution interrupted.'),
      null);
});
// A callback of an earlier run that throws is reported, not fatal.
process.on('uncaughtException', (e) => {
  send({ t: 'stderr', b: Buffer.from(`Uncaught ${traceback(e)}\n`)
    .toString('base64') });
});
process.on('unhandledRejection', (e) => {
  send({ t: 'stderr', b: Buffer.from(`Unhandled rejection: ${traceback(e)}\n`)
    .toString('base64') });
});

const lines = readline.createInterface({
  input: fs.createReadStream(null, { fd: reqFd }),
  crlfDelay: Infinity,
});
lines.on('line', (line) => {
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    return;
  }
  if (req !== null && typeof req === 'object') {
    pending.push(req);
    next();
  }
});
lines.on('close', () => process.exit(0));

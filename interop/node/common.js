'use strict';
// Shared by node/promise/checks.js and node/callback/checks.js: the values
// every client sends (see interop/README.md), and the check runner.
const crypto = require('node:crypto');
const assert = require('node:assert');

const DEADLINE_MS = 25000;
const HEARTBEAT_S = 1;
const PAUSE_MS = 5000;

function amqpUrl() {
  const url = process.env.AMQP_URL;
  if (!url) {
    console.log('AMQP_URL is not set');
    process.exit(2);
  }
  return url;
}

function urlParts() {
  const u = new URL(amqpUrl());
  return {
    hostname: u.hostname,
    port: Number(u.port || 5672),
    username: decodeURIComponent(u.username || 'guest'),
    password: decodeURIComponent(u.password || 'guest'),
    vhost: u.pathname.length > 1 ? decodeURIComponent(u.pathname.slice(1)) : '/',
  };
}

function wrongPasswordUrl() {
  const u = new URL(amqpUrl());
  u.password = encodeURIComponent(decodeURIComponent(u.password) + '-wrong');
  return u.toString();
}

function unique(kind) {
  return `interop.${kind}.${crypto.randomBytes(6).toString('hex')}`;
}

class Failed extends Error {}

// A check that cannot run here (e.g. no AMQPS_URL): exits SKIP_EXIT, which
// runner.py counts as skipped.
class Skipped extends Error {}
const SKIP_EXIT = 77;

// The TLS scenarios' settings, exported by run.sh (see interop/README.md).
function tlsEnv() {
  if (!process.env.AMQPS_URL) throw new Skipped('skipped: no AMQPS_URL');
  const names = {
    url: 'AMQPS_URL', ca: 'TLS_CA_FILE', otherCa: 'TLS_OTHER_CA_FILE', cert: 'TLS_CLIENT_CERT',
    key: 'TLS_CLIENT_KEY', externalUser: 'TLS_EXTERNAL_USER',
  };
  const missing = Object.values(names).filter((v) => !process.env[v]);
  if (missing.length) throw new Failed(`AMQPS_URL is set but not ${missing.join(', ')}`);
  return Object.fromEntries(Object.entries(names).map(([k, v]) => [k, process.env[v]]));
}

// The virtual-clock broker run.sh starts (Warren with --clock manual).
function clockEnv() {
  if (!process.env.CLOCK_AMQP_URL) throw new Skipped('skipped: no CLOCK_AMQP_URL (a Warren with --clock manual)');
  if (!process.env.CLOCK_MGMT_URL) throw new Failed('CLOCK_AMQP_URL is set but not CLOCK_MGMT_URL');
  return { url: process.env.CLOCK_AMQP_URL, mgmt: process.env.CLOCK_MGMT_URL };
}

// One management API call as guest: { status, body } (body parsed JSON or null).
async function management(base, method, path, body) {
  const response = await fetch(base + path, {
    method,
    headers: { Authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

// A Warren of the check's own with --allow-fault-injection, for the fault_*
// checks (restarts and alarms hit the whole broker, and the suite's broker
// is shared): $WARREN_BIN in memory on free loopback ports, killed with the
// check (setpriv --pdeathsig, and on exit). A restart is simulated
// in-process, so durable queues and persistent messages survive it in
// memory too. Skipped without WARREN_BIN (e.g. against a real RabbitMQ).
async function startFaultBroker() {
  const bin = process.env.WARREN_BIN;
  if (!bin) throw new Skipped('skipped: no WARREN_BIN (fault injection needs a Warren of its own)');
  const fs = require('node:fs');
  const os = require('node:os');
  const path = require('node:path');
  const net = require('node:net');
  const { spawn, spawnSync } = require('node:child_process');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'warren-fault.'));
  const mgmtPort = await new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
  const portFile = path.join(dir, 'port');
  const log = fs.openSync(path.join(dir, 'broker.log'), 'w');
  const args = ['--in-memory', '--allow-fault-injection', '--port', '0', '--port-file', portFile,
    '--bind', '127.0.0.1', '--management-port', String(mgmtPort), '--prometheus-port', '0'];
  const setpriv = spawnSync('setpriv', ['--version']).status === 0;
  const child = setpriv
    ? spawn('setpriv', ['--pdeathsig', 'TERM', bin, ...args], { stdio: ['ignore', log, log] })
    : spawn(bin, args, { stdio: ['ignore', log, log] });
  let exited = false;
  child.on('exit', () => { exited = true; });
  const kill = () => { if (!exited) child.kill('SIGTERM'); };
  process.on('exit', kill);
  const broker = {
    mgmt: `http://127.0.0.1:${mgmtPort}`,
    // POST /api/warren/faults/<path>; checks the status, returns the JSON body.
    async fault(p, body = {}, expect = 204) {
      const r = await management(broker.mgmt, 'POST', `/api/warren/faults/${p}`, body);
      check(r.status === expect, `POST /api/warren/faults/${p} answered ${r.status}, expected ${expect}`);
      return r.body;
    },
    // The management API's view of a queue in /, or null.
    async queue(name) {
      const r = await management(broker.mgmt, 'GET', `/api/queues/%2F/${encodeURIComponent(name)}`);
      return r.status === 200 ? r.body : null;
    },
    async stop() {
      kill();
      if (!exited) await new Promise((resolve) => { child.once('exit', resolve); setTimeout(resolve, 5000); });
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + 10000;
  let port = '';
  while (Date.now() < deadline && !exited) {
    try { port = fs.readFileSync(portFile, 'utf8').trim(); } catch (e) { /* not yet */ }
    if (/^[0-9]+$/.test(port)) break;
    await sleep(50);
  }
  if (!/^[0-9]+$/.test(port)) {
    const tail = fs.readFileSync(path.join(dir, 'broker.log'), 'utf8').slice(-500);
    await broker.stop();
    throw new Failed(`the fault broker did not start: ${JSON.stringify(tail)}`);
  }
  broker.url = `amqp://guest:guest@127.0.0.1:${port}/%2f`;
  // The management listener may come up a moment after the AMQP one.
  while (Date.now() < deadline) {
    try {
      if ((await management(broker.mgmt, 'GET', '/api/warren/faults')).status === 200) return broker;
    } catch (e) { /* not yet */ }
    await sleep(50);
  }
  await broker.stop();
  throw new Failed(`the fault broker's management API at ${broker.mgmt} did not answer`);
}

// Polls cond (maybe async) until it holds; fails with `what` after timeoutMs.
async function until(what, cond, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Failed(`${what} within ${timeoutMs / 1000}s`);
    await sleep(20);
  }
}

function check(cond, reason) {
  if (!cond) throw new Failed(reason);
}

function bodies() {
  return [['empty', Buffer.alloc(0)], ['one byte', Buffer.from([0])], ['1 MiB', crypto.randomBytes(1 << 20)]];
}

function describe(buf) {
  return `${buf.length} bytes` + (buf.length ? ` starting ${buf.subarray(0, 8).toString('hex')}` : '');
}

function properties() {
  return {
    contentType: 'application/x-interop',
    contentEncoding: 'x-identity',
    deliveryMode: 2,
    priority: 5,
    correlationId: 'corr-7f3a',
    replyTo: 'interop.reply-to',
    expiration: '60000',
    messageId: 'msg-0001',
    timestamp: 1700000000,
    type: 'interop.event',
    userId: urlParts().username,
    appId: 'interop-suite',
  };
}

// Every field type amqplib can encode, each integer width given explicitly
// with amqplib's {'!': type, value} notation.
function headers() {
  return {
    string: 'h\u00e9llo, w\u00f6rld',
    'empty-string': '',
    true: true,
    false: false,
    int8: { '!': 'int8', value: -128 },
    uint8: { '!': 'uint8', value: 255 },
    int16: { '!': 'int16', value: -32768 },
    uint16: { '!': 'uint16', value: 65535 },
    int32: { '!': 'int32', value: -2147483648 },
    uint32: { '!': 'uint32', value: 4294967295 },
    int64: { '!': 'int64', value: -1234567890123 },
    float32: { '!': 'float', value: 0.25 },
    float64: 1.5,
    decimal: { '!': 'decimal', value: { places: 2, digits: 314 } },
    timestamp: { '!': 'timestamp', value: 1700000000 },
    bytes: Buffer.from([0, 1, 0xfe, 0xff]),
    void: null,
    array: [1, 'two', true, { k: 'v' }, [3, 4]],
    nested: { level1: { level2: { n: 42, s: 'deep' } }, list: ['a', 1] },
  };
}

// What amqplib decodes headers() into: plain numbers for every integer
// width and float, tagged objects for decimals and timestamps.
function decodedHeaders() {
  const h = headers();
  for (const [k, v] of Object.entries(h)) {
    if (v && typeof v === 'object' && v['!'] && !['decimal', 'timestamp'].includes(v['!'])) h[k] = v.value;
  }
  return h;
}

function compareProperties(got, want) {
  for (const [k, v] of Object.entries(want)) {
    check(got[k] === v, `${k}: got ${JSON.stringify(got[k])}, sent ${JSON.stringify(v)}`);
  }
}

function compareHeaders(got, want) {
  check(got && typeof got === 'object', `headers: got ${JSON.stringify(got)}`);
  check(JSON.stringify(Object.keys(got).sort()) === JSON.stringify(Object.keys(want).sort()),
    `header keys: got ${Object.keys(got).sort()}, sent ${Object.keys(want).sort()}`);
  for (const k of Object.keys(want)) {
    try {
      assert.deepStrictEqual(got[k], want[k]);
    } catch (e) {
      throw new Failed(`header ${k}: got ${JSON.stringify(got[k])}, sent ${JSON.stringify(want[k])}`);
    }
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Run the check named by argv[2] (an async function) under DEADLINE_MS.
function run(checks) {
  const name = process.argv[2];
  if (!checks[name]) {
    console.log(`usage: checks.js {${Object.keys(checks).join(',')}}`);
    process.exit(2);
  }
  setTimeout(() => {
    console.log(`${name}: still running after its ${DEADLINE_MS / 1000}s deadline`);
    process.exit(3);
  }, DEADLINE_MS).unref();
  checks[name]().then(
    (result) => {
      console.log(`${name}: ok${result ? ` (${result})` : ''}`);
      process.exit(0);
    },
    (error) => {
      if (error instanceof Skipped) {
        console.log(`${name}: ${error.message}`);
        process.exit(SKIP_EXIT);
      }
      if (!(error instanceof Failed)) console.log(error && error.stack);
      console.log(`${name}: ${error instanceof Failed ? '' : `${error && error.constructor.name}: `}${error && error.message}`);
      process.exit(1);
    },
  );
}

module.exports = {
  HEARTBEAT_S, PAUSE_MS, amqpUrl, urlParts, wrongPasswordUrl, unique, Failed, Skipped, tlsEnv, clockEnv, management,
  check, bodies, describe, startFaultBroker, until,
  properties, headers, decodedHeaders, compareProperties, compareHeaders, sleep, run,
};

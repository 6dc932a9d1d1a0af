'use strict';
// The broker dies with the tests: stop(), node exiting without stop(), and a
// SIGKILLed node (setpriv --pdeathsig on Linux). And it is the installed
// package and its binary that run.
const assert = require('node:assert/strict');
const childProcess = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { test } = require('node:test');
const { start } = require('warren-broker');
const { until } = require('./helpers');

function gone(pid) {
  try {
    // A zombie (exited, not yet reaped) counts as gone.
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].startsWith('Z');
  } catch {
    return true;
  }
}

function refused(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => { s.destroy(); resolve(false); });
    s.on('error', () => resolve(true));
  });
}

// A node that starts a broker, prints its pid and then runs `then`. Its
// TMPDIR is `tmp`: a killed node leaves the broker's temp dir behind.
function nodeWithBroker(then, tmp) {
  const script = `require('warren-broker').start().then((b) => { console.log(b.pid); ${then} })`;
  const child = childProcess.spawn(process.execPath, ['-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, TMPDIR: tmp },
  });
  const pid = new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(Number.parseInt(out, 10));
    });
    child.on('exit', (code) => { if (!out.includes('\n')) reject(new Error(`node exited ${code} before a pid`)); });
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)));
  return { child, pid, exited };
}

test('stop() leaves no process and closes the port', async () => {
  const broker = await start();
  const { pid, port } = broker;
  assert.ok(!gone(pid));
  assert.equal(await refused(port), false);
  await broker.stop();
  assert.equal(broker.running, false);
  assert.ok(gone(pid), `warren ${pid} is still running after stop()`);
  assert.equal(await refused(port), true);
  await broker.stop(); // idempotent
  assert.throws(() => broker.url, /not running/);
});

function tmpDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'warren-broker-test-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('node exiting without stop() takes the broker with it', async (t) => {
  // The broker's handle is unref'd: node exits by itself, its 'exit' hook kills it.
  const tmp = tmpDir(t);
  const { pid, exited } = nodeWithBroker('', tmp);
  const brokerPid = await pid;
  assert.equal(await exited, 0);
  await until(`warren ${brokerPid} to go`, () => gone(brokerPid));
  assert.deepEqual(fs.readdirSync(tmp), [], "the 'exit' hook left the broker's temp dir");
});

test('a SIGKILLed node takes the broker with it', { skip: process.platform !== 'linux' }, async (t) => {
  const { child, pid, exited } = nodeWithBroker('setTimeout(() => {}, 60000);', tmpDir(t));
  const brokerPid = await pid;
  assert.ok(!gone(brokerPid));
  child.kill('SIGKILL');
  await exited;
  await until(`warren ${brokerPid} to go after its parent was killed`, () => gone(brokerPid));
});

test('the installed package and its binary', async () => {
  // ci.sh runs this suite from a clean project with the tarball installed.
  assert.equal(process.env.WARREN_BIN, undefined);
  const pkg = path.dirname(require.resolve('warren-broker/package.json'));
  assert.equal(pkg, path.join(process.cwd(), 'node_modules', 'warren-broker'));
  assert.ok(fs.existsSync(path.join(pkg, 'index.d.ts')));
  const { version } = JSON.parse(fs.readFileSync(path.join(pkg, 'package.json'), 'utf8'));
  const bin = path.join(pkg, 'bin', 'warren');
  // The package's version is the binary's (pack.sh checks it against Cargo.toml).
  assert.equal(childProcess.execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim(), `warren ${version}`);
  const broker = await start();
  try {
    assert.equal(broker.binary, bin);
  } finally {
    await broker.stop();
  }
});

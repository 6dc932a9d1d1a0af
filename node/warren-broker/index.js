'use strict';
// Start and drive one Warren process for tests: in memory, on free loopback
// ports, on a virtual clock, with fault injection on. The same design as the
// pytest plugin (python/pytest-warren/src/pytest_warren/broker.py). Node >= 18
// (global fetch); no dependencies.

const childProcess = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const EXE = process.platform === 'win32' ? 'warren.exe' : 'warren';

class WarrenError extends Error {
  /** status: the HTTP status of a failed call (null for a start-up failure); body: what the broker answered. */
  constructor(message, status = null, body = '') {
    super(message);
    this.name = 'WarrenError';
    this.status = status;
    this.body = body;
  }
}

function isExecutable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The warren executable: `explicit` (options.bin), else $WARREN_BIN, else the one shipped in this package (bin/warren). */
function findBinary(explicit) {
  for (const given of [explicit, process.env.WARREN_BIN]) {
    if (given) {
      if (!isExecutable(given)) throw new WarrenError(`warren-broker: ${JSON.stringify(given)} is not an executable file`);
      return given;
    }
  }
  const shipped = path.join(__dirname, 'bin', EXE);
  if (isExecutable(shipped)) return shipped;
  throw new WarrenError(
    `warren-broker: no warren binary at ${shipped}; reinstall the warren-broker tarball, or pass { bin } / set WARREN_BIN`,
  );
}

function freePort(host) {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// setpriv --pdeathsig TERM (util-linux): the broker gets SIGTERM when node
// dies, even by SIGKILL. Looked up once; null where there is none.
let setprivPath;
function setpriv() {
  if (setprivPath !== undefined) return setprivPath;
  setprivPath = null;
  if (process.platform !== 'linux') return null;
  for (const dir of (process.env.PATH || '/usr/bin:/bin').split(path.delimiter).concat(['/usr/bin', '/bin'])) {
    const candidate = path.join(dir || '.', 'setpriv');
    if (isExecutable(candidate)) {
      const help = childProcess.spawnSync(candidate, ['--help'], { encoding: 'utf8' });
      if (help.status === 0 && /--pdeathsig/.test(help.stdout)) setprivPath = candidate;
      break;
    }
  }
  return setprivPath;
}

// Brokers still running when node exits are killed then ('exit' handlers
// cannot wait, so SIGKILL) and their temp dirs removed.
const live = new Set();
let exitHookInstalled = false;
function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const broker of [...live]) {
      broker._killSync();
      broker._cleanupDir();
    }
  });
}

function seg(s) {
  return encodeURIComponent(String(s));
}

class WarrenBroker {
  /**
   * options: bin (the warren binary), host ('127.0.0.1'), logLevel ('info'),
   * extraArgs (more warren flags), startupTimeout (ms, 20000).
   * Call start() (or use the module's start()) before anything else.
   */
  constructor(options = {}) {
    this.binary = findBinary(options.bin);
    this.host = options.host || '127.0.0.1';
    this.logLevel = options.logLevel || 'info';
    this.extraArgs = [...(options.extraArgs || [])];
    this.startupTimeout = options.startupTimeout ?? 20000;
    this.user = 'guest';
    this.password = 'guest';
    this.port = null;
    this.managementPort = null;
    this.process = null;
    this._dir = null;
    this._logPath = null;
    this.faults = new Faults(this);
  }

  // -- life cycle -----------------------------------------------------------

  /** Spawns the broker; resolves once it accepts AMQP and answers its management API. */
  async start() {
    if (this.process) return this;
    this._dir = fs.mkdtempSync(path.join(os.tmpdir(), 'warren-broker-'));
    let last;
    // The management port is picked here (Warren's 0 means "off"), so
    // another process may take it first: try again with another.
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await this._spawn(attempt);
        return this;
      } catch (e) {
        last = e;
        this._killSync();
        if (!(e instanceof WarrenError) || !/in use/i.test(this.log())) break;
      }
    }
    this._cleanupDir();
    throw last;
  }

  async _spawn(attempt) {
    const portFile = path.join(this._dir, `port-${attempt}`);
    this.managementPort = await freePort(this.host);
    const args = [
      '--in-memory',
      '--clock', 'manual',
      '--allow-fault-injection',
      '--bind', this.host,
      '--port', '0',
      '--port-file', portFile,
      '--management-port', String(this.managementPort),
      '--prometheus-port', '0',
      '--log-level', this.logLevel,
      '--default-user', this.user,
      '--default-pass', this.password,
      '--default-vhost', '/',
      ...this.extraArgs,
    ];
    const env = { ...process.env, NO_COLOR: '1' };
    for (const v of ['RABBITMQ_CONFIG_FILE', 'WARREN_DATA_DIR', 'WARREN_DEFINITIONS', 'RABBITMQ_NODE_PORT']) delete env[v];
    this._logPath = path.join(this._dir, 'warren.log');
    const logFd = fs.openSync(this._logPath, 'a');
    const wrapper = setpriv();
    const [command, argv] = wrapper
      ? [wrapper, ['--pdeathsig', 'TERM', '--', this.binary, ...args]]
      : [this.binary, args];
    let child;
    try {
      child = childProcess.spawn(command, argv, {
        stdio: ['ignore', logFd, logFd],
        env,
        cwd: this._dir,
      });
    } finally {
      fs.closeSync(logFd);
    }
    let spawnError = null;
    child.on('error', (e) => { spawnError = e; });
    child.unref(); // a forgotten broker does not keep node alive ('exit' kills it)
    this.process = child;
    live.add(this);
    installExitHook();

    const deadline = Date.now() + this.startupTimeout;
    for (;;) {
      if (spawnError) throw new WarrenError(`warren-broker: cannot run ${this.binary}: ${spawnError.message}`);
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new WarrenError(
          `warren-broker: ${this.binary} exited with ${child.exitCode ?? child.signalCode} while starting:\n${this.log()}`,
        );
      }
      if (this.port === null) {
        try {
          const text = fs.readFileSync(portFile, 'utf8').trim();
          if (text) this.port = Number.parseInt(text, 10);
        } catch { /* not written yet */ }
      }
      if (this.port !== null && this.log().includes('Server startup complete')) {
        try {
          await this.api('/api/overview', 'GET', undefined, 2000);
          return;
        } catch { /* not answering yet */ }
      }
      if (Date.now() > deadline) {
        throw new WarrenError(
          `warren-broker: ${this.binary} was not ready after ${Math.round(this.startupTimeout / 1000)} s:\n${this.log()}`,
        );
      }
      await sleep(10);
    }
  }

  /** SIGTERM (Warren closes its connections and exits), SIGKILL if it has not gone after timeoutMs. Idempotent. */
  async stop(timeoutMs = 10000) {
    const child = this.process;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.ref(); // keep node alive until it has gone
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      let timer;
      const timedOut = new Promise((resolve) => { timer = setTimeout(() => resolve('timeout'), timeoutMs); });
      if ((await Promise.race([exited, timedOut])) === 'timeout') {
        child.kill('SIGKILL');
        await exited;
      }
      clearTimeout(timer);
    }
    this._killSync();
    this._cleanupDir();
  }

  _killSync() {
    const child = this.process;
    this.process = null;
    if (child && child.exitCode === null && child.signalCode === null) {
      try { child.kill('SIGKILL'); } catch { /* gone */ }
    }
    this.port = null;
    live.delete(this);
  }

  _cleanupDir() {
    if (this._dir) {
      fs.rmSync(this._dir, { recursive: true, force: true });
      this._dir = null;
    }
  }

  get running() {
    const child = this.process;
    return !!child && child.exitCode === null && child.signalCode === null;
  }

  /** The broker's process id (null when stopped). */
  get pid() {
    return this.process ? this.process.pid : null;
  }

  // -- addresses --------------------------------------------------------------

  /** amqp://guest:guest@127.0.0.1:PORT/%2f, the default vhost. */
  get url() {
    return this.vhostUrl('/');
  }

  vhostUrl(vhost) {
    this._requireStarted();
    const p = encodeURIComponent(vhost).replace(/%2F/g, '%2f');
    return `amqp://${encodeURIComponent(this.user)}:${encodeURIComponent(this.password)}@${this.host}:${this.port}/${p}`;
  }

  /** http://127.0.0.1:PORT, the management HTTP API and web UI. */
  get managementUrl() {
    this._requireStarted();
    return `http://${this.host}:${this.managementPort}`;
  }

  _requireStarted() {
    if (this.port === null) throw new WarrenError('warren-broker: the broker is not running (start() it first)');
  }

  /** Everything the broker has logged (stdout and stderr) so far. */
  log() {
    try {
      return fs.readFileSync(this._logPath, 'utf8');
    } catch {
      return '';
    }
  }

  // -- HTTP -------------------------------------------------------------------

  /**
   * Any management API call as guest: path like /api/queues/%2f/jobs. Resolves
   * to the parsed JSON answer (null for an empty one); rejects with a
   * WarrenError carrying .status for a non-2xx answer.
   */
  async api(apiPath, method = 'GET', body = undefined, timeoutMs = 30000) {
    if (this.managementPort === null || !this.process) {
      throw new WarrenError('warren-broker: the broker is not running (start() it first)');
    }
    let data = body === undefined || body === null ? undefined : JSON.stringify(body);
    if (data === undefined && (method === 'POST' || method === 'PUT')) data = '{}';
    const headers = {
      authorization: 'Basic ' + Buffer.from(`${this.user}:${this.password}`).toString('base64'),
    };
    if (data !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`http://${this.host}:${this.managementPort}${apiPath}`, {
      method,
      headers,
      body: data,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    if (!res.ok) throw new WarrenError(`${method} ${apiPath}: ${res.status} ${text}`, res.status, text);
    return text.trim() ? JSON.parse(text) : null;
  }

  /**
   * Moves broker time forward by `seconds` (fractions allowed) and resolves
   * once everything that fell due has run: TTL expiry, dead-lettering,
   * x-expires. Resolves to the clock's reading ({ elapsed_ms, now_ms, ... }).
   * It goes over HTTP: publish with confirms (or make a round trip on the
   * channel) first, or the message may reach its queue after the clock moved.
   */
  async advance(seconds) {
    if (!(seconds >= 0)) throw new RangeError('the clock only moves forward');
    return this.api('/api/warren/clock', 'POST', { advance_ms: Math.round(seconds * 1000) });
  }

  /** The virtual clock's reading: { mode, now_ms, elapsed_ms }. */
  async clock() {
    return this.api('/api/warren/clock');
  }
}

if (typeof Symbol.asyncDispose === 'symbol') {
  // `await using broker = await start()` (Node >= 22 / TypeScript 5.2).
  WarrenBroker.prototype[Symbol.asyncDispose] = function dispose() {
    return this.stop();
  };
}

/**
 * Warren's fault injection (/api/warren/faults/...). Connections are named by
 * the management API's name or by the connection_name the client sent in its
 * client properties. Every call resolves once the broker has acted; an
 * unknown connection, channel, queue or consumer rejects with a WarrenError
 * of status 404.
 */
class Faults {
  constructor(broker) {
    this._broker = broker;
  }

  _post(p, body) {
    return this._broker.api('/api/warren/faults/' + p, 'POST', body || {});
  }

  // connections
  /** connection.close with this code (320 CONNECTION_FORCED by default). */
  async closeConnection(name, code = 320, reason = undefined) {
    const body = { code };
    if (reason !== undefined && reason !== null) body.reason = reason;
    await this._post(`connections/${seg(name)}/close`, body);
  }

  /** Closes its socket with no close frame, as when a broker dies. */
  async dropConnection(name) {
    await this._post(`connections/${seg(name)}/drop`);
  }

  /** channel.close on one channel; the connection stays. */
  async closeChannel(name, channel, code = 406, reason = undefined) {
    const body = { code };
    if (reason !== undefined && reason !== null) body.reason = reason;
    await this._post(`connections/${seg(name)}/channels/${Math.trunc(channel)}/close`, body);
  }

  /** connection.blocked (once it publishes); its publishes are not read. */
  async block(name, reason = undefined) {
    await this._post(`connections/${seg(name)}/block`, reason === undefined || reason === null ? {} : { reason });
  }

  async unblock(name) {
    await this._post(`connections/${seg(name)}/unblock`);
  }

  /** Holds back every write to the connection by `ms` (0 clears). */
  async latency(name, ms) {
    await this._post(`connections/${seg(name)}/latency`, { ms: Math.trunc(ms) });
  }

  // queues
  /** Consumers get nothing until resumeQueue (basic.get still works). */
  async pauseQueue(queue, vhost = '/') {
    await this._post(`queues/${seg(vhost)}/${seg(queue)}/pause`);
  }

  async resumeQueue(queue, vhost = '/') {
    await this._post(`queues/${seg(vhost)}/${seg(queue)}/resume`);
  }

  /** Refuses the next `count` publishes to the queue (basic.nack in confirm mode). */
  async nackPublishes(queue, count, vhost = '/') {
    await this._post(`queues/${seg(vhost)}/${seg(queue)}/nack-publishes`, { count: Math.trunc(count) });
  }

  /** basic.cancel to the queue's consumers (one, given its tag). */
  async cancelConsumers(queue, consumerTag = undefined, vhost = '/') {
    const body = consumerTag === undefined || consumerTag === null ? {} : { consumer_tag: consumerTag };
    await this._post(`queues/${seg(vhost)}/${seg(queue)}/cancel-consumers`, body);
  }

  // the node
  /**
   * A simulated broker restart: every socket dropped, connections refused for
   * downMs, transient state gone. Resolves to what it took away:
   * { connections, queues, exchanges, messages }.
   */
  restart(downMs = 0) {
    return this._post('restart', { down_ms: Math.trunc(downMs) });
  }

  /** A memory or disk alarm: publishers get connection.blocked. */
  async raiseAlarm(alarm = 'memory') {
    await this._post(`alarms/${seg(alarm)}/raise`);
  }

  async clearAlarm(alarm = 'memory') {
    await this._post(`alarms/${seg(alarm)}/clear`);
  }

  /** { allowed: true, injected_alarms: { memory, disk } }. */
  status() {
    return this._broker.api('/api/warren/faults');
  }
}

/** Starts a fresh broker (see WarrenBroker's options) and resolves once it is ready. */
function start(options = {}) {
  return new WarrenBroker(options).start();
}

module.exports = { start, WarrenBroker, Faults, WarrenError, findBinary };

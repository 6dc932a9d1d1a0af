'use strict';
// The client checks with amqplib's promise API (require('amqplib')).
// Usage: node checks.js CHECK; also `rpc-server QUEUE COUNT` and
// `rpc-client QUEUE N...` for the cross-language RPC scenarios.
const fs = require('node:fs');
const amqp = require('amqplib');
const c = require('../common');

const { check, Failed } = c;

async function connect(options, socketOptions = {}) {
  const conn = await amqp.connect(options || c.amqpUrl(), { timeout: 5000, ...socketOptions });
  conn.on('error', () => {}); // reported through the promises instead
  return conn;
}

async function confirmChannel(conn) {
  const ch = await conn.createConfirmChannel();
  ch.on('error', () => {});
  return ch;
}

async function tempQueue(ch) {
  return (await ch.assertQueue('', { exclusive: true })).queue;
}

async function getOne(ch, q, noAck = true) {
  for (let i = 0; i < 250; i++) {
    const msg = await ch.get(q, { noAck });
    if (msg) return msg;
    await c.sleep(20);
  }
  throw new Failed(`no message arrived in ${q} within 5s`);
}

async function drain(ch, q) {
  const got = [];
  for (;;) {
    const msg = await ch.get(q, { noAck: true });
    if (!msg) return got;
    got.push(msg.content.toString());
  }
}

const HOUR_MS = 3600000;

const checks = {
  // An hour-long TTL with dead-lettering, and x-expires, in milliseconds:
  // Warren's virtual clock (--clock manual) moved by POST /api/warren/clock.
  async virtual_clock() {
    const env = c.clockEnv();
    const conn = await connect(env.url);
    const ch = await conn.createChannel();
    const [dlx, dead, hour, idle] = ['dlx', 'dead', 'hour', 'idle'].map((k) => c.unique(k));
    await ch.assertExchange(dlx, 'fanout', { durable: false });
    await ch.assertQueue(dead, { durable: false });
    await ch.bindQueue(dead, dlx, '');
    await ch.assertQueue(hour, { durable: false, messageTtl: HOUR_MS, deadLetterExchange: dlx });
    await ch.assertQueue(idle, { durable: false, expires: HOUR_MS });
    ch.sendToQueue(hour, Buffer.from('an hour to live'));
    // A round trip: the publish has arrived before time moves.
    const { messageCount } = await ch.checkQueue(hour);
    check(messageCount === 1, `${hour} holds ${messageCount} messages, expected 1`);
    const started = process.hrtime.bigint();
    const moved = await c.management(env.mgmt, 'POST', '/api/warren/clock', { advance_ms: HOUR_MS });
    check(moved.status === 200, `POST /api/warren/clock answered ${moved.status}`);
    const msg = await getOne(ch, dead);
    check(msg.content.toString() === 'an hour to live', `dead-lettered ${msg.content}`);
    const death = ((msg.properties.headers || {})['x-death'] || [{}])[0];
    check(death.reason === 'expired' && death.queue === hour, `x-death ${JSON.stringify(death)}`);
    const diedMs = Number(death.time && death.time.value !== undefined ? death.time.value : death.time) * 1000;
    check(Math.abs(diedMs - moved.body.now_ms) < 1000, `x-death time ${JSON.stringify(death.time)} is not the virtual time ${moved.body.now_ms} ms`);
    const idleNow = await c.management(env.mgmt, 'GET', `/api/queues/%2F/${idle}`);
    check(idleNow.status === 404, `the idle queue is still there after an hour of x-expires (HTTP ${idleNow.status})`);
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    await ch.deleteQueue(dead);
    await ch.deleteQueue(hour);
    await ch.deleteExchange(dlx);
    await conn.close();
    return `an hour of TTL, dead-lettering and x-expires in ${elapsedMs.toFixed(0)} ms`;
  },

  async connect() {
    const p = c.urlParts();
    const conn = await connect({
      protocol: 'amqp', hostname: p.hostname, port: p.port, username: p.username, password: p.password, vhost: '/',
    });
    const product = conn.connection.serverProperties.product;
    const ch = await conn.createChannel();
    await ch.close();
    await conn.close();
    return `server product ${product}`;
  },

  async wrong_password() {
    let conn;
    try {
      conn = await amqp.connect(c.wrongPasswordUrl(), { timeout: 5000 });
    } catch (error) {
      check(/ACCESS.REFUSED|403/.test(error.message),
        `expected "Handshake terminated by server: 403 (ACCESS-REFUSED)", got ${error.message}`);
      return error.message;
    }
    await conn.close();
    throw new Failed('connected with a wrong password');
  },

  async exchange_types() {
    const conn = await connect();
    const ch = await confirmChannel(conn);
    const names = {};
    try {
      for (const kind of ['direct', 'fanout', 'topic', 'headers']) {
        names[kind] = c.unique(kind);
        await ch.assertExchange(names[kind], kind, { durable: false, autoDelete: true });
      }
      const q = {};
      for (const k of ['direct', 'fanout1', 'fanout2', 'topic', 'h_all', 'h_any']) q[k] = await tempQueue(ch);
      await ch.bindQueue(q.direct, names.direct, 'black');
      await ch.bindQueue(q.fanout1, names.fanout, '');
      await ch.bindQueue(q.fanout2, names.fanout, '');
      await ch.bindQueue(q.topic, names.topic, '*.orange.#');
      await ch.bindQueue(q.h_all, names.headers, '', { 'x-match': 'all', format: 'pdf', type: 'report' });
      await ch.bindQueue(q.h_any, names.headers, '', { 'x-match': 'any', format: 'pdf', type: 'report' });
      const pubs = [
        ['direct', 'black', undefined, 'direct-hit'], ['direct', 'white', undefined, 'direct-miss'],
        ['fanout', 'ignored', undefined, 'fanout'],
        ['topic', 'quick.orange.rabbit.x', undefined, 'topic-hit'], ['topic', 'quick.brown.fox', undefined, 'topic-miss'],
        ['headers', '', { format: 'pdf', type: 'report' }, 'headers-both'],
        ['headers', '', { format: 'pdf', type: 'log' }, 'headers-one'],
        ['headers', '', { format: 'zip' }, 'headers-none'],
      ];
      for (const [kind, key, headers, body] of pubs) ch.publish(names[kind], key, Buffer.from(body), { headers });
      await ch.waitForConfirms();
      const want = { direct: ['direct-hit'], fanout1: ['fanout'], fanout2: ['fanout'], topic: ['topic-hit'],
        h_all: ['headers-both'], h_any: ['headers-both', 'headers-one'] };
      for (const [k, w] of Object.entries(want)) {
        const got = await drain(ch, q[k]);
        check(JSON.stringify(got) === JSON.stringify(w), `queue bound for ${k}: got ${JSON.stringify(got)}, expected ${JSON.stringify(w)}`);
      }
    } finally {
      for (const name of Object.values(names)) await ch.deleteExchange(name);
      await conn.close();
    }
  },

  async bodies() {
    const conn = await connect();
    const ch = await confirmChannel(conn);
    const q = await tempQueue(ch);
    for (const [label, body] of c.bodies()) {
      ch.publish('', q, body);
      await ch.waitForConfirms();
      const got = (await getOne(ch, q)).content;
      check(got.equals(body), `${label} body: got ${c.describe(got)}, sent ${c.describe(body)}`);
    }
    await conn.close();
  },

  async properties() {
    const conn = await connect();
    const ch = await confirmChannel(conn);
    const q = await tempQueue(ch);
    const want = c.properties();
    ch.publish('', q, Buffer.from('props'), { ...want, headers: c.headers() });
    await ch.waitForConfirms();
    const msg = await getOne(ch, q);
    c.compareProperties(msg.properties, want);
    c.compareHeaders(msg.properties.headers, c.decodedHeaders());
    await conn.close();
  },

  async confirms() {
    const conn = await connect();
    const ch = await confirmChannel(conn);
    const q = await tempQueue(ch);
    const acks = [];
    for (let i = 0; i < 200; i++) {
      acks.push(new Promise((resolve, reject) => {
        ch.publish('', q, Buffer.from(String(i)), {}, (err) => (err ? reject(new Failed(`publish ${i} nacked`)) : resolve()));
      }));
    }
    await Promise.all(acks);
    const { messageCount } = await ch.checkQueue(q);
    check(messageCount === 200, `${messageCount} messages in the queue after 200 confirmed publishes`);
    await conn.close();
  },

  async basic_get() {
    const conn = await connect();
    const ch = await confirmChannel(conn);
    const q = await tempQueue(ch);
    ch.publish('', q, Buffer.from('first'));
    ch.publish('', q, Buffer.from('second'));
    await ch.waitForConfirms();
    let msg = await ch.get(q, { noAck: false });
    check(msg && msg.content.toString() === 'first' && msg.fields.messageCount === 1,
      `first get: ${msg && msg.content} count ${msg && msg.fields.messageCount}, expected first with 1`);
    check(!msg.fields.redelivered, 'first delivery flagged redelivered');
    ch.ack(msg);
    msg = await ch.get(q, { noAck: true });
    check(msg && msg.content.toString() === 'second' && msg.fields.messageCount === 0, `second get: ${msg && msg.content}`);
    msg = await ch.get(q, { noAck: true });
    check(msg === false, `get on an empty queue returned ${msg && msg.content}`);
    await conn.close();
  },

  async nack_requeue() {
    const conn = await connect();
    const ch = await confirmChannel(conn);
    const q = await tempQueue(ch);
    ch.publish('', q, Buffer.from('again'));
    await ch.waitForConfirms();
    let msg = await getOne(ch, q, false);
    check(!msg.fields.redelivered, 'first delivery flagged redelivered');
    ch.nack(msg, false, true);
    msg = await getOne(ch, q, false);
    check(msg.content.toString() === 'again' && msg.fields.redelivered,
      `after nack(requeue): ${msg.content} redelivered=${msg.fields.redelivered}`);
    ch.ack(msg);
    await conn.close();
  },

  async reject() {
    const conn = await connect();
    const ch = await confirmChannel(conn);
    const q = await tempQueue(ch);
    ch.publish('', q, Buffer.from('requeue-me'));
    await ch.waitForConfirms();
    ch.reject(await getOne(ch, q, false), true);
    const msg = await getOne(ch, q, false);
    check(msg.content.toString() === 'requeue-me' && msg.fields.redelivered,
      `after reject(requeue): ${msg.content} redelivered=${msg.fields.redelivered}`);
    ch.reject(msg, false);
    await c.sleep(200);
    const { messageCount } = await ch.checkQueue(q);
    check(messageCount === 0, `reject(requeue=false) left ${messageCount} message(s)`);
    await conn.close();
  },

  async prefetch() {
    const conn = await connect();
    const ch = await confirmChannel(conn);
    const q = await tempQueue(ch);
    for (let i = 0; i < 10; i++) ch.publish('', q, Buffer.from(String(i)));
    await ch.waitForConfirms();
    await ch.prefetch(3);
    const got = [];
    await ch.consume(q, (msg) => got.push(msg), { noAck: false });
    await c.sleep(500);
    check(got.length === 3, `with prefetch(3), ${got.length} unacked deliveries (expected 3)`);
    ch.ack(got[0]);
    await c.sleep(500);
    check(got.length === 4, `after one ack, ${got.length} deliveries (expected 4)`);
    ch.ack(got[3], true);
    await c.sleep(500);
    check(got.length === 7, `after ack(allUpTo) of all, ${got.length} deliveries (expected 7)`);
    await conn.close();
  },

  async consumer_cancel() {
    const conn = await connect();
    const ch = await confirmChannel(conn);
    const q = await tempQueue(ch);
    const got = [];
    const { consumerTag } = await ch.consume(q, (msg) => got.push(msg && msg.content.toString()), { noAck: true });
    ch.publish('', q, Buffer.from('before'));
    await ch.waitForConfirms();
    await c.sleep(300);
    check(JSON.stringify(got) === '["before"]', `consumer got ${JSON.stringify(got)} before cancel`);
    await ch.cancel(consumerTag);
    ch.publish('', q, Buffer.from('after'));
    await ch.waitForConfirms();
    await c.sleep(300);
    check(got.length === 1, `cancelled consumer still got ${JSON.stringify(got.slice(1))}`);
    const { messageCount } = await ch.checkQueue(q);
    check(messageCount === 1, `${messageCount} messages left after cancel (expected 1)`);

    // The broker cancels a consumer whose queue is deleted: amqplib calls the
    // consumer callback with null.
    const q2 = (await ch.assertQueue(c.unique('cancel'), { durable: false })).queue;
    let cancelled = false;
    await ch.consume(q2, (msg) => { if (msg === null) cancelled = true; }, { noAck: true });
    const other = await conn.createChannel();
    await other.deleteQueue(q2);
    for (let i = 0; i < 150 && !cancelled; i++) await c.sleep(20);
    check(cancelled, 'consumer callback not called with null (broker basic.cancel) after its queue was deleted');
    await ch.checkQueue(q); // the channel is still usable
    await conn.close();
  },

  async mandatory_return() {
    const conn = await connect();
    const ch = await confirmChannel(conn);
    const returned = new Promise((resolve) => ch.on('return', resolve));
    const key = c.unique('nowhere');
    ch.publish('', key, Buffer.from('lost'), { mandatory: true, messageId: 'm-1' });
    await ch.waitForConfirms();
    const msg = await Promise.race([returned, c.sleep(5000).then(() => null)]);
    check(msg, 'mandatory publish to an unroutable key was not returned');
    check(msg.fields.replyCode === 312 && msg.fields.replyText === 'NO_ROUTE',
      `basic.return ${msg.fields.replyCode} ${msg.fields.replyText}, expected 312 NO_ROUTE`);
    check(msg.content.toString() === 'lost' && msg.properties.messageId === 'm-1' && msg.fields.routingKey === key,
      `returned message differs: ${JSON.stringify(msg.fields)}`);
    await conn.close();
  },

  async heartbeat() {
    const url = new URL(c.amqpUrl());
    url.searchParams.set('heartbeat', String(c.HEARTBEAT_S));
    const conn = await connect(url.toString());
    const negotiated = conn.connection.heartbeat;
    check(negotiated === c.HEARTBEAT_S, `negotiated heartbeat ${negotiated}, asked for ${c.HEARTBEAT_S}`);
    let closed = null;
    conn.on('close', (err) => { closed = err || 'closed'; });
    const ch = await confirmChannel(conn);
    const q = await tempQueue(ch);
    await c.sleep(c.PAUSE_MS);
    check(!closed, `connection closed during the pause: ${closed}`);
    ch.publish('', q, Buffer.from('alive'));
    await ch.waitForConfirms();
    check((await getOne(ch, q)).content.toString() === 'alive', 'wrong body after the pause');
    await conn.close();
    return `${c.PAUSE_MS / 1000}s pause with a ${c.HEARTBEAT_S}s heartbeat`;
  },

  async channel_error() {
    const conn = await connect();
    const ch = await conn.createChannel();
    let channelClosed = false;
    ch.on('error', () => {});
    ch.on('close', () => { channelClosed = true; });
    try {
      await ch.checkQueue(c.unique('missing'));
      throw new Failed('passive declare (checkQueue) of a missing queue succeeded');
    } catch (error) {
      if (error instanceof Failed) throw error;
      check(error.code === 404 && /NOT_FOUND/.test(error.message), `expected a 404 NOT_FOUND, got ${error.code}: ${error.message}`);
    }
    await c.sleep(50);
    check(channelClosed, 'channel still open after the 404');
    const ch2 = await confirmChannel(conn);
    const q = await tempQueue(ch2);
    ch2.publish('', q, Buffer.from('still works'));
    await ch2.waitForConfirms();
    check((await getOne(ch2, q)).content.toString() === 'still works', 'new channel did not work');
    await conn.close();
  },

  // TLS (see interop/README.md): amqps:// with our CA, PLAIN login.
  async tls_connect() {
    const env = c.tlsEnv();
    const conn = await connect(env.url, { ca: [fs.readFileSync(env.ca)] });
    const version = await tlsRoundTrip(conn);
    await conn.close();
    return `${version}, PLAIN login, publish + consume`;
  },

  // EXTERNAL with our client certificate: user_id must be the connection's
  // user, so the round trip holds only if we are the certificate's subject.
  async tls_external() {
    const env = c.tlsEnv();
    const u = new URL(env.url);
    u.username = '';
    u.password = '';
    const conn = await connect(u.toString(), {
      ca: [fs.readFileSync(env.ca)], cert: fs.readFileSync(env.cert), key: fs.readFileSync(env.key),
      credentials: amqp.credentials.external(),
    });
    const version = await tlsRoundTrip(conn, env.externalUser);
    await conn.close();
    return `${version}, EXTERNAL as ${JSON.stringify(env.externalUser)}`;
  },

  async tls_untrusted_ca() {
    const env = c.tlsEnv();
    const started = Date.now();
    let conn;
    try {
      conn = await connect(env.url, { ca: [fs.readFileSync(env.otherCa)] });
    } catch (e) {
      const seconds = (Date.now() - started) / 1000;
      const verify = ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN',
        'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'DEPTH_ZERO_SELF_SIGNED_CERT'];
      check(verify.includes(e.code), `expected a certificate verification error, got ${e.code}: ${e.message}`);
      check(seconds < 10, `the refusal took ${seconds}s`);
      return `refused in ${seconds}s: ${e.code}`;
    }
    await conn.close();
    throw new Failed('connected although the client trusts another CA');
  },
};

async function tlsRoundTrip(conn, userId) {
  const ch = await confirmChannel(conn);
  const q = await tempQueue(ch);
  const sent = [Buffer.from('over tls'), c.bodies()[2][1]];
  for (const body of sent) {
    ch.sendToQueue(q, body, userId ? { userId } : {});
  }
  await ch.waitForConfirms();
  const got = [];
  await new Promise((resolve) => {
    ch.consume(q, (msg) => {
      got.push(msg);
      ch.ack(msg);
      if (got.length === sent.length) resolve();
    });
  });
  got.forEach((msg, i) => {
    check(msg.content.equals(sent[i]), `consumed ${c.describe(msg.content)}, sent ${c.describe(sent[i])}`);
    check(msg.properties.userId === userId, `user_id came back as ${msg.properties.userId}`);
  });
  const version = conn.connection.stream.getProtocol();
  check(['TLSv1.2', 'TLSv1.3'].includes(version), `negotiated ${version}`);
  return version;
}

// Cross-language RPC (see interop/cross).
function fib(n) {
  let [a, b] = [0, 1];
  for (let i = 0; i < n; i++) [a, b] = [b, a + b];
  return a;
}

async function rpcServer(queue, count) {
  const conn = await connect();
  const ch = await conn.createChannel();
  await ch.assertQueue(queue, { durable: false, autoDelete: true });
  await ch.prefetch(1);
  let served = 0;
  let done;
  const finished = new Promise((resolve) => { done = resolve; });
  await ch.consume(queue, (msg) => {
    const n = parseInt(msg.content.toString(), 10);
    console.log(JSON.stringify({ event: 'request', n, reply_to: msg.properties.replyTo, correlation_id: msg.properties.correlationId }));
    ch.sendToQueue(msg.properties.replyTo, Buffer.from(String(fib(n))), { correlationId: msg.properties.correlationId });
    ch.ack(msg);
    if (++served === count) done();
  });
  console.log(JSON.stringify({ event: 'ready' }));
  await finished;
  // Close the channel first (its close-ok confirms the channel's frames went
  // out): with conn.close() straight after the last sendToQueue, that last
  // reply never reached the client, against RabbitMQ as well.
  await ch.close();
  await conn.close();
}

async function rpcClient(queue, ns) {
  const conn = await connect();
  const ch = await conn.createChannel();
  const replyQ = (await ch.assertQueue('', { exclusive: true })).queue;
  const results = new Map();
  let done;
  const finished = new Promise((resolve) => { done = resolve; });
  await ch.consume(replyQ, (msg) => {
    results.set(msg.properties.correlationId, msg.content.toString());
    if (results.size === ns.length) done();
  }, { noAck: true });
  console.log(JSON.stringify({ event: 'ready', callback_queue: replyQ }));
  const ids = ns.map((n) => {
    const id = c.unique('corr');
    ch.sendToQueue(queue, Buffer.from(String(n)), { replyTo: replyQ, correlationId: id });
    return id;
  });
  await finished;
  ns.forEach((n, i) => console.log(JSON.stringify({ event: 'result', n, result: Number(results.get(ids[i])), correlation_id: ids[i] })));
  await conn.close();
}

// --- Fault injection: a Warren of each check's own (common.startFaultBroker)
// misbehaves on demand; the checks assert what amqplib's events, callbacks
// and promises show of it.

async function withFaultBroker(fn) {
  const broker = await c.startFaultBroker();
  try {
    return await fn(broker);
  } finally {
    await broker.stop();
  }
}

// A connection that faults can name (connection_name), with every
// connection-level event recorded in `events`.
async function namedConnection(broker, name) {
  const conn = await amqp.connect(broker.url, { timeout: 5000, clientProperties: { connection_name: name } });
  conn.events = [];
  conn.on('error', (err) => conn.events.push(['error', err]));
  conn.on('close', (err) => conn.events.push(['close', err]));
  conn.on('blocked', (reason) => conn.events.push(['blocked', reason]));
  conn.on('unblocked', () => conn.events.push(['unblocked']));
  return conn;
}

function event(conn, kind) {
  const e = conn.events.find(([k]) => k === kind);
  return e && e.slice(1);
}

// A confirm channel publish as a promise: resolves null (ack) or the error
// amqplib gives the callback (nack).
function publishConfirmed(ch, queue, body, options = {}) {
  return new Promise((resolve) => ch.sendToQueue(queue, Buffer.from(body), options, (err) => resolve(err)));
}

async function messages(broker, queue) {
  const q = await broker.queue(queue);
  return q && q.messages;
}

Object.assign(checks, {
  // connection.close 320 (not "fatal" to amqplib: 'close' only), then 541
  // ('error' and 'close'), each error carrying the code and the text.
  async fault_close() {
    return withFaultBroker(async (broker) => {
      const seen = [];
      for (const [code, name] of [[320, 'CONNECTION_FORCED'], [541, 'INTERNAL_ERROR']]) {
        const conn = await namedConnection(broker, `node-close-${code}`);
        await broker.fault(`connections/node-close-${code}/close`, { code, reason: 'node test' });
        await c.until(`no 'close' event after the ${code} close`, () => event(conn, 'close'));
        const [err] = event(conn, 'close');
        check(err && err.code === code && err.message.includes(`${name} - node test`),
          `'close' with ${err && err.code} ${err && err.message}, expected ${code} "${name} - node test"`);
        const error = event(conn, 'error');
        if (code === 320) check(!error, `a 320 close also emitted 'error': ${error && error[0].message}`);
        else check(error && error[0].code === code, `'error' with ${error && error[0].code}, expected ${code}`);
        seen.push(`${code} ${error ? "'error' + 'close'" : "'close'"}`);
      }
      return seen.join(', ');
    });
  },

  async fault_drop() {
    return withFaultBroker(async (broker) => {
      const conn = await namedConnection(broker, 'node-drop');
      await broker.fault('connections/node-drop/drop');
      await c.until("no 'close' event after the socket dropped", () => event(conn, 'close'));
      const [err] = event(conn, 'close');
      check(err && err.code === undefined, `a dropped socket sends no close frame, yet 'close' had code ${err && err.code}`);
      check(event(conn, 'error'), "no 'error' event for the dropped socket");
      return `'error' + 'close': ${err.message}`;
    });
  },

  // channel.close 406 on channel 1: its 'error' and 'close'; the connection
  // and its other channels go on.
  async fault_channel_close() {
    return withFaultBroker(async (broker) => {
      const conn = await namedConnection(broker, 'node-channel');
      const ch1 = await conn.createChannel();
      const ch2 = await conn.createChannel();
      const seen = [];
      ch1.on('error', (err) => seen.push(['error', err]));
      ch1.on('close', () => seen.push(['close']));
      check(ch1.ch === 1, `the first channel is number ${ch1.ch}`);
      await broker.fault('connections/node-channel/channels/1/close', { code: 406, reason: 'node test' });
      await c.until("no 'close' event on channel 1", () => seen.some(([k]) => k === 'close'));
      const err = (seen.find(([k]) => k === 'error') || [])[1];
      check(err && err.code === 406 && err.message.includes('PRECONDITION_FAILED - node test'),
        `channel 'error' ${err && err.code} ${err && err.message}, expected 406 "PRECONDITION_FAILED - node test"`);
      const q = await tempQueue(ch2);
      ch2.sendToQueue(q, Buffer.from('still here'));
      check((await getOne(ch2, q)).content.toString() === 'still here', 'channel 2 did not work');
      const ch3 = await conn.createChannel();
      await ch3.checkQueue(q);
      check(!event(conn, 'close') && !event(conn, 'error'), 'the connection closed with the channel');
      await conn.close();
      return `channel 'error' ${err.code}, the connection stays`;
    });
  },

  async fault_block() {
    return withFaultBroker(async (broker) => {
      const conn = await namedConnection(broker, 'node-block');
      const ch = await confirmChannel(conn);
      const q = await tempQueue(ch);
      check(await publishConfirmed(ch, q, 'before') === null, 'the first publish was not acked');
      await broker.fault('connections/node-block/block', { reason: 'node test' });
      // RabbitMQ tells only publishers, once they publish.
      const pending = publishConfirmed(ch, q, 'while blocked');
      await c.until("no 'blocked' event", () => event(conn, 'blocked'));
      check(event(conn, 'blocked')[0] === 'node test', `'blocked' with ${JSON.stringify(event(conn, 'blocked'))}`);
      check(conn.connection.blocked === true, 'amqplib does not mark the connection blocked');
      await c.sleep(300);
      check(await messages(broker, q) === 1, 'a publish was taken while the connection was blocked');
      await broker.fault('connections/node-block/unblock');
      await c.until("no 'unblocked' event", () => event(conn, 'unblocked'));
      check(await pending === null, 'the held publish was not acked once unblocked');
      await c.until('the held publish did not reach the queue', async () => await messages(broker, q) === 2);
      await conn.close();
      return "'blocked' (node test), publish held, 'unblocked', acked";
    });
  },

  async fault_latency() {
    const latencyMs = 300;
    return withFaultBroker(async (broker) => {
      const conn = await namedConnection(broker, 'node-slow');
      const ch = await conn.createChannel();
      const q = await tempQueue(ch);
      const roundTrip = async () => {
        const t = process.hrtime.bigint();
        await ch.checkQueue(q);
        return Number(process.hrtime.bigint() - t) / 1e6;
      };
      await broker.fault('connections/node-slow/latency', { ms: latencyMs });
      const slow = await roundTrip();
      check(slow >= latencyMs, `a round trip took ${slow.toFixed(0)} ms with ${latencyMs} ms of latency`);
      await broker.fault('connections/node-slow/latency', { ms: 0 });
      const fast = await roundTrip();
      check(fast < latencyMs, `a round trip still took ${fast.toFixed(0)} ms once the latency was cleared`);
      await conn.close();
      return `round trip ${slow.toFixed(0)} ms with ${latencyMs} ms latency, ${fast.toFixed(1)} ms without`;
    });
  },

  async fault_pause() {
    return withFaultBroker(async (broker) => {
      const conn = await namedConnection(broker, 'node-pause');
      const ch = await conn.createChannel();
      const q = await tempQueue(ch);
      const got = [];
      await ch.consume(q, (msg) => got.push(msg.content.toString()), { noAck: true });
      await broker.fault(`queues/%2F/${encodeURIComponent(q)}/pause`);
      ch.sendToQueue(q, Buffer.from('held'));
      await c.until('the publish did not reach the paused queue', async () => await messages(broker, q) === 1);
      await c.sleep(300);
      check(got.length === 0, `a paused queue delivered ${got}`);
      await broker.fault(`queues/%2F/${encodeURIComponent(q)}/resume`);
      await c.until('no delivery after resume', () => got.length > 0);
      check(got.join() === 'held', `delivered ${got} after resume`);
      await conn.close();
      return 'nothing while paused, delivered on resume';
    });
  },

  async fault_nack_publishes() {
    return withFaultBroker(async (broker) => {
      const conn = await namedConnection(broker, 'node-nack');
      const ch = await confirmChannel(conn);
      const q = await tempQueue(ch);
      await broker.fault(`queues/%2F/${encodeURIComponent(q)}/nack-publishes`, { count: 2 });
      const outcomes = [];
      for (const body of ['one', 'two', 'three']) {
        const err = await publishConfirmed(ch, q, body);
        outcomes.push(err ? 'nack' : 'ack');
      }
      check(outcomes.join() === 'nack,nack,ack', `confirms ${outcomes}, expected nack,nack,ack`);
      const left = await drain(ch, q);
      check(left.join() === 'three', `the queue holds ${JSON.stringify(left)}, expected only "three"`);
      await conn.close();
      return 'the confirm callback got an error twice, then none';
    });
  },

  async fault_cancel_consumers() {
    return withFaultBroker(async (broker) => {
      const conn = await namedConnection(broker, 'node-cancel');
      const ch = await conn.createChannel();
      ch.on('error', () => {});
      const q = await tempQueue(ch);
      const got = [];
      const { consumerTag } = await ch.consume(q, (msg) => got.push(msg), { noAck: true });
      await broker.fault(`queues/%2F/${encodeURIComponent(q)}/cancel-consumers`, { consumer_tag: consumerTag });
      await c.until('the consumer callback was not called with null', () => got.includes(null));
      const { consumerCount } = await ch.checkQueue(q);
      check(consumerCount === 0, `${consumerCount} consumers after the cancel`);
      check(!event(conn, 'close'), 'the connection closed');
      await conn.close();
      return `consumer ${consumerTag} called with null`;
    });
  },

  // The reconnect loop amqplib users write (amqplib's 'close' event, retry
  // connect with a delay) across a restart that refuses connections for
  // down_ms; durable state survives it, transient state does not.
  async fault_restart() {
    const downMs = 500;
    return withFaultBroker(async (broker) => {
      const conn = await namedConnection(broker, 'node-restart');
      const ch = await confirmChannel(conn);
      const [kept, lost] = [c.unique('kept'), c.unique('lost')];
      await ch.assertQueue(kept, { durable: true });
      await ch.assertQueue(lost, { durable: false });
      check(await publishConfirmed(ch, kept, 'persistent', { persistent: true }) === null, 'publish not acked');
      check(await publishConfirmed(ch, kept, 'transient') === null, 'publish not acked');

      let attempts = 0;
      const reconnected = new Promise((resolve) => {
        conn.on('close', async () => {
          for (;;) {
            attempts++;
            try {
              resolve(await amqp.connect(broker.url, { timeout: 2000 }));
              return;
            } catch (e) {
              await c.sleep(100);
            }
          }
        });
      });
      const started = Date.now();
      const report = await broker.fault('restart', { down_ms: downMs }, 200);
      const want = { connections: 1, queues: 1, exchanges: 0, messages: 1 };
      check(Object.entries(want).every(([k, v]) => report[k] === v),
        `restart took away ${JSON.stringify(report)}, expected ${JSON.stringify(want)}`);
      const again = await reconnected;
      again.on('error', () => {});
      const took = Date.now() - started;
      check(took >= downMs, `reconnected after ${took} ms, while the node was down ${downMs} ms`);
      check(attempts > 1, `reconnected at the first attempt, while the node was down`);
      const ch2 = await again.createChannel();
      const msgs = await drain(ch2, kept);
      check(msgs.join() === 'persistent', `the durable queue held ${JSON.stringify(msgs)}, expected only "persistent"`);
      const probe = await again.createChannel();
      probe.on('error', () => {});
      const gone = await probe.checkQueue(lost).then(() => false, (err) => err.code === 404);
      check(gone, 'the transient queue survived the restart');
      await ch2.deleteQueue(kept);
      await again.close();
      return `reconnected after ${took} ms and ${attempts} attempts; durable + persistent kept, transient gone`;
    });
  },

  async fault_disk_alarm() {
    return withFaultBroker(async (broker) => {
      const conn = await namedConnection(broker, 'node-disk');
      const ch = await confirmChannel(conn);
      const q = await tempQueue(ch);
      check(await publishConfirmed(ch, q, 'before') === null, 'the first publish was not acked');
      await broker.fault('alarms/disk/raise');
      const pending = publishConfirmed(ch, q, 'during the alarm');
      await c.until("no 'blocked' event", () => event(conn, 'blocked'));
      check(event(conn, 'blocked')[0] === 'low on disk', `'blocked' with ${JSON.stringify(event(conn, 'blocked'))}`);
      const status = await c.management(broker.mgmt, 'GET', '/api/warren/faults');
      check(status.body.injected_alarms.disk === true, `GET /api/warren/faults: ${JSON.stringify(status.body)}`);
      await broker.fault('alarms/disk/clear');
      await c.until("no 'unblocked' event", () => event(conn, 'unblocked'));
      check(await pending === null, 'the held publish was not acked once the alarm cleared');
      await conn.close();
      return "'blocked' (low on disk), then 'unblocked' and the held publish acked";
    });
  },
});

if (process.argv[2] === 'rpc-server') {
  checks['rpc-server'] = () => rpcServer(process.argv[3], Number(process.argv[4]));
} else if (process.argv[2] === 'rpc-client') {
  checks['rpc-client'] = () => rpcClient(process.argv[3], process.argv.slice(4).map(Number));
}
c.run(checks);

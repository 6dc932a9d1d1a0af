'use strict';
// amqplib against a fresh broker per test: publish/get, the broker is empty
// for each test, an hour-long TTL with dead-lettering on the virtual clock.
const assert = require('node:assert/strict');
const { test, beforeEach, afterEach } = require('node:test');
const { start } = require('warren-broker');
const { connect, channel } = require('./helpers');

let broker;
let conn;
beforeEach(async () => { broker = await start(); });
afterEach(async () => {
  if (conn) await conn.close().catch(() => {});
  conn = null;
  await broker.stop();
});

test('publish and get', async () => {
  assert.equal(broker.url, `amqp://guest:guest@127.0.0.1:${broker.port}/%2f`);
  conn = await connect(broker);
  const ch = await channel(conn);
  await ch.assertQueue('jobs');
  ch.sendToQueue('jobs', Buffer.from('hello'), { contentType: 'text/plain' });
  let msg = false;
  for (let i = 0; i < 100 && !msg; i++) msg = await ch.get('jobs', { noAck: true });
  assert.ok(msg, 'basic.get found nothing');
  assert.equal(msg.content.toString(), 'hello');
  assert.equal(msg.properties.contentType, 'text/plain');
  assert.equal(msg.fields.messageCount, 0);
});

test('each test gets a fresh broker', async () => {
  // "publish and get" left a queue "jobs" on its own broker; this one has none.
  conn = await connect(broker);
  const ch = await channel(conn);
  await assert.rejects(ch.checkQueue('jobs'), (e) => e.code === 404);
});

test('an hour-long TTL dead-letters on advance(3600)', async () => {
  conn = await connect(broker);
  // The clock moves over HTTP, unordered with this socket: a confirmed
  // publish is in its queue (its TTL counting) before advance() runs.
  const ch = await channel(conn, true);
  await ch.assertExchange('dlx', 'fanout');
  await ch.assertQueue('dead');
  await ch.bindQueue('dead', 'dlx', '');
  await ch.assertQueue('work', { arguments: { 'x-message-ttl': 3_600_000, 'x-dead-letter-exchange': 'dlx' } });
  ch.sendToQueue('work', Buffer.from('late'));
  await ch.waitForConfirms();

  await broker.advance(3599);
  assert.equal((await ch.checkQueue('work')).messageCount, 1);
  assert.equal((await ch.checkQueue('dead')).messageCount, 0);

  const reading = await broker.advance(1);
  assert.equal(reading.elapsed_ms, 3_600_000);
  assert.equal((await ch.checkQueue('work')).messageCount, 0);
  const msg = await ch.get('dead', { noAck: true });
  assert.ok(msg, 'nothing was dead-lettered');
  assert.equal(msg.content.toString(), 'late');
  const [death] = msg.properties.headers['x-death'];
  assert.equal(death.reason, 'expired');
  assert.equal(death.queue, 'work');
});

test('management API', async () => {
  assert.equal(broker.managementUrl, `http://127.0.0.1:${broker.managementPort}`);
  conn = await connect(broker);
  await (await channel(conn)).assertQueue('listed');
  const names = (await broker.api('/api/queues/%2f')).map((q) => q.name);
  assert.ok(names.includes('listed'), `queues: ${names}`);
  assert.equal((await broker.clock()).mode, 'manual');
});

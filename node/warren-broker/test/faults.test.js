'use strict';
// broker.faults: what amqplib sees when the broker misbehaves.
const assert = require('node:assert/strict');
const { test, beforeEach, afterEach } = require('node:test');
const { start, WarrenError } = require('warren-broker');
const { connect, channel, until } = require('./helpers');

let broker;
beforeEach(async () => { broker = await start(); });
afterEach(async () => { await broker.stop(); });

test('closeConnection by connection_name: amqplib sees the 320 close', async () => {
  const conn = await connect(broker, 'worker-1');
  await channel(conn);
  let closed = null;
  let errored = null;
  conn.on('close', (err) => { closed = { err }; });
  conn.on('error', (err) => { errored = err; });
  await broker.faults.closeConnection('worker-1', 320, 'test says goodbye');
  await until("amqplib's 'close'", () => closed);
  assert.equal(closed.err && closed.err.code, 320);
  assert.match(closed.err.message, /CONNECTION_FORCED - test says goodbye/);
  assert.equal(errored, null, "a 320 close is not 'error' to amqplib");
});

test('nackPublishes: the next publish is nacked, the one after confirmed', async () => {
  const conn = await connect(broker, 'publisher');
  try {
    const ch = await channel(conn, true);
    await ch.assertQueue('orders');
    await broker.faults.nackPublishes('orders', 1);
    const publish = (body) => new Promise((resolve) => ch.sendToQueue('orders', Buffer.from(body), {}, resolve));
    assert.ok(await publish('refused'), 'the first publish was confirmed, not nacked');
    assert.equal(await publish('accepted'), null);
    assert.equal((await ch.checkQueue('orders')).messageCount, 1);
  } finally {
    await conn.close();
  }
});

test('status, an injected alarm, and an unknown connection', async () => {
  assert.equal((await broker.faults.status()).allowed, true);
  await broker.faults.raiseAlarm('memory');
  assert.equal((await broker.faults.status()).injected_alarms.memory, true);
  await broker.faults.clearAlarm('memory');
  assert.equal((await broker.faults.status()).injected_alarms.memory, false);
  await assert.rejects(broker.faults.dropConnection('nobody'), (e) => e instanceof WarrenError && e.status === 404);
});

'use strict';
// One broker for the file through before/after: the second test sees what
// the first left (node:test runs a file's tests in order).
const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');
const { start } = require('warren-broker');
const { connect, channel } = require('./helpers');

let shared;
before(async () => { shared = await start(); });
after(async () => { await shared.stop(); });

let firstPort = null;

test('the first test leaves a message', async () => {
  const own = await start(); // a per-test broker is another one
  try {
    assert.notEqual(own.port, shared.port);
  } finally {
    await own.stop();
  }
  firstPort = shared.port;
  const conn = await connect(shared);
  const ch = await channel(conn, true);
  await ch.assertQueue('shared');
  ch.sendToQueue('shared', Buffer.from('from the first test'));
  await ch.waitForConfirms();
  await conn.close();
});

test('the second test gets it', async () => {
  assert.equal(shared.port, firstPort);
  const conn = await connect(shared);
  const msg = await (await channel(conn)).get('shared', { noAck: true });
  await conn.close();
  assert.ok(msg, 'the first test left nothing');
  assert.equal(msg.content.toString(), 'from the first test');
});

'use strict';
// Shared by the *.test.js files: an amqplib connection named by its
// connection_name client property (the name .faults knows it by), and waiting.
const amqp = require('amqplib');

async function connect(broker, name) {
  const options = name ? { clientProperties: { connection_name: name } } : {};
  const conn = await amqp.connect(broker.url, options);
  conn.on('error', () => {}); // asserted through 'close' where it matters
  return conn;
}

async function channel(conn, confirm = false) {
  const ch = confirm ? await conn.createConfirmChannel() : await conn.createChannel();
  ch.on('error', () => {}); // a channel closed by the broker rejects its pending call too
  return ch;
}

async function until(what, predicate, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

module.exports = { connect, channel, until };

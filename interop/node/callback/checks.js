'use strict';
// The client checks with amqplib's callback API
// (require('amqplib/callback_api')), written the way its users write it:
// nested callbacks, errors as the first argument. Usage: node checks.js CHECK
const fs = require('node:fs');
const amqp = require('amqplib/callback_api');
const c = require('../common');

const { check, Failed } = c;

// Each check is an async function for common.run; inside, it is all
// callbacks: `done(err, result)` settles it, and ok(f) turns a node-style
// callback into one that reports its error to done.
function callbackCheck(body) {
  return () => new Promise((resolve, reject) => {
    const done = (err, result) => (err ? reject(err) : resolve(result));
    const ok = (f) => (err, ...args) => {
      if (err) return done(err);
      try {
        return f(...args);
      } catch (e) {
        return done(e);
      }
    };
    try {
      body(done, ok);
    } catch (e) {
      done(e);
    }
  });
}

function withConfirmChannel(url, ok, f) {
  amqp.connect(url || c.amqpUrl(), { timeout: 5000 }, ok((conn) => {
    conn.on('error', () => {});
    conn.createConfirmChannel(ok((ch) => {
      ch.on('error', () => {});
      ch.assertQueue('', { exclusive: true }, ok((q) => f(conn, ch, q.queue)));
    }));
  }));
}

// basic.get until a message is there (a publish is asynchronous).
function getOne(ch, q, noAck, ok, f, tries = 250) {
  ch.get(q, { noAck }, ok((msg) => {
    if (msg) return f(msg);
    if (tries === 0) throw new Failed(`no message arrived in ${q} within 5s`);
    return setTimeout(() => getOne(ch, q, noAck, ok, f, tries - 1), 20);
  }));
}

function drain(ch, q, ok, f, got = []) {
  ch.get(q, { noAck: true }, ok((msg) => (msg ? drain(ch, q, ok, f, [...got, msg.content.toString()]) : f(got))));
}

const checks = {
  connect: callbackCheck((done, ok) => {
    const p = c.urlParts();
    amqp.connect({ protocol: 'amqp', hostname: p.hostname, port: p.port, username: p.username, password: p.password, vhost: '/' },
      ok((conn) => {
        const product = conn.connection.serverProperties.product;
        conn.createChannel(ok((ch) => ch.close(ok(() => conn.close(ok(() => done(null, `server product ${product}`)))))));
      }));
  }),

  wrong_password: callbackCheck((done) => {
    amqp.connect(c.wrongPasswordUrl(), { timeout: 5000 }, (err, conn) => {
      if (!err) {
        conn.close();
        return done(new Failed('connected with a wrong password'));
      }
      if (!/ACCESS.REFUSED|403/.test(err.message)) {
        return done(new Failed(`expected "Handshake terminated by server: 403 (ACCESS-REFUSED)", got ${err.message}`));
      }
      return done(null, err.message);
    });
  }),

  exchange_types: callbackCheck((done, ok) => {
    withConfirmChannel(null, ok, (conn, ch) => {
      const kinds = ['direct', 'fanout', 'topic', 'headers'];
      const names = Object.fromEntries(kinds.map((k) => [k, c.unique(k)]));
      const queues = ['direct', 'fanout1', 'fanout2', 'topic', 'h_all', 'h_any'];
      const q = {};
      const bindings = [
        ['direct', 'direct', 'black', {}], ['fanout1', 'fanout', '', {}], ['fanout2', 'fanout', '', {}],
        ['topic', 'topic', '*.orange.#', {}],
        ['h_all', 'headers', '', { 'x-match': 'all', format: 'pdf', type: 'report' }],
        ['h_any', 'headers', '', { 'x-match': 'any', format: 'pdf', type: 'report' }],
      ];
      const want = { direct: ['direct-hit'], fanout1: ['fanout'], fanout2: ['fanout'], topic: ['topic-hit'],
        h_all: ['headers-both'], h_any: ['headers-both', 'headers-one'] };
      const declareExchanges = (i, next) => (i === kinds.length ? next()
        : ch.assertExchange(names[kinds[i]], kinds[i], { durable: false, autoDelete: true }, ok(() => declareExchanges(i + 1, next))));
      const declareQueues = (i, next) => (i === queues.length ? next()
        : ch.assertQueue('', { exclusive: true }, ok((r) => { q[queues[i]] = r.queue; declareQueues(i + 1, next); })));
      const bind = (i, next) => (i === bindings.length ? next()
        : ch.bindQueue(q[bindings[i][0]], names[bindings[i][1]], bindings[i][2], bindings[i][3], ok(() => bind(i + 1, next))));
      const verify = (i, next) => {
        const keys = Object.keys(want);
        if (i === keys.length) return next();
        return drain(ch, q[keys[i]], ok, (got) => {
          check(JSON.stringify(got) === JSON.stringify(want[keys[i]]),
            `queue bound for ${keys[i]}: got ${JSON.stringify(got)}, expected ${JSON.stringify(want[keys[i]])}`);
          verify(i + 1, next);
        });
      };
      const deleteExchanges = (i, next) => (i === kinds.length ? next()
        : ch.deleteExchange(names[kinds[i]], {}, ok(() => deleteExchanges(i + 1, next))));
      declareExchanges(0, () => declareQueues(0, () => bind(0, () => {
        ch.publish(names.direct, 'black', Buffer.from('direct-hit'));
        ch.publish(names.direct, 'white', Buffer.from('direct-miss'));
        ch.publish(names.fanout, 'ignored', Buffer.from('fanout'));
        ch.publish(names.topic, 'quick.orange.rabbit.x', Buffer.from('topic-hit'));
        ch.publish(names.topic, 'quick.brown.fox', Buffer.from('topic-miss'));
        ch.publish(names.headers, '', Buffer.from('headers-both'), { headers: { format: 'pdf', type: 'report' } });
        ch.publish(names.headers, '', Buffer.from('headers-one'), { headers: { format: 'pdf', type: 'log' } });
        ch.publish(names.headers, '', Buffer.from('headers-none'), { headers: { format: 'zip' } });
        ch.waitForConfirms(ok(() => verify(0, () => deleteExchanges(0, () => conn.close(done)))));
      })));
    });
  }),

  bodies: callbackCheck((done, ok) => {
    withConfirmChannel(null, ok, (conn, ch, q) => {
      const all = c.bodies();
      const next = (i) => {
        if (i === all.length) return conn.close(done);
        const [label, body] = all[i];
        return ch.publish('', q, body, {}, ok(() => getOne(ch, q, true, ok, (msg) => {
          check(msg.content.equals(body), `${label} body: got ${c.describe(msg.content)}, sent ${c.describe(body)}`);
          next(i + 1);
        })));
      };
      next(0);
    });
  }),

  properties: callbackCheck((done, ok) => {
    withConfirmChannel(null, ok, (conn, ch, q) => {
      const want = c.properties();
      ch.publish('', q, Buffer.from('props'), { ...want, headers: c.headers() }, ok(() => getOne(ch, q, true, ok, (msg) => {
        c.compareProperties(msg.properties, want);
        c.compareHeaders(msg.properties.headers, c.decodedHeaders());
        conn.close(done);
      })));
    });
  }),

  confirms: callbackCheck((done, ok) => {
    withConfirmChannel(null, ok, (conn, ch, q) => {
      let acked = 0;
      for (let i = 0; i < 200; i++) {
        ch.publish('', q, Buffer.from(String(i)), {}, ok(() => {
          acked += 1;
          if (acked < 200) return;
          ch.checkQueue(q, ok((r) => {
            check(r.messageCount === 200, `${r.messageCount} messages in the queue after 200 confirmed publishes`);
            conn.close(done);
          }));
        }));
      }
    });
  }),

  basic_get: callbackCheck((done, ok) => {
    withConfirmChannel(null, ok, (conn, ch, q) => {
      ch.publish('', q, Buffer.from('first'));
      ch.publish('', q, Buffer.from('second'));
      ch.waitForConfirms(ok(() => ch.get(q, { noAck: false }, ok((m1) => {
        check(m1 && m1.content.toString() === 'first' && m1.fields.messageCount === 1 && !m1.fields.redelivered,
          `first get: ${m1 && m1.content} count ${m1 && m1.fields.messageCount}`);
        ch.ack(m1);
        ch.get(q, { noAck: true }, ok((m2) => {
          check(m2 && m2.content.toString() === 'second' && m2.fields.messageCount === 0, `second get: ${m2 && m2.content}`);
          ch.get(q, { noAck: true }, ok((m3) => {
            check(m3 === false, `get on an empty queue returned ${m3 && m3.content}`);
            conn.close(done);
          }));
        }));
      }))));
    });
  }),

  nack_requeue: callbackCheck((done, ok) => {
    withConfirmChannel(null, ok, (conn, ch, q) => {
      ch.publish('', q, Buffer.from('again'), {}, ok(() => getOne(ch, q, false, ok, (m1) => {
        check(!m1.fields.redelivered, 'first delivery flagged redelivered');
        ch.nack(m1, false, true);
        getOne(ch, q, false, ok, (m2) => {
          check(m2.content.toString() === 'again' && m2.fields.redelivered,
            `after nack(requeue): ${m2.content} redelivered=${m2.fields.redelivered}`);
          ch.ack(m2);
          conn.close(done);
        });
      })));
    });
  }),

  reject: callbackCheck((done, ok) => {
    withConfirmChannel(null, ok, (conn, ch, q) => {
      ch.publish('', q, Buffer.from('requeue-me'), {}, ok(() => getOne(ch, q, false, ok, (m1) => {
        ch.reject(m1, true);
        getOne(ch, q, false, ok, (m2) => {
          check(m2.content.toString() === 'requeue-me' && m2.fields.redelivered,
            `after reject(requeue): ${m2.content} redelivered=${m2.fields.redelivered}`);
          ch.reject(m2, false);
          setTimeout(() => ch.checkQueue(q, ok((r) => {
            check(r.messageCount === 0, `reject(requeue=false) left ${r.messageCount} message(s)`);
            conn.close(done);
          })), 200);
        });
      })));
    });
  }),

  prefetch: callbackCheck((done, ok) => {
    withConfirmChannel(null, ok, (conn, ch, q) => {
      for (let i = 0; i < 10; i++) ch.publish('', q, Buffer.from(String(i)));
      ch.waitForConfirms(ok(() => ch.prefetch(3, false, ok(() => {
        const got = [];
        ch.consume(q, (msg) => got.push(msg), { noAck: false }, ok(() => setTimeout(ok(() => {
          check(got.length === 3, `with prefetch(3), ${got.length} unacked deliveries (expected 3)`);
          ch.ack(got[0]);
          setTimeout(ok(() => {
            check(got.length === 4, `after one ack, ${got.length} deliveries (expected 4)`);
            ch.ack(got[3], true);
            setTimeout(ok(() => {
              check(got.length === 7, `after ack(allUpTo) of all, ${got.length} deliveries (expected 7)`);
              conn.close(done);
            }), 500);
          }), 500);
        }), 500)));
      }))));
    });
  }),

  consumer_cancel: callbackCheck((done, ok) => {
    withConfirmChannel(null, ok, (conn, ch, q) => {
      const got = [];
      ch.consume(q, (msg) => got.push(msg && msg.content.toString()), { noAck: true }, ok(({ consumerTag }) => {
        ch.publish('', q, Buffer.from('before'), {}, ok(() => setTimeout(ok(() => {
          check(JSON.stringify(got) === '["before"]', `consumer got ${JSON.stringify(got)} before cancel`);
          ch.cancel(consumerTag, ok(() => ch.publish('', q, Buffer.from('after'), {}, ok(() => setTimeout(ok(() => {
            check(got.length === 1, `cancelled consumer still got ${JSON.stringify(got.slice(1))}`);
            // The broker's basic.cancel (queue deleted): the callback gets null.
            ch.assertQueue(c.unique('cancel'), { durable: false }, ok(({ queue }) => {
              ch.consume(queue, (msg) => {
                if (msg === null) conn.close(done);
              }, { noAck: true }, ok(() => conn.createChannel(ok((other) => other.deleteQueue(queue, {}, ok(() => {
                setTimeout(() => done(new Failed('consumer callback not called with null (broker basic.cancel) '
                  + 'after its queue was deleted')), 3000).unref();
              }))))));
            }));
          }), 300)))));
        }), 300)));
      }));
    });
  }),

  mandatory_return: callbackCheck((done, ok) => {
    withConfirmChannel(null, ok, (conn, ch) => {
      const key = c.unique('nowhere');
      const timer = setTimeout(() => done(new Failed('mandatory publish to an unroutable key was not returned')), 5000);
      ch.on('return', (msg) => {
        clearTimeout(timer);
        try {
          check(msg.fields.replyCode === 312 && msg.fields.replyText === 'NO_ROUTE',
            `basic.return ${msg.fields.replyCode} ${msg.fields.replyText}, expected 312 NO_ROUTE`);
          check(msg.content.toString() === 'lost' && msg.properties.messageId === 'm-1' && msg.fields.routingKey === key,
            `returned message differs: ${JSON.stringify(msg.fields)}`);
          conn.close(done);
        } catch (e) {
          done(e);
        }
      });
      ch.publish('', key, Buffer.from('lost'), { mandatory: true, messageId: 'm-1' });
    });
  }),

  heartbeat: callbackCheck((done, ok) => {
    const url = new URL(c.amqpUrl());
    url.searchParams.set('heartbeat', String(c.HEARTBEAT_S));
    withConfirmChannel(url.toString(), ok, (conn, ch, q) => {
      check(conn.connection.heartbeat === c.HEARTBEAT_S, `negotiated heartbeat ${conn.connection.heartbeat}`);
      let closed = null;
      conn.on('close', (err) => { closed = err || 'closed'; });
      setTimeout(ok(() => {
        check(!closed, `connection closed during the pause: ${closed}`);
        ch.publish('', q, Buffer.from('alive'), {}, ok(() => getOne(ch, q, true, ok, (msg) => {
          check(msg.content.toString() === 'alive', 'wrong body after the pause');
          conn.close(ok(() => done(null, `${c.PAUSE_MS / 1000}s pause with a ${c.HEARTBEAT_S}s heartbeat`)));
        })));
      }), c.PAUSE_MS);
    });
  }),

  channel_error: callbackCheck((done, ok) => {
    amqp.connect(c.amqpUrl(), { timeout: 5000 }, ok((conn) => {
      conn.createChannel(ok((ch) => {
        ch.on('error', () => {});
        ch.checkQueue(c.unique('missing'), (err) => {
          if (!err) return done(new Failed('passive declare (checkQueue) of a missing queue succeeded'));
          if (err.code !== 404) return done(new Failed(`expected a 404 NOT_FOUND, got ${err.code}: ${err.message}`));
          return conn.createChannel(ok((ch2) => ch2.assertQueue('', { exclusive: true }, ok(({ queue }) => {
            ch2.sendToQueue(queue, Buffer.from('still works'));
            getOne(ch2, queue, true, ok, (msg) => {
              check(msg.content.toString() === 'still works', 'new channel did not work');
              conn.close(done);
            });
          }))));
        });
      }));
    }));
  }),

  // TLS (see interop/README.md): amqps:// with our CA, PLAIN login.
  tls_connect: callbackCheck((done, ok) => {
    const env = c.tlsEnv();
    amqp.connect(env.url, { timeout: 5000, ca: [fs.readFileSync(env.ca)] }, ok((conn) => {
      conn.on('error', () => {});
      tlsRoundTrip(conn, undefined, ok, (version) => conn.close(ok(() => done(null, `${version}, PLAIN login`))));
    }));
  }),

  // EXTERNAL with our client certificate; user_id must be the connection's user.
  tls_external: callbackCheck((done, ok) => {
    const env = c.tlsEnv();
    const u = new URL(env.url);
    u.username = '';
    u.password = '';
    amqp.connect(u.toString(), {
      timeout: 5000, ca: [fs.readFileSync(env.ca)], cert: fs.readFileSync(env.cert), key: fs.readFileSync(env.key),
      credentials: amqp.credentials.external(),
    }, ok((conn) => {
      conn.on('error', () => {});
      tlsRoundTrip(conn, env.externalUser, ok, (version) => conn.close(ok(() => done(null, `${version}, EXTERNAL as ${env.externalUser}`))));
    }));
  }),

  tls_untrusted_ca: callbackCheck((done) => {
    const env = c.tlsEnv();
    const started = Date.now();
    amqp.connect(env.url, { timeout: 5000, ca: [fs.readFileSync(env.otherCa)] }, (err, conn) => {
      if (!err) {
        conn.close(() => done(new Failed('connected although the client trusts another CA')));
        return;
      }
      const seconds = (Date.now() - started) / 1000;
      const verify = ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN',
        'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'DEPTH_ZERO_SELF_SIGNED_CERT'];
      if (!verify.includes(err.code)) {
        done(new Failed(`expected a certificate verification error, got ${err.code}: ${err.message}`));
      } else if (seconds >= 10) {
        done(new Failed(`the refusal took ${seconds}s`));
      } else {
        done(null, `refused in ${seconds}s: ${err.code}`);
      }
    });
  }),
};

// Publish (confirmed) to a temporary queue and consume it back; f(TLS version).
function tlsRoundTrip(conn, userId, ok, f) {
  conn.createConfirmChannel(ok((ch) => {
    ch.on('error', () => {});
    ch.assertQueue('', { exclusive: true }, ok(({ queue }) => {
      const sent = [Buffer.from('over tls'), c.bodies()[2][1]];
      sent.forEach((body) => ch.sendToQueue(queue, body, userId ? { userId } : {}));
      ch.waitForConfirms(ok(() => {
        const got = [];
        ch.consume(queue, (msg) => {
          got.push(msg);
          ch.ack(msg);
          if (got.length < sent.length) return;
          ok(() => {
            got.forEach((m, i) => {
              check(m.content.equals(sent[i]), `consumed ${c.describe(m.content)}, sent ${c.describe(sent[i])}`);
              check(m.properties.userId === userId, `user_id came back as ${m.properties.userId}`);
            });
            const version = conn.connection.stream.getProtocol();
            check(['TLSv1.2', 'TLSv1.3'].includes(version), `negotiated ${version}`);
            f(version);
          })();
        }, {}, ok(() => {}));
      }));
    }));
  }));
}

c.run(checks);

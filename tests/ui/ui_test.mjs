// End-to-end test of Warren's management web UI in headless Chromium (playwright-core).
//
// Environment (run.sh sets these):
//   UI_BASE_URL     where the UI is served, e.g. http://127.0.0.1:15672
//   UI_AMQP_PORT    the broker's AMQP port (a raw AMQP connection is opened, then closed from the UI)
//   UI_PEEK         1 to test Warren's non-destructive browse extension (0 against RabbitMQ)
//   UI_SCREENSHOTS  directory for one PNG per page
//   CHROMIUM        browser binary (default /usr/bin/chromium)
import { chromium } from 'playwright-core';
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';

const BASE = (process.env.UI_BASE_URL || 'http://127.0.0.1:15672').replace(/\/$/, '');
const AMQP_PORT = Number(process.env.UI_AMQP_PORT || 5672);
const PEEK = process.env.UI_PEEK !== '0';
const SHOTS = process.env.UI_SCREENSHOTS || 'target/ui-screenshots';
const STATS_WAIT = 30000; // RabbitMQ's stats lag by up to its 5 s collection interval; the UI polls every 5 s
const QUEUE = 'ui-test-q';
const PAYLOAD = 'hello from the UI';
const VHOST = 'ui-test/vhost';                     // a '/' inside: must travel as %2F
const XSS = '<img src=x onerror="window.__xss=1">ui-test-xss';

fs.mkdirSync(SHOTS, { recursive: true });
fs.rmSync(path.join(SHOTS, 'failure.png'), { force: true }); // from an earlier failed run

// ------------------------------------------------------------ a minimal AMQP 0-9-1 client
// Just enough to open a connection and a channel, and to notice the server closing it.
function amqpConnect(port, product) {
  const u16 = n => { const b = Buffer.alloc(2); b.writeUInt16BE(n); return b; };
  const u32 = n => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };
  const shortstr = s => Buffer.concat([Buffer.from([Buffer.byteLength(s)]), Buffer.from(s)]);
  const longstr = s => Buffer.concat([u32(Buffer.byteLength(s)), Buffer.from(s)]);
  const table = obj => {
    const body = Buffer.concat(Object.entries(obj).map(([k, v]) =>
      Buffer.concat([shortstr(k), Buffer.from('S'), longstr(v)])));
    return Buffer.concat([u32(body.length), body]);
  };
  const method = (ch, cls, mid, ...args) => {
    const payload = Buffer.concat([u16(cls), u16(mid), ...args]);
    return Buffer.concat([Buffer.from([1]), u16(ch), u32(payload.length), payload, Buffer.from([0xce])]);
  };
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let onClose;
    const closed = new Promise(r => { onClose = r; });
    const timer = setTimeout(() => reject(new Error('AMQP handshake timed out')), 10000);
    sock.on('error', e => { clearTimeout(timer); reject(e); onClose({ code: 0, text: 'socket error: ' + e.message }); });
    sock.on('close', () => onClose({ code: 0, text: 'socket closed' }));
    sock.on('connect', () => sock.write(Buffer.from('AMQP\x00\x00\x09\x01', 'latin1')));
    sock.on('data', chunk => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 8) {
        const size = buf.readUInt32BE(3);
        if (buf.length < size + 8) break;
        const type = buf[0], payload = buf.subarray(7, 7 + size);
        buf = buf.subarray(size + 8);
        if (type !== 1) continue; // heartbeats etc.
        const cls = payload.readUInt16BE(0), mid = payload.readUInt16BE(2);
        if (cls === 10 && mid === 10) {          // connection.start
          sock.write(method(0, 10, 11, table({ product, connection_name: product }), shortstr('PLAIN'),
            longstr('\0guest\0guest'), shortstr('en_US')));
        } else if (cls === 10 && mid === 30) {   // connection.tune
          const channelMax = payload.readUInt16BE(4), frameMax = payload.readUInt32BE(6);
          sock.write(method(0, 10, 31, u16(channelMax || 2047), u32(frameMax || 131072), u16(0)));
          sock.write(method(0, 10, 40, shortstr('/'), shortstr(''), Buffer.from([0])));
        } else if (cls === 10 && mid === 41) {   // connection.open-ok
          sock.write(method(1, 20, 10, shortstr('')));
        } else if (cls === 20 && mid === 11) {   // channel.open-ok
          clearTimeout(timer);
          resolve({ sock, closed, end: () => sock.destroy() });
        } else if (cls === 10 && mid === 50) {   // connection.close from the server
          const code = payload.readUInt16BE(4), len = payload[6];
          const text = payload.subarray(7, 7 + len).toString();
          sock.write(method(0, 10, 51));
          onClose({ code, text });
          sock.end();
        }
      }
    });
  });
}

// ------------------------------------------------------------ test harness
const auth = 'Basic ' + Buffer.from('guest:guest').toString('base64');
async function apiCall(method, p, body) {
  const r = await fetch(BASE + p, { method, headers: { Authorization: auth, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

let page, browser, amqp;
const pageErrors = [];
let stepNo = 0;
async function step(name, fn) {
  stepNo++;
  const t0 = Date.now();
  try {
    await fn();
    console.log(`ok ${stepNo} - ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    console.log(`not ok ${stepNo} - ${name}\n  ${String(e.stack || e).split('\n').slice(0, 6).join('\n  ')}`);
    if (page) await page.screenshot({ path: path.join(SHOTS, 'failure.png'), fullPage: true }).catch(() => {});
    throw e;
  }
}
async function shot(name) {
  await page.evaluate(() => window.scrollTo(0, 0)); // else the sticky top bar lands mid-page in full-page shots
  await page.screenshot({ path: path.join(SHOTS, name + '.png'), fullPage: true });
}
const expect = (cond, msg) => { if (!cond) throw new Error(msg); };

async function gotoPage(name) {
  await page.click(`#nav a[data-page="${name}"]`);
  await page.waitForSelector(`#main[data-page="${name}"][data-ready="true"]`, { timeout: 15000 });
}
async function waitText(selector, text, timeout = 15000) {
  await page.waitForFunction(([s, t]) => {
    const el = document.querySelector(s);
    return el && el.textContent.includes(t);
  }, [selector, text], { timeout });
}
async function waitStat(key, value, timeout = STATS_WAIT) {
  await page.waitForFunction(([k, v]) => {
    const el = document.querySelector(`[data-stat="${k}"] .stat-value`);
    return el && el.textContent.trim() === v;
  }, [key, value], { timeout, polling: 250 });
}

async function main() {
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, acceptDownloads: true });
  page = await context.newPage();
  page.on('pageerror', e => pageErrors.push(e.message));
  page.on('dialog', d => d.accept());
  // Clean leftovers of an earlier, interrupted run (harmless 404s otherwise).
  for (let i = 0; i < 120; i++) await apiCall('DELETE', '/api/queues/%2F/ui-test-page-' + String(i).padStart(3, '0'));
  for (const p of ['/api/queues/%2F/' + QUEUE, '/api/queues/%2F/ui-test-imported', '/api/exchanges/%2F/ui-test-x',
    '/api/vhosts/' + encodeURIComponent(VHOST), '/api/users/ui-test-mgmt', '/api/queues/%2F/' + encodeURIComponent(XSS), '/api/users/ui-test-user']) await apiCall('DELETE', p);

  await step('login page loads; a wrong password shows the API reason', async () => {
    await page.goto(BASE + '/');
    await page.waitForSelector('#login-form');
    await shot('00-login');
    await page.fill('#login-user', 'guest');
    await page.fill('#login-pass', 'not-the-password');
    await page.click('#login-submit');
    await waitText('#login-error', 'Login failed');
    expect(await page.isHidden('#shell'), 'the app shell must stay hidden after a failed login');
  });

  await step('login as guest/guest', async () => {
    await page.fill('#login-user', 'guest');
    await page.fill('#login-pass', 'guest');
    await page.click('#login-submit');
    await page.waitForSelector('#main[data-page="overview"][data-ready="true"]');
    await waitText('#whoami-user', 'guest');
  });

  await step('credentials survive a reload (sessionStorage)', async () => {
    await page.reload();
    await page.waitForSelector('#main[data-page="overview"][data-ready="true"]');
    expect(await page.isHidden('#login'), 'login form must not be shown after a reload');
  });

  await step('open an AMQP connection and a channel', async () => {
    amqp = await amqpConnect(AMQP_PORT, 'warren-ui-test');
  });

  await step('overview: totals and live charts', async () => {
    await gotoPage('overview');
    await page.waitForFunction(() => /\d/.test(document.querySelector('[data-stat="total-queues"] .stat-value')?.textContent));
    await page.waitForFunction(() => samples.length >= 2, null, { timeout: 15000 }); // two polls: lines are drawn
    await page.waitForFunction(() => Number(document.querySelector('[data-stat="total-connections"] .stat-value')
      ?.textContent) >= 1, null, { timeout: STATS_WAIT });
    await shot('01-overview');
  });

  await step('channels page lists the open channel', async () => {
    await gotoPage('channels');
    await page.waitForSelector('#main table.grid tbody tr', { timeout: STATS_WAIT });
    await shot('03-channels');
  });

  await step('exchanges: add ui-test-x, then delete it', async () => {
    await gotoPage('exchanges');
    await page.waitForSelector('tr[data-name="amq.direct"]');
    await page.fill('#exchange-name', 'ui-test-x');
    await page.selectOption('select[name="type"]', 'fanout');
    await page.click('form.inline-form button[type="submit"]');
    await page.waitForSelector('tr[data-name="ui-test-x"]');
    await shot('04-exchanges');
    await page.click('tr[data-name="ui-test-x"] button:has-text("Delete")');
    await page.waitForSelector('tr[data-name="ui-test-x"]', { state: 'detached' });
  });

  await step(`queues: add ${QUEUE} and find it with the filter`, async () => {
    await gotoPage('queues');
    await page.waitForSelector('#queues-next');
    await page.fill('#queue-name', QUEUE);
    await page.click('#add-queue');
    await page.fill('#queue-filter', QUEUE);
    await page.waitForSelector(`#queues-table tr[data-name="${QUEUE}"] a`, { timeout: STATS_WAIT });
    await waitText('.pager', '1 matching');
    await shot('05-queues');
  });

  await step('queue detail page opens', async () => {
    await page.click(`#queues-table tr[data-name="${QUEUE}"] a`);
    await page.waitForSelector('#main[data-page="queue"][data-ready="true"]');
    expect((await page.textContent('#queue-title')).trim() === QUEUE, 'title is the queue name');
    expect(page.url().endsWith('#/queues/%2F/' + QUEUE), 'URL carries the encoded vhost: ' + page.url());
  });

  await step('publish a message: routed, count becomes 1', async () => {
    await page.fill('#publish-payload', PAYLOAD);
    await page.click('#publish');
    await waitText('#publish-result', 'routed: true');
    await waitStat('messages', '1');
  });

  if (PEEK) {
    await step('browse (peek) shows the message without consuming it', async () => {
      await page.click('#browse');
      await waitText('#browse-result', PAYLOAD);
      await waitStat('messages', '1', 5000);
      const r = await apiCall('GET', `/api/queues/%2F/${QUEUE}`);
      expect(r.body.messages === 1, 'still one message after peeking: ' + r.body.messages);
    });
  } else {
    // RabbitMQ has no peek: only the UI's rendering is checked, against a canned answer.
    await step('browse (peek) renders a stubbed answer (the reference has no peek endpoint)', async () => {
      const url = `**/api/queues/%2F/${QUEUE}/messages?*`;
      await page.route(url, route => route.fulfill({ json: [{ position: 0, payload: PAYLOAD, payload_bytes: 17,
        payload_encoding: 'string', properties: { delivery_mode: 2 }, routing_key: QUEUE, exchange: '', redelivered: false }] }));
      await page.click('#browse');
      await waitText('#browse-result', PAYLOAD);
      await page.unroute(url);
    });
  }

  await step('get the message back (requeue) and see the payload', async () => {
    await page.click('#get-messages');
    await waitText('#get-result', PAYLOAD);
    await shot('06-queue-detail');
  });

  await step('purge: count becomes 0', async () => {
    await page.click('#purge');
    await waitStat('messages', '0');
  });

  await step('delete the queue: gone from the list', async () => {
    await page.click('#delete-queue');
    await page.waitForSelector('#main[data-page="queues"][data-ready="true"]');
    expect(await page.inputValue('#queue-filter') === QUEUE, 'the filter is kept');
    await page.waitForSelector(`#queues-table tr[data-name="${QUEUE}"]`, { state: 'detached', timeout: STATS_WAIT });
    await waitText('#main', 'No queue matches', STATS_WAIT);
    const r = await apiCall('GET', `/api/queues/%2F/${QUEUE}`);
    expect(r.status === 404, 'queue deleted on the server: ' + r.status);
  });

  await step('queues: server-side paging (120 queues, 100 per page, prev/next)', async () => {
    const names = Array.from({ length: 120 }, (_, i) => 'ui-test-page-' + String(i).padStart(3, '0'));
    const declare = async (n, method) => apiCall(method, '/api/queues/%2F/' + n,
      method === 'PUT' ? { durable: false, auto_delete: false, arguments: {} } : undefined);
    for (let i = 0; i < names.length; i += 10) await Promise.all(names.slice(i, i + 10).map(n => declare(n, 'PUT')));
    try {
      await page.fill('#queue-filter', 'ui-test-page-');
      await waitText('.pager', '120 matching', STATS_WAIT);
      await waitText('.pager', 'Page 1 of 2');
      expect(await page.locator('#queues-table tbody tr').count() === 100, 'page 1 has 100 rows');
      expect(await page.isDisabled('#queues-prev'), 'prev disabled on page 1');
      await page.click('#queues-next');
      await waitText('.pager', 'Page 2 of 2');
      expect(await page.locator('#queues-table tbody tr').count() === 20, 'page 2 has 20 rows');
      expect(await page.isDisabled('#queues-next'), 'next disabled on the last page');
      await page.waitForSelector('#queues-table tr[data-name="ui-test-page-119"]');
      await page.click('#queues-prev');
      await waitText('.pager', 'Page 1 of 2');
      await page.waitForSelector('#queues-table tr[data-name="ui-test-page-000"]');
    } finally {
      for (let i = 0; i < names.length; i += 10) await Promise.all(names.slice(i, i + 10).map(n => declare(n, 'DELETE')));
    }
  });

  await step('server-provided text is escaped (a queue named like an HTML tag)', async () => {
    await apiCall('PUT', '/api/queues/%2F/' + encodeURIComponent(XSS), { durable: false, auto_delete: false, arguments: {} });
    try {
      await page.fill('#queue-filter', 'ui-test-xss');
      await waitText('#queues-table', XSS, STATS_WAIT);
      expect(await page.locator('#main img').count() === 0, 'no <img> element was created');
      await page.click('#queues-table a');
      await page.waitForSelector('#main[data-page="queue"][data-ready="true"]');
      expect((await page.textContent('#queue-title')) === XSS, 'title shows the raw name');
      expect(await page.evaluate(() => window.__xss) === undefined, 'no script ran');
      await page.click('#nav a[data-page="queues"]');
      await page.waitForSelector('#main[data-page="queues"][data-ready="true"]');
    } finally {
      await apiCall('DELETE', '/api/queues/%2F/' + encodeURIComponent(XSS));
    }
  });

  await step('admin: add a vhost (with a "/" in its name) and a user, then delete them', async () => {
    await gotoPage('admin');
    await page.fill('#add-vhost-form input[name="name"]', VHOST);
    await page.click('#add-vhost-form button[type="submit"]');
    await page.waitForSelector(`#vhosts-table tr[data-name="${VHOST}"]`);
    expect((await apiCall('GET', '/api/vhosts/' + encodeURIComponent(VHOST))).status === 200, 'vhost created');
    await page.fill('#add-user-form input[name="name"]', 'ui-test-user');
    await page.fill('#add-user-form input[name="password"]', 's3cret');
    await page.fill('#add-user-form input[name="tags"]', 'monitoring');
    await page.click('#add-user-form button[type="submit"]');
    await page.waitForSelector('#users-table tr[data-name="ui-test-user"]');
    await waitText('#users-table tr[data-name="ui-test-user"]', 'monitoring');
    await shot('07-admin');
    await page.click('#users-table tr[data-name="ui-test-user"] button:has-text("Delete")');
    await page.waitForSelector('#users-table tr[data-name="ui-test-user"]', { state: 'detached' });
    await page.click(`#vhosts-table tr[data-name="${VHOST}"] button:has-text("Delete")`);
    await page.waitForSelector(`#vhosts-table tr[data-name="${VHOST}"]`, { state: 'detached' });
    expect((await apiCall('GET', '/api/vhosts/' + encodeURIComponent(VHOST))).status === 404, 'vhost deleted');
  });

  await step('definitions: export downloads JSON, import creates a queue', async () => {
    await gotoPage('definitions');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-definitions')]);
    const defs = JSON.parse(fs.readFileSync(await download.path(), 'utf8'));
    expect(Array.isArray(defs.queues) && Array.isArray(defs.exchanges), 'export has queues and exchanges');
    await waitText('#definitions-result', 'Exported');
    const file = path.join(SHOTS, 'import-definitions.json');
    fs.writeFileSync(file, JSON.stringify({ queues: [{ name: 'ui-test-imported', vhost: '/', durable: true,
      auto_delete: false, arguments: {} }] }));
    await page.setInputFiles('#definitions-file', file);
    await page.click('#import-definitions');
    await waitText('#definitions-result', 'Imported');
    const r = await apiCall('GET', '/api/queues/%2F/ui-test-imported');
    expect(r.status === 200, 'imported queue exists: ' + r.status);
    await apiCall('DELETE', '/api/queues/%2F/ui-test-imported');
    fs.unlinkSync(file);
    await shot('08-definitions');
  });

  await step('connections: close the AMQP connection from the UI', async () => {
    await gotoPage('connections');
    const row = page.locator('#main tr', { hasText: 'warren-ui-test' });
    await row.first().waitFor({ timeout: STATS_WAIT });
    await shot('02-connections');
    await row.first().locator('button:has-text("Close")').click();
    const closed = await Promise.race([amqp.closed,
      new Promise((_, rej) => setTimeout(() => rej(new Error('server did not close the connection')), 15000))]);
    expect(closed.text.includes('Closed via Warren UI'), 'close reason reaches the client: ' + JSON.stringify(closed));
    await row.first().waitFor({ state: 'detached', timeout: STATS_WAIT });
  });

  await step('logout returns to the login form', async () => {
    await page.click('#logout');
    await page.waitForSelector('#login-form', { state: 'visible' });
    expect(await page.evaluate(() => sessionStorage.getItem('warren.auth')) === null, 'credentials forgotten');
  });

  await step('a management-only user sees the refusal reason on Admin and stays logged in', async () => {
    await apiCall('PUT', '/api/users/ui-test-mgmt', { password: 'pw', tags: 'management' });
    await apiCall('PUT', '/api/permissions/%2F/ui-test-mgmt', { configure: '.*', write: '.*', read: '.*' });
    try {
      await page.fill('#login-user', 'ui-test-mgmt');
      await page.fill('#login-pass', 'pw');
      await page.click('#login-submit');
      await page.waitForSelector('#main[data-ready="true"]'); // back on the page we logged out from
      await page.click('#nav a[data-page="admin"]');
      await waitText('#main', 'Could not load this page:');  // followed by the API's reason
      const reason = (await page.textContent('#main .error')).replace('Could not load this page:', '').trim();
      expect(reason.length > 0, 'the reason is shown');
      console.log('# refusal shown: ' + reason);
      expect(await page.isVisible('#shell'), 'still logged in');
      await page.click('#nav a[data-page="queues"]');
      await page.waitForSelector('#main[data-page="queues"][data-ready="true"]');
      await page.click('#logout');
      await page.waitForSelector('#login-form', { state: 'visible' });
    } finally {
      await apiCall('DELETE', '/api/users/ui-test-mgmt');
    }
  });

  expect(pageErrors.length === 0, 'JavaScript errors on the page: ' + pageErrors.join('; '));
  console.log(`# all ${stepNo} steps passed; screenshots in ${SHOTS}`);
}

main().then(async () => {
  await browser?.close();
  amqp?.end();
  process.exit(0);
}, async e => {
  if (pageErrors.length) console.log('# page errors: ' + pageErrors.join('; '));
  console.log('# FAILED: ' + (e && e.message));
  await browser?.close().catch(() => {});
  amqp?.end();
  process.exit(1);
});

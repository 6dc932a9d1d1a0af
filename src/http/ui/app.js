// Warren management UI: plain JS, no framework, no build step.
// Talks to the RabbitMQ-compatible management API under /api/ on the same origin.
// Every server-provided string goes into the DOM through textContent (see h()).
'use strict';

const POLL_MS = 5000;          // refresh period for live data
const MAX_SAMPLES = 120;       // chart history kept client-side (10 minutes at 5 s)
const PAGE_SIZE = 100;         // queues list page size (always server-side paging)
const AUTH_KEY = 'warren.auth';
const USER_KEY = 'warren.user';

// ---------------------------------------------------------------- DOM helpers

// h('tag.class', {attr: v, onclick: fn}, child, ...): children are nodes or text
// (text is never parsed as HTML). null/undefined/false children are skipped.
function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split('.');
  const el = document.createElement(tag || 'div');
  if (classes.length) el.className = classes.join(' ');
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked' || k === 'disabled' || k === 'selected') el[k] = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of [children].flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }
function $(sel, root) { return (root || document).querySelector(sel); }

function fmtNum(n) {
  if (n === undefined || n === null || n === '') return '–';
  if (typeof n !== 'number') return String(n);
  return n.toLocaleString('en-US');
}

function fmtRate(r) {
  if (typeof r !== 'number') return '–';
  return (r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2)) + '/s';
}

// message_stats.<key>_details.rate, or undefined
function rate(obj, key) {
  const d = obj && obj.message_stats && obj.message_stats[key + '_details'];
  return d ? d.rate : undefined;
}

function fmtBytes(n) {
  if (typeof n !== 'number') return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + ' ' + units[i];
}

// Small labels for durable/auto-delete/... flags, plus optional extra text.
function features(o, extra) {
  const tags = [o.durable && 'durable', o.auto_delete && 'auto-delete', o.internal && 'internal',
    o.exclusive && 'exclusive'].filter(Boolean);
  return [tags.map(t => h('span.tag', t)), extra ? h('span.muted', ' ' + extra) : null];
}

function yesNo(b) { return b ? 'yes' : 'no'; }
function enc(s) { return encodeURIComponent(s); }   // '/' -> '%2F', as the API wants
function tagsOf(u) { return Array.isArray(u.tags) ? u.tags.join(', ') : (u.tags || ''); }
function args(obj) {
  const keys = Object.keys(obj || {});
  return keys.length ? keys.map(k => k + '=' + JSON.stringify(obj[k])).join(', ') : '';
}

// ---------------------------------------------------------------- API client

class ApiError extends Error {
  constructor(status, reason) { super(reason); this.status = status; }
}

function authHeader() { return sessionStorage.getItem(AUTH_KEY); }

function basicAuth(user, pass) {
  const bytes = new TextEncoder().encode(user + ':' + pass);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return 'Basic ' + btoa(bin);
}

// api('GET', '/api/overview') -> parsed JSON (or null for empty bodies).
// Throws ApiError carrying the API's `reason` on non-2xx answers.
async function api(method, path, body, opts) {
  opts = opts || {};
  const headers = Object.assign({ 'Authorization': opts.auth || authHeader() || '' }, opts.headers);
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method, headers, cache: 'no-store',
      // 'omit' keeps the browser from popping up its own login dialog on a 401 with
      // WWW-Authenticate (Fetch spec: no prompt without credentials mode); our header still goes.
      credentials: 'omit',
      body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
    });
  } catch (e) {
    throw new ApiError(0, 'Cannot reach the server: ' + e.message);
  }
  const text = await res.text();
  let data = null;
  if (text) { try { data = JSON.parse(text); } catch (e) { data = text; } }
  if (!res.ok) {
    const reason = data && typeof data === 'object'
      ? (data.reason || data.error || res.statusText)
      : (data || res.statusText || ('HTTP ' + res.status));
    // 401 also means "not allowed" (e.g. a non-administrator on /api/users): log out only
    // when the credentials themselves no longer work.
    if (res.status === 401 && !opts.auth && !(await credentialsStillValid())) {
      logout('Session expired: ' + reason);
      throw new ApiError(401, reason);
    }
    throw new ApiError(res.status, typeof reason === 'string' ? reason : JSON.stringify(reason));
  }
  return data;
}

async function credentialsStillValid() {
  try { await api('GET', '/api/whoami', undefined, { auth: authHeader() || '' }); return true; } catch (e) { return e.status !== 401; }
}

// ---------------------------------------------------------------- flash messages

function flash(msg, kind) {
  const box = $('#flash');
  const el = h('div.flash.' + (kind || 'ok'), msg, h('button.link', { onclick: () => el.remove(), title: 'dismiss' }, '×'));
  box.appendChild(el);
  while (box.children.length > 3) box.firstChild.remove();
  setTimeout(() => el.remove(), kind === 'error' ? 12000 : 4000);
}

// Runs an async action, reporting failure (with the API's reason) as a flash.
async function act(fn, okMsg) {
  try {
    const r = await fn();
    if (okMsg) flash(typeof okMsg === 'function' ? okMsg(r) : okMsg, 'ok');
    return r;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401 && !authHeader()) return undefined; // logged out
    flash(e.message, 'error');
    return undefined;
  }
}

// ---------------------------------------------------------------- small widgets

// table([{label, get(row) -> node|text, cls}], rows, {empty, key})
function table(cols, rows, opts) {
  opts = opts || {};
  if (!rows || !rows.length) return h('p.empty.muted', opts.empty || 'Nothing here.');
  return h('table.grid', opts.attrs || {},
    h('thead', h('tr', cols.map(c => h('th', { class: c.cls }, c.label)))),
    h('tbody', rows.map(r => h('tr', opts.rowAttrs ? opts.rowAttrs(r) : {},
      cols.map(c => h('td', { class: c.cls }, c.get(r)))))));
}

function stat(label, value, key) {
  return h('div.stat', { dataset: key ? { stat: key } : {} },
    h('div.stat-value', value), h('div.stat-label', label));
}

function section(title, ...content) {
  return h('section.card', h('h2', title), ...content);
}

function field(label, input) { return h('label.field', h('span', label), input); }

function vhostSelect(name, vhosts, selected) {
  return h('select', { name },
    (vhosts || [{ name: '/' }]).map(v => h('option', { value: v.name, selected: v.name === (selected || '/') }, v.name)));
}

function formValues(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    out[el.name] = el.type === 'checkbox' ? el.checked : el.value;
  }
  return out;
}

function parseJsonField(text, what) {
  if (!text.trim()) return {};
  try {
    const v = JSON.parse(text);
    if (v && typeof v === 'object' && !Array.isArray(v)) return v;
  } catch (e) { /* fall through */ }
  throw new Error(what + ' must be a JSON object, e.g. {"x-max-length": 1000}');
}

function confirmed(msg) { return window.confirm(msg); }

// ---------------------------------------------------------------- charts

// Samples of the overview, kept across page changes while logged in.
const samples = [];

function recordSample(ov) {
  const q = ov.queue_totals || {};
  samples.push({
    t: Date.now(),
    publish: rate(ov, 'publish') || 0,
    deliver: rate(ov, 'deliver_get') || 0,
    ready: q.messages_ready || 0,
    unacked: q.messages_unacknowledged || 0,
  });
  while (samples.length > MAX_SAMPLES) samples.shift();
}

// Draws a line chart of series [{key, label, color}] over `samples` on a canvas.
function drawChart(canvas, series, fmt) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 600, hgt = canvas.clientHeight || 180;
  canvas.width = Math.round(w * dpr); canvas.height = Math.round(hgt * dpr);
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, hgt);
  const padL = 64, padR = 12, padT = 10, padB = 22;
  const pw = w - padL - padR, ph = hgt - padT - padB;
  let max = 0;
  for (const s of samples) for (const ser of series) max = Math.max(max, s[ser.key]);
  max = niceMax(max);
  ctx.font = '11px system-ui, sans-serif';
  ctx.fillStyle = '#6b7280'; ctx.strokeStyle = '#e5e7eb'; ctx.lineWidth = 1;
  ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
  for (let i = 0; i <= 4; i++) {
    const y = padT + ph - (ph * i) / 4;
    ctx.beginPath(); ctx.moveTo(padL, y + 0.5); ctx.lineTo(padL + pw, y + 0.5); ctx.stroke();
    ctx.fillText(fmt((max * i) / 4), padL - 6, y);
  }
  // The time axis grows with the history: at least a minute, at most the retention.
  const now = samples.length ? samples[samples.length - 1].t : Date.now();
  const span = Math.min(MAX_SAMPLES * POLL_MS, Math.max(60000, samples.length ? now - samples[0].t : 0));
  const x = t => padL + pw - ((now - t) / span) * pw;
  const step = [10, 30, 60, 120, 300].find(st => span / 1000 / st <= 6) * 1000;
  ctx.textAlign = 'center'; ctx.textBaseline = 'top';
  for (let d = 0; d <= span + 1; d += step) {
    const label = d === 0 ? 'now' : d < 60000 ? '-' + d / 1000 + ' s' : '-' + d / 60000 + ' min';
    ctx.fillText(label, Math.max(x(now - d), padL + 16), padT + ph + 6);
  }
  if (samples.length < 2) {
    ctx.fillText('collecting samples…', padL + pw / 2, padT + ph / 2 - 6);
  }
  for (const ser of series) {
    ctx.strokeStyle = ser.color; ctx.lineWidth = 2; ctx.beginPath();
    samples.forEach((s, i) => {
      const px = x(s.t), py = padT + ph - (s[ser.key] / max) * ph;
      if (i) ctx.lineTo(px, py); else ctx.moveTo(px, py);
    });
    ctx.stroke();
  }
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function chartBox(title, series, fmt) {
  const canvas = h('canvas.chart', { height: 180 });
  const legend = h('div.legend', series.map(s => h('span', h('i', { style: 'background:' + s.color }), s.label,
    ' ', h('b', { dataset: { series: s.key } }, ''))));
  const box = h('div.chart-box', h('h3', title), canvas, legend);
  box.redraw = () => {
    drawChart(canvas, series, fmt);
    const last = samples[samples.length - 1];
    for (const s of series) $('[data-series="' + s.key + '"]', legend).textContent = last ? fmt(last[s.key]) : '';
  };
  return box;
}

// ---------------------------------------------------------------- pages
// Each page is render(main, params) -> optional refresh() called every POLL_MS.

const pages = {};

pages.overview = async (main) => {
  const totals = h('div.stats');
  const queued = h('div.stats');
  const rates = h('div.stats');
  const info = h('div.muted');
  const rateChart = chartBox('Message rates', [
    { key: 'publish', label: 'Publish', color: '#2563eb' },
    { key: 'deliver', label: 'Deliver / get', color: '#16a34a' },
  ], fmtRate);
  const queueChart = chartBox('Queued messages', [
    { key: 'ready', label: 'Ready', color: '#d97706' },
    { key: 'unacked', label: 'Unacked', color: '#9333ea' },
  ], fmtNum);
  append(main, [
    h('h1', 'Overview'),
    section('Totals', totals),
    section('Queued messages', queued, queueChart),
    section('Message rates', rates, rateChart),
    section('Node', info),
  ]);
  const refresh = async () => {
    const ov = lastOverview || await api('GET', '/api/overview');
    lastOverview = null;
    const o = ov.object_totals || {}, q = ov.queue_totals || {};
    clear(totals);
    append(totals, ['connections', 'channels', 'exchanges', 'queues', 'consumers']
      .map(k => stat(k[0].toUpperCase() + k.slice(1), fmtNum(o[k]), 'total-' + k)));
    clear(queued);
    append(queued, [stat('Total', fmtNum(q.messages), 'messages'), stat('Ready', fmtNum(q.messages_ready), 'messages_ready'),
      stat('Unacked', fmtNum(q.messages_unacknowledged), 'messages_unacknowledged')]);
    clear(rates);
    append(rates, [['publish', 'Publish'], ['deliver_get', 'Deliver / get'], ['ack', 'Ack'],
      ['confirm', 'Confirm'], ['redeliver', 'Redeliver'], ['return_unroutable', 'Unroutable']]
      .map(([k, l]) => stat(l, fmtRate(rate(ov, k)), 'rate-' + k)));
    clear(info);
    append(info, [
      h('div', (ov.product_name || 'Warren') + ' ' + (ov.product_version || ov.rabbitmq_version || '')),
      ov.cluster_name ? h('div', 'Cluster: ' + ov.cluster_name) : null,
      ov.node ? h('div', 'Node: ' + ov.node) : null,
      (ov.listeners || []).length ? h('div', 'Listeners: ' +
        ov.listeners.map(l => l.protocol + ' ' + (l.ip_address || '') + ':' + l.port).join(', ')) : null,
    ]);
    rateChart.redraw(); queueChart.redraw();
  };
  await refresh();
  return refresh;
};

pages.connections = async (main) => {
  const list = h('div');
  append(main, [h('h1', 'Connections'), section('All connections', list)]);
  const refresh = async () => {
    const conns = await api('GET', '/api/connections');
    clear(list);
    append(list, [h('p.muted', conns.length + ' connection(s)'), table([
      { label: 'Name', get: c => c.name },
      { label: 'User', get: c => c.user },
      { label: 'Vhost', get: c => c.vhost },
      { label: 'Client', get: c => (c.client_properties && c.client_properties.product) || '' },
      { label: 'Channels', get: c => fmtNum(c.channels), cls: 'num' },
      { label: 'State', get: c => h('span.badge.' + (c.state || ''), c.state || '') },
      { label: 'From client', get: c => fmtBytes(c.recv_oct_details ? c.recv_oct_details.rate : undefined) + '/s', cls: 'num' },
      { label: '', get: c => h('button.danger.small', {
        onclick: async () => {
          if (!confirmed('Close connection ' + c.name + '?')) return;
          await act(() => api('DELETE', '/api/connections/' + enc(c.name), undefined,
            { headers: { 'X-Reason': 'Closed via Warren UI' } }), 'Connection closed');
          refresh().catch(() => {});
        },
      }, 'Close') },
    ], conns, { empty: 'No connections.', rowAttrs: c => ({ dataset: { name: c.name } }) })]);
  };
  await refresh();
  return refresh;
};

pages.channels = async (main) => {
  const list = h('div');
  append(main, [h('h1', 'Channels'), section('All channels', list)]);
  const refresh = async () => {
    const chans = await api('GET', '/api/channels');
    clear(list);
    append(list, [h('p.muted', chans.length + ' channel(s)'), table([
      { label: 'Channel', get: c => c.name },
      { label: 'User', get: c => c.user },
      { label: 'Vhost', get: c => c.vhost },
      { label: 'Mode', get: c => [c.confirm ? 'confirm' : '', c.transactional ? 'tx' : ''].filter(Boolean).join(' ') },
      { label: 'State', get: c => h('span.badge.' + (c.state || ''), c.state || '') },
      { label: 'Consumers', get: c => fmtNum(c.consumer_count), cls: 'num' },
      { label: 'Prefetch', get: c => fmtNum(c.prefetch_count), cls: 'num' },
      { label: 'Unacked', get: c => fmtNum(c.messages_unacknowledged), cls: 'num' },
      { label: 'Publish', get: c => fmtRate(rate(c, 'publish')), cls: 'num' },
      { label: 'Deliver / get', get: c => fmtRate(rate(c, 'deliver_get')), cls: 'num' },
    ], chans, { empty: 'No channels.' })]);
  };
  await refresh();
  return refresh;
};

pages.exchanges = async (main) => {
  const list = h('div');
  const vhosts = await api('GET', '/api/vhosts');
  const form = h('form.inline-form', {
    onsubmit: async (ev) => {
      ev.preventDefault();
      const v = formValues(form);
      if (!v.name) return flash('Exchange name is required', 'error');
      const ok = await act(async () => api('PUT', '/api/exchanges/' + enc(v.vhost) + '/' + enc(v.name), {
        type: v.type, durable: v.durable, auto_delete: v.auto_delete, internal: v.internal,
        arguments: parseJsonField(v.arguments, 'Arguments'),
      }), 'Exchange ' + v.name + ' declared');
      if (ok !== undefined) { form.elements.name.value = ''; refresh(); }
    },
  },
    field('Vhost', vhostSelect('vhost', vhosts)),
    field('Name', h('input', { name: 'name', id: 'exchange-name', required: true })),
    field('Type', h('select', { name: 'type' }, ['direct', 'fanout', 'topic', 'headers'].map(t => h('option', t)))),
    h('label.check', h('input', { type: 'checkbox', name: 'durable', checked: true }), 'durable'),
    h('label.check', h('input', { type: 'checkbox', name: 'auto_delete' }), 'auto-delete'),
    h('label.check', h('input', { type: 'checkbox', name: 'internal' }), 'internal'),
    field('Arguments (JSON)', h('input', { name: 'arguments', placeholder: '{}' })),
    h('button', { type: 'submit' }, 'Add exchange'));
  append(main, [h('h1', 'Exchanges'), section('All exchanges', list), section('Add an exchange', form)]);
  const refresh = async () => {
    const xs = await api('GET', '/api/exchanges');
    clear(list);
    append(list, [h('p.muted', xs.length + ' exchange(s)'), table([
      { label: 'Vhost', get: x => x.vhost },
      { label: 'Name', get: x => x.name === '' ? h('i', '(AMQP default)') : x.name },
      { label: 'Type', get: x => x.type },
      { label: 'Features', get: x => features(x, args(x.arguments)) },
      { label: 'Rate in', get: x => fmtRate(rate(x, 'publish_in')), cls: 'num' },
      { label: 'Rate out', get: x => fmtRate(rate(x, 'publish_out')), cls: 'num' },
      { label: '', get: x => (x.name === '' || x.name.startsWith('amq.')) ? '' : h('button.danger.small', {
        onclick: async () => {
          if (!confirmed('Delete exchange ' + x.name + '?')) return;
          await act(() => api('DELETE', '/api/exchanges/' + enc(x.vhost) + '/' + enc(x.name)), 'Exchange deleted');
          refresh();
        },
      }, 'Delete') },
    ], xs, { empty: 'No exchanges.', rowAttrs: x => ({ dataset: { name: x.name } }) })]);
  };
  await refresh();
  return refresh;
};

// Queue list state survives navigation to a queue and back.
const queueList = { page: 1, filter: '' };

pages.queues = async (main) => {
  const list = h('div');
  const pager = h('div.pager');
  const filter = h('input', { id: 'queue-filter', type: 'search', placeholder: 'Filter by name…', value: queueList.filter });
  let debounce;
  filter.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => { queueList.filter = filter.value; queueList.page = 1; refresh(); }, 250);
  });
  const vhosts = await api('GET', '/api/vhosts');
  const form = h('form.inline-form', {
    id: 'add-queue-form',
    onsubmit: async (ev) => {
      ev.preventDefault();
      const v = formValues(form);
      if (!v.name) return flash('Queue name is required', 'error');
      const ok = await act(async () => api('PUT', '/api/queues/' + enc(v.vhost) + '/' + enc(v.name), {
        durable: v.durable, auto_delete: v.auto_delete, arguments: parseJsonField(v.arguments, 'Arguments'),
      }), 'Queue ' + v.name + ' declared');
      if (ok !== undefined) { form.elements.name.value = ''; refresh(); }
    },
  },
    field('Vhost', vhostSelect('vhost', vhosts)),
    field('Name', h('input', { name: 'name', id: 'queue-name', required: true })),
    h('label.check', h('input', { type: 'checkbox', name: 'durable', checked: true }), 'durable'),
    h('label.check', h('input', { type: 'checkbox', name: 'auto_delete' }), 'auto-delete'),
    field('Arguments (JSON)', h('input', { name: 'arguments', placeholder: '{"x-max-length": 1000}' })),
    h('button', { type: 'submit', id: 'add-queue' }, 'Add queue'));
  append(main, [h('h1', 'Queues'),
    section('All queues', h('div.toolbar', filter, pager), list),
    section('Add a queue', form)]);
  const go = (p) => { queueList.page = p; refresh(); };
  const refresh = async () => {
    const qs = new URLSearchParams({ page: queueList.page, page_size: PAGE_SIZE, name: queueList.filter,
      use_regex: 'false', pagination: 'true' });
    let r;
    try {
      r = await api('GET', '/api/queues?' + qs);
    } catch (e) {
      // RabbitMQ answers 400 when the page is past the end (e.g. after deletions): go back to page 1.
      if (e.status === 400 && queueList.page > 1) { queueList.page = 1; return refresh(); }
      throw e;
    }
    if (r.page_count && queueList.page > r.page_count) { queueList.page = r.page_count; return refresh(); }
    clear(pager);
    append(pager, [
      h('button.small', { id: 'queues-prev', disabled: r.page <= 1, onclick: () => go(r.page - 1) }, '‹ Prev'),
      h('span.muted', ' Page ' + fmtNum(r.page) + ' of ' + fmtNum(Math.max(r.page_count, 1)) + ' · ' +
        fmtNum(r.filtered_count) + ' matching of ' + fmtNum(r.total_count) + ' queue(s) '),
      h('button.small', { id: 'queues-next', disabled: r.page >= r.page_count, onclick: () => go(r.page + 1) }, 'Next ›'),
    ]);
    clear(list);
    append(list, table([
      { label: 'Vhost', get: q => q.vhost },
      { label: 'Name', get: q => h('a', { href: '#/queues/' + enc(q.vhost) + '/' + enc(q.name) }, q.name) },
      { label: 'Type', get: q => q.type || 'classic' },
      { label: 'Features', get: q => features(q, q.policy ? 'policy: ' + q.policy : '') },
      { label: 'State', get: q => h('span.badge.' + (q.state || ''), q.state || '') },
      { label: 'Ready', get: q => fmtNum(q.messages_ready), cls: 'num' },
      { label: 'Unacked', get: q => fmtNum(q.messages_unacknowledged), cls: 'num' },
      { label: 'Total', get: q => fmtNum(q.messages), cls: 'num' },
      { label: 'Consumers', get: q => fmtNum(q.consumers), cls: 'num' },
      { label: 'Incoming', get: q => fmtRate(rate(q, 'publish')), cls: 'num' },
      { label: 'Deliver / get', get: q => fmtRate(rate(q, 'deliver_get')), cls: 'num' },
    ], r.items, { empty: queueList.filter ? 'No queue matches this filter.' : 'No queues.',
      attrs: { id: 'queues-table' }, rowAttrs: q => ({ dataset: { name: q.name } }) }));
  };
  await refresh();
  return refresh;
};

pages.queue = async (main, [vhost, name]) => {
  const base = '/api/queues/' + enc(vhost) + '/' + enc(name);
  const counts = h('div.stats');
  const rates = h('div.stats');
  const features = h('div');
  const bindings = h('div');
  const consumers = h('div');
  const publishResult = h('div.result', { id: 'publish-result' });
  const getResult = h('div.result', { id: 'get-result' });
  const browseResult = h('div.result', { id: 'browse-result' });

  const publishForm = h('form', {
    id: 'publish-form',
    onsubmit: async (ev) => {
      ev.preventDefault();
      const v = formValues(publishForm);
      const properties = {};
      if (v.delivery_mode) properties.delivery_mode = Number(v.delivery_mode);
      if (v.content_type) properties.content_type = v.content_type;
      let headers;
      try { headers = parseJsonField(v.headers, 'Headers'); } catch (e) { return flash(e.message, 'error'); }
      if (Object.keys(headers).length) properties.headers = headers;
      const r = await act(() => api('POST', '/api/exchanges/' + enc(vhost) + '/amq.default/publish',
        { properties, routing_key: name, payload: v.payload, payload_encoding: 'string' }));
      clear(publishResult);
      if (r) {
        append(publishResult, r.routed ? h('p.ok', 'Message published (routed: true).')
          : h('p.warn', 'Message published but not routed (routed: false).'));
        refresh();
      }
    },
  },
    field('Payload', h('textarea', { name: 'payload', id: 'publish-payload', rows: 4 })),
    h('div.inline-form',
      field('Delivery mode', h('select', { name: 'delivery_mode' },
        h('option', { value: '' }, 'default'), h('option', { value: '1' }, '1 – transient'),
        h('option', { value: '2' }, '2 – persistent'))),
      field('Content type', h('input', { name: 'content_type', placeholder: 'text/plain' })),
      field('Headers (JSON)', h('input', { name: 'headers', placeholder: '{}' })),
      h('button', { type: 'submit', id: 'publish' }, 'Publish message')),
    publishResult);

  const getForm = h('form.inline-form', {
    id: 'get-form',
    onsubmit: async (ev) => {
      ev.preventDefault();
      const v = formValues(getForm);
      const r = await act(() => api('POST', base + '/get', {
        count: Number(v.count) || 1, ackmode: v.ackmode, encoding: 'auto', truncate: 50000 }));
      clear(getResult);
      if (r) { append(getResult, messagesTable(r, false)); refresh(); }
    },
  },
    field('Ack mode', h('select', { name: 'ackmode' },
      h('option', { value: 'ack_requeue_true' }, 'Nack, requeue (keeps the message)'),
      h('option', { value: 'ack_requeue_false' }, 'Ack (removes the message)'),
      h('option', { value: 'reject_requeue_true' }, 'Reject, requeue'),
      h('option', { value: 'reject_requeue_false' }, 'Reject, no requeue'))),
    field('Messages', h('input', { name: 'count', type: 'number', min: 1, value: '1', style: 'width:5em' })),
    h('button', { type: 'submit', id: 'get-messages' }, 'Get messages'));

  const browseForm = h('form.inline-form', {
    id: 'browse-form',
    onsubmit: async (ev) => {
      ev.preventDefault();
      const v = formValues(browseForm);
      const qs = new URLSearchParams({ offset: Number(v.offset) || 0, count: Number(v.count) || 20 });
      const r = await act(() => api('GET', base + '/messages?' + qs));
      clear(browseResult);
      if (r) append(browseResult, messagesTable(r, true));
    },
  },
    field('From position', h('input', { name: 'offset', type: 'number', min: 0, value: '0', style: 'width:6em' })),
    field('Count', h('input', { name: 'count', type: 'number', min: 1, value: '20', style: 'width:5em' })),
    h('button', { type: 'submit', id: 'browse' }, 'Browse'));

  const actions = h('div.actions',
    h('button.warn', {
      id: 'purge',
      onclick: async () => {
        if (!confirmed('Purge all ready messages from ' + name + '?')) return;
        await act(() => api('DELETE', base + '/contents'), 'Queue purged');
        refresh();
      },
    }, 'Purge messages'),
    h('button.danger', {
      id: 'delete-queue',
      onclick: async () => {
        if (!confirmed('Delete queue ' + name + '?')) return;
        const ok = await act(() => api('DELETE', base), 'Queue ' + name + ' deleted');
        if (ok !== undefined) location.hash = '#/queues';
      },
    }, 'Delete queue'));

  append(main, [
    h('p.crumbs', h('a', { href: '#/queues' }, '‹ Queues'), ' · in vhost ', h('code', vhost)),
    h('h1', { id: 'queue-title' }, name),
    section('Messages', counts),
    section('Rates', rates),
    section('Details', features),
    section('Publish a message', h('p.muted', 'Published to the default exchange with routing key "' + name + '".'),
      publishForm),
    section('Get messages', h('p.muted', 'Fetches messages like basic.get. "Nack, requeue" puts them back ' +
      '(marked redelivered, possibly at a different position).'), getForm, getResult),
    section('Browse messages (peek)', h('p.muted', 'Warren extension: shows messages in queue order without ' +
      'consuming, acknowledging or reordering them. Messages stay exactly where they are.'), browseForm, browseResult),
    section('Bindings', bindings),
    section('Consumers', consumers),
    section('Danger zone', actions),
  ]);

  const refresh = async () => {
    let q;
    try {
      q = await api('GET', base);
    } catch (e) {
      if (e.status === 404) { clear(counts); append(counts, h('p.error', 'Queue not found: ' + e.message)); return; }
      throw e;
    }
    clear(counts);
    append(counts, [stat('Total', fmtNum(q.messages), 'messages'), stat('Ready', fmtNum(q.messages_ready), 'messages_ready'),
      stat('Unacked', fmtNum(q.messages_unacknowledged), 'messages_unacknowledged'),
      stat('Consumers', fmtNum(q.consumers), 'consumers'),
      q.message_bytes !== undefined ? stat('Bytes', fmtBytes(q.message_bytes), 'message_bytes') : null]);
    clear(rates);
    append(rates, [['publish', 'Incoming'], ['deliver_get', 'Deliver / get'], ['ack', 'Ack'],
      ['redeliver', 'Redeliver']].map(([k, l]) => stat(l, fmtRate(rate(q, k)), 'rate-' + k)));
    clear(features);
    append(features, h('dl.props',
      [['Type', q.type || 'classic'], ['State', q.state], ['Durable', yesNo(q.durable)],
        ['Auto-delete', yesNo(q.auto_delete)], ['Exclusive', yesNo(q.exclusive)],
        ['Arguments', args(q.arguments) || '–'], ['Policy', q.policy || '–'], ['Node', q.node]]
        .filter(([, v]) => v !== undefined).map(([k, v]) => [h('dt', k), h('dd', v)])));
    clear(consumers);
    append(consumers, table([
      { label: 'Channel', get: c => (c.channel_details && c.channel_details.name) || '' },
      { label: 'Consumer tag', get: c => c.consumer_tag },
      { label: 'Ack required', get: c => yesNo(c.ack_required) },
      { label: 'Exclusive', get: c => yesNo(c.exclusive) },
      { label: 'Prefetch', get: c => fmtNum(c.prefetch_count), cls: 'num' },
      { label: 'Arguments', get: c => args(c.arguments) },
    ], q.consumer_details || [], { empty: 'No consumers.' }));
    const bs = await api('GET', base + '/bindings');
    clear(bindings);
    append(bindings, table([
      { label: 'From exchange', get: b => b.source === '' ? h('i', '(AMQP default)') : b.source },
      { label: 'Routing key', get: b => b.routing_key },
      { label: 'Arguments', get: b => args(b.arguments) },
    ], bs, { empty: 'No bindings.' }));
  };
  await refresh();
  return refresh;
};

function messagesTable(msgs, withPosition) {
  if (!msgs.length) return h('p.empty.muted', 'The queue is empty.');
  const cols = [];
  if (withPosition) cols.push({ label: 'Position', get: m => fmtNum(m.position), cls: 'num' });
  cols.push(
    { label: 'Exchange', get: m => m.exchange === '' ? h('i', '(AMQP default)') : m.exchange },
    { label: 'Routing key', get: m => m.routing_key },
    { label: 'Redelivered', get: m => yesNo(m.redelivered) },
    { label: 'Properties', get: m => h('code', args(m.properties)) },
    { label: 'Payload', get: m => h('div',
      h('pre.payload', m.payload),
      h('span.muted', fmtNum(m.payload_bytes) + ' bytes, encoding: ' + m.payload_encoding)) });
  if (!withPosition) cols.splice(0, 0, { label: 'Left in queue', get: m => fmtNum(m.message_count), cls: 'num' });
  return table(cols, msgs, { attrs: { class: 'grid messages' } });
}

pages.admin = async (main) => {
  const [users, vhosts, perms, policies] = [h('div'), h('div'), h('div'), h('div')];
  let vhostList = await api('GET', '/api/vhosts');

  const del = (what, path, after) => h('button.danger.small', {
    onclick: async () => {
      if (!confirmed('Delete ' + what + '?')) return;
      await act(() => api('DELETE', path), 'Deleted ' + what);
      after();
    },
  }, 'Delete');

  const simpleForm = (id, fields, submitLabel, onsubmit) => {
    const form = h('form.inline-form', { id, onsubmit: async (ev) => {
      ev.preventDefault();
      const ok = await act(() => onsubmit(formValues(form)));
      if (ok !== undefined) { form.reset(); refresh(); }
    } }, fields, h('button', { type: 'submit' }, submitLabel));
    return form;
  };

  const userForm = simpleForm('add-user-form', [
    field('Username', h('input', { name: 'name', required: true })),
    field('Password', h('input', { name: 'password', type: 'password' })),
    field('Tags', h('input', { name: 'tags', placeholder: 'administrator, monitoring' })),
  ], 'Add user', async v => {
    await api('PUT', '/api/users/' + enc(v.name), { password: v.password,
      tags: v.tags.split(',').map(s => s.trim()).filter(Boolean).join(',') });
    flash('User ' + v.name + ' saved');
    return true;
  });

  const vhostForm = simpleForm('add-vhost-form', [
    field('Name', h('input', { name: 'name', required: true })),
    field('Description', h('input', { name: 'description' })),
  ], 'Add vhost', async v => {
    await api('PUT', '/api/vhosts/' + enc(v.name), v.description ? { description: v.description } : {});
    flash('Vhost ' + v.name + ' created');
    return true;
  });

  const permSelects = { vhost: h('span'), user: h('span') };
  const permForm = simpleForm('set-permission-form', [
    field('Vhost', permSelects.vhost), field('User', permSelects.user),
    field('Configure', h('input', { name: 'configure', value: '.*' })),
    field('Write', h('input', { name: 'write', value: '.*' })),
    field('Read', h('input', { name: 'read', value: '.*' })),
  ], 'Set permission', async v => {
    await api('PUT', '/api/permissions/' + enc(v.vhost) + '/' + enc(v.user),
      { configure: v.configure, write: v.write, read: v.read });
    flash('Permissions of ' + v.user + ' on ' + v.vhost + ' set');
    return true;
  });

  const policyVhost = h('span');
  const policyForm = simpleForm('add-policy-form', [
    field('Vhost', policyVhost),
    field('Name', h('input', { name: 'name', required: true })),
    field('Pattern', h('input', { name: 'pattern', required: true, placeholder: '^orders\\.' })),
    field('Apply to', h('select', { name: 'apply_to' }, ['queues', 'exchanges', 'all'].map(a => h('option', a)))),
    field('Priority', h('input', { name: 'priority', type: 'number', value: '0', style: 'width:5em' })),
    field('Definition (JSON)', h('input', { name: 'definition', required: true, placeholder: '{"max-length": 1000}' })),
  ], 'Add policy', async v => {
    await api('PUT', '/api/policies/' + enc(v.vhost) + '/' + enc(v.name), { pattern: v.pattern,
      definition: parseJsonField(v.definition, 'Definition'), priority: Number(v.priority) || 0, 'apply-to': v.apply_to });
    flash('Policy ' + v.name + ' saved');
    return true;
  });

  append(main, [h('h1', 'Admin'),
    section('Users', users, h('h3', 'Add / update a user'), userForm),
    section('Virtual hosts', vhosts, h('h3', 'Add a virtual host'), vhostForm),
    section('Permissions', perms, h('h3', 'Set permissions'), permForm),
    section('Policies', policies, h('h3', 'Add / update a policy'), policyForm)]);

  const refresh = async () => {
    const [us, vs, ps, pol] = await Promise.all([api('GET', '/api/users'), api('GET', '/api/vhosts'),
      api('GET', '/api/permissions'), api('GET', '/api/policies')]);
    vhostList = vs;
    clear(users);
    append(users, table([
      { label: 'Name', get: u => u.name },
      { label: 'Tags', get: u => tagsOf(u) },
      { label: 'Has password', get: u => yesNo(u.password_hash !== '') },
      { label: '', get: u => del('user ' + u.name, '/api/users/' + enc(u.name), refresh) },
    ], us, { empty: 'No users.', attrs: { id: 'users-table' }, rowAttrs: u => ({ dataset: { name: u.name } }) }));
    clear(vhosts);
    append(vhosts, table([
      { label: 'Name', get: v => v.name },
      { label: 'Description', get: v => v.description || '' },
      { label: 'Messages', get: v => fmtNum(v.messages), cls: 'num' },
      { label: '', get: v => del('vhost ' + v.name, '/api/vhosts/' + enc(v.name), refresh) },
    ], vs, { empty: 'No vhosts.', attrs: { id: 'vhosts-table' }, rowAttrs: v => ({ dataset: { name: v.name } }) }));
    clear(perms);
    append(perms, table([
      { label: 'Vhost', get: p => p.vhost }, { label: 'User', get: p => p.user },
      { label: 'Configure', get: p => h('code', p.configure) }, { label: 'Write', get: p => h('code', p.write) },
      { label: 'Read', get: p => h('code', p.read) },
      { label: '', get: p => del('permissions of ' + p.user + ' on ' + p.vhost,
        '/api/permissions/' + enc(p.vhost) + '/' + enc(p.user), refresh) },
    ], ps, { empty: 'No permissions.' }));
    clear(policies);
    append(policies, table([
      { label: 'Vhost', get: p => p.vhost }, { label: 'Name', get: p => p.name },
      { label: 'Pattern', get: p => h('code', p.pattern) }, { label: 'Apply to', get: p => p['apply-to'] },
      { label: 'Definition', get: p => h('code', JSON.stringify(p.definition)) },
      { label: 'Priority', get: p => fmtNum(p.priority), cls: 'num' },
      { label: '', get: p => del('policy ' + p.name, '/api/policies/' + enc(p.vhost) + '/' + enc(p.name), refresh) },
    ], pol, { empty: 'No policies.', attrs: { id: 'policies-table' }, rowAttrs: p => ({ dataset: { name: p.name } }) }));
    // Keep the selects' current choice across refreshes.
    const keep = (holder, sel) => {
      const old = $('select', holder);
      clear(holder).appendChild(sel);
      if (old && [...sel.options].some(o => o.value === old.value)) sel.value = old.value;
    };
    keep(permSelects.vhost, vhostSelect('vhost', vhostList));
    keep(permSelects.user, h('select', { name: 'user' }, us.map(u => h('option', u.name))));
    keep(policyVhost, vhostSelect('vhost', vhostList));
  };
  await refresh();
  return null; // forms on this page: no auto-refresh, it would fight with typing
};

pages.definitions = async (main) => {
  const status = h('div.result', { id: 'definitions-result' });
  const file = h('input', { type: 'file', id: 'definitions-file', accept: '.json,application/json' });
  append(main, [h('h1', 'Definitions'),
    section('Export', h('p.muted', 'Users, vhosts, permissions, policies, exchanges, queues and bindings as ' +
      'a RabbitMQ-compatible JSON file.'),
    h('button', { id: 'export-definitions', onclick: async () => {
      const defs = await act(() => api('GET', '/api/definitions'));
      if (!defs) return;
      const blob = new Blob([JSON.stringify(defs, null, 2)], { type: 'application/json' });
      const a = h('a', { href: URL.createObjectURL(blob),
        download: 'warren-definitions-' + new Date().toISOString().slice(0, 10) + '.json' });
      document.body.appendChild(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
      clear(status);
      append(status, h('p.ok', 'Exported ' + ['users', 'vhosts', 'permissions', 'policies', 'exchanges', 'queues',
        'bindings'].map(k => fmtNum((defs[k] || []).length) + ' ' + k).join(', ') + '.'));
    } }, 'Download definitions')),
    section('Import', h('p.muted', 'Upload a definitions file (from Warren or RabbitMQ). Existing objects ' +
      'with the same names are updated; nothing is deleted.'),
    h('div.inline-form', file, h('button', { id: 'import-definitions', onclick: async () => {
      const f = file.files[0];
      if (!f) return flash('Choose a file first', 'error');
      const text = await f.text();
      try { JSON.parse(text); } catch (e) { return flash('Not a JSON file: ' + e.message, 'error'); }
      const ok = await act(() => api('POST', '/api/definitions', text));
      clear(status);
      if (ok !== undefined) append(status, h('p.ok', 'Imported ' + f.name + '.'));
    } }, 'Upload definitions'))),
    section('Result', status)]);
  return null;
};

// ---------------------------------------------------------------- router & session

let pollTimer = null;
let pageRefresh = null;
let lastOverview = null;   // overview fetched by the global poll, reused by the overview page
let renderSeq = 0;

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/');
  const name = parts[0] || 'overview';
  if (name === 'queues' && parts.length >= 3) {
    return { page: 'queue', nav: 'queues', params: [decodeURIComponent(parts[1]), decodeURIComponent(parts.slice(2).join('/'))] };
  }
  return pages[name] ? { page: name, nav: name, params: [] } : { page: 'overview', nav: 'overview', params: [] };
}

async function render() {
  if (!authHeader()) return;
  const seq = ++renderSeq;
  const r = route();
  pageRefresh = null;
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === r.nav);
  for (const f of document.querySelectorAll('#flash .flash.ok')) f.remove();
  const main = clear($('#main'));
  main.dataset.page = r.page;
  delete main.dataset.ready;
  document.title = 'Warren – ' + r.page;
  try {
    const fresh = h('div.page');
    const refresh = await pages[r.page](fresh, r.params);
    if (seq !== renderSeq) return;            // navigated away meanwhile
    main.appendChild(fresh);
    main.dataset.ready = 'true';
    pageRefresh = refresh || null;
  } catch (e) {
    if (seq !== renderSeq) return;
    if (e instanceof ApiError && e.status === 401 && !authHeader()) return;
    main.appendChild(h('div.card', h('p.error', 'Could not load this page: ' + e.message)));
  }
}

let polling = false;        // a slow server must not make polls pile up
async function poll() {
  if (!authHeader() || polling) return;
  polling = true;
  try {
    const ov = await api('GET', '/api/overview');
    recordSample(ov);
    $('#footer').textContent = (ov.product_name || 'Warren') + ' ' + (ov.product_version || '') +
      ' · updated ' + new Date().toLocaleTimeString();
    if (pageRefresh && route().page === 'overview') lastOverview = ov;
  } catch (e) { /* shown on the page itself */ }
  if (pageRefresh) {
    try { await pageRefresh(); } catch (e) { /* transient; next poll retries */ }
  }
  polling = false;
}

function startPolling() {
  stopPolling();
  poll();
  pollTimer = setInterval(poll, POLL_MS);
}

function stopPolling() { if (pollTimer) clearInterval(pollTimer); pollTimer = null; }

function showLogin(msg) {
  $('#shell').hidden = true;
  $('#login').hidden = false;
  const err = $('#login-error');
  err.hidden = !msg;
  err.textContent = msg || '';
  $('#login-user').focus();
}

function showApp() {
  $('#login').hidden = true;
  $('#shell').hidden = false;
  $('#whoami-user').textContent = sessionStorage.getItem(USER_KEY) || '';
  render();
  startPolling();
}

function logout(msg) {
  sessionStorage.removeItem(AUTH_KEY);
  sessionStorage.removeItem(USER_KEY);
  stopPolling();
  pageRefresh = null;
  samples.length = 0;
  clear($('#main'));
  showLogin(msg);
}

async function login(ev) {
  ev.preventDefault();
  const user = $('#login-user').value, pass = $('#login-pass').value;
  const auth = basicAuth(user, pass);
  const button = $('#login-submit');
  button.disabled = true;
  try {
    const me = await api('GET', '/api/whoami', undefined, { auth });
    sessionStorage.setItem(AUTH_KEY, auth);
    sessionStorage.setItem(USER_KEY, (me && me.name) || user);
    $('#login-pass').value = '';
    showApp();
  } catch (e) {
    showLogin('Login failed: ' + e.message);
  } finally {
    button.disabled = false;
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('#login-form').addEventListener('submit', login);
  $('#logout').addEventListener('click', () => logout());
  window.addEventListener('hashchange', () => { lastOverview = null; render(); });
  window.addEventListener('resize', () => { if (route().page === 'overview' && pageRefresh) pageRefresh(); });
  if (authHeader()) showApp(); else showLogin();
});

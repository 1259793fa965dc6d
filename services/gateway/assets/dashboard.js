// The live dashboard: prices, a chart, signals, market mood, feeds, activity
// and statistics, over the gateway's own /ws with the tickstream client.
import { connect } from '/client/tickstream.js';

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const SYMBOL_RE = /^[A-Z0-9._/-]{1,32}$/;
const SVG = 'http://www.w3.org/2000/svg';
const LOG_MAX = 100;
const LINE_POINTS = 300;

const wsUrl = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`;
// With JWT auth on, open the page as `/#token=<JWT>`: the fragment never reaches a server or its logs.
const token = new URLSearchParams(location.hash.slice(1)).get('token') ?? undefined;
const client = connect(wsUrl, { channels: ['sentiment', 'feeds'], token });
window.tickstream = client;

/**
 * @typedef {{symbol: string, row: HTMLTableRowElement, cells: Record<string, HTMLElement>,
 *   unsubscribe: () => void, last?: any, receivedAt?: number, count: number,
 *   line: {seq: number, price: number}[], backfill?: 'asked' | 'done'}} Row
 */
/** @type {Map<string, Row>} */
const rows = new Map();
let selected = '';

// --- status -------------------------------------------------------------------
const statusEl = $('status');
/** @param {string} cls @param {string} text */
function setStatus(cls, text) {
  statusEl.className = `status status-${cls}`;
  statusEl.textContent = text;
}
client.on('state', (/** @type {any} */ s) => {
  if (s.state === 'open') {
    setStatus('connected', 'connected');
    log('connection', 'connected');
  } else if (s.state === 'reconnecting') {
    if (navigator.onLine === false) setStatus('offline', `offline — retrying (attempt ${s.attempt})`);
    else setStatus('reconnecting', `reconnecting (attempt ${s.attempt})`);
    log('connection', `reconnecting, attempt ${s.attempt} in ${(s.delayMs / 1000).toFixed(1)} s (${s.reason})`);
  } else if (s.state === 'closed') {
    setStatus('offline', 'offline');
    log('connection', 'closed');
  } else {
    setStatus('connecting', 'connecting…');
  }
});
window.addEventListener('offline', () => setStatus('offline', 'offline'));
window.addEventListener('online', () => {
  if (client.state === 'open') setStatus('connected', 'connected');
  else setStatus('reconnecting', `reconnecting (attempt ${client.attempt})`);
});
client.on('error', (/** @type {any} */ e) => log('error', `${e?.code}: ${e?.message}`));
client.on('recovery', (/** @type {any} */ r) => {
  if (!r.recovered) log('gap', `${r.channel}: updates since #${r.sinceSeq} may be missing (${r.reason})`);
});

// --- activity log -------------------------------------------------------------
const logEl = $('log');
/** @param {string} kind @param {string} text */
function log(kind, text) {
  const li = document.createElement('li');
  const time = document.createElement('time');
  const now = new Date();
  time.dateTime = now.toISOString();
  time.textContent = now.toLocaleTimeString([], { hour12: false });
  const k = document.createElement('span');
  k.className = `log-kind log-${kind}`;
  k.textContent = kind;
  li.append(time, ' ', k, ' ', text);
  logEl.prepend(li);
  while (logEl.children.length > LOG_MAX) logEl.lastElementChild?.remove();
}

// --- formatting -----------------------------------------------------------------
/** @param {number | undefined} n */
function fmtPrice(n) {
  if (n === undefined || n === null || !Number.isFinite(n)) return '–';
  const a = Math.abs(n);
  return n.toLocaleString('en-US', { minimumFractionDigits: a >= 1000 ? 2 : a >= 1 ? 4 : 6, maximumFractionDigits: a >= 1000 ? 2 : a >= 1 ? 4 : 6 });
}
/** @param {number | undefined} n */
function fmtVolume(n) {
  if (n === undefined || !Number.isFinite(n)) return '–';
  return n.toLocaleString('en-US', { notation: 'compact', maximumFractionDigits: 2 });
}
/** @param {number | undefined} n @param {string} [suffix] */
function fmtSigned(n, suffix = '') {
  if (n === undefined || !Number.isFinite(n)) return { text: '–', dir: 'flat' };
  const dir = n > 0 ? 'up' : n < 0 ? 'down' : 'flat';
  const sign = n > 0 ? '▲ +' : n < 0 ? '▼ −' : '';
  const digits = suffix || Math.abs(n) >= 1 ? 2 : 4;
  return { text: `${sign}${Math.abs(n).toFixed(digits)}${suffix}`, dir };
}

// --- prices ---------------------------------------------------------------------
const tbody = /** @type {HTMLTableSectionElement} */ ($('prices').querySelector('tbody'));
const COLS = ['price', 'change', 'changePercent', 'bid', 'ask', 'volume', 'source', 'age'];

/** @param {string} symbol */
function addSymbol(symbol) {
  if (rows.has(symbol)) return;
  const row = document.createElement('tr');
  row.dataset.symbol = symbol;
  const th = document.createElement('th');
  th.scope = 'row';
  const pick = document.createElement('button');
  pick.type = 'button';
  pick.className = 'pick';
  pick.textContent = symbol;
  pick.setAttribute('aria-label', `Chart ${symbol}`);
  pick.addEventListener('click', () => select(symbol));
  th.append(pick);
  row.append(th);
  /** @type {Record<string, HTMLElement>} */
  const cells = {};
  for (const c of COLS) {
    const td = document.createElement('td');
    td.className = `c-${c}${c === 'source' ? '' : ' num'}`;
    td.textContent = '–';
    cells[c] = td;
    row.append(td);
  }
  const tdRemove = document.createElement('td');
  const rm = document.createElement('button');
  rm.type = 'button';
  rm.className = 'remove';
  rm.textContent = '×';
  rm.setAttribute('aria-label', `Remove ${symbol}`);
  rm.addEventListener('click', () => {
    removeSymbol(symbol);
    $('add-symbol').focus(); // keep keyboard users in the table's controls
  });
  tdRemove.append(rm);
  row.append(tdRemove);
  tbody.append(row);
  const unsubTicks = client.subscribe(symbol, (tick) => onTick(tick));
  const unsubSignals = client.subscribe(`signals:${symbol}`, (s) => onSignal(s));
  /** @type {Row} */
  const r = { symbol, row, cells, count: 0, line: [], unsubscribe: () => (unsubTicks(), unsubSignals()) };
  rows.set(symbol, r);
  log('subscribe', symbol);
  if (!selected) select(symbol);
}

/** @param {string} symbol */
function removeSymbol(symbol) {
  const r = rows.get(symbol);
  if (!r) return;
  r.unsubscribe();
  r.row.remove();
  rows.delete(symbol);
  signals.delete(symbol);
  renderSignals();
  log('unsubscribe', symbol);
  if (selected === symbol) select(rows.keys().next().value ?? '');
}

/** @param {any} tick */
function onTick(tick) {
  const r = rows.get(tick.symbol);
  if (!r) return;
  const prev = r.last;
  r.last = tick;
  r.receivedAt = Date.now();
  r.count += 1;
  r.line.push({ seq: tick.seq, price: tick.price });
  if (r.line.length > LINE_POINTS) r.line.shift();
  if (tick.symbol === selected) backfill(r);
  ages.push(Date.now() - Date.parse(tick.timestamp));
  if (ages.length > 2000) ages.splice(0, ages.length - 2000);
  const c = r.cells;
  const dir = prev ? (tick.price > prev.price ? 'up' : tick.price < prev.price ? 'down' : '') : '';
  c.price.textContent = `${dir === 'up' ? '▲ ' : dir === 'down' ? '▼ ' : ''}${fmtPrice(tick.price)}`;
  if (dir) {
    c.price.classList.remove('flash-up', 'flash-down');
    void c.price.offsetWidth; // restart the animation
    c.price.classList.add(`flash-${dir}`);
    c.price.dataset.dir = dir;
  }
  const ch = fmtSigned(tick.change);
  c.change.textContent = ch.text;
  c.change.className = `c-change num ${ch.dir}`;
  const cp = fmtSigned(tick.changePercent, ' %');
  c.changePercent.textContent = cp.text;
  c.changePercent.className = `c-changePercent num ${cp.dir}`;
  c.bid.textContent = fmtPrice(tick.bid);
  c.ask.textContent = fmtPrice(tick.ask);
  c.volume.textContent = fmtVolume(tick.volume);
  c.source.textContent = tick.source;
  c.age.textContent = fmtAge(0);
  if (tick.symbol === selected && chartMode === 'line') scheduleChart();
}

$('add-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($('add-symbol'));
  const symbol = input.value.trim().toUpperCase();
  const err = $('add-error');
  if (!SYMBOL_RE.test(symbol)) {
    err.textContent = 'A symbol is 1–32 of A–Z, 0–9 and . _ / -';
    return;
  }
  err.textContent = '';
  addSymbol(symbol);
  input.value = '';
});

// --- chart ----------------------------------------------------------------------
const chart = /** @type {SVGSVGElement} */ (/** @type {unknown} */ ($('chart')));
/** @type {'line' | 'candles'} */
let chartMode = 'line';
/** @type {any[]} */
let candles = [];
/** @type {(() => void) | null} */
let unsubCandles = null;
let chartPending = false;
let selectToken = 0;

/** @param {string} symbol */
async function select(symbol) {
  selected = symbol;
  for (const r of rows.values()) r.row.classList.toggle('selected', r.symbol === symbol);
  $('chart-symbol').textContent = symbol;
  unsubCandles?.();
  unsubCandles = null;
  candles = [];
  chartMode = 'line';
  scheduleChart();
  if (!symbol) return;
  const row = rows.get(symbol);
  if (row) backfill(row);
  const token = ++selectToken;
  unsubCandles = client.subscribe(`candles:1m:${symbol}`, (c) => onCandle(c));
  try {
    const res = await fetch(`/candles/${encodeURIComponent(symbol)}?interval=1m&limit=120`);
    if (token !== selectToken || !res.ok) return;
    const body = await res.json();
    const list = Array.isArray(body?.data) ? body.data : Array.isArray(body?.data?.candles) ? body.data.candles : [];
    if (list.length) {
      candles = list.slice(-120);
      chartMode = 'candles';
      scheduleChart();
    }
  } catch {
    // no candle history: the tick line stays
  }
}

/**
 * Fills the selected symbol's tick line with the ticks before the first one
 * seen, from the gateway's history (a gateway without it: the line just grows).
 * @param {Row} r
 */
async function backfill(r) {
  if (r.backfill || !r.line.length) return;
  r.backfill = 'asked';
  const first = r.line[0].seq;
  try {
    const reply = await client.history(r.symbol, { sinceSeq: Math.max(0, first - LINE_POINTS), limit: LINE_POINTS });
    const older = (reply.items ?? []).filter((/** @type {any} */ t) => t.seq < r.line[0].seq).map((/** @type {any} */ t) => ({ seq: t.seq, price: t.price }));
    r.line = [...older, ...r.line].slice(-LINE_POINTS);
    r.backfill = 'done';
    log('history', `${r.symbol}: ${older.length} earlier ticks on the chart`);
    if (r.symbol === selected) scheduleChart();
  } catch (e) {
    r.backfill = 'done';
    log('history', `${r.symbol}: no history (${/** @type {any} */ (e)?.code ?? e})`);
  }
}

/** @param {any} c */
function onCandle(c) {
  if (c.symbol !== selected) return;
  chartMode = 'candles';
  const i = candles.findIndex((x) => x.start === c.start);
  if (i >= 0) candles[i] = c;
  else {
    candles.push(c);
    candles.sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
    if (candles.length > 120) candles.shift();
  }
  if (c.closed) log('candle', `${c.symbol} 1m closed at ${fmtPrice(c.close)}`);
  scheduleChart();
}

function scheduleChart() {
  if (chartPending) return;
  chartPending = true;
  requestAnimationFrame(() => {
    chartPending = false;
    drawChart();
  });
}

/** @param {string} tag @param {Record<string, string | number>} attrs */
function svgEl(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

function drawChart() {
  const W = 800;
  const H = 240;
  const pad = 8;
  chart.replaceChildren();
  $('chart-range').textContent = '';
  const r = rows.get(selected);
  const empty = $('chart-empty');
  if (chartMode === 'candles' && candles.length) {
    $('chart-mode').textContent = '1m candles';
    chart.dataset.mode = 'candles';
    const lo = Math.min(...candles.map((c) => c.low));
    const hi = Math.max(...candles.map((c) => c.high));
    $('chart-range').textContent = `${fmtPrice(lo)} – ${fmtPrice(hi)}`;
    const y = (/** @type {number} */ v) => pad + (H - 2 * pad) * (hi === lo ? 0.5 : (hi - v) / (hi - lo));
    const step = W / Math.max(candles.length, 20);
    const x0 = W - candles.length * step; // the newest bar on the right
    candles.forEach((c, i) => {
      const x = x0 + i * step + step / 2;
      const cls = c.close >= c.open ? 'candle up' : 'candle down';
      chart.append(svgEl('line', { x1: x, x2: x, y1: y(c.high), y2: y(c.low), class: cls }));
      const top = y(Math.max(c.open, c.close));
      chart.append(svgEl('rect', { x: x - step * 0.35, y: top, width: step * 0.7, height: Math.max(1, y(Math.min(c.open, c.close)) - top), class: cls }));
    });
    empty.hidden = true;
    return;
  }
  const pts = (r?.line ?? []).map((p) => p.price);
  $('chart-mode').textContent = 'price line from ticks';
  chart.dataset.mode = 'line';
  if (pts.length < 2) {
    empty.hidden = false;
    return;
  }
  empty.hidden = true;
  const lo = Math.min(...pts);
  const hi = Math.max(...pts);
  const y = (/** @type {number} */ v) => pad + (H - 2 * pad) * (hi === lo ? 0.5 : (hi - v) / (hi - lo));
  const d = pts.map((p, i) => `${i ? 'L' : 'M'}${((i / (pts.length - 1)) * W).toFixed(1)} ${y(p).toFixed(1)}`).join(' ');
  chart.append(svgEl('path', { d, class: 'line' }));
  chart.dataset.points = String(pts.length);
  $('chart-range').textContent = `${fmtPrice(lo)} – ${fmtPrice(hi)}`;
}

// --- signals --------------------------------------------------------------------
/** @type {Map<string, any>} */
const signals = new Map();
/** @param {any} s */
function onSignal(s) {
  signals.set(s.symbol, s);
  log('signal', `${s.symbol} ${s.signal} (${Number(s.strength).toFixed(2)})`);
  renderSignals();
}
function renderSignals() {
  const ul = $('signals');
  ul.replaceChildren();
  for (const s of signals.values()) {
    const li = document.createElement('li');
    const tag = document.createElement('strong');
    tag.className = `signal ${String(s.signal).toLowerCase()}`;
    const arrow = /BUY/.test(s.signal) ? '▲ ' : /SELL/.test(s.signal) ? '▼ ' : '• ';
    tag.textContent = `${arrow}${s.signal}`;
    li.append(`${s.symbol} `, tag, ` ${Number(s.strength).toFixed(2)} — ${s.reason ?? ''}`);
    ul.append(li);
  }
  $('signals-empty').hidden = signals.size > 0;
}

// --- sentiment ------------------------------------------------------------------
client.subscribe('sentiment', (s) => {
  $('sentiment-empty').hidden = true;
  $('sentiment').hidden = false;
  const v = Math.max(0, Math.min(100, Number(s.market_fear_greed)));
  const fill = $('gauge-fill');
  fill.setAttribute('pathLength', '100');
  fill.setAttribute('stroke-dasharray', `${v} 100`);
  fill.setAttribute('class', `gauge-fill ${v >= 55 ? 'up' : v <= 45 ? 'down' : 'flat'}`);
  $('gauge-value').textContent = String(v);
  $('sentiment-mood').textContent = `${s.market_mood ?? ''} · ${s.overall_sentiment ?? ''} · confidence ${Math.round(Number(s.confidence) * 100)} %`;
  const b = s.breadth;
  $('sentiment-breadth').textContent = b ? `breadth: ▲ ${b.advancing} advancing · ▼ ${b.declining} declining · ${b.unchanged} unchanged` : '';
  log('sentiment', `fear & greed ${v} (${s.market_mood ?? ''})`);
});

// --- feeds ----------------------------------------------------------------------
/** @type {Map<string, any>} */
const feeds = new Map();
let feedControl = false;
/** Kept in page memory only, never stored. */
let adminToken = '';

/** @param {any} f */
function onFeed(f) {
  if (!f?.name) return;
  feeds.set(f.name, { ...feeds.get(f.name), ...f });
  renderFeeds();
}
client.subscribe('feeds', (f) => {
  onFeed(f);
  log('feed', `${f.name}: ${f.status}${f.connected === false ? ' (upstream down)' : ''}`);
});

function renderFeeds() {
  const ul = $('feeds');
  ul.replaceChildren();
  for (const f of feeds.values()) {
    const li = document.createElement('li');
    const st = document.createElement('span');
    st.className = `feed ${f.status ?? ''}`;
    st.textContent = `${f.status === 'healthy' ? '●' : f.status === 'unhealthy' ? '✖' : '◐'} ${f.status ?? 'unknown'}`;
    li.append(`${f.name} `, st, f.mode ? ` · ${f.mode}` : '');
    if (feedControl) {
      for (const action of ['stop', 'start']) {
        const b = document.createElement('button');
        b.type = 'button';
        b.textContent = action;
        b.setAttribute('aria-label', `${action} ${f.name}`);
        b.addEventListener('click', () => feedAction(f.name, action));
        li.append(' ', b);
      }
    }
    ul.append(li);
  }
  $('feeds-empty').hidden = feeds.size > 0;
}

async function loadFeeds() {
  const note = $('feeds-note');
  try {
    const res = await fetch('/feeds');
    if (res.status === 404) {
      note.textContent = 'feed control not available on this gateway';
      return;
    }
    if (!res.ok) {
      note.textContent = `feeds: HTTP ${res.status}`;
      return;
    }
    const body = await res.json();
    const data = body?.data ?? body;
    const list = Array.isArray(data) ? data : Array.isArray(data?.feeds) ? data.feeds : Object.entries(data ?? {}).map(([name, v]) => ({ name, ...(typeof v === 'object' ? v : { status: v }) }));
    feedControl = true;
    $('token-form').hidden = false;
    for (const f of list) onFeed(f);
    renderFeeds();
  } catch (e) {
    note.textContent = `feeds unavailable (${e})`;
  }
}

$('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($('admin-token'));
  adminToken = input.value.trim();
  input.value = '';
  $('feeds-note').textContent = adminToken ? 'admin token set for this page' : 'admin token cleared';
});

/** @param {string} name @param {string} action */
async function feedAction(name, action) {
  const note = $('feeds-note');
  if (!adminToken) {
    note.textContent = `enter the admin token to ${action} a feed`;
    /** @type {HTMLInputElement} */ ($('admin-token')).focus();
    return;
  }
  try {
    const res = await fetch(`/feeds/${encodeURIComponent(name)}/${action}`, { method: 'POST', headers: { Authorization: `Bearer ${adminToken}` } });
    if (res.status === 404) note.textContent = 'feed control not available on this gateway';
    else if (res.status === 401 || res.status === 403) note.textContent = 'the admin token was refused';
    else if (!res.ok) note.textContent = `${action} ${name}: HTTP ${res.status}`;
    else {
      note.textContent = `${action} ${name}: done`;
      log('feed', `${action} ${name} requested`);
    }
  } catch (e) {
    note.textContent = `${action} ${name} failed (${e})`;
  }
}

// --- statistics -----------------------------------------------------------------
/** @type {number[]} */
const ages = [];
let messages = 0;
client.on('message', () => {
  messages += 1;
});
/** @param {number[]} sorted @param {number} q */
const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
/** @param {number} ms */
const fmtAge = (ms) => (ms < 1000 ? `${Math.max(0, Math.round(ms))} ms` : `${(ms / 1000).toFixed(1)} s`);

setInterval(() => {
  $('stat-rate').textContent = String(messages);
  messages = 0;
  if (ages.length) {
    const sorted = [...ages].sort((a, b) => a - b);
    $('stat-p50').textContent = fmtAge(quantile(sorted, 0.5));
    $('stat-p99').textContent = fmtAge(quantile(sorted, 0.99));
    ages.length = 0;
  }
  const ul = $('stat-ticks');
  ul.replaceChildren();
  for (const r of rows.values()) {
    const li = document.createElement('li');
    li.textContent = `${r.symbol}: ${r.count}`;
    ul.append(li);
  }
}, 1000);

setInterval(() => {
  const now = Date.now();
  for (const r of rows.values()) {
    if (r.receivedAt) r.cells.age.textContent = fmtAge(now - r.receivedAt);
  }
}, 500);

// --- start ----------------------------------------------------------------------
async function start() {
  log('connection', `connecting to ${wsUrl}`);
  let symbols = ['BTCUSDT', 'ETHUSDT'];
  try {
    const res = await fetch('/symbols');
    const body = await res.json();
    if (Array.isArray(body?.data?.default_symbols) && body.data.default_symbols.length) symbols = body.data.default_symbols;
  } catch {
    log('error', 'could not read /symbols; showing BTCUSDT and ETHUSDT');
  }
  for (const s of symbols) addSymbol(s);
  loadFeeds();
}
start();

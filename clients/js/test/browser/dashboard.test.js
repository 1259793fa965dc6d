// The dashboard at `/` and the served client module, in headless Chromium
// (Debian's /usr/bin/chromium driven by playwright-core), against the real
// gateway and ingest-sim.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { after, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import { numsub, publish, redis, startGateway, startSim, waitFor } from '../harness.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];
const RESULTS = process.env.TICKSTREAM_RESULTS_DIR ?? join(tmpdir(), 'tickstream-js-results');
/** Every wait for the page; a price moves within 3 s (ingest-sim ticks each symbol ~10 times a second here). */
const WAIT = 10_000;

/** @type {import('../harness.js').Proc} */
let gw;
/** @type {import('../harness.js').Proc} */
let sim;
/** The gateway's admin token for feed control (kept in the page's memory only). */
const ADMIN_TOKEN = 'dashboard-test-admin-token-0123456789';
/** @type {import('playwright-core').Browser} */
let browser;

before(async () => {
  mkdirSync(RESULTS, { recursive: true });
  gw = await startGateway({ DEFAULT_SYMBOLS: 'BTCUSDT,ETHUSDT,SOLUSDT', TICKSTREAM_GATEWAY__ADMIN_TOKEN: ADMIN_TOKEN });
  sim = await startSim('BTCUSDT,ETHUSDT,SOLUSDT,XRPUSDT');
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
});
after(async () => {
  await browser?.close();
  await sim?.kill();
  await gw?.kill();
});

/**
 * Console errors and page errors, except the 404s of optional endpoints
 * (`/feeds`, `/candles/...`) the page probes: Chromium logs every failed
 * resource load, and the page handles those answers without an error.
 * @param {import('playwright-core').Page} page
 */
function watchErrors(page) {
  /** @type {string[]} */
  const errors = [];
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const url = msg.location()?.url ?? '';
    if (/404/.test(msg.text()) && /\/(feeds|candles)(\/|$|\?)/.test(url)) return;
    errors.push(`${msg.text()} @ ${url}`);
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  return errors;
}

/** @param {import('playwright-core').Page} page @param {string} symbol */
const priceCell = (page, symbol) => page.locator(`#prices tr[data-symbol="${symbol}"] td.c-price`);

/** Waits until the symbol's price text differs from `from` and the cell flashed. @param {import('playwright-core').Page} page @param {string} symbol @param {string} from */
async function priceMoves(page, symbol, from, ms = 3000) {
  await page.waitForFunction(
    ([sym, old]) => {
      const td = document.querySelector(`#prices tr[data-symbol="${sym}"] td.c-price`);
      return !!td && td.textContent !== old && td.textContent !== '–' && /flash-(up|down)/.test(td.className);
    },
    [symbol, from],
    { timeout: ms },
  );
}

describe('dashboard', () => {
  test('live prices, symbols, chart, panels, log, screenshots, and a gateway restart', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const errors = watchErrors(page);
    const res = await page.goto(`http://${gw.addr}/`);
    assert.equal(res?.status(), 200);
    assert.match(res?.headers()['content-type'] ?? '', /^text\/html/);
    assert.match(res?.headers()['content-security-policy'] ?? '', /connect-src 'self'/);

    await page.locator('#status', { hasText: /^connected$/ }).waitFor({ timeout: WAIT });
    // Default symbols from /symbols.
    for (const s of ['BTCUSDT', 'ETHUSDT', 'SOLUSDT']) await page.locator(`#prices tr[data-symbol="${s}"]`).waitFor({ timeout: WAIT });
    await page.waitForFunction(() => (document.querySelector('#prices tr[data-symbol="BTCUSDT"] td.c-price')?.textContent ?? '–') !== '–', null, { timeout: WAIT });
    const first = (await priceCell(page, 'BTCUSDT').textContent()) ?? '';
    await priceMoves(page, 'BTCUSDT', first);
    const moved = (await priceCell(page, 'BTCUSDT').textContent()) ?? '';
    assert.match(moved, /^[▲▼] /, 'direction shown by an arrow, not only colour');
    for (const col of ['bid', 'ask', 'volume', 'source', 'age']) {
      assert.notEqual(await page.locator(`#prices tr[data-symbol="BTCUSDT"] td.c-${col}`).textContent(), '–', col);
    }

    // Add a symbol with the keyboard, then remove it.
    await page.locator('#add-symbol').fill('xrpusdt');
    await page.locator('#add-symbol').press('Enter');
    await page.waitForFunction(() => (document.querySelector('#prices tr[data-symbol="XRPUSDT"] td.c-price')?.textContent ?? '–') !== '–', null, { timeout: WAIT });
    // Charting it fills the tick line with the ticks before the page saw any, from the gateway's history.
    await page.getByRole('button', { name: 'Chart XRPUSDT' }).click();
    await page.locator('#log li', { hasText: /XRPUSDT: [1-9]\d* earlier ticks on the chart/ }).waitFor({ timeout: WAIT });
    await page.getByRole('button', { name: 'Remove XRPUSDT' }).click();
    await page.locator('#prices tr[data-symbol="XRPUSDT"]').waitFor({ state: 'detached', timeout: WAIT });

    // The chart of the selected symbol: candles when the analytics service runs, else the tick line.
    await page.locator('#chart-symbol', { hasText: 'BTCUSDT' }).waitFor({ timeout: WAIT });
    await page.locator('#chart path.line, #chart rect.candle').first().waitFor({ timeout: WAIT });
    await page.getByRole('button', { name: 'Chart ETHUSDT' }).click();
    await page.locator('#chart-symbol', { hasText: 'ETHUSDT' }).waitFor({ timeout: WAIT });
    await page.locator('#chart path.line, #chart rect.candle').first().waitFor({ timeout: WAIT });

    // Panels without a producer say so; feed control is absent on this gateway.
    assert.equal(await page.locator('#signals-empty').textContent(), 'waiting for data');
    assert.equal(await page.locator('#sentiment-empty').textContent(), 'waiting for data');
    const feeds = await page.request.get(`http://${gw.addr}/feeds`);
    if (feeds.status() === 404) {
      await page.locator('#feeds-note', { hasText: 'feed control not available on this gateway' }).waitFor({ timeout: WAIT });
    }

    // Activity log and statistics.
    await page.locator('#log li', { hasText: 'connected' }).first().waitFor({ timeout: WAIT });
    await page.locator('#log li', { hasText: 'XRPUSDT' }).first().waitFor({ timeout: WAIT });
    await page.waitForFunction(() => Number(document.getElementById('stat-rate')?.textContent) > 0, null, { timeout: WAIT });
    await page.locator('#stat-ticks li', { hasText: /BTCUSDT: [1-9]/ }).waitFor({ timeout: WAIT });
    assert.notEqual(await page.locator('#stat-p50').textContent(), '–');

    await page.screenshot({ path: join(RESULTS, 'dashboard-1280x800.png') });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.locator('#status').waitFor({ timeout: WAIT });
    await page.screenshot({ path: join(RESULTS, 'dashboard-390x844.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });

    // The gateway killed and restarted: reconnecting, then connected, prices move again, no reload.
    await page.evaluate(() => {
      /** @type {any} */ (window).__sameDocument = true;
    });
    assert.deepEqual(errors, [], 'console errors before the restart');
    await gw.kill();
    // Two attempts fail while it is down, so the count visibly goes up.
    await page.locator('#status', { hasText: /^reconnecting \(attempt [2-9]\)$/ }).waitFor({ timeout: WAIT });
    await gw.restart();
    await page.locator('#status', { hasText: /^connected$/ }).waitFor({ timeout: 30_000 });
    const before = (await priceCell(page, 'BTCUSDT').textContent()) ?? '';
    await priceMoves(page, 'BTCUSDT', before, WAIT);
    assert.equal(await page.evaluate(() => /** @type {any} */ (window).__sameDocument), true, 'no reload');
    await page.locator('#log li', { hasText: 'reconnecting' }).first().waitFor({ timeout: WAIT });

    // While the gateway was down Chromium itself logs each refused WebSocket
    // connection; nothing else may appear.
    const refused = /^WebSocket connection to 'ws:\/\/[^']+\/ws' failed: .*ERR_CONNECTION_REFUSED/;
    assert.deepEqual(errors.filter((e) => !refused.test(e)), [], 'console errors');
    await page.close();
  });

  test('signals, fear & greed, candles and feed status render from their channels', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const errors = watchErrors(page);
    await page.goto(`http://${gw.addr}/`);
    await page.locator('#status', { hasText: /^connected$/ }).waitFor({ timeout: WAIT });
    await page.locator('#chart-symbol', { hasText: 'BTCUSDT' }).waitFor({ timeout: WAIT });
    // The page holds these channels; wait until the gateway listens on each in Redis.
    for (const ch of ['signals:BTCUSDT', 'sentiment', 'feeds', 'candles:1m:BTCUSDT']) {
      await waitFor(async () => (await numsub(ch)) >= 1, `the gateway subscribed to ${ch}`);
    }
    const now = new Date();
    await publish('signals:BTCUSDT', {
      symbol: 'BTCUSDT', signal: 'BUY', strength: 0.72, reason: 'RSI recovered above 30',
      timestamp: now.toISOString(), interval: '1h', indicators: { rsi: 34.2 },
    });
    await publish('sentiment', {
      overall_sentiment: 'bullish', market_fear_greed: 63, market_mood: 'greed', confidence: 0.74,
      trending_topics: ['BTCUSDT'], timestamp: now.toISOString(), breadth: { advancing: 6, declining: 2, unchanged: 1 },
    });
    await publish('feeds', {
      name: 'sim', status: 'healthy', mode: 'stream', connected: true, symbols: ['BTCUSDT'],
      last_message_age_ms: 120, timestamp: now.toISOString(),
    });
    const minute = Math.floor(now.getTime() / 60_000) * 60_000;
    for (let i = 3; i >= 0; i--) {
      const start = minute - i * 60_000;
      await publish('candles:1m:BTCUSDT', {
        symbol: 'BTCUSDT', interval: '1m', start: new Date(start).toISOString(), end: new Date(start + 60_000).toISOString(),
        open: 95000 + i, high: 95010 + i, low: 94990 - i, close: 95005 - i * 2, volume: 12.4, trades: 318, closed: i > 0, source: 'trades',
      });
    }

    await page.locator('#signals li', { hasText: /BTCUSDT.*▲ BUY.*0\.72/ }).waitFor({ timeout: WAIT });
    assert.equal(await page.locator('#signals-empty').isHidden(), true);
    await page.locator('#gauge-value', { hasText: '63' }).waitFor({ timeout: WAIT });
    assert.match((await page.locator('#sentiment-breadth').textContent()) ?? '', /6 advancing.*2 declining.*1 unchanged/);
    await page.locator('#feeds li', { hasText: /sim.*healthy/ }).waitFor({ timeout: WAIT });
    await page.locator('#chart-mode', { hasText: '1m candles' }).waitFor({ timeout: WAIT });
    await page.waitForFunction(() => document.querySelectorAll('#chart rect.candle').length === 4, null, { timeout: WAIT });
    await page.locator('#log li', { hasText: 'fear & greed 63' }).first().waitFor({ timeout: WAIT });

    // Stored bars (as the analytics service keeps them) come from GET /candles when a symbol is charted.
    for (let i = 4; i >= 0; i--) {
      const start = minute - i * 60_000;
      const bar = {
        symbol: 'ETHUSDT', interval: '1m', start: new Date(start).toISOString(), end: new Date(start + 60_000).toISOString(),
        open: 3500 + i, high: 3510 + i, low: 3490 - i, close: 3505 - i, volume: 3.5, trades: 40, closed: i > 0, source: 'trades',
      };
      await redis(['ZADD', 'analytics:candles:1m:ETHUSDT', String(start), JSON.stringify(bar)]);
    }
    await page.getByRole('button', { name: 'Chart ETHUSDT' }).click();
    await page.locator('#chart-symbol', { hasText: 'ETHUSDT' }).waitFor({ timeout: WAIT });
    await page.locator('#chart-mode', { hasText: '1m candles' }).waitFor({ timeout: WAIT });
    await page.waitForFunction(() => document.querySelectorAll('#chart rect.candle').length === 5, null, { timeout: WAIT });
    // BTCUSDT has no stored bars (its candles above were only published): back to its tick line.
    await page.getByRole('button', { name: 'Chart BTCUSDT' }).click();
    await page.locator('#chart path.line').waitFor({ timeout: WAIT });
    assert.equal(await page.locator('#chart-mode').textContent(), 'price line from ticks');
    await page.screenshot({ path: join(RESULTS, 'dashboard-panels-1280x800.png'), fullPage: true });
    assert.deepEqual(errors, [], 'console errors');
    await page.close();
  });

  test('the served client module shows live prices in a 10-line page', async () => {
    const page = await browser.newPage();
    const errors = watchErrors(page);
    const mod = await page.request.get(`http://${gw.addr}/client/tickstream.js`);
    assert.equal(mod.status(), 200);
    assert.match(mod.headers()['content-type'] ?? '', /^text\/javascript/);
    assert.ok(mod.headers().etag, 'ETag');
    assert.match(mod.headers()['cache-control'] ?? '', /no-cache/);
    // A page that uses only the module.
    const html = `<!doctype html><meta charset="utf-8"><title>mini</title>
<ul id="out"></ul>
<script type="module">
  import { connect } from '/client/tickstream.js';
  const ts = connect('ws://' + location.host + '/ws');
  const out = document.getElementById('out');
  ts.subscribe(['BTCUSDT', 'ETHUSDT'], (t) => {
    const li = document.getElementById(t.symbol) ?? out.appendChild(Object.assign(document.createElement('li'), { id: t.symbol }));
    li.textContent = t.symbol + ' ' + t.price + ' #' + t.seq;
  });
</script>`;
    // Written into a document of the gateway's origin (its /health answer), so
    // the module and the WebSocket are same-origin, as on a page the gateway serves.
    await page.goto(`http://${gw.addr}/health`);
    await page.setContent(html);
    await page.locator('#BTCUSDT').waitFor({ timeout: WAIT }).catch((e) => {
      throw new Error(`${e}; errors: ${errors.join('; ')}`);
    });
    await page.locator('#ETHUSDT').waitFor({ timeout: WAIT });
    const a = (await page.locator('#BTCUSDT').textContent()) ?? '';
    await page.waitForFunction((old) => document.getElementById('BTCUSDT')?.textContent !== old, a, { timeout: 3000 });
    assert.deepEqual(errors, [], 'console errors');
    await page.close();
  });

  test('feed control: a wrong token is refused with a message; the admin stops and restarts the sim feed', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const errors = watchErrors(page);
    // The refused POST is logged by Chromium as a failed resource load; the page shows it itself.
    const refusedLoad = /status of 40[13]/;
    try {
      await page.goto(`http://${gw.addr}/`);
      await page.locator('#status', { hasText: /^connected$/ }).waitFor({ timeout: WAIT });
      await page.waitForFunction(() => (document.querySelector('#prices tr[data-symbol="BTCUSDT"] td.c-price')?.textContent ?? '–') !== '–', null, { timeout: WAIT });
      const stop = page.getByRole('button', { name: 'stop sim' });
      await stop.waitFor({ timeout: WAIT });

      await page.locator('#admin-token').fill('not-the-admin-token-at-all');
      await page.locator('#admin-token').press('Enter');
      await stop.click();
      await page.locator('#feeds-note', { hasText: 'the admin token was refused' }).waitFor({ timeout: WAIT });

      await page.locator('#admin-token').fill(ADMIN_TOKEN);
      await page.locator('#admin-token').press('Enter');
      await stop.click();
      await page.locator('#feeds-note', { hasText: 'stop sim: done' }).waitFor({ timeout: WAIT });
      await page.locator('#feeds li', { hasText: /^sim .*stopped/ }).waitFor({ timeout: WAIT });
      // A tick already on its way may still land; after that the price must hold.
      await page.waitForTimeout(500);
      const frozen = (await priceCell(page, 'BTCUSDT').textContent()) ?? '';
      await page.waitForTimeout(2000); // the observation window: 2 s at 10 ticks/s per symbol would move it
      assert.equal(await priceCell(page, 'BTCUSDT').textContent(), frozen, 'no tick while the feed is stopped');

      await page.getByRole('button', { name: 'start sim' }).click();
      await page.locator('#feeds-note', { hasText: 'start sim: done' }).waitFor({ timeout: WAIT });
      await priceMoves(page, 'BTCUSDT', frozen, WAIT);
      await page.locator('#log li', { hasText: 'stop sim requested' }).first().waitFor({ timeout: WAIT });
      assert.deepEqual(errors.filter((e) => !refusedLoad.test(e)), [], 'console errors');
    } finally {
      // Leave the feed running for whatever runs next.
      await page.request.post(`http://${gw.addr}/feeds/sim/start`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
      await page.close();
    }
  });
});

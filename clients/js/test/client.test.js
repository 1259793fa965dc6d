// The client library against the real gateway (and ingest-sim) on a private Redis.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { backoffDelay, channelOf, connect } from '../tickstream.js';
import { jwt, numsub, publishTick, redisGet, startGateway, startSim, waitFor, wsUrl } from './harness.js';

/** Fast retries so restarts are quick to recover from in tests. */
const FAST = { WebSocket, initialDelayMs: 100, maxDelayMs: 1000 };

/** Records every state change and data frame of a client. @param {import('../tickstream.js').TickstreamClient} c */
function record(c) {
  /** @type {any[]} */
  const states = [];
  /** @type {any[]} */
  const errors = [];
  /** @type {any[]} */
  const recoveries = [];
  c.on('state', (/** @type {any} */ s) => states.push(s));
  c.on('error', (/** @type {any} */ e) => errors.push(e));
  c.on('recovery', (/** @type {any} */ r) => recoveries.push(r));
  return { states, errors, recoveries };
}

describe('pure helpers', () => {
  test('channelOf normalizes like the gateway; a bare symbol is its ticks channel', () => {
    assert.equal(channelOf('btcusdt'), 'ticks:BTCUSDT');
    assert.equal(channelOf('eur/usd'), 'ticks:EUR/USD');
    assert.equal(channelOf('Candles:1M:btcusdt'), 'candles:1m:BTCUSDT');
    assert.equal(channelOf(' FEEDS '), 'feeds');
    assert.equal(channelOf('sentiment'), 'sentiment');
    assert.equal(channelOf('trades:ethusdt'), 'trades:ETHUSDT');
  });

  test('backoff grows exponentially, is capped and jittered', () => {
    assert.equal(backoffDelay(1, 100, 1000, () => 1), 100);
    assert.equal(backoffDelay(3, 100, 1000, () => 1), 400);
    assert.equal(backoffDelay(10, 100, 1000, () => 1), 1000);
    assert.equal(backoffDelay(10, 100, 1000, () => 0), 500);
  });
});

describe('against the gateway with a test publisher', () => {
  /** @type {import('./harness.js').Proc} */
  let gw;
  before(async () => {
    gw = await startGateway();
  });
  after(async () => {
    await gw.kill();
  });

  test('subscribe receives, the cache holds the newest tick, unsubscribe stops', async () => {
    // Symbols no other test publishes, and seqs above any left in the cache.
    const base = Date.now();
    const c = connect(wsUrl(gw), FAST);
    try {
      /** @type {any[]} */
      const got = [];
      const unsubscribe = c.subscribe('pub1usd', (tick, meta) => got.push({ tick, meta }));
      await waitFor(() => c.state === 'open', 'open');
      await waitFor(async () => (await numsub('ticks:PUB1USD')) === 1, 'the gateway to subscribe in Redis');
      await publishTick('PUB1USD', base + 1, 100.5);
      await publishTick('PUB1USD', base + 2, 101.25);
      await waitFor(() => got.some((g) => g.tick.seq === base + 2), 'tick base + 2');
      assert.deepEqual(got.filter((g) => g.tick.seq > base).map((g) => g.tick.seq), [base + 1, base + 2]);
      assert.equal(got[0].meta.channel, 'ticks:PUB1USD');
      assert.equal(got[0].meta.event, 'price_update');
      assert.equal(c.latest('pub1usd')?.seq, base + 2);
      assert.equal(c.latest('PUB1USD')?.price, 101.25);
      assert.equal(c.lastSeq('PUB1USD'), base + 2);

      unsubscribe();
      await waitFor(async () => (await numsub('ticks:PUB1USD')) === 0, 'the gateway to drop its Redis subscription');
      const before = got.length;
      // A second channel proves frames still flow while the unsubscribed one stays silent.
      /** @type {any[]} */
      const eth = [];
      c.subscribe('PUB2USD', (t) => eth.push(t));
      await waitFor(async () => (await numsub('ticks:PUB2USD')) === 1, 'PUB2USD subscription');
      await publishTick('PUB1USD', base + 3, 102);
      await publishTick('PUB2USD', base, 3000);
      await waitFor(() => eth.some((t) => t.seq === base), 'PUB2USD tick');
      assert.equal(got.length, before, 'no tick after unsubscribe');
      assert.deepEqual(c.channels(), ['ticks:PUB2USD']);
    } finally {
      c.close();
    }
  });

  test('history replies are matched by request id', async () => {
    const c = connect(wsUrl(gw), FAST);
    try {
      await waitFor(() => c.state === 'open', 'open');
      // Before the gateway keeps history it answers `unknown_event` with the same id.
      const outcome = await c.history('BTCUSDT', { sinceSeq: 0, limit: 10 }).then(
        (v) => ({ ok: v }),
        (e) => ({ err: e }),
      );
      if ('ok' in outcome) {
        assert.equal(outcome.ok.channel, 'ticks:BTCUSDT');
        assert.ok(Array.isArray(outcome.ok.items));
      } else {
        assert.equal(outcome.err.code, 'unknown_event', String(outcome.err));
      }
      assert.equal(c.state, 'open', 'a refused request keeps the connection');
    } finally {
      c.close();
    }
  });
});

describe('against the gateway and ingest-sim', () => {
  /** @type {import('./harness.js').Proc} */
  let gw;
  /** @type {import('./harness.js').Proc} */
  let sim;
  before(async () => {
    gw = await startGateway();
    sim = await startSim();
  });
  after(async () => {
    await sim.kill();
    await gw.kill();
  });

  test('the gateway killed and restarted: the client reconnects, resubscribes and reports recovery', async () => {
    const c = connect(wsUrl(gw), { ...FAST, symbols: ['BTCUSDT'] });
    const log = record(c);
    try {
      /** @type {any[]} */
      const ticks = [];
      c.on('price_update', (/** @type {any} */ t) => ticks.push(t));
      await waitFor(() => ticks.length >= 2, 'live ticks from ingest-sim');
      const firstClient = c.clientId;

      await gw.restart();
      await waitFor(() => log.states.some((s) => s.state === 'reconnecting'), 'reconnecting');
      const retry = log.states.find((s) => s.state === 'reconnecting');
      assert.ok(retry.attempt >= 1 && retry.delayMs >= 0, JSON.stringify(retry));
      const seen = ticks.length;
      const lastSeq = c.lastSeq('BTCUSDT');
      await waitFor(() => ticks.length > seen + 2, 'ticks again after the restart', 20_000);
      assert.notEqual(c.clientId, firstClient, 'a new connection');
      assert.equal(c.state, 'open');
      const afterRestart = ticks.slice(seen).map((t) => t.seq);
      assert.ok(afterRestart.every((s) => s > /** @type {number} */ (lastSeq)), `no duplicates: ${afterRestart}`);
      // Recovery was asked for; without it the gap is reported, never hidden.
      await waitFor(() => log.recoveries.length > 0, 'a recovery report');
      const r = log.recoveries[0];
      assert.equal(r.channel, 'ticks:BTCUSDT');
      assert.equal(r.sinceSeq, lastSeq, 'recovery asked from the last seq seen');
      if (!r.recovered) assert.ok(typeof r.reason === 'string' && r.reason.length > 0, JSON.stringify(r));
    } finally {
      c.close();
    }
    assert.equal(c.state, 'closed');
  });

  test('recovery across a gateway restart: the seqs received have no gap and no duplicate', async () => {
    const c = connect(wsUrl(gw), { ...FAST, symbols: ['SOLUSDT'] });
    const log = record(c);
    try {
      /** @type {number[]} */
      const seqs = [];
      c.subscribe('SOLUSDT', (t) => seqs.push(t.seq));
      await waitFor(() => seqs.length >= 5, 'live ticks');
      await gw.kill();
      await waitFor(() => c.state === 'reconnecting', 'reconnecting');
      const seen = /** @type {number} */ (c.lastSeq('SOLUSDT'));
      // ingest-sim keeps publishing (and appending to the history) while the gateway is down.
      await waitFor(async () => {
        const cached = await redisGet('price:SOLUSDT');
        return cached !== null && JSON.parse(cached).seq >= seen + 10;
      }, 'ticks published while the gateway is down');
      await gw.restart();
      await waitFor(() => log.recoveries.length > 0, 'the recovery report', 20_000);
      assert.deepEqual(log.recoveries[0], { channel: 'ticks:SOLUSDT', recovered: true, reason: undefined, sinceSeq: seen, epoch: c.epoch });
      assert.ok(typeof c.epoch === 'string' && c.epoch.length > 0, 'the epoch is kept for the next resubscribe');
      await waitFor(() => seqs.at(-1) >= seen + 15, 'the replay and live ticks after it');
      // The first one is the cached snapshot: before the gateway's first Redis
      // SUBSCRIBE is confirmed, a tick can be missed upstream of it. From the
      // first live tick on, across the restart, every seq comes exactly once.
      const live = seqs.slice(1);
      assert.ok(seqs[1] > seqs[0], 'no duplicate after the snapshot');
      assert.deepEqual(live, live.map((_, i) => live[0] + i), 'consecutive seqs: no gap, no duplicate');
    } finally {
      c.close();
    }
  });

  test('history returns the stored items after a seq, matched by request id', async () => {
    const c = connect(wsUrl(gw), { ...FAST, symbols: ['ETHUSDT'] });
    try {
      await waitFor(() => (c.lastSeq('ETHUSDT') ?? 0) > 10, 'ticks');
      const last = /** @type {number} */ (c.lastSeq('ETHUSDT'));
      const [a, b] = await Promise.all([
        c.history('ethusdt', { sinceSeq: last - 6, limit: 3 }),
        c.history('ETHUSDT', { sinceSeq: last - 3, limit: 2 }),
      ]);
      assert.equal(a.channel, 'ticks:ETHUSDT');
      assert.equal(typeof a.epoch, 'string');
      assert.deepEqual(a.items.map((t) => t.seq), [last - 5, last - 4, last - 3]);
      assert.deepEqual(b.items.map((t) => t.seq), [last - 2, last - 1], 'each reply went to its own request');
      assert.ok(a.items.every((t) => t.symbol === 'ETHUSDT' && t.price > 0));
    } finally {
      c.close();
    }
  });

  test('a silent (frozen) gateway is detected by the ping timeout and left for a new connection', async () => {
    const c = connect(wsUrl(gw), { ...FAST, symbols: ['ETHUSDT'], pingIntervalMs: 200, deadAfterMs: 1000, connectTimeoutMs: 1000 });
    const log = record(c);
    try {
      /** @type {any[]} */
      const ticks = [];
      c.on('price_update', (/** @type {any} */ t) => ticks.push(t));
      await waitFor(() => ticks.length >= 1, 'live ticks');
      gw.signal('SIGSTOP');
      try {
        await waitFor(() => log.states.some((s) => s.state === 'reconnecting' && s.reason === 'dead connection'), 'dead connection detected');
      } finally {
        gw.signal('SIGCONT');
      }
      const seen = ticks.length;
      await waitFor(() => c.state === 'open' && ticks.length > seen, 'ticks on a new connection', 20_000);
    } finally {
      c.close();
    }
  });
});

describe('token refresh', () => {
  const secret = 'a-test-secret-of-enough-bytes';
  /** @type {import('./harness.js').Proc} */
  let gw;
  /** @type {import('./harness.js').Proc} */
  let sim;
  before(async () => {
    gw = await startGateway({
      TICKSTREAM_GATEWAY__AUTH__ALGORITHM: 'HS256',
      TICKSTREAM_GATEWAY__AUTH__HS256_SECRET: secret,
    });
    sim = await startSim();
  });
  after(async () => {
    await sim.kill();
    await gw.kill();
  });
  const now = () => Math.floor(Date.now() / 1000);

  test('an upgrade refused with 401 calls getToken and connects with the new token', async () => {
    /** @type {any[]} */
    const asked = [];
    const c = connect(wsUrl(gw), {
      ...FAST,
      token: jwt(secret, { sub: 'test', exp: now() - 3600 }),
      getToken: (req) => {
        asked.push(req);
        return jwt(secret, { sub: 'test', exp: now() + 3600 });
      },
      symbols: ['BTCUSDT'],
    });
    try {
      /** @type {any[]} */
      const ticks = [];
      c.on('price_update', (/** @type {any} */ t) => ticks.push(t));
      await waitFor(() => ticks.length >= 1, 'ticks with the refreshed token');
      assert.equal(asked.length, 1, JSON.stringify(asked));
      assert.equal(asked[0].reason, 'unauthorized');
    } finally {
      c.close();
    }
  });

  test('getToken gives the first token, and is not asked again when the gateway is unreachable', async () => {
    /** @type {any[]} */
    const asked = [];
    const c = connect(wsUrl(gw), {
      ...FAST,
      getToken: (req) => {
        asked.push(req);
        return jwt(secret, { sub: 'test', exp: now() + 3600 });
      },
      symbols: ['SOLUSDT'],
    });
    const log = record(c);
    try {
      await waitFor(() => c.latest('SOLUSDT'), 'a tick');
      assert.deepEqual(asked.map((a) => a.reason), ['initial']);
      await sim.kill();
      await gw.kill();
      await waitFor(() => log.states.filter((s) => s.state === 'reconnecting').length >= 3, 'three failed attempts');
      assert.deepEqual(asked.map((a) => a.reason), ['initial'], 'a refused TCP connection is not a refused token');
    } finally {
      c.close();
      await gw.restart();
      await sim.start();
    }
  });

  test('an `unauthorized` error frame calls getToken and reconnects with the new grant', async () => {
    /** @type {any[]} */
    const asked = [];
    const c = connect(wsUrl(gw), {
      ...FAST,
      token: jwt(secret, { sub: 'test', exp: now() + 3600, symbols: ['BTCUSDT'] }),
      getToken: (req) => {
        asked.push(req);
        return jwt(secret, { sub: 'test', exp: now() + 3600, symbols: ['BTCUSDT', 'ETHUSDT'] });
      },
    });
    const log = record(c);
    try {
      /** @type {any[]} */
      const eth = [];
      c.subscribe('ETHUSDT', (t) => eth.push(t));
      await waitFor(() => eth.length >= 1, 'ETHUSDT ticks after the refresh');
      assert.ok(log.errors.some((e) => e.code === 'unauthorized'), JSON.stringify(log.errors));
      assert.deepEqual(asked.map((a) => a.reason), ['unauthorized']);
    } finally {
      c.close();
    }
  });
});

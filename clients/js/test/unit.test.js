// The client's protocol logic against a scripted in-memory WebSocket (no gateway).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { connect } from '../tickstream.js';

/** A WebSocket stand-in: records what is sent; the test plays the server. */
class FakeSocket {
  /** @type {FakeSocket[]} */
  static all = [];
  /** @param {string} url */
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    /** @type {any[]} */
    this.sent = [];
    /** @type {any} */
    this.onopen = null;
    /** @type {any} */
    this.onmessage = null;
    /** @type {any} */
    this.onclose = null;
    /** @type {any} */
    this.onerror = null;
    FakeSocket.all.push(this);
  }
  /** @param {string} text */
  send(text) {
    this.sent.push(JSON.parse(text));
  }
  close() {
    this.readyState = 3;
  }
  /** Opens and says `connected`, as the gateway does. */
  open() {
    this.readyState = 1;
    this.onopen?.({});
    this.frame({ event: 'connected', data: { client_id: `c-${FakeSocket.all.length}` } });
  }
  /** @param {any} f */
  frame(f) {
    this.onmessage?.({ data: JSON.stringify(f) });
  }
  /** The server side goes away. */
  drop() {
    this.readyState = 3;
    this.onclose?.({ code: 1006 });
  }
  /** The last request sent with `event`. @param {string} event */
  last(event) {
    return [...this.sent].reverse().find((m) => m.event === event);
  }
}

const tick = (/** @type {string} */ symbol, /** @type {number} */ seq) => ({
  event: 'price_update',
  data: { symbol, price: 100 + seq, timestamp: '2026-12-05T15:00:00.000Z', source: 'test', seq },
});
const until = async (/** @type {() => any} */ f) => {
  for (let i = 0; i < 200 && !f(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(f(), 'condition not reached');
  return f();
};
const opts = { WebSocket: FakeSocket, initialDelayMs: 1, maxDelayMs: 2 };
/** Lets the client's promise callbacks (a reply resolving its request) run. */
const settle = () => new Promise((r) => setImmediate(r));
/** @type {import('../tickstream.js').TickstreamClient[]} */
const clients = [];
after(() => clients.forEach((c) => c.close()));
/** @param {string} url @param {any} o */
const open = (url, o) => {
  const c = connect(url, o);
  clients.push(c);
  return c;
};

test('resubscribes with since (ticks and trades only) and epoch; recovered:false is reported', async () => {
  FakeSocket.all = [];
  const c = open('ws://x/ws', { ...opts, channels: ['trades:BTCUSDT', 'signals:BTCUSDT'], symbols: ['BTCUSDT'] });
  /** @type {any[]} */
  const rec = [];
  c.on('recovery', (/** @type {any} */ r) => rec.push(r));
  const a = await until(() => FakeSocket.all[0]);
  a.open();
  const sub = a.last('subscribe');
  assert.equal(sub.data.since, undefined, 'nothing to recover on the first connection');
  a.frame({ event: 'subscribed', id: sub.id, data: { channels: sub.data.channels, epoch: 'e1' } });
  await settle();
  a.frame(tick('BTCUSDT', 7));
  a.frame({ event: 'trade', data: { symbol: 'BTCUSDT', price: 1, size: 1, timestamp: 't', source: 's', seq: 3 } });
  a.frame({ event: 'trading_signal', data: { symbol: 'BTCUSDT', signal: 'BUY', strength: 0.6, seq: 9 } });
  a.drop();

  const b = await until(() => FakeSocket.all[1]);
  b.open();
  const again = b.last('subscribe');
  assert.deepEqual(new Set(again.data.channels), new Set(['ticks:BTCUSDT', 'trades:BTCUSDT', 'signals:BTCUSDT']));
  assert.deepEqual(again.data.since, { 'ticks:BTCUSDT': 7, 'trades:BTCUSDT': 3 });
  assert.equal(again.data.epoch, 'e1');
  b.frame({
    event: 'subscribed',
    id: again.id,
    data: { epoch: 'e1', recovery: { 'ticks:BTCUSDT': { recovered: true, replayed: 2 }, 'trades:BTCUSDT': { recovered: false, reason: 'trimmed' } } },
  });
  await settle();
  assert.deepEqual(rec, [
    { channel: 'ticks:BTCUSDT', recovered: true, reason: undefined, sinceSeq: 7, epoch: 'e1' },
    { channel: 'trades:BTCUSDT', recovered: false, reason: 'trimmed', sinceSeq: 3, epoch: 'e1' },
  ]);
  c.close();
});

test('a gateway that says nothing about recovery is reported as unsupported, never silent', async () => {
  FakeSocket.all = [];
  const c = open('ws://x/ws', { ...opts, symbols: ['ETHUSDT'] });
  /** @type {any[]} */
  const rec = [];
  c.on('recovery', (/** @type {any} */ r) => rec.push(r));
  const a = await until(() => FakeSocket.all[0]);
  a.open();
  a.frame({ event: 'subscribed', id: a.last('subscribe').id, data: {} });
  await settle();
  a.frame(tick('ETHUSDT', 1));
  a.drop();
  const b = await until(() => FakeSocket.all[1]);
  b.open();
  b.frame({ event: 'subscribed', id: b.last('subscribe').id, data: {} });
  await settle();
  assert.deepEqual(rec.map((r) => [r.channel, r.recovered, r.reason]), [['ticks:ETHUSDT', false, 'unsupported']]);
  c.close();
});

test('duplicates and older seqs are dropped; a new epoch starts the numbering afresh', async () => {
  FakeSocket.all = [];
  const c = open('ws://x/ws', opts);
  /** @type {number[]} */
  const got = [];
  c.subscribe('SOLUSDT', (t) => got.push(t.seq));
  const a = await until(() => FakeSocket.all[0]);
  a.open();
  a.frame({ event: 'subscribed', id: a.last('subscribe').id, data: { epoch: 'e1' } });
  await settle();
  for (const s of [5, 6, 6, 4, 7]) a.frame(tick('SOLUSDT', s));
  assert.deepEqual(got, [5, 6, 7]);
  assert.equal(c.latest('SOLUSDT')?.seq, 7);
  a.drop();
  const b = await until(() => FakeSocket.all[1]);
  b.open();
  const sub = b.last('subscribe');
  b.frame({ event: 'subscribed', id: sub.id, data: { epoch: 'e2', recovery: { 'ticks:SOLUSDT': { recovered: false, reason: 'epoch_changed' } } } });
  await settle();
  b.frame(tick('SOLUSDT', 1));
  b.frame(tick('SOLUSDT', 2));
  assert.deepEqual(got, [5, 6, 7, 1, 2]);
  c.close();
});

test('history and errors are matched by id; unsubscribe tells the gateway when the last callback goes', async () => {
  FakeSocket.all = [];
  const c = open('ws://x/ws', opts);
  const a = await until(() => FakeSocket.all[0]);
  a.open();
  const h1 = c.history('btcusdt', { sinceSeq: 10, limit: 2 });
  const h2 = c.history('trades:BTCUSDT');
  const [r1, r2] = a.sent.filter((m) => m.event === 'history');
  assert.deepEqual(r1.data, { channel: 'ticks:BTCUSDT', since_seq: 10, limit: 2 });
  assert.deepEqual(r2.data, { channel: 'trades:BTCUSDT' });
  a.frame({ event: 'error', id: r2.id, data: { code: 'unavailable', message: 'Redis down' } });
  a.frame({ event: 'history', id: r1.id, data: { channel: 'ticks:BTCUSDT', epoch: 'e', items: [{ seq: 11 }, { seq: 12 }] } });
  assert.deepEqual((await h1).items.map((/** @type {any} */ i) => i.seq), [11, 12]);
  await assert.rejects(h2, (/** @type {any} */ e) => e.code === 'unavailable');

  const off1 = c.subscribe('BTCUSDT', () => {});
  const off2 = c.subscribe('BTCUSDT', () => {});
  assert.equal(a.sent.filter((m) => m.event === 'subscribe').length, 1, 'one subscribe per channel');
  off1();
  assert.equal(a.last('unsubscribe'), undefined, 'another callback still holds it');
  off2();
  assert.deepEqual(a.last('unsubscribe').data, { channels: ['ticks:BTCUSDT'] });
  c.close();
});

test('pings go out, and silence means a dead connection', async () => {
  FakeSocket.all = [];
  const c = open('ws://x/ws', { ...opts, pingIntervalMs: 10, deadAfterMs: 60 });
  /** @type {any[]} */
  const states = [];
  c.on('state', (/** @type {any} */ s) => states.push(s));
  const a = await until(() => FakeSocket.all[0]);
  a.open();
  await until(() => a.sent.some((m) => m.event === 'ping'));
  await until(() => states.some((s) => s.state === 'reconnecting' && s.reason === 'dead connection'));
  await until(() => FakeSocket.all[1]);
  c.close();
  assert.equal(c.state, 'closed');
});

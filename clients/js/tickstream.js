// tickstream client: live market data from a tickstream gateway over its
// native JSON WebSocket protocol (`/ws`). Dependency-free ES module; plain
// JavaScript with JSDoc types. Works in browsers and in Node (pass a
// WebSocket implementation, e.g. the `ws` package, where there is no global one).
//
// Protocol: docs/native-protocol.md in the tickstream repository.

/**
 * @typedef {{symbol: string, price: number, volume?: number, high?: number, low?: number,
 *   change?: number, changePercent?: number, bid?: number, ask?: number,
 *   timestamp: string, source: string, seq: number}} Tick
 * @typedef {'connecting'|'open'|'reconnecting'|'closed'} ConnectionState
 * @typedef {{channel: string, event: string}} Meta
 * @typedef {(data: any, meta: Meta) => void} ChannelCallback
 * @typedef {{reason: 'initial'|'unauthorized'|'refused', attempt: number}} TokenRequest
 * @typedef {{
 *   token?: string,
 *   getToken?: (req: TokenRequest) => string | undefined | Promise<string | undefined>,
 *   symbols?: string[],
 *   channels?: string[],
 *   WebSocket?: any,
 *   initialDelayMs?: number,
 *   maxDelayMs?: number,
 *   pingIntervalMs?: number,
 *   deadAfterMs?: number,
 *   connectTimeoutMs?: number,
 *   requestTimeoutMs?: number,
 *   recover?: boolean,
 * }} ConnectOptions
 */

/** The live events the gateway sends, by channel kind. */
export const DATA_EVENTS = Object.freeze({
  price_update: 'ticks',
  trade: 'trades',
  candle: 'candles',
  trading_signal: 'signals',
  sentiment_update: 'sentiment',
  feed_status: 'feeds',
});

/** Channels the gateway keeps a history of, so `since` may name them. */
const HISTORY_KINDS = /^(ticks|trades):/;

const DEFAULTS = {
  initialDelayMs: 500,
  maxDelayMs: 15000,
  pingIntervalMs: 15000,
  deadAfterMs: 40000,
  connectTimeoutMs: 10000,
  requestTimeoutMs: 10000,
};

/**
 * The canonical channel name, as the gateway writes it: a bare symbol is its
 * `ticks:` channel, the kind and interval are lowercased and the symbol uppercased.
 * @param {string} name
 * @returns {string}
 */
export function channelOf(name) {
  const s = String(name).trim();
  const lower = s.toLowerCase();
  if (lower === 'sentiment' || lower === 'feeds') return lower;
  const i = s.indexOf(':');
  if (i < 0) return `ticks:${s.toUpperCase()}`;
  const kind = s.slice(0, i).toLowerCase();
  const rest = s.slice(i + 1);
  if (kind === 'candles') {
    const j = rest.indexOf(':');
    if (j >= 0) return `candles:${rest.slice(0, j).toLowerCase()}:${rest.slice(j + 1).trim().toUpperCase()}`;
  }
  return `${kind}:${rest.trim().toUpperCase()}`;
}

/**
 * The channel a live frame belongs to, from its event and payload.
 * @param {string} event
 * @param {any} data
 * @returns {string | undefined}
 */
export function channelOfFrame(event, data) {
  const kind = DATA_EVENTS[/** @type {keyof typeof DATA_EVENTS} */ (event)];
  if (!kind) return undefined;
  if (kind === 'sentiment' || kind === 'feeds') return kind;
  if (!data || typeof data.symbol !== 'string') return undefined;
  if (kind === 'candles') return `candles:${String(data.interval).toLowerCase()}:${data.symbol}`;
  return `${kind}:${data.symbol}`;
}

/**
 * The next reconnect delay: capped exponential backoff with jitter (between
 * half and all of `min(max, initial * 2^(attempt-1))`).
 * @param {number} attempt 1 for the first retry
 * @param {number} initialDelayMs
 * @param {number} maxDelayMs
 * @param {() => number} [random]
 */
export function backoffDelay(attempt, initialDelayMs, maxDelayMs, random = Math.random) {
  const capped = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(capped / 2 + (random() * capped) / 2);
}

/**
 * Opens a client and starts connecting at once; it keeps reconnecting until `close()`.
 * @param {string} url e.g. `wss://host:5021/ws`
 * @param {ConnectOptions} [options]
 * @returns {TickstreamClient}
 */
export function connect(url, options = {}) {
  return new TickstreamClient(url, options);
}

/** A self-healing connection to a gateway's `/ws`. */
export class TickstreamClient {
  /**
   * @param {string} url
   * @param {ConnectOptions} [options]
   */
  constructor(url, options = {}) {
    this.url = url;
    this.options = { ...DEFAULTS, ...options };
    /** @type {any} */
    this.WebSocketImpl = options.WebSocket ?? globalThis.WebSocket;
    if (typeof this.WebSocketImpl !== 'function') {
      throw new TypeError('no WebSocket implementation: pass {WebSocket} (in Node < 22: `import WebSocket from "ws"`)');
    }
    /** @type {string | undefined} */
    this.token = options.token;
    /** @type {ConnectionState} */
    this.state = 'connecting';
    /** How many reconnect attempts since the last healthy connection. */
    this.attempt = 0;
    /** The gateway's history epoch, once a `subscribed` reply told it. @type {string | undefined} */
    this.epoch = undefined;
    /** The `client_id` of the current connection. @type {string | undefined} */
    this.clientId = undefined;
    /** @type {Map<string, Set<ChannelCallback | null>>} channel → callbacks (null = held without one) */
    this.subs = new Map();
    /** @type {Map<string, number>} channel → last seq seen */
    this.seqs = new Map();
    /** @type {Map<string, Tick>} symbol → newest tick */
    this.cache = new Map();
    /** @type {Map<string, Set<Function>>} */
    this.listeners = new Map();
    /** @type {Map<string|number, {resolve: Function, reject: Function, timer: any}>} */
    this.pending = new Map();
    this.nextId = 1;
    /** @type {any} */
    this.ws = null;
    this.timers = { reconnect: null, ping: null, dead: null, opening: null };
    this.lastMessageAt = 0;
    /** Why the next attempt needs a fresh token, if it does. @type {TokenRequest['reason'] | undefined} */
    this.tokenReason = options.token === undefined && options.getToken ? 'initial' : undefined;
    for (const s of options.symbols ?? []) this.#hold(channelOf(s), null);
    for (const c of options.channels ?? []) this.#hold(channelOf(c), null);
    queueMicrotask(() => this.#open());
  }

  /**
   * Listens to an event: a live event (`price_update`, `trade`, `candle`,
   * `trading_signal`, `sentiment_update`, `feed_status`), `error`, a state
   * (`connecting`, `open`, `reconnecting` with `{attempt, delayMs, reason}`,
   * `closed`), `state` (every change), `recovery` (`{channel, recovered, reason}`
   * after a reconnect), `subscribed`, `message` (every frame).
   * @param {string} event
   * @param {Function} cb
   * @returns {() => void} removes the listener
   */
  on(event, cb) {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(cb);
    return () => this.off(event, cb);
  }

  /** @param {string} event @param {Function} cb */
  off(event, cb) {
    this.listeners.get(event)?.delete(cb);
  }

  /**
   * Subscribes to a symbol (its `ticks:` channel) or a channel; the callback
   * gets each update's payload. Held across reconnects.
   * @param {string | string[]} names
   * @param {ChannelCallback} [callback]
   * @returns {() => void} unsubscribes (this callback; the channel when it was the last)
   */
  subscribe(names, callback) {
    const channels = [...new Set((Array.isArray(names) ? names : [names]).map(channelOf))];
    const cb = callback ?? null;
    /** @type {string[]} */
    const fresh = [];
    for (const ch of channels) if (this.#hold(ch, cb)) fresh.push(ch);
    if (fresh.length && this.#isOpen()) this.#sendSubscribe(fresh, false);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      /** @type {string[]} */
      const gone = [];
      for (const ch of channels) {
        const set = this.subs.get(ch);
        if (!set) continue;
        set.delete(cb);
        if (set.size === 0) {
          this.subs.delete(ch);
          this.seqs.delete(ch);
          gone.push(ch);
        }
      }
      if (gone.length && this.#isOpen()) {
        this.#request('unsubscribe', { channels: gone }).catch(() => {});
      }
    };
  }

  /** The channels currently held. @returns {string[]} */
  channels() {
    return [...this.subs.keys()];
  }

  /**
   * The newest tick received for a symbol, or undefined.
   * @param {string} symbol
   * @returns {Tick | undefined}
   */
  latest(symbol) {
    return this.cache.get(String(symbol).trim().toUpperCase());
  }

  /**
   * The last seq seen on a channel (what a reconnect asks to recover from).
   * @param {string} name
   */
  lastSeq(name) {
    return this.seqs.get(channelOf(name));
  }

  /**
   * Asks the gateway for stored items of a channel after `sinceSeq`.
   * @param {string} name symbol or channel
   * @param {{sinceSeq?: number, limit?: number}} [opts]
   * @returns {Promise<{channel: string, epoch?: string, items: any[]}>}
   */
  history(name, opts = {}) {
    /** @type {Record<string, any>} */
    const data = { channel: channelOf(name) };
    if (opts.sinceSeq !== undefined) data.since_seq = opts.sinceSeq;
    if (opts.limit !== undefined) data.limit = opts.limit;
    return this.#request('history', data);
  }

  /** Stops for good: closes the socket, no more reconnects. */
  close() {
    if (this.state === 'closed') return;
    this.#clearTimers();
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      detach(ws);
      try {
        ws.close(1000);
      } catch {
        // already closing
      }
    }
    this.#failPending(new Error('client closed'));
    this.#setState('closed', {});
  }

  // --- internals -------------------------------------------------------------

  /** @param {string} ch @param {ChannelCallback | null} cb @returns {boolean} whether the channel is new */
  #hold(ch, cb) {
    let set = this.subs.get(ch);
    const fresh = !set;
    if (!set) this.subs.set(ch, (set = new Set()));
    set.add(cb);
    return fresh;
  }

  #isOpen() {
    return this.ws !== null && this.ws.readyState === 1 && this.clientId !== undefined;
  }

  /** @param {string} event @param {any} [payload] */
  #emit(event, payload) {
    for (const cb of [...(this.listeners.get(event) ?? [])]) {
      try {
        cb(payload);
      } catch (e) {
        reportLater(e);
      }
    }
  }

  /** @param {ConnectionState} state @param {any} info */
  #setState(state, info) {
    this.state = state;
    this.#emit(state, info);
    this.#emit('state', { state, ...info });
  }

  async #open() {
    if (this.state === 'closed') return;
    if (this.tokenReason && this.options.getToken) {
      const reason = this.tokenReason;
      try {
        const t = await this.options.getToken({ reason, attempt: this.attempt });
        if (t !== undefined && t !== null) this.token = String(t);
        this.tokenReason = undefined;
      } catch (e) {
        this.#emit('error', { code: 'token_refresh_failed', message: String(e) });
        this.#scheduleReconnect('token_refresh_failed');
        return;
      }
      if (this.state === 'closed') return;
    }
    if (this.state !== 'reconnecting') this.#setState('connecting', { attempt: this.attempt });
    let url = this.url;
    if (this.token) url += `${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(this.token)}`;
    let ws;
    try {
      ws = new this.WebSocketImpl(url);
    } catch (e) {
      this.#emit('error', { code: 'connect_failed', message: String(e) });
      this.#scheduleReconnect('connect_failed');
      return;
    }
    this.ws = ws;
    this.clientId = undefined;
    let opened = false;
    // A server that accepts TCP but never answers the upgrade must not hang us.
    clearTimeout(this.timers.opening);
    this.timers.opening = setTimeout(() => {
      if (this.ws === ws && !opened) this.#drop('connect timeout');
    }, this.options.connectTimeoutMs);
    /** @type {string | undefined} */
    let failure;
    ws.onopen = () => {
      opened = true;
      clearTimeout(this.timers.opening);
      this.lastMessageAt = Date.now();
      this.#startLiveness();
    };
    ws.onmessage = (/** @type {any} */ e) => {
      this.lastMessageAt = Date.now();
      const text = typeof e.data === 'string' ? e.data : String(e.data);
      let frame;
      try {
        frame = JSON.parse(text);
      } catch {
        return;
      }
      this.#onFrame(frame);
    };
    /** Why opening failed, when the implementation says (Node's `ws` does; browsers never do). */
    let why = '';
    ws.onerror = (/** @type {any} */ e) => {
      why = String(e?.message ?? e?.error?.message ?? '');
      if (/\b401\b/.test(why)) failure = 'unauthorized';
    };
    ws.onclose = (/** @type {any} */ e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.clientId = undefined;
      this.#stopLiveness();
      this.#failPending(new Error('connection lost'));
      if (this.state === 'closed') return;
      if (!opened && this.options.getToken) {
        // A refused upgrade (HTTP 401) shows in browsers only as a failed
        // opening with no reason; where the reason is known, only a 401 asks.
        if (failure === 'unauthorized') this.tokenReason = 'unauthorized';
        else if (!why) this.tokenReason = 'refused';
      }
      this.#scheduleReconnect(failure ?? (opened ? `closed ${e?.code ?? ''}`.trim() : 'connect_failed'));
    };
  }

  /** @param {string} reason */
  #scheduleReconnect(reason) {
    if (this.state === 'closed') return;
    this.attempt += 1;
    const delayMs = backoffDelay(this.attempt, this.options.initialDelayMs, this.options.maxDelayMs);
    this.#setState('reconnecting', { attempt: this.attempt, delayMs, reason });
    clearTimeout(this.timers.reconnect);
    this.timers.reconnect = setTimeout(() => this.#open(), delayMs);
  }

  /** Drops the current socket and reconnects (a dead or refused connection). @param {string} reason */
  #drop(reason) {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    this.clientId = undefined;
    this.#stopLiveness();
    detach(ws);
    try {
      ws.close(4000, reason);
    } catch {
      // already closing
    }
    this.#failPending(new Error(reason));
    this.#scheduleReconnect(reason);
  }

  #startLiveness() {
    this.#stopLiveness();
    const { pingIntervalMs, deadAfterMs } = this.options;
    this.timers.ping = setInterval(() => {
      if (this.ws?.readyState === 1) this.ws.send('{"event":"ping"}');
    }, pingIntervalMs);
    const check = Math.max(50, Math.min(1000, deadAfterMs / 4));
    this.timers.dead = setInterval(() => {
      if (Date.now() - this.lastMessageAt > deadAfterMs) this.#drop('dead connection');
    }, check);
  }

  #stopLiveness() {
    clearInterval(this.timers.ping);
    clearInterval(this.timers.dead);
    this.timers.ping = this.timers.dead = null;
  }

  #clearTimers() {
    this.#stopLiveness();
    clearTimeout(this.timers.reconnect);
    clearTimeout(this.timers.opening);
    this.timers.reconnect = this.timers.opening = null;
  }

  /** @param {Error} err */
  #failPending(err) {
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
  }

  /** @param {string} event @param {any} data @returns {Promise<any>} */
  #request(event, data) {
    if (!this.#isOpen()) return Promise.reject(new Error(`not connected (${this.state})`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${event} timed out`));
      }, this.options.requestTimeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ event, data, id }));
    });
  }

  /** @param {string[]} channels @param {boolean} resume whether to ask for recovery */
  #sendSubscribe(channels, resume) {
    /** @type {Record<string, any>} */
    const data = { channels };
    /** @type {Record<string, number>} */
    const since = {};
    if (resume && this.options.recover !== false) {
      for (const ch of channels) {
        const seq = this.seqs.get(ch);
        // Only ticks and trades keep a history to recover from.
        if (seq !== undefined && HISTORY_KINDS.test(ch)) since[ch] = seq;
      }
      if (Object.keys(since).length) {
        data.since = since;
        if (this.epoch !== undefined) data.epoch = this.epoch;
      }
    }
    this.#request('subscribe', data).then(
      (reply) => this.#onSubscribed(reply, since),
      // An `error` reply was already emitted; a lost connection resubscribes.
      () => {},
    );
  }

  /** @param {any} reply @param {Record<string, number>} since */
  #onSubscribed(reply, since) {
    this.attempt = 0;
    if (reply && typeof reply.epoch === 'string') {
      // Another data set (Redis lost its data): its seqs are not comparable with ours.
      if (this.epoch !== undefined && reply.epoch !== this.epoch) this.seqs.clear();
      this.epoch = reply.epoch;
    }
    const recovery = reply?.recovery;
    for (const ch of Object.keys(since)) {
      const r = recovery?.[ch];
      const recovered = r?.recovered === true;
      const reason = recovered ? undefined : (r?.reason ?? (recovery ? 'unknown' : 'unsupported'));
      // A new epoch restarts the numbering: forget the old seq so new items pass the guard.
      if (reason === 'epoch_changed') this.seqs.delete(ch);
      this.#emit('recovery', { channel: ch, recovered, reason, sinceSeq: since[ch], epoch: this.epoch });
    }
    this.#emit('subscribed', reply);
  }

  /** @param {any} frame */
  #onFrame(frame) {
    if (!frame || typeof frame !== 'object') return;
    const { event, data, id } = frame;
    this.#emit('message', frame);
    if (id !== undefined && id !== null && this.pending.has(id)) {
      const p = this.pending.get(id);
      this.pending.delete(id);
      clearTimeout(p?.timer);
      if (event === 'error') p?.reject(Object.assign(new Error(data?.message ?? 'error'), { code: data?.code }));
      else p?.resolve(data);
      if (event === 'error') this.#onError(data);
      return;
    }
    switch (event) {
      case 'connected':
        this.clientId = data?.client_id;
        this.#setState('open', { clientId: this.clientId, attempt: this.attempt });
        if (this.subs.size) this.#sendSubscribe([...this.subs.keys()], true);
        else this.attempt = 0;
        return;
      case 'error':
        this.#onError(data);
        return;
      case 'pong':
      case 'subscribed':
      case 'unsubscribed':
      case 'subscriptions':
        return;
      default:
        this.#onData(event, data);
    }
  }

  /** @param {any} data */
  #onError(data) {
    this.#emit('error', data);
    if (data?.code === 'unauthorized' && this.options.getToken) {
      this.tokenReason = 'unauthorized';
      this.#drop('unauthorized');
    }
  }

  /** @param {string} event @param {any} data */
  #onData(event, data) {
    const ch = channelOfFrame(event, data);
    if (!ch) {
      this.#emit(event, data);
      return;
    }
    const seq = data?.seq;
    if (Number.isInteger(seq)) {
      const last = this.seqs.get(ch);
      // A snapshot or replay of something already seen: never deliver it twice.
      if (last !== undefined && seq <= last) return;
      if (this.subs.has(ch)) this.seqs.set(ch, seq);
    }
    if (event === 'price_update') this.cache.set(data.symbol, data);
    const meta = { channel: ch, event };
    for (const cb of [...(this.subs.get(ch) ?? [])]) {
      if (!cb) continue;
      try {
        cb(data, meta);
      } catch (e) {
        reportLater(e);
      }
    }
    this.#emit(event, data);
  }
}

/** @param {any} ws */
function detach(ws) {
  ws.onopen = ws.onmessage = ws.onclose = null;
  // Some implementations report closing a socket that never opened as an error.
  ws.onerror = () => {};
}

/** An application callback threw: report it without breaking the client. @param {unknown} e */
function reportLater(e) {
  setTimeout(() => {
    throw e;
  }, 0);
}

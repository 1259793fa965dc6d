// React bindings for the tickstream client: hooks that re-render on live
// updates. React (>= 17) is a peer dependency; no JSX, no build step.
import { createContext, createElement, useContext, useEffect, useState } from 'react';
import { channelOf } from './tickstream.js';

/** @typedef {import('./tickstream.js').TickstreamClient} TickstreamClient */
/** @typedef {import('./tickstream.js').Tick} Tick */

/** Holds the client the hooks use when none is passed to them. */
export const TickstreamContext = createContext(/** @type {TickstreamClient | null} */ (null));

/**
 * Makes `client` the one the hooks below use.
 * @param {{client: TickstreamClient, children?: any}} props
 */
export function TickstreamProvider({ client, children }) {
  return createElement(TickstreamContext.Provider, { value: client }, children);
}

/** @param {TickstreamClient | undefined} given */
function useClient(given) {
  const fromContext = useContext(TickstreamContext);
  const client = given ?? fromContext;
  if (!client) throw new Error('tickstream: pass a client or render inside <TickstreamProvider client={...}>');
  return client;
}

/**
 * The newest tick of each symbol, re-rendering on every tick.
 * @param {string[]} symbols
 * @param {TickstreamClient} [client] defaults to the provider's
 * @returns {Record<string, Tick>} symbol (uppercase) → newest tick; absent until one arrives
 */
export function usePrices(symbols, client) {
  const c = useClient(client);
  const key = symbols.map((s) => String(s).trim().toUpperCase()).join(',');
  const [prices, setPrices] = useState(() => initial(c, key));
  useEffect(() => {
    setPrices(initial(c, key));
    if (!key) return undefined;
    return c.subscribe(key.split(','), (tick) => setPrices((prev) => ({ ...prev, [tick.symbol]: tick })));
  }, [c, key]);
  return prices;
}

/** @param {TickstreamClient} c @param {string} key */
function initial(c, key) {
  /** @type {Record<string, Tick>} */
  const out = {};
  for (const s of key ? key.split(',') : []) {
    const t = c.latest(s);
    if (t) out[s] = t;
  }
  return out;
}

/**
 * The latest payload of one channel (or a symbol's ticks), re-rendering on each update.
 * @param {string} channel e.g. `sentiment`, `signals:BTCUSDT`, `candles:1m:BTCUSDT`
 * @param {TickstreamClient} [client]
 * @returns {any} undefined until the first update
 */
export function useChannel(channel, client) {
  const c = useClient(client);
  const ch = channelOf(channel);
  const [value, setValue] = useState(/** @type {any} */ (undefined));
  useEffect(() => {
    setValue(undefined);
    return c.subscribe(ch, (data) => setValue(data));
  }, [c, ch]);
  return value;
}

/**
 * The connection state (`connecting`, `open`, `reconnecting`, `closed`) and, while reconnecting, the attempt.
 * @param {TickstreamClient} [client]
 * @returns {{state: string, attempt?: number, delayMs?: number}}
 */
export function useConnectionState(client) {
  const c = useClient(client);
  const [state, setState] = useState(() => ({ state: c.state }));
  useEffect(() => {
    setState({ state: c.state });
    return c.on('state', (/** @type {any} */ s) => setState(s));
  }, [c]);
  return state;
}

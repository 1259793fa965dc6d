// The React hooks, rendered with react-test-renderer, updating on live ticks.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createElement } from 'react';
import TestRenderer from 'react-test-renderer';
import WebSocket from 'ws';
import { TickstreamProvider, useChannel, useConnectionState, usePrices } from '../react.js';
import { connect } from '../tickstream.js';
import { numsub, publishTick, startGateway, waitFor, wsUrl } from './harness.js';

// Updates come from the socket, outside act(): let React schedule them as in an app.
globalThis.IS_REACT_ACT_ENVIRONMENT = false;

/** @type {import('./harness.js').Proc} */
let gw;
before(async () => {
  gw = await startGateway();
});
after(async () => {
  await gw.kill();
});

function Prices() {
  const prices = usePrices(['XRPUSDT', 'dogeusdt']);
  const eth = useChannel('DOGEUSDT');
  const conn = useConnectionState();
  return createElement(
    'ul',
    null,
    createElement('li', { id: 'state' }, conn.state),
    ...Object.values(prices).map((t) => createElement('li', { key: t.symbol }, `${t.symbol} ${t.price} #${t.seq}`)),
    createElement('li', { id: 'eth' }, eth ? `eth ${eth.price}` : 'eth waiting'),
  );
}

test('usePrices, useChannel and useConnectionState re-render on ticks', async () => {
  const client = connect(wsUrl(gw), { WebSocket, initialDelayMs: 100, maxDelayMs: 1000 });
  const text = () => JSON.stringify(renderer.toJSON());
  const renderer = TestRenderer.create(createElement(TickstreamProvider, { client }, createElement(Prices)));
  try {
    assert.match(text(), /eth waiting/);
    await waitFor(() => text().includes('"open"'), 'state open rendered');
    await waitFor(async () => (await numsub('ticks:DOGEUSDT')) === 1 && (await numsub('ticks:XRPUSDT')) === 1, 'subscriptions');
    await publishTick('XRPUSDT', 5001, 95000.5);
    await publishTick('DOGEUSDT', 5001, 3100.25);
    await waitFor(() => text().includes('XRPUSDT 95000.5 #5001') && text().includes('DOGEUSDT 3100.25 #5001'), 'both prices rendered');
    await waitFor(() => text().includes('eth 3100.25'), 'channel value rendered');
    await publishTick('XRPUSDT', 5002, 95001);
    await waitFor(() => text().includes('XRPUSDT 95001 #5002'), 'the newer price rendered');
    renderer.unmount();
    // Unmounting releases the subscriptions.
    await waitFor(async () => (await numsub('ticks:XRPUSDT')) === 0, 'unsubscribed on unmount');
  } finally {
    client.close();
  }
});

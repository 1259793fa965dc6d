// A stock socket.io-client 4.x driven by the gateway's integration tests.
//
// Usage: node sio-client.js URL [websocket]
//   default: the client's default options (HTTP long-polling, then upgrade to WebSocket)
//   websocket: { transports: ['websocket'] }
// env SIO_AUTH_TOKEN: sent as the CONNECT auth payload { token }
// stdin: one JSON command per line:
//   {"emit":"subscribe","data":{"symbols":["BTCUSDT"]}}   socket.emit(event, data)
//   {"ack":"list","data":null}                           socket.emit(event, data, ack) → prints {"ev":"ack",...}
//   {"exit":true}                                        disconnect and exit 0
// stdout: one JSON object per line per event, each with the current transport.
'use strict';
const { io } = require('socket.io-client');
const readline = require('readline');

const [url, mode] = process.argv.slice(2);
const options = mode === 'websocket' ? { transports: ['websocket'] } : {};
if (process.env.SIO_AUTH_TOKEN) {
  options.auth = { token: process.env.SIO_AUTH_TOKEN };
}
const socket = io(url, options);

function out(obj) {
  const engine = socket.io.engine;
  const transport = engine && engine.transport ? engine.transport.name : null;
  process.stdout.write(JSON.stringify({ ...obj, transport }) + '\n');
}

socket.io.on('open', () => {
  out({ ev: 'open' });
  socket.io.engine.on('upgrade', (t) => out({ ev: 'upgrade', to: t.name }));
});
socket.io.on('reconnect', (attempt) => out({ ev: 'reconnect', attempt }));
socket.on('connect', () => out({ ev: 'connect', id: socket.id }));
socket.on('connect_error', (err) => out({ ev: 'connect_error', message: String(err && err.message) }));
socket.on('disconnect', (reason) => out({ ev: 'disconnect', reason }));
for (const name of ['connected', 'subscribed', 'unsubscribed', 'subscriptions', 'pong', 'error', 'price_update',
  'trade', 'candle', 'trading_signal', 'sentiment_update', 'feed_status',
  // the trading-dashboard profile's events
  'connection_status', 'subscription_confirmed', 'market_update', 'auth_error']) {
  socket.on(name, (data) => out({ ev: name, data }));
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const cmd = JSON.parse(line);
  if (cmd.exit) {
    socket.disconnect();
    process.exit(0);
  } else if (cmd.ack) {
    socket.emit(cmd.ack, cmd.data, (reply) => out({ ev: 'ack', event: cmd.ack, data: reply }));
  } else {
    socket.emit(cmd.emit, cmd.data);
  }
});

// The Vue client's plain-WebSocket service, as its documentation describes it:
// connectMarket / connectSignals / connectBinary, each a WebSocket to one
// stream that parses every message as JSON and hands it to a callback, with
// a text `ping` heartbeat every 30 s. In the browser `WebSocket` is global;
// here it is the `ws` package (the same API). The test passes the base URL
// (ws://host:port) as the first argument; each callback prints the message as
// one JSON line with the stream's name, which is what the test reads.
import WebSocket from 'ws';

const BASE = process.argv[2];

class TradingSystemWebSocket {
  constructor() {
    this.sockets = {};
  }

  open(name, path, callback) {
    const ws = new WebSocket(`${BASE}${path}`);
    ws.onopen = () => {
      // Heartbeat, as the client does every 30 s; the first one right away so the test sees its pong.
      ws.send('ping');
      ws.heartbeat = setInterval(() => ws.send('ping'), 30000);
    };
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === 'pong') {
        // Connection alive
        console.log(JSON.stringify({ stream: name, pong: true, message }));
        return;
      }
      callback(message);
    };
    ws.onclose = () => {
      clearInterval(ws.heartbeat);
      console.log(JSON.stringify({ stream: name, closed: true }));
    };
    this.sockets[name] = ws;
  }

  connectMarket(callback) { this.open('market', '/ws/market/stream', callback); }
  connectSignals(callback) { this.open('signals', '/ws/trading/signals/stream', callback); }
  connectBinary(callback) { this.open('binary', '/ws/trading/binary/stream', callback); }

  disconnectAll() {
    Object.values(this.sockets).forEach((ws) => ws.close());
  }
}

const tradingSystemWs = new TradingSystemWebSocket();
tradingSystemWs.connectMarket((message) => {
  // marketStore.updatePrice(message.symbol, message.data);
  console.log(JSON.stringify({ stream: 'market', message }));
});
tradingSystemWs.connectSignals((message) => {
  // analysisStore.updateSignal(message.symbol, message.data);
  console.log(JSON.stringify({ stream: 'signals', message }));
});
tradingSystemWs.connectBinary((message) => {
  // analysisStore.updateSentiment(message.data);
  console.log(JSON.stringify({ stream: 'binary', message }));
});

// Reference server for tickstream's benchmarks (scripts/bench.sh): the stack
// most teams would pick for "Redis pub/sub to browser WebSockets" — Node,
// socket.io 4 and ioredis — written the straightforward way, with no tuning
// beyond what the socket.io docs show.
//
//   psubscribe ticks:*  →  io.to(symbol).emit('price_update', tick)
//   client 'subscribe' {symbols:[...]}  →  join one room per symbol, reply 'subscribed'
//
// Environment: PORT (default 5022; 0 picks a free one), HOST (127.0.0.1),
// REDIS_URL (redis://127.0.0.1:6379). Prints one JSON line
// {"message":"Listening.","addr":"HOST:PORT"} once it accepts connections.
'use strict';

const http = require('http');
const { Server } = require('socket.io');
const Redis = require('ioredis');

const PORT = Number(process.env.PORT ?? 5022);
const HOST = process.env.HOST ?? '127.0.0.1';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const SYMBOL = /^[A-Z0-9._/-]{1,32}$/;

const httpServer = http.createServer((req, res) => {
  if (req.url === '/health') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: 'healthy', connections: io.engine.clientsCount }));
    return;
  }
  res.writeHead(404);
  res.end();
});

const io = new Server(httpServer, { cors: { origin: '*' } });

io.on('connection', (socket) => {
  socket.emit('connected', {
    client_id: socket.id,
    message: 'Connected to WebSocket Streaming Service',
  });
  socket.on('subscribe', (data) => {
    const symbols = (data && Array.isArray(data.symbols) ? data.symbols : [])
      .map((s) => String(s).toUpperCase());
    const bad = symbols.find((s) => !SYMBOL.test(s));
    if (bad !== undefined) {
      socket.emit('error', { code: 'invalid_symbol', message: `invalid symbol ${bad}` });
      return;
    }
    socket.join(symbols);
    socket.emit('subscribed', { symbols, message: `Subscribed to ${symbols.length} symbols` });
  });
  socket.on('unsubscribe', (data) => {
    const symbols = (data && Array.isArray(data.symbols) ? data.symbols : [])
      .map((s) => String(s).toUpperCase());
    for (const s of symbols) socket.leave(s);
    socket.emit('unsubscribed', { symbols, message: `Unsubscribed from ${symbols.length} symbols` });
  });
});

const sub = new Redis(REDIS_URL);
sub.on('error', (e) => console.error(JSON.stringify({ level: 'ERROR', message: 'Redis error.', error: String(e) })));
sub.psubscribe('ticks:*');
sub.on('pmessage', (_pattern, channel, message) => {
  let tick;
  try {
    tick = JSON.parse(message);
  } catch {
    return;
  }
  io.to(channel.slice('ticks:'.length)).emit('price_update', tick);
});

httpServer.listen(PORT, HOST, () => {
  const a = httpServer.address();
  console.log(JSON.stringify({ message: 'Listening.', addr: `${a.address}:${a.port}` }));
});

function shutdown() {
  io.close();
  sub.disconnect();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

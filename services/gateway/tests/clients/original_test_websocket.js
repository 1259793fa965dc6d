// test-websocket.js
const io = require('socket.io-client');

const socket = io('http://localhost:5021');

socket.on('connected', (data) => {
  console.log('✅ Connected:', data);

  // Subscribe to symbols
  socket.emit('subscribe', { symbols: ['BTCUSDT', 'ETHUSDT'] });
});

socket.on('subscribed', (data) => {
  console.log('✅ Subscribed:', data);
});

socket.on('price_update', (data) => {
  console.log('📊 Price Update:', data);
});

// Run: node test-websocket.js

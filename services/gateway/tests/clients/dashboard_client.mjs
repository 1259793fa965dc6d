import { io } from 'socket.io-client';

// Obtain token from login API
// (test change: the token the test minted, instead of the browser's localStorage)
const accessToken = process.env.DASHBOARD_TOKEN;

// Connect with authentication
const socket = io('http://localhost:5000', {
  auth: {
    token: accessToken
  },
  reconnection: true,
  reconnectionDelay: 1000,
  reconnectionDelayMax: 5000,
  reconnectionAttempts: 5
});

// Handle authentication errors
socket.on('auth_error', (data) => {
  console.error('Authentication failed:', data.error);
  
  if (data.error === 'Token expired') {
    // Refresh token and reconnect
    refreshTokenAndReconnect();
  }
});

// Handle successful connection
socket.on('connection_status', (data) => {
  console.log('Connected:', data.message);
  console.log('User ID:', data.user_id);
});

// Refresh token and reconnect
async function refreshTokenAndReconnect() {
  try {
    const response = await fetch('http://localhost:5000/api/auth/refresh', {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json'
      },
      body: JSON.stringify({
        refresh_token: process.env.DASHBOARD_REFRESH_TOKEN
      })
    });
    
    const data = await response.json();
    process.env.DASHBOARD_TOKEN = data.access_token;
    
    // Reconnect with new token
    socket.auth.token = data.access_token;
    socket.connect();
  } catch (error) {
    console.error('Token refresh failed:', error);
  }
}

socket.emit('subscribe', {
  symbols: ['BTC', 'ETH', 'ADA']
});

socket.on('subscription_confirmed', (data) => {
  console.log(`Subscribed to: ${data.symbols.join(', ')}`);
});

socket.on('market_update', (data) => {
  Object.keys(data).forEach(symbol => {
    const coin = data[symbol];
    console.log(`${symbol}: $${coin.price} (${coin.change_24h}%)`);
  });
});

socket.on('sentiment_update', (data) => {
  console.log(`Market Mood: ${data.market_mood}`);
  console.log(`Fear & Greed: ${data.market_fear_greed}`);
});

socket.on('trading_signal', (signal) => {
  console.log(`${signal.signal} ${signal.symbol} - Strength: ${signal.strength}`);
  console.log(`Reason: ${signal.reason}`);
});

// Test addition (observation only): report the end of a connection.
socket.on('disconnect', (reason) => {
  console.log('Disconnected:', reason);
});

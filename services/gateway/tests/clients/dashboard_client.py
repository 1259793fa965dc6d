import socketio
import requests
import time

# Socket.IO client
sio = socketio.Client()

# Login and get token
def login(username, password):
    """Login and retrieve access token"""
    # The only change to the client's code: the login call is replaced by the
    # token the test minted (DASHBOARD_TOKEN); there is no login API here.
    import os
    return os.environ['DASHBOARD_TOKEN'], None

# Event handlers
@sio.on('connection_status')
def on_connection_status(data):
    print(f"Connected: {data['message']}")
    print(f"User ID: {data.get('user_id')}")

@sio.on('market_update')
def on_market_update(data):
    print(f"Market Update: {data}")

@sio.on('sentiment_update')
def on_sentiment_update(data):
    print(f"Sentiment Update: {data}")

@sio.on('trading_signal')
def on_trading_signal(data):
    print(f"Trading Signal: {data}")

@sio.on('auth_error')
def on_auth_error(data):
    print(f"Authentication error: {data['error']}")
    sio.disconnect()

# Test addition (observation only): the snippet registers no handler for these.
@sio.on('subscription_confirmed')
def on_subscription_confirmed(data):
    print(f"Subscription confirmed: {data}")

@sio.event
def disconnect(reason=None):
    print("Disconnected")

# Connect with authentication
def connect_authenticated(username, password):
    """Connect to WebSocket with authentication"""
    try:
        # Get access token
        access_token, refresh_token = login(username, password)
        print(f"Login successful, connecting to WebSocket...")
        
        # Connect with token
        sio.connect('http://localhost:5000', auth={'token': access_token})
        
        # Subscribe to symbols
        sio.emit('subscribe', {'symbols': ['BTC', 'ETH', 'ADA']})
        
        # Keep connection alive
        sio.wait()
        
    except Exception as e:
        print(f"Error: {e}")

# Usage
if __name__ == '__main__':
    connect_authenticated('your_username', 'your_password')

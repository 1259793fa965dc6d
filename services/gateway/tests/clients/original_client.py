import socketio

sio = socketio.Client()

@sio.on('connected')
def on_connect(data):
    print('✅ Connected:', data)
    sio.emit('subscribe', {'symbols': ['BTCUSDT', 'ETHUSDT']})

@sio.on('subscribed')
def on_subscribed(data):
    print('✅ Subscribed:', data)

@sio.on('price_update')
def on_price_update(data):
    print('📊 Price Update:', data)

sio.connect('http://localhost:5021')
sio.wait()

"""A stock python-socketio client (default options) driven by the gateway's integration tests.

Usage: python sio_client.py URL
stdin: one JSON command per line, as for sio-client.js:
  {"emit": "subscribe", "data": {"symbols": ["BTCUSDT"]}}
  {"ack": "list", "data": null}
  {"exit": true}
stdout: one JSON object per line per event, each with the current transport.
env SIO_AUTH_TOKEN: sent as the CONNECT auth payload {"token": ...}; a refused
CONNECT prints {"ev": "connect_failed"} and exits 0.
"""
import json
import os
import sys
import threading

import socketio

sio = socketio.Client()
lock = threading.Lock()


def out(obj):
    try:
        transport = sio.transport()
    except Exception:  # noqa: BLE001 - not connected yet
        transport = None
    with lock:
        sys.stdout.write(json.dumps({**obj, "transport": transport}) + "\n")
        sys.stdout.flush()


@sio.event
def connect():
    out({"ev": "connect", "id": sio.get_sid()})


@sio.event
def connect_error(data):
    out({"ev": "connect_error", "message": str(data)})


@sio.event
def disconnect(reason=None):
    out({"ev": "disconnect", "reason": str(reason)})


def forward(name):
    sio.on(name, lambda data=None: out({"ev": name, "data": data}))


for event in ["connected", "subscribed", "unsubscribed", "subscriptions", "pong", "error", "price_update",
              "trade", "candle", "trading_signal", "sentiment_update", "feed_status"]:
    forward(event)


def main():
    token = os.environ.get("SIO_AUTH_TOKEN")
    try:
        sio.connect(sys.argv[1], auth={"token": token} if token else None)
    except socketio.exceptions.ConnectionError as e:
        out({"ev": "connect_failed", "message": str(e)})
        os._exit(0)  # the client's background threads would keep the process alive
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd.get("exit"):
            break
        if cmd.get("ack"):
            name = cmd["ack"]
            sio.emit(name, cmd.get("data"), callback=lambda *args, n=name: out({"ev": "ack", "event": n, "data": args[0] if args else None}))
        else:
            sio.emit(cmd["emit"], cmd.get("data"))
    sio.disconnect()


if __name__ == "__main__":
    main()

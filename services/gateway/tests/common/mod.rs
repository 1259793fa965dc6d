//! Helpers shared by the gateway's integration tests: a real redis-server, the
//! real `gateway` binary, and a tokio-tungstenite client.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod sio;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tickstream_testkit::{wait_until, RedisServer, Service};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single expected event may take.
pub const STEP: Duration = Duration::from_secs(10);

/// A WebSocket client connection.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A private Redis and a gateway bound to it.
pub struct Stack {
    pub redis: RedisServer,
    pub gateway: Service,
}

impl Stack {
    pub async fn start(extra_env: &[(&str, &str)]) -> Stack {
        Self::start_on(RedisServer::start().await.unwrap(), extra_env).await
    }

    /// A gateway on a Redis whose data survives a crash (append-only file), for crash tests.
    pub async fn start_persistent(extra_env: &[(&str, &str)]) -> Stack {
        Self::start_on(RedisServer::start_persistent().await.unwrap(), extra_env).await
    }

    async fn start_on(redis: RedisServer, extra_env: &[(&str, &str)]) -> Stack {
        let url = redis.url();
        let mut env = vec![("REDIS_URL", url.as_str())];
        env.extend_from_slice(extra_env);
        let gateway = Service::spawn("gateway", &env).await.unwrap();
        Stack { redis, gateway }
    }

    pub async fn ws(&self, path: &str) -> Ws {
        let (ws, _) = tokio_tungstenite::connect_async(self.gateway.ws_url(path))
            .await
            .unwrap();
        ws
    }

    pub async fn redis(&self) -> redis::aio::MultiplexedConnection {
        self.redis.client().await.unwrap()
    }

    /// Publishes a tick JSON on its channel (as an ingestor or third party would).
    pub async fn publish(&self, symbol: &str, seq: u64, price: f64) -> Value {
        let tick = tick_json(symbol, seq, price);
        let mut c = self.redis().await;
        let _: i64 = redis::cmd("PUBLISH")
            .arg(format!("ticks:{symbol}"))
            .arg(tick.to_string())
            .query_async(&mut c)
            .await
            .unwrap();
        tick
    }

    /// Stores a tick in the price cache.
    pub async fn cache(&self, symbol: &str, seq: u64, price: f64) -> Value {
        let tick = tick_json(symbol, seq, price);
        let mut c = self.redis().await;
        let _: () = redis::cmd("SET")
            .arg(format!("price:{symbol}"))
            .arg(tick.to_string())
            .query_async(&mut c)
            .await
            .unwrap();
        tick
    }

    /// Waits until the gateway holds exactly `n` Redis subscriptions to `symbol`'s channel.
    pub async fn wait_numsub(&self, symbol: &str, n: i64) {
        let channel = format!("ticks:{symbol}");
        let redis = &self.redis;
        wait_until(STEP, &format!("NUMSUB {channel} == {n}"), || {
            let channel = channel.clone();
            async move { matches!(redis.numsub(&channel).await, Ok(got) if got == n) }
        })
        .await
        .unwrap();
    }
}

pub fn tick_json(symbol: &str, seq: u64, price: f64) -> Value {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    json!({"symbol": symbol, "price": price, "volume": 10.5, "timestamp": now, "source": "test", "seq": seq})
}

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// The next frame other than ping/pong, within [`STEP`].
pub async fn next_frame(ws: &mut Ws) -> Message {
    loop {
        let msg = tokio::time::timeout(STEP, ws.next())
            .await
            .expect("timed out waiting for a frame")
            .expect("connection ended")
            .expect("websocket error");
        match msg {
            Message::Ping(_) | Message::Pong(_) => continue,
            other => return other,
        }
    }
}

/// Next text frame, skipping control frames.
pub async fn next_text(ws: &mut Ws) -> String {
    match next_frame(ws).await {
        Message::Text(t) => t.to_string(),
        other => panic!("unexpected frame {other:?}"),
    }
}

/// Next JSON text frame, skipping control frames.
pub async fn next_json(ws: &mut Ws) -> Value {
    serde_json::from_str(&next_text(ws).await).unwrap()
}

/// Next frame must be `event`; returns its whole JSON.
pub async fn expect_event(ws: &mut Ws, event: &str) -> Value {
    let v = next_json(ws).await;
    assert_eq!(v["event"], event, "expected {event}, got {v}");
    v
}

/// Next frame must be an `error` with `code`.
pub async fn expect_error(ws: &mut Ws, code: &str) -> Value {
    let v = expect_event(ws, "error").await;
    assert_eq!(v["data"]["code"], code, "{v}");
    assert!(
        v["data"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    v
}

/// Proves the connection still works: a ping with an id gets its pong.
pub async fn assert_usable(ws: &mut Ws, id: &str) {
    send(ws, json!({"event": "ping", "id": id})).await;
    let v = expect_event(ws, "pong").await;
    assert_eq!(v["id"], id);
}

/// Waits for the server's close frame and returns its code and reason.
pub async fn expect_close(ws: &mut Ws) -> (CloseCode, String) {
    loop {
        let msg = tokio::time::timeout(STEP, ws.next())
            .await
            .expect("timed out waiting for close");
        match msg {
            Some(Ok(Message::Close(Some(frame)))) => return (frame.code, frame.reason.to_string()),
            Some(Ok(Message::Close(None))) => return (CloseCode::Status, String::new()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("error before close frame: {e}"),
            None => panic!("stream ended without a close frame"),
        }
    }
}

/// Subscribes and consumes the `subscribed` reply.
pub async fn subscribe(ws: &mut Ws, symbols: &[&str]) -> Value {
    send(
        ws,
        json!({"event": "subscribe", "data": {"symbols": symbols}}),
    )
    .await;
    expect_event(ws, "subscribed").await
}

/// A WebSocket client to `url` (served at `addr`) whose socket has a 4 KiB
/// receive buffer, so a client that stops reading fills quickly.
pub async fn small_buffer_ws_at(addr: std::net::SocketAddr, url: &str) -> Ws {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let tcp = sock.connect(addr).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp))
        .await
        .unwrap();
    ws
}

/// The client-side port of a plain-TCP WebSocket, to find its socket in [`socket_entry`].
pub fn client_port(ws: &Ws) -> u16 {
    match ws.get_ref() {
        MaybeTlsStream::Plain(tcp) => tcp.local_addr().unwrap().port(),
        _ => unreachable!("plain TCP"),
    }
}

/// A TCP socket as the kernel lists it in /proc/net/tcp.
#[derive(Debug)]
pub struct SocketEntry {
    /// The TCP state, as the kernel's hex code (`01` established, `04` FIN_WAIT1, ...).
    pub state: String,
    /// Bytes sent but not acknowledged, or not sent yet.
    pub tx_queue: u64,
    /// Bytes received but not read.
    pub rx_queue: u64,
}

/// The kernel's entry for the TCP socket from `local_port` to `remote_port`
/// (IPv4, /proc/net/tcp), or `None` once it is gone.
pub fn socket_entry(local_port: u16, remote_port: u16) -> Option<SocketEntry> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let hex = |s: &str| u64::from_str_radix(s, 16).unwrap();
    let port = |addr: &str| hex(addr.rsplit(':').next().unwrap());
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() <= 4
            || port(cols[1]) != u64::from(local_port)
            || port(cols[2]) != u64::from(remote_port)
        {
            return None;
        }
        let (tx, rx) = cols[4].split_once(':').unwrap();
        Some(SocketEntry {
            state: cols[3].to_owned(),
            tx_queue: hex(tx),
            rx_queue: hex(rx),
        })
    })
}

/// The bytes the kernel holds for the peer on the socket from `local_port` to
/// `remote_port`: sent but not acknowledged, or not sent yet (`tx_queue`).
pub fn unacknowledged_bytes(local_port: u16, remote_port: u16) -> Option<u64> {
    socket_entry(local_port, remote_port).map(|e| e.tx_queue)
}

//! A WebSocket upstream on port 0 that a test scripts frame by frame, with an
//! optional Binance protocol mode ([`MockWs::start_binance`]) that keeps each
//! connection's stream set from its URL and live `SUBSCRIBE`/`UNSUBSCRIBE`/
//! `LIST_SUBSCRIPTIONS` messages, answers them like Binance, streams tickers
//! only for subscribed streams, records every control message with its arrival
//! time, and enforces Binance's limits (more than 5 incoming messages in a
//! second → close 1008; more than 1024 streams → error).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// Commands queued per connection; bounded because a test sends a handful.
const COMMAND_QUEUE: usize = 1024;
/// Binance: incoming messages (text, PING, PONG) allowed per second per connection.
pub const BINANCE_MAX_MESSAGES_PER_SECOND: usize = 5;
/// Binance: streams one connection may listen to.
pub const BINANCE_MAX_STREAMS: usize = 1024;
/// The methods Binance's stream API knows, as its error message lists them.
const BINANCE_METHODS: &str =
    "`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`";

/// How the Binance mode behaves.
#[derive(Debug, Clone)]
pub struct BinanceOptions {
    /// A raw `24hrTicker` payload (the documented fixture); `s` and `E` are
    /// replaced per stream and send time.
    pub ticker_template: String,
    /// When set, every subscribed `@ticker` stream gets a ticker this often (Binance: 1 s).
    pub tick_interval: Option<Duration>,
}

/// One control message a connection received, as Binance's limiter would count it.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlRecord {
    /// When it arrived.
    pub at: Instant,
    /// `method` (`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, ...).
    pub method: String,
    /// `params`, when they are strings.
    pub params: Vec<String>,
    /// `id` as sent.
    pub id: Option<serde_json::Value>,
}
/// How often waits re-check their condition.
const POLL: Duration = Duration::from_millis(10);

/// What happened to the mock's connections, in order, so tests can assert
/// make-before-break (the new connection opened before the old one closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnEvent {
    /// Connection `n` (0-based) finished its handshake.
    Opened(usize),
    /// Connection `n` ended (either side).
    Closed(usize),
}

/// Something a test asks one connection to do.
#[derive(Debug)]
enum Command {
    /// Send this frame.
    Send(Message),
    /// Close with a close frame.
    Close(CloseCode, String),
    /// Drop the TCP connection without a close frame.
    Drop,
}

/// One accepted connection's record.
#[derive(Debug)]
struct Conn {
    /// Request target of the handshake (`/stream?streams=...`, `/?token=...`).
    path: String,
    /// Text frames the client sent.
    received: Vec<String>,
    /// Payloads of the pongs the client sent.
    pongs: Vec<Vec<u8>>,
    /// Whether it is still open.
    open: bool,
    /// Where [`Command`]s for it go.
    tx: mpsc::Sender<Command>,
    /// Binance mode: the streams it listens to now, in subscription order.
    streams: Vec<String>,
    /// Binance mode: control messages received.
    controls: Vec<ControlRecord>,
    /// Binance mode: closed for sending more than 5 messages in a second.
    rate_limited: bool,
}

/// Shared between the accept loop, connection tasks and the test.
#[derive(Debug, Default)]
struct State {
    conns: Vec<Conn>,
    events: Vec<ConnEvent>,
    /// When a client text frame contains the needle, these frames are sent back.
    replies: Vec<(String, Vec<String>)>,
    /// Frames sent to every new connection right after the handshake.
    greeting: Vec<String>,
    /// While false, new TCP connections are dropped before the handshake (upstream down).
    refusing: bool,
    /// Speak Binance's stream protocol.
    binance: Option<BinanceOptions>,
}

/// A scripted WebSocket upstream; dropping it stops the server.
#[derive(Debug)]
pub struct MockWs {
    /// Where it listens.
    addr: std::net::SocketAddr,
    /// Everything the test inspects.
    state: Arc<Mutex<State>>,
    /// The accept loop, aborted on drop.
    task: JoinHandle<()>,
}

impl Drop for MockWs {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockWs {
    /// Binds 127.0.0.1:0 and starts accepting, so each test has its own upstream.
    pub async fn start() -> MockWs {
        Self::start_with(State::default()).await
    }

    /// Like [`start`](Self::start), speaking Binance's combined-stream protocol (see the module docs).
    pub async fn start_binance(options: BinanceOptions) -> MockWs {
        Self::start_with(State {
            binance: Some(options),
            ..State::default()
        })
        .await
    }

    async fn start_with(state: State) -> MockWs {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(state));
        let task = tokio::spawn(accept_loop(listener, state.clone()));
        MockWs { addr, state, task }
    }

    /// Binance mode: the streams connection `i` listens to now.
    pub fn subscriptions(&self, i: usize) -> Vec<String> {
        self.lock().conns[i].streams.clone()
    }

    /// Binance mode: `(connection, streams)` of every open connection, to assert the whole set.
    pub fn open_subscriptions(&self) -> Vec<(usize, Vec<String>)> {
        self.lock()
            .conns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.open)
            .map(|(i, c)| (i, c.streams.clone()))
            .collect()
    }

    /// Binance mode: control messages connection `i` received, with arrival times.
    pub fn controls(&self, i: usize) -> Vec<ControlRecord> {
        self.lock().conns[i].controls.clone()
    }

    /// Binance mode: connections closed for breaking the 5 messages/s limit.
    pub fn rate_limited(&self) -> Vec<usize> {
        self.lock()
            .conns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.rate_limited)
            .map(|(i, _)| i)
            .collect()
    }

    /// Binance mode: waits until the open connections' stream sets satisfy `pred`.
    pub async fn wait_subscriptions(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&[(usize, Vec<String>)]) -> bool,
    ) {
        self.wait(timeout, what, |s| {
            let open: Vec<(usize, Vec<String>)> = s
                .conns
                .iter()
                .enumerate()
                .filter(|(_, c)| c.open)
                .map(|(i, c)| (i, c.streams.clone()))
                .collect();
            pred(&open)
        })
        .await;
    }

    /// Binance mode: sends one ticker of `symbol` (`BNBBTC`) on every open
    /// connection subscribed to its stream; returns on how many.
    pub async fn push_ticker(&self, symbol: &str) -> usize {
        let stream = format!("{}@ticker", symbol.to_ascii_lowercase());
        let (template, targets) = {
            let s = self.lock();
            let Some(b) = &s.binance else {
                panic!("push_ticker needs MockWs::start_binance");
            };
            let targets: Vec<mpsc::Sender<Command>> = s
                .conns
                .iter()
                .filter(|c| c.open && c.streams.contains(&stream))
                .map(|c| c.tx.clone())
                .collect();
            (b.ticker_template.clone(), targets)
        };
        let frame = ticker_frame(&template, &stream);
        for tx in &targets {
            let _ = tx.send(Command::Send(Message::text(frame.clone()))).await;
        }
        targets.len()
    }

    /// `ws://127.0.0.1:PORT`, to hand to the ingestor as its `*_WS_URL`.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Answers any client frame containing `needle` with `frames`, as the provider acknowledges a subscribe.
    pub fn reply_to(&self, needle: &str, frames: Vec<String>) {
        self.lock().replies.push((needle.to_owned(), frames));
    }

    /// Sends `frames` on every new connection right after the handshake (a provider's greeting).
    pub fn greet(&self, frames: Vec<String>) {
        self.lock().greeting = frames;
    }

    /// While `true`, connection attempts fail (the upstream is down); existing ones are untouched.
    pub fn refuse(&self, refusing: bool) {
        self.lock().refusing = refusing;
    }

    /// How many connections completed the handshake so far.
    pub fn connections(&self) -> usize {
        self.lock().conns.len()
    }

    /// Open/close events in order.
    pub fn events(&self) -> Vec<ConnEvent> {
        self.lock().events.clone()
    }

    /// The handshake request target of connection `i`.
    pub fn path(&self, i: usize) -> String {
        self.lock().conns[i].path.clone()
    }

    /// Text frames connection `i` received from the client.
    pub fn received(&self, i: usize) -> Vec<String> {
        self.lock().conns[i].received.clone()
    }

    /// Whether connection `i` is still open.
    pub fn is_open(&self, i: usize) -> bool {
        self.lock().conns[i].open
    }

    /// Pong payloads connection `i` received.
    pub fn pongs(&self, i: usize) -> Vec<Vec<u8>> {
        self.lock().conns[i].pongs.clone()
    }

    /// Waits until at least `n` connections were accepted.
    pub async fn wait_connections(&self, n: usize, timeout: Duration) {
        self.wait(timeout, &format!("{n} connections"), |s| s.conns.len() >= n)
            .await;
    }

    /// Waits until connection `i` received a text frame containing `needle`, and returns it.
    pub async fn wait_received(&self, i: usize, needle: &str, timeout: Duration) -> String {
        self.wait(timeout, &format!("conn {i} to receive {needle:?}"), |s| {
            s.conns
                .get(i)
                .is_some_and(|c| c.received.iter().any(|r| r.contains(needle)))
        })
        .await;
        self.received(i)
            .into_iter()
            .find(|r| r.contains(needle))
            .unwrap()
    }

    /// Waits until connection `i` answered a ping with `payload`.
    pub async fn wait_pong(&self, i: usize, payload: &[u8], timeout: Duration) {
        self.wait(timeout, &format!("conn {i} to pong {payload:?}"), |s| {
            s.conns
                .get(i)
                .is_some_and(|c| c.pongs.iter().any(|p| p == payload))
        })
        .await;
    }

    /// Waits until connection `i` is closed.
    pub async fn wait_closed(&self, i: usize, timeout: Duration) {
        self.wait(timeout, &format!("conn {i} closed"), |s| {
            s.conns.get(i).is_some_and(|c| !c.open)
        })
        .await;
    }

    /// Sends a text frame on connection `i`.
    pub async fn send(&self, i: usize, text: &str) {
        self.command(i, Command::Send(Message::text(text))).await;
    }

    /// Sends a text frame on the newest connection.
    pub async fn send_latest(&self, text: &str) {
        let i = self
            .connections()
            .checked_sub(1)
            .expect("no connection yet");
        self.send(i, text).await;
    }

    /// Sends a server ping with `payload` on connection `i` (Binance pings every 20 s).
    pub async fn ping(&self, i: usize, payload: &[u8]) {
        self.command(i, Command::Send(Message::Ping(payload.to_vec().into())))
            .await;
    }

    /// Closes connection `i` with a close frame (a server-side cut).
    pub async fn close(&self, i: usize, code: CloseCode, reason: &str) {
        self.command(i, Command::Close(code, reason.to_owned()))
            .await;
    }

    /// Drops connection `i`'s TCP stream without a close frame (a network failure).
    pub async fn drop_conn(&self, i: usize) {
        self.command(i, Command::Drop).await;
    }

    async fn command(&self, i: usize, cmd: Command) {
        let tx = self.lock().conns[i].tx.clone();
        // A closed connection ignores commands, like a dead socket.
        let _ = tx.send(cmd).await;
    }

    async fn wait(&self, timeout: Duration, what: &str, f: impl Fn(&State) -> bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if f(&self.lock()) {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                let s = self.lock();
                let summary: Vec<_> = s
                    .conns
                    .iter()
                    .map(|c| (c.path.clone(), c.open, c.received.clone()))
                    .collect();
                panic!("mock upstream: timed out after {timeout:?} waiting for {what}; connections: {summary:?}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<Mutex<State>>) {
    while let Ok((stream, _)) = listener.accept().await {
        if state.lock().unwrap().refusing {
            drop(stream);
            continue;
        }
        tokio::spawn(serve(stream, state.clone()));
    }
}

async fn serve(stream: TcpStream, state: Arc<Mutex<State>>) {
    let path = Arc::new(Mutex::new(String::new()));
    let seen = path.clone();
    // The signature is tungstenite's; its error type is not ours to shrink.
    #[allow(clippy::result_large_err)]
    let callback = move |req: &Request, resp: Response| {
        *seen.lock().unwrap() = req.uri().to_string();
        Ok(resp)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let (tx, mut rx) = mpsc::channel(COMMAND_QUEUE);
    let path = path.lock().unwrap().clone();
    let streams = url_streams(&path);
    let (index, greeting, binance) = {
        let mut s = state.lock().unwrap();
        let index = s.conns.len();
        let streams = if s.binance.is_some() {
            streams
        } else {
            Vec::new()
        };
        s.conns.push(Conn {
            path,
            received: Vec::new(),
            pongs: Vec::new(),
            open: true,
            tx,
            streams,
            controls: Vec::new(),
            rate_limited: false,
        });
        s.events.push(ConnEvent::Opened(index));
        (index, s.greeting.clone(), s.binance.clone())
    };
    for frame in greeting {
        if ws.send(Message::text(frame)).await.is_err() {
            break;
        }
    }
    if binance.is_some() && state.lock().unwrap().conns[index].streams.len() > BINANCE_MAX_STREAMS {
        let _ = ws
            .close(Some(CloseFrame {
                code: CloseCode::Policy,
                reason: "Too many streams".into(),
            }))
            .await;
        finish(&state, index);
        return;
    }
    let mut ticks = binance
        .as_ref()
        .and_then(|b| b.tick_interval)
        .map(tokio::time::interval);
    // Arrival times of the incoming messages of the last second (Binance mode).
    let mut recent: VecDeque<Instant> = VecDeque::new();
    loop {
        if binance.is_some() && over_limit(&mut recent) {
            state.lock().unwrap().conns[index].rate_limited = true;
            let _ = ws
                .close(Some(CloseFrame {
                    code: CloseCode::Policy,
                    reason: "Too many requests".into(),
                }))
                .await;
            break;
        }
        tokio::select! {
            _ = async { match ticks.as_mut() { Some(i) => { i.tick().await; } None => std::future::pending().await } } => {
                let (template, streams) = {
                    let s = state.lock().unwrap();
                    (binance.as_ref().map(|b| b.ticker_template.clone()).unwrap_or_default(), s.conns[index].streams.clone())
                };
                let mut failed = false;
                // Tickers only on `@ticker` streams: an `@trade` stream carries trades, never a 24hr ticker.
                for stream in streams.iter().filter(|s| s.ends_with("@ticker")) {
                    if ws.send(Message::text(ticker_frame(&template, stream))).await.is_err() { failed = true; break; }
                }
                if failed { break; }
            }
            cmd = rx.recv() => match cmd {
                Some(Command::Send(m)) => {
                    if ws.send(m).await.is_err() { break; }
                }
                Some(Command::Close(code, reason)) => {
                    let _ = ws.close(Some(CloseFrame { code, reason: reason.into() })).await;
                }
                Some(Command::Drop) | None => break,
            },
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let text = t.to_string();
                    recent.push_back(Instant::now());
                    if binance.is_some() && over_limit(&mut recent) {
                        // Cut before answering, as Binance does.
                        continue;
                    }
                    let replies: Vec<String> = {
                        let mut s = state.lock().unwrap();
                        s.conns[index].received.push(text.clone());
                        let mut out: Vec<String> = s.replies.iter().filter(|(n, _)| text.contains(n.as_str())).flat_map(|(_, f)| f.clone()).collect();
                        if s.binance.is_some() {
                            out.extend(binance_control(&mut s.conns[index], &text));
                        }
                        out
                    };
                    for r in replies {
                        if ws.send(Message::text(r)).await.is_err() { break; }
                    }
                }
                Some(Ok(Message::Pong(p))) => {
                    recent.push_back(Instant::now());
                    state.lock().unwrap().conns[index].pongs.push(p.to_vec());
                }
                Some(Ok(Message::Ping(_))) => recent.push_back(Instant::now()),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    finish(&state, index);
}

/// Marks connection `index` closed.
fn finish(state: &Mutex<State>, index: usize) {
    let mut s = state.lock().unwrap();
    s.conns[index].open = false;
    s.events.push(ConnEvent::Closed(index));
}

/// Forgets arrivals older than a second; true when more than Binance's 5 remain.
fn over_limit(recent: &mut VecDeque<Instant>) -> bool {
    let now = Instant::now();
    while recent
        .front()
        .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
    {
        recent.pop_front();
    }
    recent.len() > BINANCE_MAX_MESSAGES_PER_SECOND
}

/// The streams named in a combined-stream URL (`/stream?streams=a@ticker/b@ticker`).
pub fn url_streams(path: &str) -> Vec<String> {
    let Some((_, query)) = path.split_once('?') else {
        return Vec::new();
    };
    query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("streams="))
        .flat_map(|v| v.split('/'))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A combined-stream ticker frame of `stream` from the raw payload `template`, stamped now.
pub fn ticker_frame(template: &str, stream: &str) -> String {
    let mut data: serde_json::Value = serde_json::from_str(template).unwrap();
    let symbol = stream
        .split('@')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    data["s"] = symbol.into();
    data["E"] = now.into();
    serde_json::json!({"stream": stream, "data": data}).to_string()
}

/// Applies one Binance control message to `conn` and returns the reply, shaped
/// as Binance's docs show (`{"result":null,"id":N}`, `{"code":..,"msg":..}`,
/// `{"error":{"code":..,"msg":..},"id":N}`). Binance does not document the text
/// of the over-1024-streams refusal; the mock uses the documented error shape.
fn binance_control(conn: &mut Conn, text: &str) -> Option<String> {
    use serde_json::{json, Value};
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return Some(json!({"code": 3, "msg": format!("Invalid JSON: {e}")}).to_string()),
    };
    let Some(method) = v.get("method").and_then(Value::as_str) else {
        return Some(
            json!({"code": 2, "msg": "Invalid request: missing field `method`"}).to_string(),
        );
    };
    let params: Vec<String> = v
        .get("params")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let id = v.get("id").cloned();
    conn.controls.push(ControlRecord {
        at: Instant::now(),
        method: method.to_owned(),
        params: params.clone(),
        id: id.clone(),
    });
    let id = match id {
        Some(id @ (Value::Null | Value::String(_))) => id,
        Some(Value::Number(n)) if n.is_u64() => Value::Number(n),
        _ => return Some(
            json!({"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"})
                .to_string(),
        ),
    };
    let reply = match method {
        "SUBSCRIBE" => {
            let fresh: Vec<String> = params
                .into_iter()
                .filter(|p| !conn.streams.contains(p))
                .collect();
            if conn.streams.len() + fresh.len() > BINANCE_MAX_STREAMS {
                json!({"error": {"code": 2, "msg": format!("Invalid request: too many streams, at most {BINANCE_MAX_STREAMS} per connection")}, "id": id})
            } else {
                for p in fresh {
                    if !conn.streams.contains(&p) {
                        conn.streams.push(p);
                    }
                }
                json!({"result": null, "id": id})
            }
        }
        "UNSUBSCRIBE" => {
            conn.streams.retain(|s| !params.contains(s));
            json!({"result": null, "id": id})
        }
        "LIST_SUBSCRIPTIONS" => json!({"result": conn.streams, "id": id}),
        other => {
            json!({"error": {"code": 2, "msg": format!("Invalid request: unknown variant `{other}`, expected one of {BINANCE_METHODS}")}, "id": id})
        }
    };
    Some(reply.to_string())
}

//! A WebSocket upstream on port 0 that a test scripts frame by frame.

use std::sync::{Arc, Mutex};
use std::time::Duration;

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
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let task = tokio::spawn(accept_loop(listener, state.clone()));
        MockWs { addr, state, task }
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
    let (index, greeting) = {
        let mut s = state.lock().unwrap();
        let index = s.conns.len();
        s.conns.push(Conn {
            path: path.lock().unwrap().clone(),
            received: Vec::new(),
            pongs: Vec::new(),
            open: true,
            tx,
        });
        s.events.push(ConnEvent::Opened(index));
        (index, s.greeting.clone())
    };
    for frame in greeting {
        if ws.send(Message::text(frame)).await.is_err() {
            break;
        }
    }
    loop {
        tokio::select! {
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
                    let replies: Vec<String> = {
                        let mut s = state.lock().unwrap();
                        s.conns[index].received.push(text.clone());
                        s.replies.iter().filter(|(n, _)| text.contains(n.as_str())).flat_map(|(_, f)| f.clone()).collect()
                    };
                    for r in replies {
                        if ws.send(Message::text(r)).await.is_err() { break; }
                    }
                }
                Some(Ok(Message::Pong(p))) => state.lock().unwrap().conns[index].pongs.push(p.to_vec()),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let mut s = state.lock().unwrap();
    s.conns[index].open = false;
    s.events.push(ConnEvent::Closed(index));
}

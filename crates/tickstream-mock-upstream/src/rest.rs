//! A minimal HTTP/1.1 upstream on port 0 with scripted responses per path.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Largest request head read; our clients send a few hundred bytes.
const MAX_HEAD: usize = 16 * 1024;
/// How often waits re-check their condition.
const POLL: Duration = Duration::from_millis(10);

/// One scripted HTTP response.
#[derive(Debug, Clone)]
pub struct MockResponse {
    /// Status code.
    pub status: u16,
    /// Extra headers (e.g. `Retry-After`).
    pub headers: Vec<(String, String)>,
    /// JSON body.
    pub body: String,
}

impl MockResponse {
    /// 200 with a JSON body.
    pub fn ok(body: impl Into<String>) -> Self {
        Self {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// 429 (or 418) with `Retry-After: secs`, as Binance and others rate limit.
    pub fn rate_limited(status: u16, retry_after_secs: u64) -> Self {
        Self {
            status,
            headers: vec![("Retry-After".into(), retry_after_secs.to_string())],
            body: r#"{"code":-1003,"msg":"Too many requests."}"#.into(),
        }
    }
}

/// Responses of one path prefix: one-shot ones first, then the default.
#[derive(Debug)]
struct Route {
    prefix: String,
    once: VecDeque<MockResponse>,
    default: Option<MockResponse>,
}

#[derive(Debug, Default)]
struct State {
    routes: Vec<Route>,
    /// Request targets (`/api/v3/ticker/24hr?symbols=...`) and arrival times, in order.
    requests: Vec<(String, Instant)>,
}

/// A scripted REST upstream; dropping it stops the server.
#[derive(Debug)]
pub struct MockRest {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for MockRest {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockRest {
    /// Binds 127.0.0.1:0 and starts serving, so each test has its own upstream.
    pub async fn start() -> MockRest {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let s = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, s.clone()));
            }
        });
        MockRest { addr, state, task }
    }

    /// `http://127.0.0.1:PORT`, to hand to the ingestor as its `*_REST_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers every request whose path starts with `prefix` with `response` (after any one-shots).
    pub fn set(&self, prefix: &str, response: MockResponse) {
        let mut s = self.state.lock().unwrap();
        match s.routes.iter_mut().find(|r| r.prefix == prefix) {
            Some(r) => r.default = Some(response),
            None => s.routes.push(Route {
                prefix: prefix.to_owned(),
                once: VecDeque::new(),
                default: Some(response),
            }),
        }
    }

    /// Answers the next request under `prefix` with `response`, once.
    pub fn push(&self, prefix: &str, response: MockResponse) {
        let mut s = self.state.lock().unwrap();
        match s.routes.iter_mut().find(|r| r.prefix == prefix) {
            Some(r) => r.once.push_back(response),
            None => s.routes.push(Route {
                prefix: prefix.to_owned(),
                once: VecDeque::from([response]),
                default: None,
            }),
        }
    }

    /// Every request target so far.
    pub fn requests(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .requests
            .iter()
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// Arrival times of the requests under `prefix`, to check that a `Retry-After` was honoured.
    pub fn request_times(&self, prefix: &str) -> Vec<Instant> {
        self.state
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|(t, _)| t.starts_with(prefix))
            .map(|(_, at)| *at)
            .collect()
    }

    /// How many requests started with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.starts_with(prefix))
            .count()
    }

    /// Waits until at least `n` requests under `prefix` arrived.
    pub async fn wait_requests(&self, prefix: &str, n: usize, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.count(prefix) < n {
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "mock REST: timed out after {timeout:?} waiting for {n} requests under {prefix}; got {:?}",
                    self.requests()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > MAX_HEAD {
            return;
        }
    }
    let text = String::from_utf8_lossy(&head);
    let target = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("/")
        .to_owned();
    let response = {
        let mut s = state.lock().unwrap();
        s.requests.push((target.clone(), Instant::now()));
        s.routes
            .iter_mut()
            .filter(|r| target.starts_with(&r.prefix))
            .max_by_key(|r| r.prefix.len())
            .and_then(|r| r.once.pop_front().or_else(|| r.default.clone()))
    }
    .unwrap_or(MockResponse {
        status: 404,
        headers: Vec::new(),
        body: r#"{"error":"not found"}"#.into(),
    });
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        response.status,
        reason(response.status),
        response.body.len()
    );
    for (k, v) in &response.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&response.body);
    let _ = stream.write_all(out.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        404 => "Not Found",
        418 => "I'm a teapot",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        _ => "Status",
    }
}

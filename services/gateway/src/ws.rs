//! The native WebSocket endpoint `/ws`: one task per connection.
//!
//! Each connection owns a bounded queue fed by the [`Hub`]; its task
//! multiplexes that queue, the client's frames, server pings and the shutdown
//! signal. Everything it writes goes through one `Session`, so frames of one
//! connection never interleave.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, Session};
use serde_json::Value;
use tickstream_model::{Symbol, Tick};
use tokio::sync::mpsc;

use crate::hub::{ClientId, Hub, Outbound};
use crate::protocol::{self, Action, ClientError, ErrorCode};
use crate::state::AppState;

/// How long a snapshot's seq guards against duplicate live frames queued before it.
const SNAPSHOT_GUARD: Duration = Duration::from_secs(5);
/// Frames written per wake-up before the task checks other events again.
const WRITE_BATCH: usize = 64;

/// `?symbols=A,B` subscribes at connect.
#[derive(Debug, serde::Deserialize)]
struct WsQuery {
    symbols: Option<String>,
}

/// Upgrades to WebSocket and spawns the connection task.
pub async fn route(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> actix_web::Result<HttpResponse> {
    let initial = web::Query::<WsQuery>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.into_inner().symbols);
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let g = &state.cfg.gateway;
    let stream = stream
        .max_frame_size(g.max_frame_bytes)
        .aggregate_continuations()
        .max_continuation_size(g.max_frame_bytes);
    let state = state.into_inner();
    actix_web::rt::spawn(async move {
        let (client, client_id) = state.hub.new_client();
        let (tx, rx) = mpsc::channel(state.cfg.gateway.queue_capacity);
        let conn = Connection {
            bucket: TokenBucket::new(state.cfg.gateway.requests_per_second),
            state,
            session,
            client,
            tx,
            subscribed: HashSet::new(),
            snapshot_seq: HashMap::new(),
            violations: 0,
        };
        conn.run(client_id, stream, rx, initial).await;
    });
    Ok(response)
}

/// Refills `rate` tokens per second up to `rate`; one token per subscribe/unsubscribe.
struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: u32) -> Self {
        Self {
            rate: f64::from(rate),
            tokens: f64::from(rate),
            last: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.rate);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Why the loop ended: a close frame to send, or nothing (client already gone).
type Exit = Option<CloseReason>;

/// One client's state, owned by its task.
struct Connection {
    state: std::sync::Arc<AppState>,
    /// Write half; every frame to this client goes through it.
    session: Session,
    /// Hub id.
    client: ClientId,
    /// Sender half of the bounded queue; cloned into the hub per subscription.
    tx: mpsc::Sender<Outbound>,
    /// Symbols this client holds; frames for others (queued before an unsubscribe) are skipped.
    subscribed: HashSet<Symbol>,
    /// Seq of the snapshot sent per symbol, to skip older live frames queued meanwhile.
    snapshot_seq: HashMap<Symbol, (u64, Instant)>,
    /// Limit breaches in a row; past the configured maximum the client is closed (1008).
    violations: u32,
    /// subscribe/unsubscribe rate limit.
    bucket: TokenBucket,
}

impl Connection {
    async fn run(
        mut self,
        client_id: String,
        mut stream: actix_ws::AggregatedMessageStream,
        mut rx: mpsc::Receiver<Outbound>,
        initial: Option<String>,
    ) {
        let metrics = self.state.metrics.clone();
        metrics.connections.with_label_values(&["native"]).inc();
        metrics
            .connections_opened
            .with_label_values(&["native"])
            .inc();
        let exit = self.serve(&client_id, &mut stream, &mut rx, initial).await;
        let emptied = self
            .state
            .hub
            .unsubscribe(self.client, self.subscribed.iter());
        for sym in emptied {
            self.state.subscriber.sync(sym.as_str()).await;
        }
        metrics.connections.with_label_values(&["native"]).dec();
        if let Some(reason) = exit {
            let _ = self.session.close(Some(reason)).await;
        }
    }

    async fn serve(
        &mut self,
        client_id: &str,
        stream: &mut actix_ws::AggregatedMessageStream,
        rx: &mut mpsc::Receiver<Outbound>,
        initial: Option<String>,
    ) -> Exit {
        if self
            .session
            .text(protocol::connected(client_id))
            .await
            .is_err()
        {
            return None;
        }
        if let Some(raw) = initial {
            match Symbol::parse_list(&raw) {
                Ok(list) if list.len() > self.state.cfg.gateway.max_symbols_per_connection => {
                    let e = ClientError::new(
                        ErrorCode::TooManySymbols,
                        format!(
                            "the limit is {}",
                            self.state.cfg.gateway.max_symbols_per_connection
                        ),
                    );
                    if !self.send_error(e).await {
                        return None;
                    }
                }
                Ok(list) if !list.is_empty() => {
                    if let Err(exit) = self.subscribe(list, None).await {
                        return exit;
                    }
                }
                Ok(_) => {}
                Err((bad, e)) => {
                    let e = ClientError::new(ErrorCode::InvalidSymbol, format!("{bad:?}: {e}"));
                    if !self.send_error(e).await {
                        return None;
                    }
                }
            }
        }

        let g = &self.state.cfg.gateway;
        let idle_timeout = Duration::from_secs(g.idle_timeout_secs);
        let mut ping = tokio::time::interval(Duration::from_secs(g.ping_interval_secs));
        ping.reset();
        let mut last_seen = Instant::now();
        let mut shutdown = self.state.shutdown.clone();
        loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => {
                    self.state.metrics.disconnects.with_label_values(&["shutdown"]).inc();
                    return Some(CloseReason { code: CloseCode::Away, description: Some("server shutting down".to_owned()) });
                }
                msg = stream.recv() => {
                    last_seen = Instant::now();
                    match msg {
                        None => return None,
                        Some(Ok(AggregatedMessage::Text(text))) => {
                            if let Err(exit) = self.on_text(&text).await {
                                return exit;
                            }
                        }
                        Some(Ok(AggregatedMessage::Binary(_))) => {
                            let e = ClientError::new(ErrorCode::BadJson, "binary frames are not supported; send JSON text frames");
                            if let Err(exit) = self.reject(e).await {
                                return exit;
                            }
                        }
                        Some(Ok(AggregatedMessage::Ping(payload))) => {
                            if self.session.pong(&payload).await.is_err() {
                                return None;
                            }
                        }
                        Some(Ok(AggregatedMessage::Pong(_))) => {}
                        Some(Ok(AggregatedMessage::Close(_))) => {
                            return Some(CloseReason { code: CloseCode::Normal, description: None });
                        }
                        Some(Err(e)) => return Some(self.protocol_failure(e).await),
                    }
                }
                frame = rx.recv() => {
                    let frame = frame?;
                    if !self.write_frames(frame, rx).await {
                        return None;
                    }
                }
                _ = ping.tick() => {
                    if last_seen.elapsed() > idle_timeout {
                        self.state.metrics.disconnects.with_label_values(&["idle"]).inc();
                        return Some(CloseReason { code: CloseCode::Policy, description: Some("idle timeout".to_owned()) });
                    }
                    if self.session.ping(b"").await.is_err() {
                        return None;
                    }
                }
            }
        }
    }

    /// Writes `first` and whatever else is already queued (up to a batch); false when the client is gone.
    async fn write_frames(&mut self, first: Outbound, rx: &mut mpsc::Receiver<Outbound>) -> bool {
        let mut next = Some(first);
        let mut written = 0;
        while let Some(frame) = next.take() {
            if self.wants(&frame) && self.session.text(frame.native.clone()).await.is_err() {
                return false;
            }
            written += 1;
            if written < WRITE_BATCH {
                next = rx.try_recv().ok();
            }
        }
        true
    }

    /// Whether a queued frame should still go out: subscribed, and newer than the snapshot sent.
    fn wants(&mut self, frame: &Outbound) -> bool {
        if !self.subscribed.contains(&frame.symbol) {
            return false;
        }
        if self.snapshot_seq.is_empty() {
            return true;
        }
        match self.snapshot_seq.get(&frame.symbol) {
            Some(&(seq, at)) if frame.seq <= seq && at.elapsed() < SNAPSHOT_GUARD => false,
            Some(_) => {
                self.snapshot_seq.remove(&frame.symbol);
                true
            }
            None => true,
        }
    }

    /// Handles one text frame; `Err` carries the exit when the connection must end.
    async fn on_text(&mut self, text: &str) -> Result<(), Exit> {
        let g = &self.state.cfg.gateway;
        if text.len() > g.max_message_bytes {
            let e = ClientError::new(
                ErrorCode::TooLarge,
                format!(
                    "message of {} bytes exceeds the limit of {} bytes",
                    text.len(),
                    g.max_message_bytes
                ),
            );
            return self.reject(e).await;
        }
        let request = match protocol::parse(text, g.max_symbols_per_connection) {
            Ok(r) => r,
            Err(e) => return self.reject(e).await,
        };
        let id = request.id;
        match request.action {
            Action::Subscribe(symbols) => {
                if !self.bucket.take() {
                    return self.reject(rate_limited(id)).await;
                }
                self.subscribe(symbols, id).await
            }
            Action::Unsubscribe(symbols) => {
                if !self.bucket.take() {
                    return self.reject(rate_limited(id)).await;
                }
                self.unsubscribe(symbols, id).await
            }
            Action::List => {
                let mut list: Vec<Symbol> = self.subscribed.iter().cloned().collect();
                list.sort();
                self.send(protocol::subscriptions(&list, id.as_ref())).await
            }
            Action::Ping => self.send(protocol::pong(id.as_ref())).await,
        }
    }

    async fn subscribe(&mut self, symbols: Vec<Symbol>, id: Option<Value>) -> Result<(), Exit> {
        let max = self.state.cfg.gateway.max_symbols_per_connection;
        let new: Vec<Symbol> = symbols
            .iter()
            .filter(|s| !self.subscribed.contains(*s))
            .cloned()
            .collect();
        if self.subscribed.len() + new.len() > max {
            let mut e = ClientError::new(
                ErrorCode::TooManySymbols,
                format!(
                    "holding {} symbols, {} more would exceed the limit of {max}",
                    self.subscribed.len(),
                    new.len()
                ),
            );
            e.id = id;
            return self.reject(e).await;
        }
        self.violations = 0;
        let first = self.state.hub.subscribe(self.client, &self.tx, &new);
        for sym in &first {
            self.state.subscriber.sync(sym.as_str()).await;
        }
        self.subscribed.extend(new.iter().cloned());
        self.send(protocol::subscribed(&symbols, id.as_ref()))
            .await?;
        self.send_snapshots(&new).await
    }

    /// Sends the cached latest tick of each symbol, before any live frame.
    async fn send_snapshots(&mut self, symbols: &[Symbol]) -> Result<(), Exit> {
        if symbols.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = symbols.iter().map(Symbol::as_str).collect();
        let cached = match self.state.redis.latest_many(&names).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "Price cache unavailable; subscribing without snapshots.");
                return Ok(());
            }
        };
        for (sym, raw) in symbols.iter().zip(cached) {
            let Some(raw) = raw else { continue };
            match Tick::from_json(&raw) {
                Ok(tick) if tick.symbol == *sym => {
                    let frame = Hub::encode(&tick);
                    self.snapshot_seq
                        .insert(sym.clone(), (tick.seq, Instant::now()));
                    if self.session.text(frame.native).await.is_err() {
                        return Err(None);
                    }
                }
                _ => tracing::debug!(symbol = %sym, "Skipping invalid cached tick."),
            }
        }
        Ok(())
    }

    async fn unsubscribe(&mut self, symbols: Vec<Symbol>, id: Option<Value>) -> Result<(), Exit> {
        self.violations = 0;
        let held: Vec<Symbol> = symbols
            .iter()
            .filter(|s| self.subscribed.remove(*s))
            .cloned()
            .collect();
        for sym in &held {
            self.snapshot_seq.remove(sym);
        }
        let emptied = self.state.hub.unsubscribe(self.client, held.iter());
        for sym in &emptied {
            self.state.subscriber.sync(sym.as_str()).await;
        }
        self.send(protocol::unsubscribed(&symbols, id.as_ref()))
            .await
    }

    async fn send(&mut self, text: String) -> Result<(), Exit> {
        self.session.text(text).await.map_err(|_| None)
    }

    async fn send_error(&mut self, e: ClientError) -> bool {
        self.state
            .metrics
            .client_errors
            .with_label_values(&[e.code.as_str()])
            .inc();
        self.session.text(protocol::error(&e)).await.is_ok()
    }

    /// Answers a bad request; closes with 1008 after too many in a row.
    async fn reject(&mut self, e: ClientError) -> Result<(), Exit> {
        if !self.send_error(e).await {
            return Err(None);
        }
        self.violations += 1;
        if self.violations > self.state.cfg.gateway.max_violations {
            self.state
                .metrics
                .disconnects
                .with_label_values(&["abuse"])
                .inc();
            return Err(Some(CloseReason {
                code: CloseCode::Policy,
                description: Some("too many invalid requests".to_owned()),
            }));
        }
        Ok(())
    }

    /// Frame-level failures (oversized, bad UTF-8, bad framing) end the connection with a reason.
    async fn protocol_failure(&mut self, e: actix_ws::ProtocolError) -> CloseReason {
        use actix_ws::ProtocolError as P;
        match e {
            P::Overflow => {
                self.state
                    .metrics
                    .disconnects
                    .with_label_values(&["frame_too_large"])
                    .inc();
                let limit = self.state.cfg.gateway.max_frame_bytes;
                let err =
                    ClientError::new(ErrorCode::TooLarge, format!("frame exceeds {limit} bytes"));
                let _ = self.send_error(err).await;
                CloseReason {
                    code: CloseCode::Size,
                    description: Some("frame too large".to_owned()),
                }
            }
            other => {
                self.state
                    .metrics
                    .disconnects
                    .with_label_values(&["protocol_error"])
                    .inc();
                tracing::debug!(error = %other, "WebSocket protocol error.");
                let code = if other.to_string().to_ascii_lowercase().contains("utf") {
                    CloseCode::Invalid
                } else {
                    CloseCode::Protocol
                };
                CloseReason {
                    code,
                    description: Some("protocol error".to_owned()),
                }
            }
        }
    }
}

fn rate_limited(id: Option<Value>) -> ClientError {
    let mut e = ClientError::new(
        ErrorCode::RateLimited,
        "too many subscribe/unsubscribe requests; slow down",
    );
    e.id = id;
    e
}

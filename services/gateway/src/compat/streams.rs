//! The Vue plain-WebSocket client's streams: `/ws/market/stream`, `/ws/trading/signals/stream`, `/ws/trading/binary/stream`.
//!
//! Each is a push-only WebSocket: the connection is subscribed at connect
//! (market and signals: every symbol of `gateway.compat.stream_symbols`,
//! names through the alias table; binary: `sentiment`) and receives
//! `{"type": ..., "symbol": ..., "data": {...}}` JSON text frames. The only
//! thing a client sends is its heartbeat: a text `ping` or `{"type":"ping"}`
//! is answered `{"type":"pong","timestamp":...}`. Admission (origin, JWT when
//! on, connection limits), the session, slow-consumer rule and metrics are the
//! `/ws` endpoint's (counted under `protocol="native"`). Mappings are in
//! `docs/compatibility.md`.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason};
use serde_json::{json, Value};
use tickstream_model::Symbol;

use super::aliases;
use crate::client::limits::TokenPolicy;
use crate::client::request;
use crate::client::session::{drain_ticks, ClientSession, Protocol, TickSink};
use crate::client::slow::{self, WriteFailed};
use crate::fanout::{Outbound, TickQueue};
use crate::state::AppState;
use crate::vocabulary::Disconnect;
use crate::websocket::read::WsIn;
use crate::websocket::write::{self, WsOut};

/// Frames taken from the queue per wake-up before the task looks at its other events.
const WRITE_BATCH: usize = 64;

/// Which of the three streams a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// `/ws/market/stream`: `market_update` per symbol, conflated to `market_stream_interval_ms`.
    Market,
    /// `/ws/trading/signals/stream`: `signal_update` per analytics signal.
    Signals,
    /// `/ws/trading/binary/stream`: the market mood as a two-way sentiment.
    Binary,
}

/// `GET /ws/market/stream`.
pub async fn market(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> actix_web::Result<HttpResponse> {
    route(req, body, state, Stream::Market)
}

/// `GET /ws/trading/signals/stream`.
pub async fn signals(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> actix_web::Result<HttpResponse> {
    route(req, body, state, Stream::Signals)
}

/// `GET /ws/trading/binary/stream`.
pub async fn binary(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> actix_web::Result<HttpResponse> {
    route(req, body, state, Stream::Binary)
}

/// Admits (403/401/429 before any upgrade, as `/ws`), upgrades, and spawns the connection task.
fn route(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    stream: Stream,
) -> actix_web::Result<HttpResponse> {
    let admission = match state.gate.admit(&req, TokenPolicy::Required) {
        Ok(a) => a,
        Err(refusal) => return Ok(refusal.response()),
    };
    let (response, out, inbound) = write::handle(&req, body, state.cfg.gateway.max_frame_bytes)?;
    let state = state.into_inner();
    actix_web::rt::spawn(async move {
        let (mut client, rx) = ClientSession::open(state, Protocol::Native, Some(admission.permit));
        client.set_grant(admission.grant.and_then(|g| g.symbols));
        let conn = Conn {
            out,
            client,
            stream,
            names: HashMap::new(),
            latest: HashMap::new(),
            pending: Vec::new(),
            batch: Vec::new(),
        };
        Box::pin(conn.run(inbound, rx)).await;
    });
    Ok(response)
}

/// Why the loop ended: a close frame to send, or nothing (client already gone).
type Exit = Option<CloseReason>;

/// The exit for a failed write: nothing to send to a closed socket, 1008 to a slow consumer.
fn exit(e: WriteFailed) -> Exit {
    match e {
        WriteFailed::Closed => None,
        WriteFailed::SlowConsumer => Some(Disconnect::SlowConsumer.close_reason()),
    }
}

/// One stream connection.
struct Conn {
    /// Write half; every frame goes through it under the slow-consumer rule.
    out: WsOut,
    /// Subscriptions, limits and the hub registration, shared logic with `/ws`.
    client: ClientSession,
    /// Which stream, deciding the subscription and the message shape.
    stream: Stream,
    /// Feed symbol → the configured names that stand for it (payloads carry these).
    names: HashMap<Symbol, Vec<String>>,
    /// Market stream with a period: the newest tick JSON per feed symbol, sent at the next period.
    latest: HashMap<Symbol, String>,
    /// Reused buffer for the drain's conflated items.
    pending: Vec<Outbound>,
    /// Encoded frames about to be written together.
    batch: Vec<Bytes>,
}

impl Conn {
    async fn run(mut self, mut inbound: WsIn, mut rx: TickQueue) {
        let exit = self.serve(&mut inbound, &mut rx).await;
        let Conn { out, client, .. } = self;
        Box::pin(client.close()).await;
        if let Some(reason) = exit {
            let _ = out.close(Some(reason));
        }
    }

    /// Subscribes what the stream carries; a refusal (e.g. a token that grants none of it) closes with 1008.
    async fn subscribe(&mut self) -> Result<(), Exit> {
        let state = self.client.state().clone();
        let cfg = &state.cfg.gateway.compat;
        let served = state.served.get(&state.redis).await;
        let aliases = aliases::Resolver::new(cfg, &served);
        for raw in &cfg.stream_symbols {
            if let Ok(sym) = aliases.resolve(raw) {
                self.names.entry(sym).or_default().push(raw.clone());
            }
        }
        let feeds: Vec<&str> = self.names.keys().map(Symbol::as_str).collect();
        let data = match self.stream {
            Stream::Market => json!({ "symbols": feeds }),
            Stream::Signals => {
                let channels: Vec<String> = feeds.iter().map(|s| format!("signals:{s}")).collect();
                json!({ "channels": channels })
            }
            Stream::Binary => json!({ "channels": ["sentiment"] }),
        };
        let max = state.cfg.gateway.max_symbols_per_connection;
        let response = match request::parse_action("subscribe", &data, max) {
            Ok(action) => self.client.handle(action).await,
            Err(e) => self.client.error(e),
        };
        if response.event != "subscribed" {
            let text = json!({"type": "error", "data": response.data}).to_string();
            let _ = self.write_text(&text).await;
            return Err(Some(CloseReason {
                code: CloseCode::Policy,
                description: Some("subscription refused".to_owned()),
            }));
        }
        for frame in &response.snapshots {
            self.queue_item(frame);
        }
        self.flush_batch().await
    }

    async fn serve(&mut self, inbound: &mut WsIn, rx: &mut TickQueue) -> Exit {
        if let Err(exit) = self.subscribe().await {
            return exit;
        }
        let state = self.client.state().clone();
        let g = &state.cfg.gateway;
        let idle_timeout = Duration::from_secs(g.idle_timeout_secs);
        let period = Duration::from_millis(g.compat.market_stream_interval_ms);
        let conflate = self.stream == Stream::Market && !period.is_zero();
        let mut ping = tokio::time::interval(Duration::from_secs(g.ping_interval_secs));
        ping.reset();
        let mut market = tokio::time::interval(period.max(Duration::from_millis(1)));
        market.reset();
        let mut last_seen = tokio::time::Instant::now();
        let mut shutdown = state.shutdown.clone();
        let outlet = self.client.outlet().clone();
        loop {
            let drain_pending = outlet.is_conflating() && rx.is_empty();
            tokio::select! {
                biased;
                _ = shutdown.changed() => {
                    return Some(closing(&state, Disconnect::Shutdown));
                }
                msg = inbound.recv() => {
                    last_seen = tokio::time::Instant::now();
                    match msg {
                        None => return None,
                        Some(Ok(AggregatedMessage::Text(text))) => {
                            if let Err(exit) = self.on_text(&text).await {
                                return exit;
                            }
                        }
                        Some(Ok(AggregatedMessage::Binary(_) | AggregatedMessage::Pong(_))) => {}
                        Some(Ok(AggregatedMessage::Ping(payload))) => {
                            if let Err(e) = self.client.write(self.out.pong(&payload)).await {
                                return exit(e);
                            }
                        }
                        Some(Ok(AggregatedMessage::Close(_))) => {
                            return Some(CloseReason { code: CloseCode::Normal, description: None });
                        }
                        Some(Err(e)) => {
                            if crate::websocket::upgrade::is_stall(&e) {
                                slow::slow_consumer(&outlet, &state.metrics);
                                return Some(Disconnect::SlowConsumer.close_reason());
                            }
                            return Some(closing(&state, Disconnect::ProtocolError));
                        }
                    }
                }
                frame = rx.recv() => {
                    let frame = frame?;
                    if let Err(exit) = drain_ticks(self, Some(frame), rx).await {
                        return exit;
                    }
                }
                () = std::future::ready(()), if drain_pending => {
                    if let Err(exit) = drain_ticks(self, None, rx).await {
                        return exit;
                    }
                }
                _ = market.tick(), if conflate => {
                    if let Err(exit) = self.send_market().await {
                        return exit;
                    }
                }
                _ = ping.tick() => {
                    if last_seen.elapsed() > idle_timeout {
                        return Some(closing(&state, Disconnect::Idle));
                    }
                    if let Err(e) = self.client.write(self.out.ping(b"")).await {
                        return exit(e);
                    }
                }
            }
        }
    }

    /// The heartbeat: `ping` or `{"type":"ping"}` → `{"type":"pong"}`; anything else is ignored (push-only streams).
    async fn on_text(&mut self, text: &str) -> Result<(), Exit> {
        let t = text.trim();
        let is_ping = t.eq_ignore_ascii_case("ping")
            || serde_json::from_str::<Value>(t)
                .is_ok_and(|v| v.get("type").and_then(Value::as_str) == Some("ping"));
        if is_ping {
            let pong = json!({"type": "pong", "timestamp": now()}).to_string();
            return self.write_text(&pong).await;
        }
        Ok(())
    }

    async fn write_text(&mut self, text: &str) -> Result<(), Exit> {
        let frame = write::encode(actix_http::ws::OpCode::Text, text.as_bytes());
        self.client.write(self.out.frame(frame)).await.map_err(exit)
    }

    /// Sends each symbol's newest tick held since the last period.
    async fn send_market(&mut self) -> Result<(), Exit> {
        let held: Vec<(Symbol, String)> = self.latest.drain().collect();
        for (sym, data) in held {
            self.push_market(&sym, &data);
        }
        self.flush_batch().await
    }

    /// Encodes the stream's frames for one item (ticks: held instead while conflating).
    fn queue_item(&mut self, frame: &crate::fanout::Publication) {
        let sym = frame.channel.symbol().and_then(|s| Symbol::parse(s).ok());
        match (self.stream, frame.channel.spec().name, sym) {
            (Stream::Market, "ticks", Some(sym)) => {
                let period = self
                    .client
                    .state()
                    .cfg
                    .gateway
                    .compat
                    .market_stream_interval_ms;
                if period == 0 {
                    self.push_market(&sym, frame.data());
                } else {
                    let slot = self.latest.entry(sym).or_default();
                    slot.clear();
                    slot.push_str(frame.data());
                }
            }
            (Stream::Signals, "signals", Some(sym)) => {
                let Ok(mut v) = serde_json::from_str::<Value>(frame.data()) else {
                    return;
                };
                for name in self.names_of(&sym) {
                    if let Value::Object(obj) = &mut v {
                        obj.insert("symbol".to_owned(), Value::from(name.clone()));
                    }
                    let msg = json!({"type": "signal_update", "symbol": name, "data": v});
                    self.push(&msg);
                }
            }
            (Stream::Binary, "sentiment", _) => {
                if let Ok(v) = serde_json::from_str::<Value>(frame.data()) {
                    let msg = json!({"type": "binary_update", "data": binary_sentiment(&v)});
                    self.push(&msg);
                }
            }
            _ => {}
        }
    }

    /// One `market_update` per name of `sym`, the tick's fields with the name as `symbol`.
    fn push_market(&mut self, sym: &Symbol, data: &str) {
        let Ok(mut v) = serde_json::from_str::<Value>(data) else {
            return;
        };
        for name in self.names_of(sym) {
            if let Value::Object(obj) = &mut v {
                obj.insert("symbol".to_owned(), Value::from(name.clone()));
            }
            let msg = json!({"type": "market_update", "symbol": name, "data": v});
            self.push(&msg);
        }
    }

    /// The configured names standing for `sym` (the symbol itself if none).
    fn names_of(&self, sym: &Symbol) -> Vec<String> {
        self.names
            .get(sym)
            .cloned()
            .unwrap_or_else(|| vec![sym.as_str().to_owned()])
    }

    /// Encodes one message into the batch.
    fn push(&mut self, msg: &Value) {
        let text = msg.to_string();
        self.batch
            .push(write::encode(actix_http::ws::OpCode::Text, text.as_bytes()));
    }

    /// Writes the batch; blocked past the slow-consumer timeout ends the connection with 1008.
    async fn flush_batch(&mut self) -> Result<(), Exit> {
        let Self {
            out, client, batch, ..
        } = self;
        client.write_batch(out, batch).await.map_err(exit)
    }
}

/// Items reach the socket as this stream's frames, under the session's filter and slow-consumer rule.
impl TickSink for Conn {
    type End = Exit;
    const MAX_TAKEN: usize = WRITE_BATCH;

    fn session(&mut self) -> &mut ClientSession {
        &mut self.client
    }

    fn pending(&mut self) -> &mut Vec<Outbound> {
        &mut self.pending
    }

    fn queue(&mut self, frame: &Outbound) -> bool {
        self.queue_item(frame);
        self.batch.len() >= WRITE_BATCH
    }

    async fn flush(&mut self) -> Result<(), Exit> {
        self.flush_batch().await
    }

    fn slow_consumer() -> Exit {
        Some(Disconnect::SlowConsumer.close_reason())
    }
}

/// The analytics mood as the client's two-way sentiment: `BULLISH` when the
/// fear & greed index is at least 50, else `BEARISH`; with its confidence.
pub fn binary_sentiment(v: &Value) -> Value {
    let index = v.get("market_fear_greed").and_then(Value::as_f64);
    let bullish = index.is_some_and(|i| i >= 50.0);
    json!({
        "sentiment": if bullish { "BULLISH" } else { "BEARISH" },
        "direction": if bullish { "UP" } else { "DOWN" },
        "market_fear_greed": index,
        "confidence": v.get("confidence").cloned().unwrap_or(Value::Null),
        "market_mood": v.get("market_mood").cloned().unwrap_or(Value::Null),
        "timestamp": v.get("timestamp").cloned().unwrap_or(Value::Null),
    })
}

/// Counts a disconnect decided here and returns its close frame.
fn closing(state: &AppState, d: Disconnect) -> CloseReason {
    state
        .metrics
        .disconnects
        .with_label_values(&[d.label()])
        .inc();
    d.close_reason()
}

/// Now as an ISO 8601 UTC timestamp.
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_sentiment_splits_at_fifty() {
        let up = binary_sentiment(&json!({"market_fear_greed": 50, "confidence": 0.5}));
        assert_eq!(
            (&up["sentiment"], &up["direction"]),
            (&json!("BULLISH"), &json!("UP"))
        );
        let down = binary_sentiment(&json!({"market_fear_greed": 49}));
        assert_eq!(down["sentiment"], "BEARISH");
        assert_eq!(binary_sentiment(&json!({}))["sentiment"], "BEARISH");
    }
}

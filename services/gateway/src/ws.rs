//! The native WebSocket endpoint `/ws`: one task per connection.
//!
//! Each connection owns a bounded queue fed by the [`Hub`](crate::hub::Hub); its task
//! multiplexes that queue, the client's frames, server pings and the shutdown
//! signal. Everything it writes goes through one `Session`, so frames of one
//! connection never interleave. Subscriptions, limits and snapshots are the
//! protocol-independent [`ClientSession`]; this file is only the native framing.

use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, Session};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::hub::Outbound;
use crate::protocol::{self, ClientError, ErrorCode};
use crate::session::{ClientSession, Protocol, Response};
use crate::state::AppState;

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
        let (client, rx) = ClientSession::open(state, Protocol::Native);
        let conn = Connection { session, client };
        conn.run(stream, rx, initial).await;
    });
    Ok(response)
}

/// Why the loop ended: a close frame to send, or nothing (client already gone).
type Exit = Option<CloseReason>;

/// One native client: its socket and its protocol-independent session.
struct Connection {
    /// Write half; every frame to this client goes through it.
    session: Session,
    /// Subscriptions, limits and snapshots (shared logic with Socket.IO).
    client: ClientSession,
}

impl Connection {
    async fn run(
        mut self,
        mut stream: actix_ws::AggregatedMessageStream,
        mut rx: mpsc::Receiver<Outbound>,
        initial: Option<String>,
    ) {
        let exit = self.serve(&mut stream, &mut rx, initial).await;
        let Connection { session, client } = self;
        client.close().await;
        if let Some(reason) = exit {
            let _ = session.close(Some(reason)).await;
        }
    }

    async fn serve(
        &mut self,
        stream: &mut actix_ws::AggregatedMessageStream,
        rx: &mut mpsc::Receiver<Outbound>,
        initial: Option<String>,
    ) -> Exit {
        let hello = protocol::connected(self.client.client_id());
        if self.session.text(hello).await.is_err() {
            return None;
        }
        if let Some(raw) = initial {
            if let Some(response) = self.client.subscribe_initial(&raw).await {
                if let Err(exit) = self.respond(response, None).await {
                    return exit;
                }
            }
        }

        let state = self.client.state().clone();
        let g = &state.cfg.gateway;
        let idle_timeout = Duration::from_secs(g.idle_timeout_secs);
        let mut ping = tokio::time::interval(Duration::from_secs(g.ping_interval_secs));
        ping.reset();
        let mut last_seen = Instant::now();
        let mut shutdown = state.shutdown.clone();
        loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => {
                    state.metrics.disconnects.with_label_values(&["shutdown"]).inc();
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
                            let response = self.client.reject(e);
                            if let Err(exit) = self.respond(response, None).await {
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
                        state.metrics.disconnects.with_label_values(&["idle"]).inc();
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
            if self.client.wants(&frame) && self.session.text(frame.native.clone()).await.is_err() {
                return false;
            }
            written += 1;
            if written < WRITE_BATCH {
                next = rx.try_recv().ok();
            }
        }
        true
    }

    /// Handles one text frame; `Err` carries the exit when the connection must end.
    async fn on_text(&mut self, text: &str) -> Result<(), Exit> {
        let g = &self.client.state().cfg.gateway;
        if text.len() > g.max_message_bytes {
            let e = ClientError::new(
                ErrorCode::TooLarge,
                format!(
                    "message of {} bytes exceeds the limit of {} bytes",
                    text.len(),
                    g.max_message_bytes
                ),
            );
            let response = self.client.reject(e);
            return self.respond(response, None).await;
        }
        let (response, id) = match protocol::parse(text, g.max_symbols_per_connection) {
            Ok(request) => (self.client.handle(request.action).await, request.id),
            Err(mut e) => {
                let id = e.id.take();
                (self.client.reject(e), id)
            }
        };
        self.respond(response, id).await
    }

    /// Writes a response (reply, then snapshots) in native framing; closes with 1008 on abuse.
    async fn respond(&mut self, response: Response, id: Option<Value>) -> Result<(), Exit> {
        let reply = protocol::frame(response.event, response.data, id.as_ref());
        if self.session.text(reply).await.is_err() {
            return Err(None);
        }
        for frame in response.snapshots {
            if self.session.text(frame.native).await.is_err() {
                return Err(None);
            }
        }
        if response.abuse {
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
                let state = self.client.state();
                state
                    .metrics
                    .disconnects
                    .with_label_values(&["frame_too_large"])
                    .inc();
                let limit = state.cfg.gateway.max_frame_bytes;
                let err =
                    ClientError::new(ErrorCode::TooLarge, format!("frame exceeds {limit} bytes"));
                let response = self.client.error(err);
                let _ = self.respond(response, None).await;
                CloseReason {
                    code: CloseCode::Size,
                    description: Some("frame too large".to_owned()),
                }
            }
            other => {
                self.client
                    .state()
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

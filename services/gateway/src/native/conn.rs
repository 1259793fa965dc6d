//! The native WebSocket endpoint `/ws`: one task per connection.
//!
//! Each connection owns a bounded queue fed by the [`Hub`](crate::fanout::Hub); its task
//! multiplexes that queue, the client's frames, server pings and the shutdown
//! signal. Everything it writes goes through one [`WsOut`] and everything it
//! reads comes from one [`WsIn`], so frames of one connection never
//! interleave. Subscriptions, limits and snapshots are the
//! protocol-independent [`ClientSession`]; this file is only the native framing.
//!
//! Flow control: the queue is an [`Outlet`](crate::fanout::Outlet) that
//! conflates when full; once the queue is empty the task writes the pending
//! newest-per-symbol ticks. A client behind for `slow_consumer_timeout_ms`
//! (or whose socket write blocks that long) is closed with 1008 `slow consumer`.

use std::time::{Duration, Instant};

use crate::client::limits::TokenPolicy;
use crate::client::sleep_until_some;
use crate::client::slow::{self, WriteFailed};
use crate::fanout::TickQueue;
use crate::vocabulary::Disconnect;

use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason};
use serde_json::Value;

use super::frame;
use crate::client::request::{ClientError, ErrorCode};
use crate::client::session::{drain_ticks, ClientSession, Protocol, Response, TickSink};
use crate::fanout::Outbound;
use crate::state::AppState;
use crate::websocket::read::WsIn;
use crate::websocket::write::{self, WsOut};

/// Ticks written per wake-up before the task checks other events again.
const WRITE_BATCH: usize = 64;

/// How long a close frame may wait for a client that does not read before the socket is just dropped.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// `?symbols=A,B` and/or `?channels=trades:A,sentiment` subscribe at connect.
#[derive(Debug, Default, serde::Deserialize)]
struct WsQuery {
    symbols: Option<String>,
    channels: Option<String>,
}

/// Checks origin, token and connection limits (403/401/429 before any upgrade), upgrades, and spawns the connection task.
pub async fn route(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> actix_web::Result<HttpResponse> {
    let initial = web::Query::<WsQuery>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let admission = match state.gate.admit(&req, TokenPolicy::Required) {
        Ok(a) => a,
        Err(refusal) => return Ok(refusal.response()),
    };
    let (response, out, stream) = write::handle(&req, body, state.cfg.gateway.max_frame_bytes)?;
    let state = state.into_inner();
    let (mut client, rx) = ClientSession::open(state, Protocol::Native, Some(admission.permit));
    client.set_grant(admission.grant.and_then(|g| g.symbols));
    let conn = Connection {
        out,
        client,
        pending: Vec::new(),
        batch: Vec::new(),
    };
    // Spawned as is: a wrapping `async move` block would keep its own copy of every
    // captured value for the connection's whole life (memory per client).
    actix_web::rt::spawn(conn.run(stream, rx, initial));
    Ok(response)
}

/// The close frame of a slow consumer (1008 `slow consumer`).
fn slow_close() -> CloseReason {
    Disconnect::SlowConsumer.close_reason()
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

/// Why the loop ended: a close frame to send, or nothing (client already gone).
type Exit = Option<CloseReason>;

/// The exit for a failed write: nothing to send to a closed socket, 1008 to a slow consumer.
fn exit(e: WriteFailed) -> Exit {
    match e {
        WriteFailed::Closed => None,
        WriteFailed::SlowConsumer => Some(slow_close()),
    }
}

/// One native client: its socket and its protocol-independent session.
struct Connection {
    /// Write half; every frame to this client goes through it, ticks as their shared pre-encoded frames.
    out: WsOut,
    /// Subscriptions, limits and snapshots (shared logic with Socket.IO).
    client: ClientSession,
    /// Reused buffer for conflated and rate-capped ticks about to be written.
    pending: Vec<Outbound>,
    /// Reused buffer of encoded frames handed to the socket together.
    batch: Vec<Bytes>,
}

impl Connection {
    async fn run(mut self, mut stream: WsIn, mut rx: TickQueue, initial: WsQuery) {
        let exit = self.serve(&mut stream, &mut rx, initial).await;
        let Connection { out, client, .. } = self;
        Box::pin(client.close()).await;
        if let Some(reason) = exit {
            let _ = out.close(Some(reason));
        }
    }

    async fn serve(&mut self, stream: &mut WsIn, rx: &mut TickQueue, initial: WsQuery) -> Exit {
        let hello = frame::connected(self.client.client_id());
        if let Err(exit) = Box::pin(self.write(hello.into())).await {
            return exit;
        }
        let initial = self
            .client
            .subscribe_initial(initial.symbols.as_deref(), initial.channels.as_deref());
        if let Some(response) = Box::pin(initial).await {
            if let Err(exit) = Box::pin(self.respond(response, None)).await {
                return exit;
            }
        }

        let state = self.client.state().clone();
        let g = &state.cfg.gateway;
        let idle_timeout = Duration::from_secs(g.idle_timeout_secs);
        let mut ping = tokio::time::interval(Duration::from_secs(g.ping_interval_secs));
        ping.reset();
        let mut last_seen = Instant::now();
        let mut shutdown = state.shutdown.clone();
        // Made once: a fresh `changed()` per pass would register with (and leave) the watch on every tick.
        let mut shutdown = std::pin::pin!(shutdown.changed());
        let outlet = self.client.outlet().clone();
        loop {
            // A lock-free look each pass; the `shutdown` branch is only polled when nothing else is ready.
            if state.shutdown.has_changed().unwrap_or(true) {
                return Some(closing(&state, Disconnect::Shutdown));
            }
            // Queue drained while conflating: the pending newest ticks go out before anything newer.
            let drain_pending = outlet.is_conflating() && rx.is_empty();
            let release_at = self
                .client
                .next_release()
                .map(tokio::time::Instant::from_std);
            tokio::select! {
                biased;
                msg = stream.recv() => {
                    last_seen = Instant::now();
                    match msg {
                        None => return None,
                        Some(Ok(AggregatedMessage::Text(text))) => {
                            // Boxed, like every rare path: keeps the per-connection task small (memory per idle client).
                            if let Err(exit) = Box::pin(self.on_text(&text)).await {
                                return exit;
                            }
                        }
                        Some(Ok(AggregatedMessage::Binary(_))) => {
                            let e = ClientError::new(ErrorCode::BadJson, "binary frames are not supported; send JSON text frames");
                            let response = self.client.reject(e);
                            if let Err(exit) = Box::pin(self.respond(response, None)).await {
                                return exit;
                            }
                        }
                        Some(Ok(AggregatedMessage::Ping(payload))) => {
                            if let Err(e) = Box::pin(self.client.write(self.out.pong(&payload))).await {
                                return exit(e);
                            }
                        }
                        Some(Ok(AggregatedMessage::Pong(_))) => {}
                        Some(Ok(AggregatedMessage::Close(_))) => {
                            return Some(CloseReason { code: CloseCode::Normal, description: None });
                        }
                        Some(Err(e)) => return Some(Box::pin(self.protocol_failure(e)).await),
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
                () = sleep_until_some(release_at), if release_at.is_some() => {
                    // Rare paths (rate caps, pings, pongs) box their writes: the task keeps only the tick path's state.
                    let mut due = std::mem::take(&mut self.pending);
                    self.client.release_due(&mut due);
                    for frame in due.drain(..) {
                        if let Err(exit) = Box::pin(self.write_frame(frame.ws().clone())).await {
                            return exit;
                        }
                    }
                    self.pending = due;
                }
                // Last: polled only when the task is about to sleep (the check above catches a shutdown while busy).
                _ = &mut shutdown => {
                    return Some(closing(&state, Disconnect::Shutdown));
                }
                _ = ping.tick() => {
                    if last_seen.elapsed() > idle_timeout {
                        return Some(closing(&state, Disconnect::Idle));
                    }
                    if let Err(e) = Box::pin(self.client.write(self.out.ping(b""))).await {
                        return exit(e);
                    }
                }
            }
        }
    }

    /// Writes one text frame (a reply); see [`Connection::write_frame`].
    async fn write(&mut self, text: bytestring::ByteString) -> Result<(), Exit> {
        self.write_frame(write::encode(actix_http::ws::OpCode::Text, text.as_bytes()))
            .await
    }

    /// Writes one encoded frame; a write blocked past the slow-consumer timeout ends the connection with 1008.
    async fn write_frame(&mut self, frame: Bytes) -> Result<(), Exit> {
        self.client.write(self.out.frame(frame)).await.map_err(exit)
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
        let (response, id) = match frame::parse(text, g.max_symbols_per_connection) {
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
        let reply = frame::frame(response.event, response.data, id.as_ref());
        self.write(reply.into()).await?;
        for frame in response.snapshots {
            self.write_frame(frame.ws().clone()).await?;
        }
        if response.abuse {
            // Already counted by the session when it flagged the abuse.
            return Err(Some(Disconnect::Abuse.close_reason()));
        }
        Ok(())
    }

    /// Frame-level failures (oversized, bad UTF-8, bad framing) end the connection with a reason.
    async fn protocol_failure(&mut self, e: actix_ws::ProtocolError) -> CloseReason {
        use actix_ws::ProtocolError as P;
        match e {
            P::Overflow => {
                let state = self.client.state().clone();
                let close = closing(&state, Disconnect::FrameTooLarge);
                let limit = state.cfg.gateway.max_frame_bytes;
                let err =
                    ClientError::new(ErrorCode::TooLarge, format!("frame exceeds {limit} bytes"));
                let response = self.client.error(err);
                let _ = self.respond(response, None).await;
                close
            }
            other if crate::websocket::upgrade::is_stall(&other) => {
                slow::slow_consumer(self.client.outlet(), &self.client.state().metrics);
                slow_close()
            }
            other => {
                tracing::debug!(error = %other, "WebSocket protocol error.");
                let d = if other.to_string().to_ascii_lowercase().contains("utf") {
                    Disconnect::InvalidUtf8
                } else {
                    Disconnect::ProtocolError
                };
                closing(self.client.state(), d)
            }
        }
    }
}

/// Ticks go out as their shared pre-encoded WebSocket frames, at most a batch per wake-up.
impl TickSink for Connection {
    type End = Exit;
    const MAX_TAKEN: usize = WRITE_BATCH;

    fn session(&mut self) -> &mut ClientSession {
        &mut self.client
    }

    fn pending(&mut self) -> &mut Vec<Outbound> {
        &mut self.pending
    }

    fn queue(&mut self, frame: &Outbound) -> bool {
        self.batch.push(frame.ws().clone());
        // The batch never outgrows MAX_TAKEN: written once the drain stops taking.
        false
    }

    /// Hands every batched frame to the socket; blocked past the slow-consumer timeout ends the connection with 1008.
    async fn flush(&mut self) -> Result<(), Exit> {
        let Self {
            out, client, batch, ..
        } = self;
        client.write_batch(out, batch).await.map_err(exit)
    }

    fn slow_consumer() -> Exit {
        Some(slow_close())
    }
}

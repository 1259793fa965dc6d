//! One task per Engine.IO session: long-polling, the upgrade, WebSocket, pings, Socket.IO on `/`.
//!
//! The task owns everything about its client (the [`ClientSession`], the
//! tick queue, the transport), so no lock is shared with other clients. HTTP
//! handlers talk to it through a small bounded [`Command`] queue: a GET hands
//! over a reply slot (at most one pending; a second concurrent GET gets 400
//! and closes the session, as in the reference server), a POST hands over
//! its body, an upgrade hands over the probed WebSocket.
//!
//! Backpressure: while polling, ticks are taken from the bounded hub queue
//! only while a GET is waiting, so for a client that polls slowly the
//! [`Outlet`](crate::fanout::Outlet) conflates to the newest tick per symbol
//! rather than growing memory here; one behind for
//! `slow_consumer_timeout_ms` is closed (WebSocket: 1008 `slow consumer`;
//! polling: the session ends and a pending GET gets a close packet).
//! Control packets (replies, pings) wait in a small outbox; past
//! [`OUTBOX_LIMIT`] packets the session is closed as abusive.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Bytes;
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, ProtocolError};
use bytestring::ByteString;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::packet::{self, EioPacket, PacketError, SioKind};
use super::registry::{Command, EioError, Entry, WsConn, WsInbound};
use super::{EioConfig, COMMAND_QUEUE};
use crate::client::limits::Admission;
use crate::client::request::{self, ClientError, ErrorCode};
use crate::client::session::{drain_ticks, TickSink};
use crate::client::session::{ClientSession, Protocol, Response};
use crate::client::sleep_until_some;
use crate::client::slow::{self, WriteFailed};
use crate::compat::aliases::Resolver;
use crate::compat::dashboard_profile::{self as dashboard, Absorbed, Dashboard};
use crate::compat::SocketIoProfile;
use crate::config::Config;
use crate::fanout::TickQueue;
use crate::fanout::{Outbound, Publication};
use crate::state::AppState;
use crate::vocabulary::Disconnect;
use crate::websocket::read::WsIn;
use crate::websocket::write::WsOut;

/// Control packets a polling client may leave unread before it is closed.
pub const OUTBOX_LIMIT: usize = 1024;
/// Ticks put into one polling response or taken per wake-up on WebSocket.
const TICK_BATCH: usize = 256;
/// Tick frames handed to a WebSocket together (one lock, one wake-up of its writer); as `/ws`.
const WS_WRITE_BATCH: usize = 64;

/// Frames buffered between a WebSocket's reader task and its session; a full buffer stops reading (TCP backpressure).
const WS_INBOUND_QUEUE: usize = 16;

/// The session's timings from the gateway config.
pub fn eio_config(cfg: &Config) -> EioConfig {
    let g = &cfg.gateway;
    EioConfig {
        ping_interval: Duration::from_millis(g.socketio_ping_interval_ms),
        ping_timeout: Duration::from_millis(g.socketio_ping_timeout_ms),
        max_payload: g.socketio_max_payload_bytes,
        upgrade_timeout: Duration::from_millis(g.socketio_upgrade_timeout_ms),
    }
}

/// Starts the reader task of a WebSocket that upgrades a polling session, and returns the connection.
///
/// The read half is `!Send` and lives on the worker thread that accepted
/// it, while the session task it joins may live on another worker; the
/// reader forwards frames through a bounded channel so either side can run
/// anywhere. (A WebSocket-only session reads its socket directly: its task
/// is spawned on the socket's own worker.)
pub fn websocket(out: WsOut, mut inbound: WsIn) -> WsConn {
    let (tx, rx) = mpsc::channel(WS_INBOUND_QUEUE);
    actix_web::rt::spawn(async move {
        while let Some(msg) = inbound.recv().await {
            let last = msg.is_err() || matches!(msg, Ok(AggregatedMessage::Close(_)));
            if tx.send(msg).await.is_err() || last {
                break;
            }
        }
    });
    WsConn { out, rx }
}

/// Starts a session whose first transport is long-polling (the open packet is the handshake's body).
pub fn spawn_polling(
    state: Arc<AppState>,
    sid: String,
    admission: Admission,
    profile: SocketIoProfile,
) {
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    state.socketio.insert(sid.clone(), Entry::Polling(tx));
    actix_web::rt::spawn(run(state, sid, Some(rx), None, admission, profile));
}

/// Starts a WebSocket-only session (no sid yet): the open packet is its first frame.
///
/// Called on the worker that owns the socket, so the session task reads it directly.
pub fn spawn_websocket(
    state: Arc<AppState>,
    out: WsOut,
    inbound: WsIn,
    admission: Admission,
    profile: SocketIoProfile,
) {
    let sid = super::new_sid();
    state.socketio.insert(sid.clone(), Entry::WebSocket);
    let ws = Ws {
        out,
        read: WsRead::Direct(inbound),
    };
    actix_web::rt::spawn(run(state, sid, None, Some(ws), admission, profile));
}

/// Closes a WebSocket opened for a session that cannot take it (already on WebSocket, or probing one).
pub fn refuse_upgrade(out: &WsOut) {
    let _ = out.close(Some(End::Protocol.close_reason()));
}

/// A session's WebSocket transport.
struct Ws {
    /// Write half: ticks go out as the hub's shared pre-encoded frames.
    out: WsOut,
    /// Where its client frames come from.
    read: WsRead,
}

/// The read half of a session's WebSocket.
enum WsRead {
    /// Read by the session task itself (WebSocket-only sessions: no task or channel in between).
    Direct(WsIn),
    /// Forwarded by a reader task (a WebSocket that upgraded a polling session).
    Forwarded(mpsc::Receiver<WsInbound>),
}

/// Why a session ended; decides the close frame and the metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The transport went away without a word.
    Gone,
    /// The client sent an Engine.IO close.
    ClientClose,
    /// No pong within `pingTimeout` (includes clients that stopped polling).
    PingTimeout,
    /// SIGTERM.
    Shutdown,
    /// A malformed packet, overlapping GET or similar.
    Protocol,
    /// Too many bad requests or an unread outbox.
    Abuse,
    /// A WebSocket message over `maxPayload`.
    TooLarge,
    /// A text frame that is not UTF-8 (RFC 6455: close 1007).
    InvalidUtf8,
    /// Behind (conflating) or blocked for `slow_consumer_timeout_ms` (already counted).
    SlowConsumer,
    /// Dashboard profile: the token was refused and `auth_error` + DISCONNECT delivered (counted as an auth failure).
    AuthRefused,
}

impl End {
    /// The row of the disconnect table this end is, if the gateway closed the session.
    fn disconnect(self) -> Option<Disconnect> {
        match self {
            End::Gone | End::ClientClose | End::AuthRefused => None,
            End::PingTimeout => Some(Disconnect::Idle),
            End::Shutdown => Some(Disconnect::Shutdown),
            End::Protocol => Some(Disconnect::ProtocolError),
            End::InvalidUtf8 => Some(Disconnect::InvalidUtf8),
            End::Abuse => Some(Disconnect::Abuse),
            End::TooLarge => Some(Disconnect::FrameTooLarge),
            End::SlowConsumer => Some(Disconnect::SlowConsumer),
        }
    }

    /// The disconnect metric label, unless already counted where it was decided (slow consumers).
    fn metric(self) -> Option<&'static str> {
        match self {
            End::SlowConsumer => None,
            other => other.disconnect().map(Disconnect::label),
        }
    }

    fn close_reason(self) -> CloseReason {
        match self.disconnect() {
            Some(d) => d.close_reason(),
            None => CloseReason {
                code: CloseCode::Normal,
                description: None,
            },
        }
    }
}

impl From<WriteFailed> for End {
    fn from(e: WriteFailed) -> Self {
        match e {
            WriteFailed::Closed => End::Gone,
            WriteFailed::SlowConsumer => End::SlowConsumer,
        }
    }
}

/// What woke the task.
enum Wake {
    Shutdown,
    Command(Option<Command>),
    Ws(Option<WsInbound>),
    Probe(Option<WsInbound>),
    Tick(Option<Outbound>),
    DrainPending,
    /// A rate-capped tick's slot, or the dashboard profile's `market_update`, is due.
    Timer,
    SlowCheck,
    PingDue,
    PongOverdue,
    ProbeOverdue,
}

/// One Engine.IO session's state, owned by its task.
struct EngineSession {
    /// Engine.IO session id (the `sid` query parameter).
    sid: String,
    /// Timings and limits.
    eio: EioConfig,
    /// Subscriptions and limits shared with the native protocol.
    client: ClientSession,
    /// Whether the Socket.IO client is CONNECTed to `/` (events are ignored before).
    joined: bool,
    /// Packets waiting for the next GET (polling only; WebSocket writes directly).
    outbox: VecDeque<ByteString>,
    /// The GET waiting for packets, at most one.
    pending_poll: Option<oneshot::Sender<Result<Vec<ByteString>, EioError>>>,
    /// The WebSocket once upgraded (or from the start).
    ws: Option<Ws>,
    /// A WebSocket being probed for the upgrade, and when it must have finished.
    probe: Option<(WsConn, Instant)>,
    /// `3probe` sent: pending GETs get a noop until the client sends `5`.
    upgrading: bool,
    /// When the next ping goes out.
    next_ping: Instant,
    /// Set while a ping awaits its pong.
    pong_deadline: Option<Instant>,
    /// The handshake request's own token, verified at CONNECT when the `auth` payload has none.
    request_token: Option<String>,
    /// Reused buffer for conflated and rate-capped ticks about to be sent.
    pending: Vec<Outbound>,
    /// Reused buffer of encoded tick frames handed to the WebSocket together.
    batch: Vec<Bytes>,
    /// The trading-dashboard profile's state, when the session speaks it (`crate::compat`).
    profile: Option<Box<Dashboard>>,
    /// A refused dashboard CONNECT: end the session once its `auth_error` and DISCONNECT are delivered.
    closing: bool,
}

/// Runs one session to its end and cleans up (table entry, hub subscriptions, gauges).
async fn run(
    state: Arc<AppState>,
    sid: String,
    mut commands: Option<mpsc::Receiver<Command>>,
    ws: Option<Ws>,
    admission: Admission,
    profile: SocketIoProfile,
) {
    let eio = eio_config(&state.cfg);
    let profile =
        (profile == SocketIoProfile::Dashboard).then(|| Dashboard::new(&state.cfg.gateway.compat));
    let (client, mut ticks) =
        ClientSession::open(state.clone(), Protocol::SocketIo, Some(admission.permit));
    let mut session = EngineSession {
        sid,
        eio,
        client,
        joined: false,
        outbox: VecDeque::new(),
        pending_poll: None,
        ws,
        probe: None,
        upgrading: false,
        next_ping: Instant::now() + eio.ping_interval,
        pong_deadline: None,
        request_token: admission.request_token,
        pending: Vec::new(),
        batch: Vec::new(),
        profile,
        closing: false,
    };
    let end = session.serve(&mut commands, &mut ticks).await;
    if let Some(label) = end.metric() {
        state.metrics.disconnects.with_label_values(&[label]).inc();
    }
    tracing::debug!(sid = %session.sid, reason = ?end, "Socket.IO session ended.");
    state.socketio.remove(&session.sid);
    // Requests that raced with the end get their answers instead of hanging.
    if let Some(commands) = &mut commands {
        commands.close();
        while let Ok(cmd) = commands.try_recv() {
            match cmd {
                Command::Poll(tx) => {
                    let _ = tx.send(Err(EioError::UnknownSid));
                }
                Command::Post(_, tx) => {
                    let _ = tx.send(Err(EioError::UnknownSid));
                }
                Command::Upgrade(w) => refuse_upgrade(&w.out),
            }
        }
    }
    let EngineSession {
        client,
        pending_poll,
        ws,
        probe,
        ..
    } = session;
    client.close().await;
    if let Some(tx) = pending_poll {
        let _ = tx.send(Ok(vec![ByteString::from_static("1")]));
    }
    // The close frame goes out after whatever is queued; a client that reads
    // nothing more loses its socket at the stall limit (`upgrade::serve`).
    if let Some((p, _)) = probe {
        let _ = p.out.close(Some(end.close_reason()));
    }
    if let Some(w) = ws {
        if end != End::Gone {
            let _ = w.out.close(Some(end.close_reason()));
        }
    }
}

async fn recv_ws(ws: &mut Option<Ws>) -> Option<WsInbound> {
    match ws {
        Some(Ws {
            read: WsRead::Direct(r),
            ..
        }) => r.recv().await,
        Some(Ws {
            read: WsRead::Forwarded(rx),
            ..
        }) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The next command from an HTTP handler; never, once the session is on WebSocket for good.
async fn recv_command(commands: &mut Option<mpsc::Receiver<Command>>) -> Option<Command> {
    match commands {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn recv_probe(probe: &mut Option<(WsConn, Instant)>) -> Option<WsInbound> {
    match probe {
        Some((w, _)) => w.rx.recv().await,
        None => std::future::pending().await,
    }
}

impl EngineSession {
    async fn serve(
        &mut self,
        commands: &mut Option<mpsc::Receiver<Command>>,
        ticks: &mut TickQueue,
    ) -> End {
        if let Some(ws) = &mut self.ws {
            let open = packet::open(
                &self.sid,
                &[],
                super::millis(self.eio.ping_interval),
                super::millis(self.eio.ping_timeout),
                self.eio.max_payload,
            );
            if ws.out.text(open).await.is_err() {
                return End::Gone;
            }
        }
        let mut shutdown = self.client.state().shutdown.clone();
        if *shutdown.borrow() {
            return End::Shutdown;
        }
        // Made once: a fresh `changed()` per pass would register with (and leave) the watch on every tick.
        let mut shutdown = std::pin::pin!(shutdown.changed());
        loop {
            // A lock-free look each pass; the `shutdown` branch is only polled when nothing else is ready.
            if self.client.state().shutdown.has_changed().unwrap_or(true) {
                return End::Shutdown;
            }
            self.flush_poll();
            if self.outbox.len() > OUTBOX_LIMIT {
                return End::Abuse;
            }
            if self.closing && self.outbox.is_empty() {
                return End::AuthRefused;
            }
            let take_ticks = self.joined
                && !self.upgrading
                && (self.ws.is_some() || self.pending_poll.is_some());
            let ping_at = self.next_ping;
            let pong_at = self.pong_deadline;
            let probe_at = self.probe.as_ref().map(|(_, at)| *at);
            let outlet = self.client.outlet().clone();
            let drain_pending = take_ticks && outlet.is_conflating() && ticks.is_empty();
            let release_at = if take_ticks {
                self.client.next_release().map(Instant::from_std)
            } else {
                None
            };
            let market_at = match &self.profile {
                Some(p) if self.joined && !self.upgrading => {
                    Some(Instant::from_std(p.next_market()))
                }
                _ => None,
            };
            // One timer for both: each extra `sleep_until` branch is stored in every session's task.
            let timer_at = match (release_at, market_at) {
                (Some(r), Some(m)) => Some(r.min(m)),
                (r, m) => r.or(m),
            };
            let slow_at = outlet
                .behind_since()
                .map(|b| Instant::from_std(b) + self.client.slow_timeout());
            let wake = tokio::select! {
                biased;
                c = recv_command(commands) => Wake::Command(c),
                m = recv_ws(&mut self.ws) => Wake::Ws(m),
                m = recv_probe(&mut self.probe) => Wake::Probe(m),
                t = ticks.recv(), if take_ticks => Wake::Tick(t),
                () = std::future::ready(()), if drain_pending => Wake::DrainPending,
                () = sleep_until_some(timer_at), if timer_at.is_some() => Wake::Timer,
                () = sleep_until_some(slow_at), if slow_at.is_some() => Wake::SlowCheck,
                () = outlet.fell_behind() => Wake::SlowCheck,
                () = sleep_until_some(pong_at), if pong_at.is_some() => Wake::PongOverdue,
                () = sleep_until_some(Some(ping_at)), if pong_at.is_none() => Wake::PingDue,
                () = sleep_until_some(probe_at), if probe_at.is_some() => Wake::ProbeOverdue,
                // Last: polled only when the task is about to sleep (the check above catches a shutdown while busy).
                _ = &mut shutdown => Wake::Shutdown,
            };
            let step = match wake {
                Wake::Shutdown => Err(End::Shutdown),
                Wake::Command(None) => Err(End::Gone),
                // Client packets, polling commands and probes are rare next to ticks: their
                // futures are boxed, so every session's task keeps only the tick path's state.
                Wake::Command(Some(cmd)) => Box::pin(self.on_command(cmd)).await,
                Wake::Ws(msg) => Box::pin(self.on_ws(msg)).await,
                Wake::Probe(msg) => Box::pin(self.on_probe(msg)).await,
                Wake::Tick(None) => Err(End::Gone),
                Wake::Tick(Some(first)) => drain_ticks(self, Some(first), ticks).await,
                Wake::DrainPending => drain_ticks(self, None, ticks).await,
                Wake::Timer if market_at.is_some_and(|m| m <= Instant::now()) => {
                    // The rare path, boxed so it does not grow every session's task.
                    Box::pin(self.send_market()).await
                }
                Wake::Timer => {
                    let mut due = std::mem::take(&mut self.pending);
                    self.client.release_due(&mut due);
                    for frame in &due {
                        self.queue_frame(frame);
                    }
                    due.clear();
                    self.pending = due;
                    self.flush_ticks().await
                }
                Wake::SlowCheck => {
                    if slow::is_overdue(&outlet, self.client.slow_timeout()) {
                        slow::slow_consumer(&outlet, &self.client.state().metrics);
                        Err(End::SlowConsumer)
                    } else {
                        Ok(())
                    }
                }
                Wake::PingDue => {
                    self.pong_deadline = Some(Instant::now() + self.eio.ping_timeout);
                    Box::pin(self.send(ByteString::from_static("2"))).await
                }
                Wake::PongOverdue => Err(End::PingTimeout),
                Wake::ProbeOverdue => {
                    if let Some((p, _)) = self.probe.take() {
                        let _ = p.out.close(None);
                    }
                    self.upgrading = false;
                    Ok(())
                }
            };
            if let Err(end) = step {
                return end;
            }
            if self.ws.is_some() && commands.is_some() {
                if let Err(end) = Box::pin(self.retire_commands(commands)).await {
                    return end;
                }
            }
        }
    }

    /// The session is on WebSocket for good: HTTP requests stop reaching its
    /// task (the handler answers them alone), the ones already queued get their
    /// answers, and the queue's memory goes.
    async fn retire_commands(
        &mut self,
        commands: &mut Option<mpsc::Receiver<Command>>,
    ) -> Result<(), End> {
        self.client.state().socketio.set_websocket(&self.sid);
        if let Some(mut rx) = commands.take() {
            rx.close();
            while let Ok(cmd) = rx.try_recv() {
                self.on_command(cmd).await?;
            }
        }
        Ok(())
    }

    /// Answers the pending GET when there is something for it (a noop while upgrading).
    fn flush_poll(&mut self) {
        let Some(tx) = self.pending_poll.take() else {
            return;
        };
        if tx.is_closed() {
            return;
        }
        if self.upgrading || self.ws.is_some() {
            let _ = tx.send(Ok(vec![ByteString::from_static("6")]));
            return;
        }
        if self.outbox.is_empty() {
            self.pending_poll = Some(tx);
            return;
        }
        let packets: Vec<ByteString> = self.outbox.drain(..).collect();
        if let Err(Ok(packets)) = tx.send(Ok(packets)) {
            // The GET was cancelled meanwhile: keep the packets for the next one.
            for p in packets.into_iter().rev() {
                self.outbox.push_front(p);
            }
        }
    }

    /// Queues (polling) or writes (WebSocket) one Engine.IO packet; a write blocked past the slow-consumer timeout ends the session.
    async fn send(&mut self, packet: ByteString) -> Result<(), End> {
        match &mut self.ws {
            Some(ws) => Ok(self.client.write(ws.out.text(packet)).await?),
            None => {
                self.outbox.push_back(packet);
                Ok(())
            }
        }
    }

    async fn on_command(&mut self, cmd: Command) -> Result<(), End> {
        match cmd {
            Command::Poll(tx) => {
                if self.ws.is_some() {
                    // Upgraded or WebSocket-only: polling is the wrong transport now.
                    let _ = tx.send(Err(EioError::BadRequest));
                    return Ok(());
                }
                if self.pending_poll.as_ref().is_some_and(|p| !p.is_closed()) {
                    let _ = tx.send(Err(EioError::BadRequest));
                    return Err(End::Protocol);
                }
                self.pending_poll = Some(tx);
                Ok(())
            }
            Command::Post(body, tx) => {
                if self.ws.is_some() {
                    let _ = tx.send(Err(EioError::BadRequest));
                    return Ok(());
                }
                let Some(body) = body else {
                    let _ = tx.send(Err(EioError::BadRequest));
                    return Err(End::Protocol);
                };
                let packets = match packet::parse_payload(&body) {
                    Ok(p) => p,
                    Err(_) => {
                        let _ = tx.send(Err(EioError::BadRequest));
                        return Err(End::Protocol);
                    }
                };
                for p in packets {
                    if let Err(end) = self.on_packet(p).await {
                        let answer = if end == End::Protocol {
                            Err(EioError::BadRequest)
                        } else {
                            Ok(())
                        };
                        let _ = tx.send(answer);
                        return Err(end);
                    }
                }
                let _ = tx.send(Ok(()));
                Ok(())
            }
            Command::Upgrade(w) => {
                if self.ws.is_some() || self.probe.is_some() {
                    refuse_upgrade(&w.out);
                    return Ok(());
                }
                let deadline = Instant::now() + self.eio.upgrade_timeout;
                self.probe = Some((w, deadline));
                Ok(())
            }
        }
    }

    /// A frame on the probing WebSocket: `2probe` → `3probe`, then `5` switches transports.
    async fn on_probe(&mut self, msg: Option<WsInbound>) -> Result<(), End> {
        let text = match msg {
            Some(Ok(AggregatedMessage::Text(text))) => text,
            Some(Ok(AggregatedMessage::Ping(p))) => {
                if let Some((w, _)) = &mut self.probe {
                    let _ = w.out.pong(&p).await;
                }
                return Ok(());
            }
            Some(Ok(AggregatedMessage::Pong(_))) => return Ok(()),
            _ => {
                // Probe failed or closed: stay on polling.
                if let Some((w, _)) = self.probe.take() {
                    let _ = w.out.close(None);
                }
                self.upgrading = false;
                return Ok(());
            }
        };
        match packet::parse_eio(&text, false) {
            Ok(EioPacket::Ping("probe")) => {
                if let Some((w, _)) = &mut self.probe {
                    if w.out.text("3probe").await.is_err() {
                        self.probe = None;
                        return Ok(());
                    }
                }
                self.upgrading = true;
                Ok(())
            }
            Ok(EioPacket::Upgrade) if self.upgrading => {
                let Some((w, _)) = self.probe.take() else {
                    return Ok(());
                };
                self.upgrading = false;
                if let Some(tx) = self.pending_poll.take() {
                    let _ = tx.send(Ok(vec![ByteString::from_static("6")]));
                }
                for p in self.outbox.drain(..) {
                    if w.out.text(p).await.is_err() {
                        return Err(End::Gone);
                    }
                }
                self.ws = Some(Ws {
                    out: w.out,
                    read: WsRead::Forwarded(w.rx),
                });
                self.client.state().metrics.socketio_upgrades.inc();
                tracing::debug!(sid = %self.sid, "Socket.IO session upgraded to WebSocket.");
                Ok(())
            }
            _ => {
                if let Some((w, _)) = self.probe.take() {
                    let _ = w.out.close(Some(End::Protocol.close_reason()));
                }
                self.upgrading = false;
                Ok(())
            }
        }
    }

    async fn on_ws(&mut self, msg: Option<WsInbound>) -> Result<(), End> {
        match msg {
            None => Err(End::Gone),
            Some(Ok(AggregatedMessage::Text(text))) => match packet::parse_eio(&text, false) {
                Ok(p) => self.on_packet(p).await,
                Err(_) => Err(End::Protocol),
            },
            Some(Ok(AggregatedMessage::Binary(bytes))) => {
                self.on_packet(EioPacket::Binary(bytes.to_vec())).await
            }
            Some(Ok(AggregatedMessage::Ping(p))) => match &mut self.ws {
                Some(w) => Ok(self.client.write(w.out.pong(&p)).await?),
                None => Ok(()),
            },
            Some(Ok(AggregatedMessage::Pong(_))) => Ok(()),
            Some(Ok(AggregatedMessage::Close(_))) => Err(End::ClientClose),
            Some(Err(ProtocolError::Overflow)) => Err(End::TooLarge),
            // WsIn reports a text frame that is not UTF-8 as InvalidData: close 1007, as /ws does.
            Some(Err(ProtocolError::Io(e))) if e.kind() == std::io::ErrorKind::InvalidData => {
                Err(End::InvalidUtf8)
            }
            // Its socket took no data for the stall limit: a slow consumer.
            Some(Err(e)) if crate::websocket::upgrade::is_stall(&e) => {
                let metrics = &self.client.state().metrics;
                slow::slow_consumer(self.client.outlet(), metrics);
                Err(End::SlowConsumer)
            }
            // A reset or EOF mid-frame is a client that went away, not a protocol violation.
            Some(Err(ProtocolError::Io(_))) => Err(End::Gone),
            Some(Err(_)) => Err(End::Protocol),
        }
    }

    async fn on_packet(&mut self, p: EioPacket<'_>) -> Result<(), End> {
        match p {
            EioPacket::Close => Err(End::ClientClose),
            EioPacket::Ping(data) => self.send(format!("3{data}").into()).await,
            EioPacket::Pong(_) => {
                self.pong_deadline = None;
                self.next_ping = Instant::now() + self.eio.ping_interval;
                Ok(())
            }
            EioPacket::Message(text) => self.on_socketio(text).await,
            EioPacket::Binary(_) => {
                if self.joined {
                    let e = ClientError::new(
                        ErrorCode::BadJson,
                        "binary payloads are not supported; send JSON",
                    );
                    let response = self.client.reject(e);
                    return self.respond(response, None).await;
                }
                Ok(())
            }
            EioPacket::Noop => Ok(()),
            // The client never sends open, and upgrade only on the probe socket.
            EioPacket::Open => Err(End::Protocol),
            EioPacket::Upgrade => {
                if self.ws.is_some() {
                    Ok(())
                } else {
                    Err(End::Protocol)
                }
            }
        }
    }

    /// One Socket.IO packet (the data of an Engine.IO message).
    async fn on_socketio(&mut self, text: &str) -> Result<(), End> {
        let max = self.client.state().cfg.gateway.max_message_bytes;
        if text.len() > max && self.joined {
            let e = ClientError::new(
                ErrorCode::TooLarge,
                format!(
                    "message of {} bytes exceeds the limit of {max} bytes",
                    text.len()
                ),
            );
            let response = self.client.reject(e);
            return self.respond(response, None).await;
        }
        let p = match packet::parse_sio(text) {
            Ok(p) => p,
            Err(PacketError::SocketIo | PacketError::Engine) => return Err(End::Protocol),
        };
        match p.kind {
            SioKind::Connect if p.nsp != "/" => {
                let refusal = packet::connect_error(&p.nsp, "Invalid namespace");
                self.send(refusal.into()).await
            }
            SioKind::Connect => {
                let mut subject = None;
                if let Some(verifier) = &self.client.state().gate.auth {
                    // The CONNECT `auth` payload `{"token": ...}` wins over the handshake's `?token=`/header.
                    let token = p
                        .data
                        .as_ref()
                        .and_then(|d| d.get("token"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .or_else(|| self.request_token.clone());
                    match verifier.verify(token.as_deref()) {
                        Ok(grant) => {
                            subject = grant.subject;
                            self.client.set_grant(grant.symbols);
                        }
                        Err(e) => {
                            let metrics = &self.client.state().metrics;
                            metrics.auth_failures.with_label_values(&[e.label()]).inc();
                            metrics
                                .connections_rejected
                                .with_label_values(&["unauthorized"])
                                .inc();
                            if self.profile.is_some() {
                                return self.refuse_dashboard(e).await;
                            }
                            let refusal = packet::connect_error("/", "unauthorized");
                            return self.send(refusal.into()).await;
                        }
                    }
                }
                let ok = packet::connect_ok(self.client.client_id());
                self.send(ok.into()).await?;
                if !self.joined {
                    self.joined = true;
                    if self.profile.is_some() {
                        return Box::pin(self.join_dashboard(subject.as_ref())).await;
                    }
                    let hello = packet::event("connected", &self.client.connected());
                    self.send(hello.into()).await?;
                }
                Ok(())
            }
            SioKind::Disconnect => {
                if p.nsp == "/" && self.joined {
                    self.joined = false;
                    self.client.unsubscribe_all().await;
                }
                Ok(())
            }
            SioKind::Event if p.nsp == "/" && self.joined => {
                let Some(Value::Array(mut args)) = p.data else {
                    return Err(End::Protocol);
                };
                let data = if args.len() > 1 {
                    args.swap_remove(1)
                } else {
                    Value::Null
                };
                let event = match args.first() {
                    Some(Value::String(s)) => s.clone(),
                    _ => return Err(End::Protocol),
                };
                if self.profile.is_some() && (event == "subscribe" || event == "unsubscribe") {
                    return Box::pin(self.on_dashboard_request(&event, &data, p.id)).await;
                }
                let g = &self.client.state().cfg.gateway;
                let response =
                    match request::parse_action(&event, &data, g.max_symbols_per_connection) {
                        Ok(action) => self.client.handle(action).await,
                        Err(e) => self.client.reject(e),
                    };
                self.respond(response, p.id).await
            }
            SioKind::BinaryEvent if p.nsp == "/" && self.joined => {
                let e = ClientError::new(
                    ErrorCode::BadJson,
                    "binary payloads are not supported; send JSON",
                );
                let response = self.client.reject(e);
                self.respond(response, p.id).await
            }
            // Events for a namespace the client is not connected to, and acks
            // (we never ask for one), are ignored as the reference server does.
            SioKind::Event | SioKind::BinaryEvent | SioKind::Ack | SioKind::BinaryAck => Ok(()),
            SioKind::ConnectError => Err(End::Protocol),
        }
    }

    /// Sends a response as the same event the native protocol uses, plus the ack when asked.
    async fn respond(&mut self, response: Response, ack: Option<u64>) -> Result<(), End> {
        let reply = packet::event(response.event, &response.data);
        self.send(reply.into()).await?;
        if let Some(id) = ack {
            self.send(packet::ack(id, &response.data).into()).await?;
        }
        // In batches, as live ticks go: a recovery can replay thousands.
        for frame in &response.snapshots {
            self.queue_frame(frame);
            if self.batch.len() >= WS_WRITE_BATCH {
                self.flush_ticks().await?;
            }
        }
        self.flush_ticks().await?;
        if response.abuse {
            return Err(End::Abuse);
        }
        Ok(())
    }

    /// Queues one tick as its shared packet: into the batch of encoded frames (WebSocket) or the outbox (polling).
    ///
    /// A dashboard-profile session hands it to its profile first, which keeps
    /// ticks for the next `market_update` and re-shapes signals and sentiment.
    fn queue_frame(&mut self, frame: &Publication) {
        if let Some(profile) = &mut self.profile {
            match profile.absorb(frame) {
                Absorbed::Pass => {}
                Absorbed::Held => return,
                Absorbed::Emit(packets) => {
                    for p in packets {
                        self.queue_packet(p);
                    }
                    return;
                }
            }
        }
        if self.ws.is_some() {
            self.batch.push(frame.socketio_ws().clone());
        } else {
            self.outbox.push_back(frame.socketio().clone());
        }
    }

    /// Hands the batched tick frames to the WebSocket; blocked past the slow-consumer timeout ends the session.
    async fn flush_ticks(&mut self) -> Result<(), End> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let Self {
            ws, client, batch, ..
        } = self;
        let Some(ws) = ws else {
            batch.clear();
            return Ok(());
        };
        Ok(client.write_batch(&ws.out, batch).await?)
    }
}

/// Ticks go out as shared Socket.IO packets: in WebSocket batches, or into the outbox the next poll takes.
impl TickSink for EngineSession {
    type End = End;
    const MAX_TAKEN: usize = TICK_BATCH;

    fn session(&mut self) -> &mut ClientSession {
        &mut self.client
    }

    fn pending(&mut self) -> &mut Vec<Outbound> {
        &mut self.pending
    }

    fn queue(&mut self, frame: &Outbound) -> bool {
        self.queue_frame(frame);
        self.batch.len() >= WS_WRITE_BATCH
    }

    async fn flush(&mut self) -> Result<(), End> {
        self.flush_ticks().await
    }

    fn slow_consumer() -> End {
        End::SlowConsumer
    }
}

/// The trading-dashboard profile's paths (`crate::compat::dashboard_profile`); only sessions with a profile reach them.
impl EngineSession {
    /// Queues one packet built by the profile, on the same path as ticks (batch or outbox).
    fn queue_packet(&mut self, packet: String) {
        if self.ws.is_some() {
            let frame =
                crate::websocket::write::encode(actix_http::ws::OpCode::Text, packet.as_bytes());
            self.batch.push(frame);
        } else {
            self.outbox.push_back(packet.into());
        }
    }

    /// Sends the periodic `market_update` map (nothing while no symbol has a tick).
    async fn send_market(&mut self) -> Result<(), End> {
        match self.profile.as_mut().and_then(|p| p.market_packet()) {
            Some(packet) => self.send(packet.into()).await,
            None => Ok(()),
        }
    }

    /// A refused token: CONNECT accepted so the client can read `auth_error`, then a server DISCONNECT, then the end.
    ///
    /// The server DISCONNECT (`41`) tells stock clients not to reconnect with the same token.
    async fn refuse_dashboard(
        &mut self,
        failure: crate::client::auth::AuthFailure,
    ) -> Result<(), End> {
        let ok = packet::connect_ok(self.client.client_id());
        self.send(ok.into()).await?;
        let refusal = packet::event("auth_error", &dashboard::auth_error(failure));
        self.send(refusal.into()).await?;
        self.send(ByteString::from_static("41")).await?;
        self.closing = true;
        Ok(())
    }

    /// After an accepted CONNECT: `connection_status`, then `sentiment` and the default symbols.
    async fn join_dashboard(&mut self, subject: Option<&Value>) -> Result<(), End> {
        let status = packet::event("connection_status", &dashboard::connection_status(subject));
        self.send(status.into()).await?;
        let state = self.client.state().clone();
        let Some(profile) = &self.profile else {
            return Ok(());
        };
        let served = state.served.get(&state.redis).await;
        let aliases = Resolver::new(&state.cfg.gateway.compat, &served);
        let initial = profile.initial(&state.cfg.gateway.compat, &aliases);
        let max = state.cfg.gateway.max_symbols_per_connection;
        let response = match request::parse_action("subscribe", &initial.request, max) {
            Ok(action) => self.client.handle(action).await,
            Err(e) => {
                tracing::warn!(error = %e.message, "Dashboard default symbols refused.");
                return Ok(());
            }
        };
        if response.event != "subscribed" {
            tracing::warn!(reply = %response.data, "Dashboard default subscribe refused.");
            return Ok(());
        }
        if let Some(p) = &mut self.profile {
            p.record(&initial.names);
        }
        for frame in &response.snapshots {
            self.queue_frame(frame);
        }
        self.flush_ticks().await
    }

    /// `subscribe` / `unsubscribe` in the client's words: names through the alias table, `subscription_confirmed`.
    async fn on_dashboard_request(
        &mut self,
        event: &str,
        data: &Value,
        ack: Option<u64>,
    ) -> Result<(), End> {
        let state = self.client.state().clone();
        let Some(profile) = &self.profile else {
            return Ok(());
        };
        let served = state.served.get(&state.redis).await;
        let aliases = Resolver::new(&state.cfg.gateway.compat, &served);
        let translated = match profile.translate(&aliases, data) {
            Ok(t) => t,
            Err(e) => {
                let response = self.client.reject(e);
                return self.respond(response, ack).await;
            }
        };
        let max = state.cfg.gateway.max_symbols_per_connection;
        let mut response = match request::parse_action(event, &translated.request, max) {
            Ok(action) => self.client.handle(action).await,
            Err(e) => self.client.reject(e),
        };
        if let Some(p) = &mut self.profile {
            match response.event {
                "subscribed" => {
                    p.record(&translated.names);
                    response.data = Dashboard::confirmed(&translated.names, &response.data);
                    response.event = "subscription_confirmed";
                }
                "unsubscribed" => {
                    p.forget(&translated.names);
                    let names: Vec<&str> =
                        translated.names.iter().map(|(n, _)| n.as_str()).collect();
                    response.data = serde_json::json!({ "symbols": names });
                }
                _ => {}
            }
        }
        self.respond(response, ack).await
    }
}

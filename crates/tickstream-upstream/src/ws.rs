//! One upstream WebSocket connection, kept open for the life of the service:
//! connect → subscribe → read → parse → publish, with capped jittered backoff
//! between attempts, a stall watchdog, ping/pong, the venue's application
//! heartbeat, and make-before-break rotation (Binance's 24 h cut and
//! `serverShutdown`). For a live venue the connection's stream set can change
//! while it runs: the task gets each new set on a watch channel (newest wins),
//! sends paced control frames (unsubscribes first), matches the replies to
//! their ids, rebuilds its URL from the current set on every (re)connect, and
//! closes itself when its set becomes empty.
//!
//! Dependencies run one way: this module uses [`crate::subscriptions`] (the
//! pure set arithmetic) and the shared context; [`crate::live`] opens these
//! tasks and feeds them new sets, and nothing here calls back into it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tickstream_bus::Backoff;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use tickstream_model::Symbol;

use crate::context::Context;
use crate::subscriptions::{apply_change, next_control, Pacer};
use crate::venue::{redact, SubscriptionChange, Venue, WsConnection, WsEvent};

/// An open upstream socket.
type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// When a rotation's replacement connection fails, try again this much later
/// (well inside Binance's 24 h − 23 h margin).
const ROTATE_RETRY: Duration = Duration::from_secs(60);

/// Bound on sending our close frame to a socket we are leaving.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Longest prefix of a bad frame quoted in logs.
const LOG_SAMPLE_CHARS: usize = 200;

/// Control messages awaiting a reply, per connection; past this the oldest is
/// forgotten (an upstream that never answers must not grow memory).
const MAX_PENDING_REPLIES: usize = 256;

/// Why a connection attempt or an open connection ended.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    /// TCP, TLS or the WebSocket handshake failed.
    #[error("connect failed: {0}")]
    Connect(#[source] Box<tokio_tungstenite::tungstenite::Error>),
    /// The handshake did not finish in time.
    #[error("connect timed out after {0:?}")]
    ConnectTimeout(Duration),
    /// Reading or writing an open socket failed.
    #[error("connection lost: {0}")]
    Lost(#[source] Box<tokio_tungstenite::tungstenite::Error>),
    /// The server closed the connection.
    #[error("server closed the connection{0}")]
    Closed(String),
    /// Nothing at all arrived for the stall timeout.
    #[error("no message for {0:?} (stall watchdog)")]
    Stalled(Duration),
}

impl WsError {
    /// Every connection failure is retried with backoff; kept for callers that decide.
    pub fn is_retryable(&self) -> bool {
        true
    }
}

/// How an open connection ended.
enum End {
    /// The service is stopping.
    Shutdown,
    /// Lost; reconnect after a backoff. Carries whether any data arrived.
    Lost(WsError, bool),
    /// Its stream set became empty: the connection is no longer needed.
    Retired,
}

/// What a connection task streams.
pub(crate) enum Streams {
    /// A URL and subscribe frames fixed for the life of the service.
    Fixed(WsConnection),
    /// A stream set that changes at run time (a venue with [`crate::venue::LiveSubscriptions`]).
    Live(LiveConn),
}

/// A control message sent and not answered yet.
#[derive(Debug)]
struct Pending {
    /// Which way it moved the set.
    change: SubscriptionChange,
    /// How many symbols it named.
    symbols: usize,
    /// When it went out, for the reply's latency in logs.
    at: Instant,
}

/// The live side of one connection.
pub(crate) struct LiveConn {
    /// The set this connection should carry; a bounded, conflating channel
    /// (only the newest set matters), written by the reload side.
    desired: watch::Receiver<Arc<Vec<Symbol>>>,
    /// What the open socket carries: its URL's set plus the control messages sent since.
    applied: Vec<Symbol>,
    /// Sent control messages by id, until their reply arrives.
    pending: BTreeMap<u64, Pending>,
    /// False once the reload side is gone (shutdown): stop watching.
    watching: bool,
}

impl LiveConn {
    /// A connection whose set comes from `desired`.
    pub(crate) fn new(desired: watch::Receiver<Arc<Vec<Symbol>>>) -> Self {
        Self {
            desired,
            applied: Vec::new(),
            pending: BTreeMap::new(),
            watching: true,
        }
    }
}

/// The connection to open now and, for a live venue, the set it carries; `None` when retired.
fn snapshot<V: Venue>(
    ctx: &Context<V>,
    streams: &mut Streams,
) -> Option<(WsConnection, Option<Arc<Vec<Symbol>>>)> {
    match streams {
        Streams::Fixed(conn) => Some((conn.clone(), None)),
        Streams::Live(live) => {
            let set = live.desired.borrow_and_update().clone();
            if set.is_empty() {
                return None;
            }
            let conn = ctx.venue.live()?.connection_for(&set);
            Some((conn, Some(set)))
        }
    }
}

/// Records that a fresh socket carries `set` (its URL's streams), with nothing in flight.
fn commit(streams: &mut Streams, set: Option<Arc<Vec<Symbol>>>) {
    if let (Streams::Live(live), Some(set)) = (streams, set) {
        live.applied = set.to_vec();
        live.pending.clear();
    }
}

/// Resolves when a live connection's set becomes empty; never for a fixed one.
async fn retired(streams: &mut Streams) {
    if let Streams::Live(live) = streams {
        while live.watching {
            if live.desired.borrow_and_update().is_empty() {
                return;
            }
            if live.desired.changed().await.is_err() {
                live.watching = false;
            }
        }
    }
    std::future::pending::<()>().await;
}

/// Resolves when a live connection's desired set changes (`false` once nobody can change it).
async fn desired_changed(streams: &mut Streams) -> bool {
    match streams {
        Streams::Live(live) if live.watching => live.desired.changed().await.is_ok(),
        _ => std::future::pending().await,
    }
}

/// Keeps connection `index` open until shutdown (or, for a live venue, until its set is empty).
pub(crate) async fn run_connection<V: Venue>(
    ctx: Arc<Context<V>>,
    index: usize,
    mut streams: Streams,
    mut shutdown: watch::Receiver<bool>,
) {
    let s = &ctx.settings;
    let mut backoff = Backoff::new(s.reconnect_initial(), s.reconnect_max());
    let mut ever_connected = false;
    let source = ctx.venue.name();
    loop {
        let Some((conn, set)) = snapshot(&ctx, &mut streams) else {
            tracing::info!(
                source,
                connection = index,
                "Connection has no streams left; not reconnecting."
            );
            return;
        };
        let url = redact(&conn.url).to_owned();
        let attempt = tokio::select! {
            _ = crate::context::wait_flag(&mut shutdown, true) => return,
            _ = retired(&mut streams) => continue,
            r = connect_and_subscribe(&ctx, &conn) => r,
        };
        match attempt {
            Ok(ws) => {
                commit(&mut streams, set);
                if ever_connected {
                    ctx.metrics.reconnects.inc();
                    ctx.status.reconnected();
                }
                ever_connected = true;
                let all_up = ctx.status.connection_up();
                ctx.metrics.connected.set(i64::from(all_up));
                tracing::info!(source, connection = index, url = %url, "Upstream connected.");
                let end = read_loop(&ctx, index, &mut streams, ws, &mut shutdown).await;
                ctx.status.connection_down();
                ctx.metrics.connected.set(i64::from(ctx.status.stream_up()));
                match end {
                    End::Shutdown => return,
                    End::Retired => {
                        tracing::info!(
                            source,
                            connection = index,
                            "Connection closed: no streams left on it."
                        );
                        return;
                    }
                    End::Lost(e, got_data) => {
                        if got_data {
                            backoff.reset();
                        }
                        tracing::warn!(source, connection = index, error = %e, "Upstream connection ended; reconnecting.");
                    }
                }
            }
            Err(e) => {
                if backoff.attempts() == 0 {
                    tracing::warn!(source, connection = index, url = %url, error = %e, "Cannot connect to the upstream; retrying with backoff.");
                } else {
                    tracing::debug!(source, connection = index, error = %e, "Still cannot connect to the upstream.");
                }
            }
        }
        let delay = backoff.next_delay();
        tokio::select! {
            _ = crate::context::wait_flag(&mut shutdown, true) => return,
            _ = retired(&mut streams) => {}
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Opens the socket and sends the subscribe frames (paced as the venue asks).
async fn connect_and_subscribe<V: Venue>(
    ctx: &Context<V>,
    conn: &WsConnection,
) -> Result<Ws, WsError> {
    let timeout = ctx.settings.connect_timeout();
    let (mut ws, _) = tokio::time::timeout(timeout, tokio_tungstenite::connect_async(&conn.url))
        .await
        .map_err(|_| WsError::ConnectTimeout(timeout))?
        .map_err(|e| WsError::Connect(Box::new(e)))?;
    let pause = ctx.venue.control_message_interval();
    for (i, frame) in conn.subscribe.iter().enumerate() {
        if i > 0 && !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        ws.send(Message::text(frame.as_str()))
            .await
            .map_err(|e| WsError::Lost(Box::new(e)))?;
    }
    Ok(ws)
}

/// Reads until the connection ends or shutdown; rotates in place when asked;
/// for a live venue, brings the socket's streams in step with the desired set.
async fn read_loop<V: Venue>(
    ctx: &Context<V>,
    index: usize,
    streams: &mut Streams,
    mut ws: Ws,
    shutdown: &mut watch::Receiver<bool>,
) -> End {
    let source = ctx.venue.name();
    let stall = ctx.settings.stall_timeout();
    let max_age = ctx.settings.max_connection_age();
    let mut last_frame = Instant::now();
    let mut rotate_at = Instant::now() + max_age;
    let mut got_data = false;
    let app_heartbeat = ctx.venue.app_heartbeat();
    let mut heartbeat = app_heartbeat.as_ref().map(|(period, _)| {
        let mut i = tokio::time::interval_at(Instant::now() + *period, *period);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    });
    let mut pacer = fresh_pacer(ctx, streams);
    // The next control message to send, recomputed whenever `dirty`.
    let mut work: Option<(SubscriptionChange, Vec<Symbol>)> = None;
    let mut dirty = true;
    loop {
        if dirty {
            dirty = false;
            if let Streams::Live(live) = &*streams {
                let desired = live.desired.borrow().clone();
                if desired.is_empty() {
                    close(&mut ws, CloseCode::Normal, "no streams left").await;
                    return End::Retired;
                }
                let per_message = ctx
                    .venue
                    .live()
                    .map_or(usize::MAX, |l| l.max_symbols_per_message());
                work = next_control(&live.applied, &desired, per_message);
            }
        }
        let send_at = pacer.ready_at(Instant::now());
        let mut rotate = false;
        tokio::select! {
            _ = crate::context::wait_flag(&mut *shutdown, true) => {
                close(&mut ws, CloseCode::Away, "shutting down").await;
                return End::Shutdown;
            }
            _ = sleep_until(last_frame + stall) => {
                close(&mut ws, CloseCode::Away, "stalled").await;
                return End::Lost(WsError::Stalled(stall), got_data);
            }
            _ = sleep_until(rotate_at) => {
                tracing::info!(source, connection = index, "Connection reached its maximum age; rotating.");
                rotate = true;
            }
            changed = desired_changed(streams) => {
                if !changed {
                    if let Streams::Live(live) = streams {
                        live.watching = false;
                    }
                }
                dirty = true;
            }
            _ = sleep_until(send_at), if work.is_some() => {
                if let (Some((change, symbols)), Streams::Live(live)) = (work.take(), &mut *streams) {
                    if let Err(e) = send_control(ctx, index, &mut ws, live, change, &symbols).await {
                        return End::Lost(e, got_data);
                    }
                    pacer.sent(Instant::now());
                }
                dirty = true;
            }
            _ = async { match heartbeat.as_mut() { Some(i) => { i.tick().await; } None => std::future::pending().await } } => {
                if let Some((_, frame)) = &app_heartbeat {
                    if let Err(e) = ws.send(Message::text(frame.as_str())).await {
                        return End::Lost(WsError::Lost(Box::new(e)), got_data);
                    }
                    pacer.sent(Instant::now());
                }
            }
            msg = ws.next() => {
                let msg = match msg {
                    None => return End::Lost(WsError::Closed(String::new()), got_data),
                    Some(Err(e)) => return End::Lost(WsError::Lost(Box::new(e)), got_data),
                    Some(Ok(m)) => m,
                };
                last_frame = Instant::now();
                ctx.status.message_received();
                let handled = match msg {
                    Message::Text(text) => {
                        got_data = true;
                        handle_text(ctx, text.as_str()).await
                    }
                    Message::Binary(bytes) => {
                        got_data = true;
                        match std::str::from_utf8(&bytes) {
                            Ok(text) => handle_text(ctx, text).await,
                            Err(_) => {
                                ctx.metrics.messages.inc();
                                ctx.metrics.parse_errors.inc();
                                tracing::warn!(source, "Skipping a binary frame that is not UTF-8.");
                                Handled::Done
                            }
                        }
                    }
                    // tungstenite queues the pong; flushing sends it now rather
                    // than with our next write (Binance wants it within 60 s).
                    // The pong counts against the venue's message rate.
                    Message::Ping(_) => {
                        if let Err(e) = ws.flush().await {
                            return End::Lost(WsError::Lost(Box::new(e)), got_data);
                        }
                        pacer.sent(Instant::now());
                        Handled::Done
                    }
                    Message::Pong(_) | Message::Frame(_) => Handled::Done,
                    Message::Close(frame) => {
                        let why = frame.map(|f| format!(": {} {}", u16::from(f.code), f.reason)).unwrap_or_default();
                        return End::Lost(WsError::Closed(why), got_data);
                    }
                };
                match handled {
                    Handled::Done => {}
                    Handled::Rotate => rotate = true,
                    Handled::Reply { id, error } => on_reply(ctx, index, streams, id, error),
                }
            }
        }
        if rotate {
            let Some((conn, set)) = snapshot(ctx, streams) else {
                close(&mut ws, CloseCode::Normal, "no streams left").await;
                return End::Retired;
            };
            match connect_and_subscribe(ctx, &conn).await {
                Ok(fresh) => {
                    close(&mut ws, CloseCode::Normal, "rotating").await;
                    ws = fresh;
                    commit(streams, set);
                    pacer = fresh_pacer(ctx, streams);
                    work = None;
                    dirty = true;
                    last_frame = Instant::now();
                    rotate_at = Instant::now() + max_age;
                    ctx.metrics.reconnects.inc();
                    ctx.status.reconnected();
                    tracing::info!(
                        source,
                        connection = index,
                        "Upstream connection rotated without a gap."
                    );
                }
                Err(e) => {
                    rotate_at = Instant::now() + ROTATE_RETRY;
                    tracing::warn!(source, connection = index, error = %e, "Replacement connection failed; keeping the current one.");
                }
            }
        }
    }
}

/// A pacer for a socket that just sent its subscribe frames (if any).
fn fresh_pacer<V: Venue>(ctx: &Context<V>, streams: &Streams) -> Pacer {
    let mut pacer = Pacer::new(ctx.venue.control_message_interval());
    let sent_frames = match streams {
        Streams::Fixed(conn) => !conn.subscribe.is_empty(),
        Streams::Live(_) => true,
    };
    if sent_frames {
        pacer.sent(Instant::now());
    }
    pacer
}

/// Sends one control message on a live connection and records it as applied and pending.
async fn send_control<V: Venue>(
    ctx: &Context<V>,
    index: usize,
    ws: &mut Ws,
    live: &mut LiveConn,
    change: SubscriptionChange,
    symbols: &[Symbol],
) -> Result<(), WsError> {
    let Some(api) = ctx.venue.live() else {
        return Ok(());
    };
    let id = ctx.next_control_id();
    let frame = api.control_frame(change, symbols, id);
    ws.send(Message::text(frame))
        .await
        .map_err(|e| WsError::Lost(Box::new(e)))?;
    ctx.metrics.control_messages.inc();
    apply_change(&mut live.applied, change, symbols);
    if api.replies_by_id() {
        live.pending.insert(
            id,
            Pending {
                change,
                symbols: symbols.len(),
                at: Instant::now(),
            },
        );
    }
    while live.pending.len() > MAX_PENDING_REPLIES {
        live.pending.pop_first();
    }
    tracing::info!(
        source = ctx.venue.name(),
        connection = index,
        id,
        method = change.as_str(),
        streams = symbols.len(),
        connection_streams = live.applied.len(),
        "Subscription change sent."
    );
    Ok(())
}

/// Matches a control reply to what was sent; a refusal is logged and counted as an upstream error.
fn on_reply<V: Venue>(
    ctx: &Context<V>,
    index: usize,
    streams: &mut Streams,
    id: u64,
    error: Option<String>,
) {
    let source = ctx.venue.name();
    let pending = match streams {
        Streams::Live(live) => live.pending.remove(&id),
        Streams::Fixed(_) => None,
    };
    match (pending, error) {
        (Some(p), None) => tracing::info!(
            source,
            connection = index,
            id,
            method = p.change.as_str(),
            streams = p.symbols,
            latency_ms = p.at.elapsed().as_millis() as u64,
            "Upstream confirmed the subscription change."
        ),
        (Some(p), Some(error)) => {
            ctx.metrics.error_messages.inc();
            tracing::warn!(source, connection = index, id, method = p.change.as_str(), streams = p.symbols, error = %error, "Upstream refused the subscription change.");
        }
        (None, None) => {
            tracing::debug!(
                source,
                connection = index,
                id,
                "Reply to no pending control message."
            );
        }
        (None, Some(error)) => {
            ctx.metrics.error_messages.inc();
            tracing::warn!(source, connection = index, id, error = %error, "Upstream reported an error for an unknown request id.");
        }
    }
}

/// What the read loop does after a text frame.
enum Handled {
    /// Nothing more.
    Done,
    /// The venue asked to rotate the connection.
    Rotate,
    /// A reply to control message `id`.
    Reply {
        /// The id it answers.
        id: u64,
        /// The upstream's reason when it refused.
        error: Option<String>,
    },
}

/// Parses and acts on one text frame.
async fn handle_text<V: Venue>(ctx: &Context<V>, text: &str) -> Handled {
    ctx.metrics.messages.inc();
    match ctx.venue.parse(text) {
        Ok(WsEvent::Quotes(quotes)) => {
            // Failures are counted and logged inside; the stream goes on.
            let _ = ctx.publisher.publish(quotes, ctx.venue.name()).await;
            Handled::Done
        }
        Ok(WsEvent::Trades { trades, quotes }) => {
            let source = ctx.venue.name();
            if !quotes.is_empty() {
                let _ = ctx.publisher.publish(quotes, source).await;
            }
            let _ = ctx.publisher.publish_trades(trades, source).await;
            Handled::Done
        }
        Ok(WsEvent::Control) => Handled::Done,
        Ok(WsEvent::UpstreamError(message)) => {
            ctx.metrics.error_messages.inc();
            tracing::warn!(source = ctx.venue.name(), message = %message, "Upstream reported an error.");
            Handled::Done
        }
        Ok(WsEvent::Rotate) => {
            tracing::info!(
                source = ctx.venue.name(),
                "Upstream announced a shutdown; rotating."
            );
            Handled::Rotate
        }
        Ok(WsEvent::Reply { id, error }) => Handled::Reply { id, error },
        Err(e) => {
            ctx.metrics.parse_errors.inc();
            let sample: String = text.chars().take(LOG_SAMPLE_CHARS).collect();
            tracing::warn!(source = ctx.venue.name(), error = %e, sample = %sample, "Skipping an unparsable upstream message.");
            Handled::Done
        }
    }
}

/// Sends a close frame, bounded in time; the socket is dropped afterwards anyway.
async fn close(ws: &mut Ws, code: CloseCode, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(Some(frame))).await;
}

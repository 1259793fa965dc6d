//! One upstream WebSocket connection, kept open for the life of the service:
//! connect → subscribe → read → parse → publish, with capped jittered backoff
//! between attempts, a stall watchdog, ping/pong, the venue's application
//! heartbeat, and make-before-break rotation (Binance's 24 h cut and
//! `serverShutdown`).

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

use crate::venue::{Venue, WsConnection, WsEvent};
use crate::Context;

/// An open upstream socket.
type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// When a rotation's replacement connection fails, try again this much later
/// (well inside Binance's 24 h − 23 h margin).
const ROTATE_RETRY: Duration = Duration::from_secs(60);

/// Bound on sending our close frame to a socket we are leaving.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Longest prefix of a bad frame quoted in logs.
const LOG_SAMPLE_CHARS: usize = 200;

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
}

/// The URL without its query, which may hold an API key.
pub fn redact(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// Keeps connection `index` open until shutdown.
pub(crate) async fn run_connection<V: Venue>(
    ctx: Arc<Context<V>>,
    index: usize,
    conn: WsConnection,
    mut shutdown: watch::Receiver<bool>,
) {
    let s = &ctx.settings;
    let mut backoff = Backoff::new(s.reconnect_initial(), s.reconnect_max());
    let mut ever_connected = false;
    let url = redact(&conn.url).to_owned();
    loop {
        let attempt = tokio::select! {
            _ = crate::wait_flag(&mut shutdown, true) => return,
            r = connect_and_subscribe(&ctx, &conn) => r,
        };
        match attempt {
            Ok(ws) => {
                if ever_connected {
                    ctx.metrics.reconnects.inc();
                    ctx.status.reconnected();
                }
                ever_connected = true;
                let all_up = ctx.status.connection_up();
                ctx.metrics.connected.set(i64::from(all_up));
                tracing::info!(source = ctx.venue.name(), connection = index, url = %url, "Upstream connected.");
                let end = read_loop(&ctx, index, &conn, ws, &mut shutdown).await;
                ctx.status.connection_down();
                ctx.metrics.connected.set(0);
                match end {
                    End::Shutdown => return,
                    End::Lost(e, got_data) => {
                        if got_data {
                            backoff.reset();
                        }
                        tracing::warn!(source = ctx.venue.name(), connection = index, error = %e, "Upstream connection ended; reconnecting.");
                    }
                }
            }
            Err(e) => {
                if backoff.attempts() == 0 {
                    tracing::warn!(source = ctx.venue.name(), connection = index, url = %url, error = %e, "Cannot connect to the upstream; retrying with backoff.");
                } else {
                    tracing::debug!(source = ctx.venue.name(), connection = index, error = %e, "Still cannot connect to the upstream.");
                }
            }
        }
        let delay = backoff.next_delay();
        tokio::select! {
            _ = crate::wait_flag(&mut shutdown, true) => return,
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

/// Reads until the connection ends or shutdown; rotates in place when asked.
async fn read_loop<V: Venue>(
    ctx: &Context<V>,
    index: usize,
    conn: &WsConnection,
    mut ws: Ws,
    shutdown: &mut watch::Receiver<bool>,
) -> End {
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
    loop {
        let mut rotate = false;
        tokio::select! {
            _ = crate::wait_flag(&mut *shutdown, true) => {
                close(&mut ws, CloseCode::Away, "shutting down").await;
                return End::Shutdown;
            }
            _ = sleep_until(last_frame + stall) => {
                close(&mut ws, CloseCode::Away, "stalled").await;
                return End::Lost(WsError::Stalled(stall), got_data);
            }
            _ = sleep_until(rotate_at) => {
                tracing::info!(source = ctx.venue.name(), connection = index, "Connection reached its maximum age; rotating.");
                rotate = true;
            }
            _ = async { match heartbeat.as_mut() { Some(i) => { i.tick().await; } None => std::future::pending().await } } => {
                if let Some((_, frame)) = &app_heartbeat {
                    if let Err(e) = ws.send(Message::text(frame.as_str())).await {
                        return End::Lost(WsError::Lost(Box::new(e)), got_data);
                    }
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
                match msg {
                    Message::Text(text) => {
                        got_data = true;
                        rotate = handle_text(ctx, text.as_str()).await;
                    }
                    Message::Binary(bytes) => {
                        got_data = true;
                        match std::str::from_utf8(&bytes) {
                            Ok(text) => rotate = handle_text(ctx, text).await,
                            Err(_) => {
                                ctx.metrics.messages.inc();
                                ctx.metrics.parse_errors.inc();
                                tracing::warn!(source = ctx.venue.name(), "Skipping a binary frame that is not UTF-8.");
                            }
                        }
                    }
                    // tungstenite queues the pong; flushing sends it now rather
                    // than with our next write (Binance wants it within 60 s).
                    Message::Ping(_) => {
                        if let Err(e) = ws.flush().await {
                            return End::Lost(WsError::Lost(Box::new(e)), got_data);
                        }
                    }
                    Message::Pong(_) | Message::Frame(_) => {}
                    Message::Close(frame) => {
                        let why = frame.map(|f| format!(": {} {}", u16::from(f.code), f.reason)).unwrap_or_default();
                        return End::Lost(WsError::Closed(why), got_data);
                    }
                }
            }
        }
        if rotate {
            match connect_and_subscribe(ctx, conn).await {
                Ok(fresh) => {
                    close(&mut ws, CloseCode::Normal, "rotating").await;
                    ws = fresh;
                    last_frame = Instant::now();
                    rotate_at = Instant::now() + max_age;
                    ctx.metrics.reconnects.inc();
                    ctx.status.reconnected();
                    tracing::info!(
                        source = ctx.venue.name(),
                        connection = index,
                        "Upstream connection rotated without a gap."
                    );
                }
                Err(e) => {
                    rotate_at = Instant::now() + ROTATE_RETRY;
                    tracing::warn!(source = ctx.venue.name(), connection = index, error = %e, "Replacement connection failed; keeping the current one.");
                }
            }
        }
    }
}

/// Parses and acts on one text frame; returns whether the venue asked to rotate.
async fn handle_text<V: Venue>(ctx: &Context<V>, text: &str) -> bool {
    ctx.metrics.messages.inc();
    match ctx.venue.parse(text) {
        Ok(WsEvent::Quotes(quotes)) => {
            // Failures are counted and logged inside; the stream goes on.
            let _ = ctx.publisher.publish(quotes, ctx.venue.name()).await;
            false
        }
        Ok(WsEvent::Control) => false,
        Ok(WsEvent::UpstreamError(message)) => {
            ctx.metrics.error_messages.inc();
            tracing::warn!(source = ctx.venue.name(), message = %message, "Upstream reported an error.");
            false
        }
        Ok(WsEvent::Rotate) => {
            tracing::info!(
                source = ctx.venue.name(),
                "Upstream announced a shutdown; rotating."
            );
            true
        }
        Err(e) => {
            ctx.metrics.parse_errors.inc();
            let sample: String = text.chars().take(LOG_SAMPLE_CHARS).collect();
            tracing::warn!(source = ctx.venue.name(), error = %e, sample = %sample, "Skipping an unparsable upstream message.");
            false
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

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_query() {
        assert_eq!(
            super::redact("wss://ws.finnhub.io?token=secret"),
            "wss://ws.finnhub.io"
        );
        assert_eq!(super::redact("ws://a/b"), "ws://a/b");
    }
}

//! One simulated client: connect, subscribe, then count and time every tick.

use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use memchr::memmem;
use tokio::sync::{watch, Semaphore};

use crate::stats::{now_micros, tick_timestamp_micros, Batch, Shared};
use crate::ws::{ConnectError, Frame, Target, WsConn};

/// How long a client waits for the server's answer to its close frame at the end of a run.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Which wire protocol the clients speak.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// tickstream's native JSON frames at `/ws`.
    Native,
    /// Socket.IO v4 over its WebSocket transport (`/socket.io/?EIO=4&transport=websocket`).
    Socketio,
}

/// What every client task needs, shared.
pub struct ClientCtx {
    /// Where to connect.
    pub target: Target,
    /// Wire protocol.
    pub protocol: Protocol,
    /// Source addresses to bind, tried in turn when one has no free port.
    pub sources: Vec<Ipv4Addr>,
    /// Bounds how many clients are in the connect/subscribe phase at once.
    pub connecting: Semaphore,
    /// Time allowed from TCP connect to the `subscribed` reply.
    pub subscribe_timeout: Duration,
    /// `SO_RCVBUF` for the sockets, bytes; `None` keeps the kernel's default (stalled clients set it small).
    pub recv_buffer: Option<u32>,
    /// The measurements.
    pub shared: Arc<Shared>,
    /// With `--track-seq` or `--churn-fraction`: the seq-tracking clients' tallies (they run
    /// [`crate::recovery::run`] instead of [`run`]).
    pub recovery: Option<Arc<crate::recovery::RecoveryShared>>,
}

/// What a client reports when it ends.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientOutcome {
    /// It got to `subscribed`.
    pub ready: bool,
    /// Ticks it received inside the measured window.
    pub window_ticks: u64,
}

/// Runs client `index` subscribed to `symbols` until `stop` turns true.
pub async fn run(
    index: usize,
    ctx: Arc<ClientCtx>,
    symbols: Vec<String>,
    mut stop: watch::Receiver<bool>,
) -> ClientOutcome {
    let mut outcome = ClientOutcome::default();
    let permit = ctx.connecting.acquire().await;
    let setup = tokio::time::timeout(ctx.subscribe_timeout, setup(index, &ctx, &symbols)).await;
    drop(permit);
    let mut conn = match setup {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            if index < 3 || ctx.shared.connect_failures.load(Ordering::Relaxed) < 3 {
                eprintln!("loadgen: client {index}: {e}");
            }
            ctx.shared.settle(false);
            return outcome;
        }
        Err(_) => {
            ctx.shared.settle(false);
            return outcome;
        }
    };
    ctx.shared.settle(true);
    outcome.ready = true;

    let shared = &ctx.shared;
    let mut batch = Batch::default();
    // Frames that arrived with `subscribed` (the cached snapshot, say) are already
    // buffered: read them now, not when the next bytes arrive.
    let mut buffered = true;
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            read = conn.fill(), if !buffered => {
                match read {
                    Ok(0) | Err(_) => {
                        if !*stop.borrow() {
                            shared.disconnects.fetch_add(1, Ordering::Relaxed);
                        }
                        return outcome;
                    }
                    Ok(_) => {}
                }
            }
            () = std::future::ready(()), if buffered => buffered = false,
        }
        let measuring = shared.measuring.load(Ordering::Relaxed);
        let mut closed = false;
        loop {
            match conn.next_frame() {
                Ok(Some(Frame::Text(p))) => match classify(ctx.protocol, conn.payload(p)) {
                    Event::Tick => {
                        batch.ticks += 1;
                        match tick_timestamp_micros(conn.payload(p)) {
                            Some(ts) if measuring => {
                                batch.latencies.push((now_micros() - ts).max(0) as u64);
                            }
                            Some(_) => {}
                            None => batch.bad += 1,
                        }
                    }
                    Event::EioPing => conn.queue_text("3"),
                    Event::Error => {
                        shared.errors.fetch_add(1, Ordering::Relaxed);
                    }
                    Event::Other => {}
                },
                Ok(Some(Frame::Close)) => {
                    closed = true;
                    break;
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => {
                    shared.errors.fetch_add(1, Ordering::Relaxed);
                    closed = true;
                    break;
                }
            }
        }
        outcome.window_ticks += batch.flush_into(shared, index, measuring);
        let flushed = conn.flush().await;
        if closed || flushed.is_err() {
            if !*stop.borrow() {
                shared.disconnects.fetch_add(1, Ordering::Relaxed);
            }
            return outcome;
        }
    }
    // The closing handshake: the server cleans up at once and counts a normal close.
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, close(&mut conn)).await;
    outcome
}

/// Sends a close frame and reads (discarding ticks) until the server's close or EOF.
pub(crate) async fn close(conn: &mut WsConn) -> std::io::Result<()> {
    conn.queue_close();
    conn.flush().await?;
    loop {
        while let Some(frame) = conn.next_frame()? {
            if frame == Frame::Close {
                return Ok(());
            }
        }
        if conn.fill().await? == 0 {
            return Ok(());
        }
    }
}

/// Connects (trying each source address) and subscribes; returns once the server said `subscribed`.
pub(crate) async fn setup(
    index: usize,
    ctx: &ClientCtx,
    symbols: &[String],
) -> anyhow::Result<WsConn> {
    let mut conn = connect(index, ctx).await?;
    let list = serde_json::to_string(symbols)?;
    match ctx.protocol {
        Protocol::Native => {
            conn.queue_text(&format!(
                r#"{{"event":"subscribe","data":{{"symbols":{list}}}}}"#
            ));
            conn.flush().await?;
            wait_for(&mut conn, ctx.protocol, |t| {
                memmem::find(t, br#""event":"subscribed""#).is_some()
            })
            .await?;
        }
        Protocol::Socketio => {
            // Engine.IO OPEN (`0{...}`), then Socket.IO CONNECT to `/`.
            wait_for(&mut conn, ctx.protocol, |t| t.first() == Some(&b'0')).await?;
            conn.queue_text("40");
            conn.flush().await?;
            wait_for(&mut conn, ctx.protocol, |t| t.starts_with(b"40")).await?;
            conn.queue_text(&format!(r#"42["subscribe",{{"symbols":{list}}}]"#));
            conn.flush().await?;
            wait_for(&mut conn, ctx.protocol, |t| {
                t.starts_with(br#"42["subscribed""#)
            })
            .await?;
        }
    }
    Ok(conn)
}

/// Reads until a text frame satisfies `done`; answers pings meanwhile and fails on close or `error`.
async fn wait_for(
    conn: &mut WsConn,
    protocol: Protocol,
    done: impl Fn(&[u8]) -> bool,
) -> anyhow::Result<()> {
    loop {
        while let Some(frame) = conn.next_frame()? {
            match frame {
                Frame::Text(p) => {
                    let text = conn.payload(p);
                    if done(text) {
                        conn.flush().await?;
                        return Ok(());
                    }
                    match classify(protocol, text) {
                        Event::Error => anyhow::bail!(
                            "server error while subscribing: {}",
                            String::from_utf8_lossy(text)
                        ),
                        Event::EioPing => conn.queue_text("3"),
                        _ => {}
                    }
                }
                Frame::Close => anyhow::bail!("server closed while subscribing"),
                _ => {}
            }
        }
        conn.flush().await?;
        if conn.fill().await? == 0 {
            anyhow::bail!("server closed the connection while subscribing");
        }
    }
}

/// Connects from the client's own source address first, then from the others when that one is out of ports.
pub(crate) async fn connect(index: usize, ctx: &ClientCtx) -> anyhow::Result<WsConn> {
    let n = ctx.sources.len().max(1);
    let mut last = None;
    for k in 0..n {
        let source = ctx
            .sources
            .get((index + k) % n)
            .copied()
            .unwrap_or(Ipv4Addr::LOCALHOST);
        match WsConn::connect_with(&ctx.target, source, ctx.recv_buffer).await {
            Ok(c) => return Ok(c),
            Err(ConnectError::SourceExhausted(e)) => last = Some(e),
            Err(e) => anyhow::bail!("connect from {source}: {e}"),
        }
    }
    match last {
        Some(e) => anyhow::bail!("every source address is out of ports: {e}"),
        None => anyhow::bail!("no source address"),
    }
}

/// What a text frame means to the load generator.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// A `price_update`.
    Tick,
    /// An Engine.IO ping (`2`), answered with `3`.
    EioPing,
    /// An `error` event.
    Error,
    /// Anything else (`connected`, `subscribed`, acknowledgements).
    Other,
}

/// Classifies a frame by its first bytes only; the server always puts the event name first.
pub(crate) fn classify(protocol: Protocol, text: &[u8]) -> Event {
    let head = &text[..text.len().min(48)];
    match protocol {
        Protocol::Native => {
            if memmem::find(head, br#""event":"price_update""#).is_some() {
                Event::Tick
            } else if memmem::find(head, br#""event":"error""#).is_some() {
                Event::Error
            } else {
                Event::Other
            }
        }
        Protocol::Socketio => {
            if head.starts_with(br#"42["price_update""#) {
                Event::Tick
            } else if head == b"2" {
                Event::EioPing
            } else if head.starts_with(br#"42["error""#) || head.starts_with(b"44") {
                Event::Error
            } else {
                Event::Other
            }
        }
    }
}

/// The `k` symbols of client `index`: consecutive (mod `all.len()`), so every symbol gets the same number of clients.
pub fn symbols_for(index: usize, k: usize, all: &[String]) -> Vec<String> {
    (0..k)
        .map(|j| all[(index * k + j) % all.len()].clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_both_protocols() {
        use Protocol::*;
        let cases: &[(Protocol, &[u8], Event)] = &[
            (
                Native,
                br#"{"event":"price_update","data":{"symbol":"A"}}"#,
                Event::Tick,
            ),
            (
                Native,
                br#"{"event":"error","data":{"code":"bad_json"}}"#,
                Event::Error,
            ),
            (
                Native,
                br#"{"data":{"symbols":["A"]},"event":"subscribed"}"#,
                Event::Other,
            ),
            (
                Socketio,
                br#"42["price_update",{"symbol":"A"}]"#,
                Event::Tick,
            ),
            (Socketio, b"2", Event::EioPing),
            (Socketio, br#"42["error",{"code":"x"}]"#, Event::Error),
            (Socketio, br#"44{"message":"nope"}"#, Event::Error),
            (Socketio, br#"42["subscribed",{}]"#, Event::Other),
            (Socketio, b"40{\"sid\":\"x\"}", Event::Other),
        ];
        for (p, text, want) in cases {
            assert_eq!(
                &classify(*p, text),
                want,
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn symbols_spread_evenly() {
        let all: Vec<String> = (0..100).map(|i| format!("S{i}")).collect();
        let mut per_symbol = vec![0; 100];
        for i in 0..1000 {
            let mine = symbols_for(i, 10, &all);
            assert_eq!(mine.len(), 10);
            for s in mine {
                per_symbol[s[1..].parse::<usize>().unwrap()] += 1;
            }
        }
        assert!(per_symbol.iter().all(|&n| n == 100), "{per_symbol:?}");
    }
}

//! Stalled clients: subscribe to every symbol, then never read until the run ends.
//!
//! They are the slow consumers of issue 7's benchmark: while ticks flow, the
//! server's writes to them block, so it must conflate and finally disconnect
//! them (1008 `slow consumer`) without growing memory or slowing the normal
//! clients down. Their sockets get a small `SO_RCVBUF`, so the kernel's
//! buffers fill within a fraction of a second instead of after megabytes.
//! When the run ends each one reads what its socket holds and reports how
//! the connection ended.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::client::{self, ClientCtx, Event};
use crate::report::{StalledClient, StalledEnd};
use crate::ws::{Frame, WsConn};

/// Longest a stalled client spends draining its socket at the end of the run.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Silence after which a drained connection that sent no close frame counts as still open.
const OPEN_AFTER_IDLE: Duration = Duration::from_secs(1);
/// How long a still-open stalled client waits for the server's answer to its own close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs stalled client `index`: subscribe to `symbols`, read nothing until `stop`, then drain and report.
pub async fn run(
    index: usize,
    ctx: Arc<ClientCtx>,
    symbols: Vec<String>,
    mut stop: watch::Receiver<bool>,
) -> StalledClient {
    let setup =
        tokio::time::timeout(ctx.subscribe_timeout, client::setup(index, &ctx, &symbols)).await;
    let mut conn = match setup {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            ctx.shared.settle(false);
            return StalledClient::failed(format!("{e:#}"));
        }
        Err(_) => {
            ctx.shared.settle(false);
            return StalledClient::failed(format!(
                "not subscribed within {:?}",
                ctx.subscribe_timeout
            ));
        }
    };
    ctx.shared.settle(true);
    let subscribed_at = Instant::now();
    // The stall: the socket is not touched until the run is over.
    let _ = stop.wait_for(|s| *s).await;
    let stalled_secs = subscribed_at.elapsed().as_secs_f64();
    let mut out = drain(&mut conn, &ctx).await;
    out.stalled_secs = stalled_secs;
    if out.ended == StalledEnd::Open {
        // Leave as a normal client would, so the server does not count an abnormal close.
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, close(&mut conn)).await;
    }
    out
}

/// Reads everything the socket holds until the server's close frame, EOF, an error, or a silence.
async fn drain(conn: &mut WsConn, ctx: &ClientCtx) -> StalledClient {
    let mut out = StalledClient {
        subscribed: true,
        ..StalledClient::default()
    };
    let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
    loop {
        loop {
            match conn.next_frame() {
                Ok(Some(Frame::Text(p))) => {
                    if client::classify(ctx.protocol, conn.payload(p)) == Event::Tick {
                        out.ticks_drained += 1;
                    }
                }
                Ok(Some(Frame::Close)) => {
                    out.ended = StalledEnd::Closed;
                    if let Some((code, reason)) = conn.peer_close() {
                        out.close_code = Some(*code);
                        out.close_reason = Some(reason.clone());
                    }
                    // Best effort: the close reply the connection queued.
                    let _ = conn.flush().await;
                    return out;
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    out.ended = StalledEnd::Reset;
                    out.error = Some(format!("protocol error while draining: {e}"));
                    return out;
                }
            }
        }
        // Pongs for the server's pings found in the buffer; a dead socket shows up on the read.
        let _ = conn.flush().await;
        let now = tokio::time::Instant::now();
        if now >= deadline {
            out.ended = StalledEnd::Open;
            out.error = Some(format!(
                "still receiving after {DRAIN_TIMEOUT:?} of draining"
            ));
            return out;
        }
        match tokio::time::timeout(OPEN_AFTER_IDLE.min(deadline - now), conn.fill()).await {
            Err(_) => {
                out.ended = StalledEnd::Open;
                return out;
            }
            Ok(Ok(0)) => {
                out.ended = StalledEnd::Eof;
                return out;
            }
            Ok(Ok(n)) => out.bytes_drained += n as u64,
            Ok(Err(e)) => {
                out.ended = StalledEnd::Reset;
                out.error = Some(e.to_string());
                return out;
            }
        }
    }
}

/// Sends a close frame and reads until the server's close or EOF.
async fn close(conn: &mut WsConn) -> std::io::Result<()> {
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

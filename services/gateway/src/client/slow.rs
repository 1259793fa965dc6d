//! The slow-consumer rule, written once for every protocol.
//!
//! A client is cut (close 1008 `slow consumer`, counted as
//! `disconnects_total{reason="slow_consumer"}`) when it stays behind
//! (its queue conflating) for longer than `gateway.slow_consumer_timeout_ms`,
//! or when one socket write stays blocked that long. Every transport drains
//! its queue through [`drain_ticks`](super::session::drain_ticks), which checks
//! [`is_overdue`] between writes, and writes through [`write_or_slow`], so the
//! rule cannot differ between them. The one backstop outside this file is
//! the upgraded connection's stall reset in [`crate::websocket::upgrade`]: a
//! socket that takes no bytes at all for the timeout plus a margin is reset,
//! for clients whose kernel buffers keep even the close frame from going out.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::fanout::Outlet;
use crate::metrics::GatewayMetrics;
use crate::vocabulary::Disconnect;

/// Why a write to a client did not happen ([`ClientSession::write`](super::ClientSession::write)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFailed {
    /// The connection is gone: nothing more can be written.
    Closed,
    /// Blocked or behind past the slow-consumer timeout (already counted): close with 1008.
    SlowConsumer,
}

/// The client is too slow: close it with 1008 `slow consumer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlowConsumer;

/// The close reason text every protocol uses for a slow consumer.
pub const SLOW_CONSUMER_REASON: &str = "slow consumer";

/// Runs one socket write; if it blocks, races it against the slow-consumer deadline.
///
/// The fast path (the write completes at once, the usual case) costs no
/// timer. A write still blocked after `timeout`, or a client that has been
/// behind for `timeout` while it blocks, yields [`SlowConsumer`] (counted once
/// in `tickstream_gateway_disconnects_total{reason="slow_consumer"}`).
pub async fn write_or_slow<T>(
    outlet: &Outlet,
    timeout: Duration,
    metrics: &GatewayMetrics,
    write: impl Future<Output = T>,
) -> Result<T, SlowConsumer> {
    let mut write = std::pin::pin!(write);
    tokio::select! {
        biased;
        out = &mut write => return Ok(out),
        () = std::future::ready(()) => {}
    }
    // Blocked: the timers live on the heap, so every connection task stays small (memory per client).
    Box::pin(wait_or_slow(outlet, timeout, metrics, write)).await
}

/// The blocked half of [`write_or_slow`].
async fn wait_or_slow<T>(
    outlet: &Outlet,
    timeout: Duration,
    metrics: &GatewayMetrics,
    mut write: std::pin::Pin<&mut impl Future<Output = T>>,
) -> Result<T, SlowConsumer> {
    let started = Instant::now();
    loop {
        let since = outlet.behind_since().map_or(started, |b| b.min(started));
        let deadline = tokio::time::Instant::from_std(since + timeout);
        tokio::select! {
            biased;
            out = &mut write => return Ok(out),
            () = tokio::time::sleep_until(deadline) => {
                if outlet.behind_since().map_or(started, |b| b.min(started)) + timeout <= Instant::now() {
                    return Err(slow_consumer(outlet, metrics));
                }
            }
            () = outlet.fell_behind() => {}
        }
    }
}

/// Whether the client has been behind for at least `timeout` (checked between writes).
pub fn is_overdue(outlet: &Outlet, timeout: Duration) -> bool {
    outlet
        .behind_since()
        .is_some_and(|b| b.elapsed() >= timeout)
}

/// Marks the outlet closing and counts the disconnect; the transport then sends its close.
pub fn slow_consumer(outlet: &Outlet, metrics: &GatewayMetrics) -> SlowConsumer {
    outlet.close_slow();
    metrics
        .disconnects
        .with_label_values(&[Disconnect::SlowConsumer.label()])
        .inc();
    SlowConsumer
}

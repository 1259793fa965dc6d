//! Transient clients (`--transient-rate`): a steady stream of clients that connect, subscribe and leave.
//!
//! From the first publish to the end of the window, every `1 / rate` seconds a new client opens a
//! TCP + WebSocket connection, subscribes to `per_client` symbols (the next ones round the list, so
//! every symbol is touched), waits for `subscribed`, stays `linger` seconds, then closes with a
//! WebSocket close (clean leave). They are not measured clients: only their counts are reported
//! (`transient` in the report), and the steady clients' figures are the run's usual ones. What
//! they are for is the server's footprint under connection churn: its RSS and open file
//! descriptors at window start and end (a leak shows as growth).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::client::{self, ClientCtx};

/// Transient clients in flight at once, at most (beyond it a tick's client is skipped and counted).
const MAX_IN_FLIGHT: u64 = 2_000;

/// Counts of the transient clients.
#[derive(Debug, Default)]
pub struct TransientCounts {
    /// Clients started.
    pub started: AtomicU64,
    /// Clients that got `subscribed` and closed.
    pub completed: AtomicU64,
    /// Clients that failed to connect or subscribe.
    pub failed: AtomicU64,
    /// Starts skipped because too many were still in flight.
    pub skipped: AtomicU64,
    /// In flight now.
    pub in_flight: AtomicU64,
}

/// The report's `transient`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TransientReport {
    /// Clients started per second.
    pub rate: f64,
    /// Seconds each stayed after `subscribed`.
    pub linger_secs: f64,
    /// Clients started.
    pub started: u64,
    /// Clients that subscribed and left.
    pub completed: u64,
    /// Clients that failed to connect or subscribe.
    pub failed: u64,
    /// Starts skipped (too many in flight).
    pub skipped: u64,
}

impl TransientCounts {
    /// The report of these counts.
    pub fn report(&self, rate: f64, linger: Duration) -> TransientReport {
        TransientReport {
            rate,
            linger_secs: linger.as_secs_f64(),
            started: self.started.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
        }
    }
}

/// Starts `rate` clients a second until `stop` turns true; each subscribes to `per_client` symbols.
pub async fn run(
    ctx: Arc<ClientCtx>,
    symbols: Vec<String>,
    per_client: usize,
    rate: f64,
    linger: Duration,
    counts: Arc<TransientCounts>,
    mut stop: watch::Receiver<bool>,
) {
    if rate <= 0.0 || symbols.is_empty() {
        return;
    }
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut index = 0usize;
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => return,
            _ = ticker.tick() => {}
        }
        if counts.in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
            counts.skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let mine = client::symbols_for(index, per_client.min(symbols.len()), &symbols);
        counts.started.fetch_add(1, Ordering::Relaxed);
        counts.in_flight.fetch_add(1, Ordering::Relaxed);
        let (ctx, counts) = (ctx.clone(), counts.clone());
        tokio::spawn(async move {
            let ok = tokio::time::timeout(ctx.subscribe_timeout, async {
                let mut conn = client::setup(index, &ctx, &mine).await?;
                if !linger.is_zero() {
                    tokio::time::sleep(linger).await;
                }
                let _ =
                    tokio::time::timeout(Duration::from_secs(2), client::close(&mut conn)).await;
                anyhow::Ok(())
            })
            .await;
            match ok {
                Ok(Ok(())) => counts.completed.fetch_add(1, Ordering::Relaxed),
                Ok(Err(e)) => {
                    if counts.failed.fetch_add(1, Ordering::Relaxed) < 3 {
                        eprintln!("loadgen: transient client {index}: {e}");
                    }
                    0
                }
                Err(_) => counts.failed.fetch_add(1, Ordering::Relaxed),
            };
            counts.in_flight.fetch_sub(1, Ordering::Relaxed);
        });
        index += 1;
    }
}

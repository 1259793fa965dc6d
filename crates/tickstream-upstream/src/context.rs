//! What every task of one running venue ingestor shares ([`Context`]), and
//! the small waits they all use. Depends only on the leaf modules; the tasks
//! ([`crate::ws`], [`crate::rest`], [`crate::live`]) depend on it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tickstream_model::Symbol;
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::publish::Publisher;
use crate::settings::UpstreamSettings;
use crate::status::Status;
use crate::venue::{RestRequest, Venue};

/// First wait after a failed Redis operation while loading seq counters.
pub const REDIS_RETRY_INITIAL: Duration = Duration::from_millis(100);
/// Longest wait between seq-loading attempts while Redis is down.
pub const REDIS_RETRY_MAX: Duration = Duration::from_secs(2);

/// What every task of one running ingestor shares.
pub(crate) struct Context<V> {
    /// The venue.
    pub(crate) venue: V,
    /// Timings.
    pub(crate) settings: UpstreamSettings,
    /// `/health` state.
    pub(crate) status: Arc<Status>,
    /// Metric handles.
    pub(crate) metrics: Metrics,
    /// Seq + Redis.
    pub(crate) publisher: Publisher,
    /// The symbols served now (a reload changes them); read by the REST fallback.
    pub(crate) symbols: Mutex<Vec<Symbol>>,
    /// Last id given to a control message; ids are unique and increasing per process.
    pub(crate) control_ids: AtomicU64,
}

impl<V: Venue> Context<V> {
    /// The symbols served now.
    pub(crate) fn current_symbols(&self) -> Vec<Symbol> {
        match self.symbols.lock() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the served symbols everywhere they are reported (`/health`, heartbeat, metrics).
    pub(crate) fn set_symbols(&self, symbols: Vec<Symbol>) {
        self.metrics.symbols.set(symbols.len() as i64);
        self.status
            .common()
            .set_symbols(symbols.iter().map(ToString::to_string).collect());
        match self.symbols.lock() {
            Ok(mut g) => *g = symbols,
            Err(poisoned) => *poisoned.into_inner() = symbols,
        }
    }

    /// A fresh control-message id.
    pub(crate) fn next_control_id(&self) -> u64 {
        self.control_ids.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// One REST fallback round for the symbols served now.
    pub(crate) fn rest_requests(&self) -> Vec<RestRequest> {
        match self.venue.live() {
            Some(live) => live.rest_requests_for(&self.current_symbols()),
            None => self.venue.rest_requests(),
        }
    }
}

/// Resolves once the watched flag equals `want` (or its sender is gone);
/// returns nothing so no non-`Send` borrow is held across an await.
pub(crate) async fn wait_flag(rx: &mut watch::Receiver<bool>, want: bool) {
    let _ = rx.wait_for(|v| *v == want).await;
}

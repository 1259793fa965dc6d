//! Changing a running ingestor's symbols: SIGHUP → reload the configuration →
//! diff against the running set → new per-connection stream sets → each
//! connection task sends paced control frames (see [`crate::ws`]).
//!
//! This module owns the connections (`Fleet`) and drives them; the
//! arithmetic it uses is [`crate::subscriptions`], and a connection's own
//! loop is [`crate::ws`], which never calls back here.

use std::sync::Arc;

use tickstream_bus::Backoff;
use tickstream_model::Symbol;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::context::Context;
use crate::subscriptions::{dedup, diff, reassign};
use crate::venue::{Venue, WsConnection};
use crate::ws::{run_connection, LiveConn, Streams};

/// Re-reads the service's configuration (the same layered load as at start)
/// and returns its symbols, or an error message that names the bad key.
pub type ReloadFn = Arc<dyn Fn() -> Result<Vec<Symbol>, String> + Send + Sync>;

/// Longest list of symbols quoted in one log line; the rest are counted.
const LOG_SYMBOLS: usize = 20;

/// One live connection as the reload side sees it.
struct Slot {
    /// Its stream set, as last handed to the task.
    symbols: Vec<Symbol>,
    /// Where a new set goes; the task conflates (only the newest set matters).
    tx: watch::Sender<Arc<Vec<Symbol>>>,
}

/// The connections of a live venue and the symbols each carries.
pub(crate) struct Fleet {
    /// Open (or reconnecting) connections, in fill order.
    slots: Vec<Slot>,
    /// Label of the next connection opened (logs only; never reused).
    next_index: usize,
    /// Connection tasks, awaited at shutdown.
    pub(crate) tasks: Vec<JoinHandle<()>>,
}

impl Fleet {
    /// An empty fleet; connections are added with [`Fleet::open`].
    pub(crate) fn new() -> Self {
        Self {
            slots: Vec::new(),
            next_index: 0,
            tasks: Vec::new(),
        }
    }

    /// How many connections the venue keeps open.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Spawns a connection task that carries `symbols` (a live venue) and can be changed later.
    pub(crate) fn open<V: Venue>(
        &mut self,
        ctx: &Arc<Context<V>>,
        symbols: Vec<Symbol>,
        stop: &watch::Receiver<bool>,
    ) {
        let (tx, rx) = watch::channel(Arc::new(symbols.clone()));
        let index = self.next_index;
        self.next_index += 1;
        self.tasks.push(tokio::spawn(run_connection(
            ctx.clone(),
            index,
            Streams::Live(LiveConn::new(rx)),
            stop.clone(),
        )));
        self.slots.push(Slot { symbols, tx });
    }

    /// Spawns a connection task with a fixed URL and subscribe frames (a venue without live changes).
    pub(crate) fn open_fixed<V: Venue>(
        &mut self,
        ctx: &Arc<Context<V>>,
        conn: WsConnection,
        stop: &watch::Receiver<bool>,
    ) {
        let index = self.next_index;
        self.next_index += 1;
        self.tasks.push(tokio::spawn(run_connection(
            ctx.clone(),
            index,
            Streams::Fixed(conn),
            stop.clone(),
        )));
    }
}

/// Handles one SIGHUP: reloads, diffs, loads the new symbols' seqs, then
/// hands every connection its new set (opening and closing connections as the
/// per-connection limit requires). A failed reload keeps the running set.
pub(crate) async fn reload<V: Venue>(
    ctx: &Arc<Context<V>>,
    reload: Option<&ReloadFn>,
    fleet: &mut Fleet,
    stop: &watch::Receiver<bool>,
) {
    let source = ctx.venue.name();
    let (Some(reload), Some(_)) = (reload, ctx.venue.live()) else {
        tracing::warn!(
            source,
            "Received SIGHUP, but this ingestor applies configuration changes only on restart; ignoring it."
        );
        return;
    };
    tracing::info!(source, "Received SIGHUP; reloading the configuration.");
    let f = reload.clone();
    let loaded = match tokio::task::spawn_blocking(move || f()).await {
        Ok(r) => r,
        Err(e) => Err(format!("the reload task failed: {e}")),
    };
    let new = match loaded.map(dedup) {
        Ok(new) if !new.is_empty() => new,
        Ok(_) => {
            ctx.metrics.reload("error");
            tracing::error!(
                source,
                "Configuration reload has no symbols; keeping the running symbols."
            );
            return;
        }
        Err(e) => {
            ctx.metrics.reload("error");
            tracing::error!(source, error = %e, "Configuration reload failed; keeping the running symbols.");
            return;
        }
    };
    if !apply(ctx, new.clone(), fleet, stop, "configuration reload").await {
        tracing::info!(
            source,
            symbols = new.len(),
            "Configuration reloaded; symbols unchanged."
        );
    }
    ctx.metrics.reload("ok");
}

/// Changes the streamed symbols to `new` live: loads the added symbols' seqs,
/// then hands every connection its new set (opening and closing connections
/// as the per-connection limit requires). `why` is logged. Returns whether
/// anything changed (false too for a venue without live changes).
pub(crate) async fn apply<V: Venue>(
    ctx: &Arc<Context<V>>,
    new: Vec<Symbol>,
    fleet: &mut Fleet,
    stop: &watch::Receiver<bool>,
    why: &'static str,
) -> bool {
    let source = ctx.venue.name();
    let Some(live) = ctx.venue.live() else {
        return false;
    };
    let current = ctx.current_symbols();
    let change = diff(&current, &new);
    if change.is_empty() {
        return false;
    }
    // The added symbols' seqs come from Redis before any of their ticks can
    // arrive, so their seq continues from the last one ever published.
    load_seqs_retrying(ctx, &change.added).await;

    let mut sets: Vec<Vec<Symbol>> = fleet.slots.iter().map(|s| s.symbols.clone()).collect();
    let fresh = reassign(&mut sets, &change, live.max_symbols_per_connection());
    for (slot, set) in fleet.slots.iter_mut().zip(sets) {
        if slot.symbols != set {
            slot.symbols = set;
            slot.tx.send_replace(Arc::new(slot.symbols.clone()));
        }
    }
    let before = fleet.slots.len();
    // An emptied slot's task sees the empty set, closes its socket and ends.
    fleet.slots.retain(|s| !s.symbols.is_empty());
    let closed = before - fleet.slots.len();
    let opened = fresh.len();
    for set in fresh {
        fleet.open(ctx, set, stop);
    }
    ctx.status.set_expected_connections(fleet.len());
    ctx.metrics.connected.set(i64::from(ctx.status.stream_up()));
    ctx.set_symbols(new.clone());
    tracing::info!(
        source,
        why,
        added = change.added.len(),
        removed = change.removed.len(),
        added_symbols = %sample(&change.added),
        removed_symbols = %sample(&change.removed),
        symbols = new.len(),
        connections = fleet.len(),
        connections_opened = opened,
        connections_closed = closed,
        "Symbols changed."
    );
    true
}

/// Loads `symbols`' last seqs into the publisher, retrying with backoff until Redis answers.
async fn load_seqs_retrying<V: Venue>(ctx: &Context<V>, symbols: &[Symbol]) {
    if symbols.is_empty() {
        return;
    }
    let mut backoff = Backoff::new(
        crate::context::REDIS_RETRY_INITIAL,
        crate::context::REDIS_RETRY_MAX,
    );
    loop {
        match ctx.publisher.load_more_seqs(symbols).await {
            Ok(restored) => {
                tracing::info!(
                    source = ctx.venue.name(),
                    symbols = symbols.len(),
                    restored,
                    "Seq counters of the added symbols loaded from Redis."
                );
                return;
            }
            Err(e) => {
                if backoff.attempts() == 0 {
                    tracing::warn!(source = ctx.venue.name(), error = %e, "Cannot load the added symbols' seq counters; the symbol change waits for Redis.");
                }
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

/// `A,B,C` for logs, at most [`LOG_SYMBOLS`] names then `…(+N)`.
fn sample(symbols: &[Symbol]) -> String {
    let mut out: Vec<&str> = symbols
        .iter()
        .take(LOG_SYMBOLS)
        .map(Symbol::as_str)
        .collect();
    let more;
    if symbols.len() > LOG_SYMBOLS {
        more = format!("…(+{})", symbols.len() - LOG_SYMBOLS);
        out.push(&more);
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscriptions::tests::{many, syms};

    #[test]
    fn sample_truncates() {
        assert_eq!(sample(&syms("A,B")), "A,B");
        let s = sample(&many("X", 25));
        assert!(s.ends_with("…(+5)"), "{s}");
    }
}

//! Changing a running ingestor's symbols: SIGHUP → reload the configuration →
//! diff against the running set → new per-connection stream sets → each
//! connection task sends paced control frames (see [`crate::ws`]).
//!
//! The pure parts ([`diff`], [`reassign`], [`next_control`], [`Pacer`]) are
//! unit-tested here; the connection side lives in `ws.rs`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tickstream_bus::Backoff;
use tickstream_model::Symbol;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::venue::{SubscriptionChange, Venue};
use crate::ws::{run_connection, LiveConn, Streams};
use crate::Context;

/// Re-reads the service's configuration (the same layered load as at start)
/// and returns its symbols, or an error message that names the bad key.
pub type ReloadFn = Arc<dyn Fn() -> Result<Vec<Symbol>, String> + Send + Sync>;

/// Longest list of symbols quoted in one log line; the rest are counted.
const LOG_SYMBOLS: usize = 20;

/// What changed between two symbol sets.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SymbolDiff {
    /// In the new set only, in the new set's order.
    pub added: Vec<Symbol>,
    /// In the old set only, in the old set's order.
    pub removed: Vec<Symbol>,
}

impl SymbolDiff {
    /// True when the sets are equal, so a reload has nothing to do.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

/// The symbols added and removed going from `old` to `new` (duplicates ignored).
pub fn diff(old: &[Symbol], new: &[Symbol]) -> SymbolDiff {
    let old_set: HashSet<&Symbol> = old.iter().collect();
    let new_set: HashSet<&Symbol> = new.iter().collect();
    let mut seen = HashSet::new();
    let added = new
        .iter()
        .filter(|s| !old_set.contains(s) && seen.insert(*s))
        .cloned()
        .collect();
    let mut seen = HashSet::new();
    let removed = old
        .iter()
        .filter(|s| !new_set.contains(s) && seen.insert(*s))
        .cloned()
        .collect();
    SymbolDiff { added, removed }
}

/// `symbols` without repeats, first occurrence kept, so every symbol is on one connection only.
pub fn dedup(symbols: Vec<Symbol>) -> Vec<Symbol> {
    let mut seen = HashSet::new();
    symbols
        .into_iter()
        .filter(|s| seen.insert(s.clone()))
        .collect()
}

/// The start-up split: consecutive chunks of at most `capacity` symbols, one per connection.
pub fn partition(symbols: &[Symbol], capacity: usize) -> Vec<Vec<Symbol>> {
    symbols
        .chunks(capacity.max(1))
        .map(<[Symbol]>::to_vec)
        .collect()
}

/// Applies `diff` to the connections' stream sets `slots`: removed symbols leave
/// whichever connection has them, added ones fill existing connections in order
/// up to `capacity`, and the rest are returned as the sets of new connections.
/// A slot left empty is for the caller to close.
pub fn reassign(slots: &mut [Vec<Symbol>], diff: &SymbolDiff, capacity: usize) -> Vec<Vec<Symbol>> {
    let capacity = capacity.max(1);
    let removed: HashSet<&Symbol> = diff.removed.iter().collect();
    for slot in slots.iter_mut() {
        slot.retain(|s| !removed.contains(s));
    }
    let mut added = diff.added.iter().cloned();
    for slot in slots.iter_mut() {
        let room = capacity.saturating_sub(slot.len());
        slot.extend(added.by_ref().take(room));
    }
    let rest: Vec<Symbol> = added.collect();
    partition(&rest, capacity)
}

/// The next control message that moves an open connection from `applied`
/// toward `desired`: unsubscribes first (so the connection never holds more
/// than its limit), at most `per_message` symbols in it; `None` when in step.
pub fn next_control(
    applied: &[Symbol],
    desired: &[Symbol],
    per_message: usize,
) -> Option<(SubscriptionChange, Vec<Symbol>)> {
    let per_message = per_message.max(1);
    let want: HashSet<&Symbol> = desired.iter().collect();
    let drop: Vec<Symbol> = applied
        .iter()
        .filter(|s| !want.contains(s))
        .take(per_message)
        .cloned()
        .collect();
    if !drop.is_empty() {
        return Some((SubscriptionChange::Unsubscribe, drop));
    }
    let have: HashSet<&Symbol> = applied.iter().collect();
    let add: Vec<Symbol> = desired
        .iter()
        .filter(|s| !have.contains(s))
        .take(per_message)
        .cloned()
        .collect();
    (!add.is_empty()).then_some((SubscriptionChange::Subscribe, add))
}

/// Applies a sent control message to the connection's `applied` set.
pub fn apply_change(applied: &mut Vec<Symbol>, change: SubscriptionChange, symbols: &[Symbol]) {
    match change {
        SubscriptionChange::Unsubscribe => {
            let gone: HashSet<&Symbol> = symbols.iter().collect();
            applied.retain(|s| !gone.contains(s));
        }
        SubscriptionChange::Subscribe => {
            let have: HashSet<Symbol> = applied.iter().cloned().collect();
            applied.extend(symbols.iter().filter(|s| !have.contains(*s)).cloned());
        }
    }
}

/// Spaces the messages one connection sends to the upstream by at least
/// `interval`, counting pongs and heartbeats too (Binance counts PING, PONG
/// and JSON control messages against its 5 per second).
#[derive(Debug, Clone)]
pub struct Pacer {
    /// Least time between two counted messages.
    interval: Duration,
    /// When the last counted message went out.
    last: Option<Instant>,
}

impl Pacer {
    /// A pacer that has sent nothing yet.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: None,
        }
    }

    /// The earliest time the next control message may go out (`now` if already allowed).
    pub fn ready_at(&self, now: Instant) -> Instant {
        self.last
            .map_or(now, |last| (last + self.interval).max(now))
    }

    /// Records a counted message sent at `at`.
    pub fn sent(&mut self, at: Instant) {
        self.last = Some(self.last.map_or(at, |l| l.max(at)));
    }
}

/// SIGHUP as a stream of reload requests; several signals before one is handled coalesce.
pub(crate) struct Hangups {
    /// `None` when the handler could not be installed (or off Unix): never fires.
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangups {
    /// Installs the SIGHUP handler now, so a SIGHUP never kills the service with the default action.
    pub(crate) fn install(source: &'static str) -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::hangup()) {
                Ok(s) => Self { signal: Some(s) },
                Err(e) => {
                    tracing::warn!(source, error = %e, "Cannot watch SIGHUP; symbols change only on restart.");
                    Self { signal: None }
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = source;
            Self {}
        }
    }

    /// Resolves at the next SIGHUP; pending forever if there is no handler.
    pub(crate) async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(s) = self.signal.as_mut() {
            if s.recv().await.is_some() {
                return;
            }
            self.signal = None;
        }
        std::future::pending::<()>().await;
    }
}

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
        conn: crate::WsConnection,
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
    let (Some(reload), Some(live)) = (reload, ctx.venue.live()) else {
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
    let current = ctx.current_symbols();
    let change = diff(&current, &new);
    if change.is_empty() {
        ctx.metrics.reload("ok");
        tracing::info!(
            source,
            symbols = current.len(),
            "Configuration reloaded; symbols unchanged."
        );
        return;
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
    ctx.metrics.reload("ok");
    tracing::info!(
        source,
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
}

/// Loads `symbols`' last seqs into the publisher, retrying with backoff until Redis answers.
async fn load_seqs_retrying<V: Venue>(ctx: &Context<V>, symbols: &[Symbol]) {
    if symbols.is_empty() {
        return;
    }
    let mut backoff = Backoff::new(crate::REDIS_RETRY_INITIAL, crate::REDIS_RETRY_MAX);
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

    fn syms(list: &str) -> Vec<Symbol> {
        Symbol::parse_list(list).unwrap()
    }

    fn many(prefix: &str, n: usize) -> Vec<Symbol> {
        (0..n)
            .map(|i| Symbol::parse(&format!("{prefix}{i}USDT")).unwrap())
            .collect()
    }

    #[test]
    fn diff_keeps_order_and_ignores_repeats() {
        let d = diff(&syms("A,B,C"), &syms("C,D,B,E,D"));
        assert_eq!(d.added, syms("D,E"));
        assert_eq!(d.removed, syms("A"));
        assert!(!d.is_empty());
        assert!(diff(&syms("A,B"), &syms("B,A")).is_empty());
        assert_eq!(dedup(syms("A,B,A,C,B")), syms("A,B,C"));
    }

    #[test]
    fn reassign_table() {
        // (slots before, old→new, capacity) → (slots after, new connections)
        struct Case {
            slots: Vec<&'static str>,
            new: &'static str,
            cap: usize,
            after: Vec<&'static str>,
            fresh: Vec<&'static str>,
        }
        let cases = [
            // Added symbols fill the first connection with room.
            Case {
                slots: vec!["A,B"],
                new: "A,B,C",
                cap: 3,
                after: vec!["A,B,C"],
                fresh: vec![],
            },
            // Past the limit a new connection opens.
            Case {
                slots: vec!["A,B"],
                new: "A,B,C,D,E,F,G",
                cap: 3,
                after: vec!["A,B,C"],
                fresh: vec!["D,E,F", "G"],
            },
            // Removals free room that additions reuse before any new connection.
            Case {
                slots: vec!["A,B,C", "D"],
                new: "A,C,D,E,F",
                cap: 3,
                after: vec!["A,C,E", "D,F"],
                fresh: vec![],
            },
            // A connection left with nothing is emptied (the caller closes it).
            Case {
                slots: vec!["A,B,C", "D"],
                new: "A,B,C",
                cap: 3,
                after: vec!["A,B,C", ""],
                fresh: vec![],
            },
        ];
        for c in cases {
            let mut slots: Vec<Vec<Symbol>> = c
                .slots
                .iter()
                .map(|s| if s.is_empty() { vec![] } else { syms(s) })
                .collect();
            let old: Vec<Symbol> = slots.concat();
            let d = diff(&old, &syms(c.new));
            let fresh = reassign(&mut slots, &d, c.cap);
            let show = |v: &[Vec<Symbol>]| -> Vec<String> {
                v.iter()
                    .map(|s| s.iter().map(Symbol::as_str).collect::<Vec<_>>().join(","))
                    .collect()
            };
            assert_eq!(show(&slots), c.after, "{:?} → {}", c.slots, c.new);
            assert_eq!(show(&fresh), c.fresh, "{:?} → {}", c.slots, c.new);
        }
    }

    #[test]
    fn crossing_1024_streams_opens_a_second_connection() {
        let start = many("S", 1000);
        let mut slots = partition(&start, 1024);
        assert_eq!(slots.len(), 1);
        let mut new = start.clone();
        new.extend(many("N", 100));
        let fresh = reassign(&mut slots, &diff(&start, &new), 1024);
        assert_eq!(slots[0].len(), 1024);
        assert_eq!(fresh.len(), 1);
        assert_eq!(fresh[0].len(), 76);
        assert_eq!(partition(&many("S", 2049), 1024).len(), 3);
    }

    #[test]
    fn next_control_unsubscribes_first_then_subscribes_in_chunks() {
        let applied = syms("A,B,C");
        let desired = syms("A,D,E,F,G,H");
        let mut state = applied.clone();
        let mut sent = Vec::new();
        while let Some((change, list)) = next_control(&state, &desired, 2) {
            assert!(list.len() <= 2);
            apply_change(&mut state, change, &list);
            sent.push((change, list));
        }
        use SubscriptionChange::*;
        assert_eq!(
            sent,
            vec![
                (Unsubscribe, syms("B,C")),
                (Subscribe, syms("D,E")),
                (Subscribe, syms("F,G")),
                (Subscribe, syms("H")),
            ]
        );
        let mut sorted = state.clone();
        sorted.sort();
        let mut want = desired.clone();
        want.sort();
        assert_eq!(sorted, want);
        assert_eq!(next_control(&desired, &desired, 5), None);
    }

    #[test]
    fn pacer_keeps_every_one_second_window_within_five_messages() {
        // Control messages wanted all at once, with server pings (answered
        // at once, unpaced) landing among them: the limit counts both.
        let interval = Duration::from_millis(300);
        let t0 = Instant::now();
        let mut pacer = Pacer::new(interval);
        let mut sent = Vec::new();
        let pongs = [
            t0 + Duration::from_millis(10),
            t0 + Duration::from_millis(610),
            t0 + Duration::from_millis(1_900),
        ];
        let mut now = t0;
        for _ in 0..20 {
            let at = pacer.ready_at(now);
            for p in pongs {
                if p > now && p <= at {
                    pacer.sent(p);
                    sent.push(p);
                }
            }
            let at = pacer.ready_at(at);
            pacer.sent(at);
            sent.push(at);
            now = at;
        }
        sent.sort();
        for (i, first) in sent.iter().enumerate() {
            let in_window = sent[i..]
                .iter()
                .take_while(|t| **t < *first + Duration::from_secs(1))
                .count();
            assert!(in_window <= 5, "{in_window} messages within 1 s from #{i}");
        }
        // And it does not dawdle: 20 messages in about 20 intervals.
        assert!(now - t0 <= interval * 21);
        assert_eq!(Pacer::new(interval).ready_at(t0), t0);
    }

    #[test]
    fn sample_truncates() {
        assert_eq!(sample(&syms("A,B")), "A,B");
        let s = sample(&many("X", 25));
        assert!(s.ends_with("…(+5)"), "{s}");
    }
}

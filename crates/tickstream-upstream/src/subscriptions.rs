//! The pure arithmetic of changing a running ingestor's symbols: diffing two
//! symbol sets, splitting symbols over connections within a per-connection
//! limit, the next control message that brings one connection in step, and
//! pacing messages under a venue's rate limit. No I/O, so all of it is
//! unit-tested here; [`crate::ws`] and [`crate::live`] use it.

use std::collections::HashSet;
use std::time::Duration;

use tickstream_model::Symbol;
use tokio::time::Instant;

use crate::venue::SubscriptionChange;

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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `A,B,C` as symbols.
    pub(crate) fn syms(list: &str) -> Vec<Symbol> {
        Symbol::parse_list(list).unwrap()
    }

    /// `n` distinct symbols `<prefix><i>USDT`.
    pub(crate) fn many(prefix: &str, n: usize) -> Vec<Symbol> {
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
}

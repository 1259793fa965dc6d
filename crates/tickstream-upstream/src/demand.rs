//! On-demand symbols (pure): from the gateways' interest leases to the set a
//! live venue should stream, its pinned (configured) symbols plus the allowed
//! symbols someone wants, each kept for a grace period after the last want.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use tickstream_model::Symbol;

/// What an on-demand ingestor streams, and since when each extra symbol is unwanted.
#[derive(Debug)]
pub struct OnDemand {
    /// Always streamed: the configured symbols (a SIGHUP reload replaces them).
    pinned: Vec<Symbol>,
    /// The symbols it may add on demand.
    allowed: HashSet<Symbol>,
    /// How long an extra symbol stays after the last time it was wanted.
    grace: Duration,
    /// When each extra symbol was last seen wanted.
    last_wanted: HashMap<Symbol, Instant>,
}

impl OnDemand {
    /// Streams `pinned`, plus symbols of `allowed` while wanted and `grace` after.
    pub fn new(
        pinned: Vec<Symbol>,
        allowed: impl IntoIterator<Item = Symbol>,
        grace: Duration,
    ) -> Self {
        Self {
            pinned,
            allowed: allowed.into_iter().collect(),
            grace,
            last_wanted: HashMap::new(),
        }
    }

    /// Replaces the pinned symbols (after a reload).
    pub fn set_pinned(&mut self, pinned: Vec<Symbol>) {
        self.pinned = pinned;
    }

    /// The set to stream at `now` given the symbols wanted now (raw names;
    /// invalid or not allowed ones are ignored): pinned first, then the extras sorted.
    pub fn wanted(&mut self, interest: &[String], now: Instant) -> Vec<Symbol> {
        for raw in interest {
            if let Ok(symbol) = Symbol::parse(raw) {
                if self.allowed.contains(&symbol) {
                    self.last_wanted.insert(symbol, now);
                }
            }
        }
        let grace = self.grace;
        self.last_wanted
            .retain(|_, at| now.saturating_duration_since(*at) < grace);
        let mut extras: Vec<Symbol> = self
            .last_wanted
            .keys()
            .filter(|s| !self.pinned.contains(s))
            .cloned()
            .collect();
        extras.sort();
        let mut out = self.pinned.clone();
        out.extend(extras);
        out
    }
}

/// Whether `a` and `b` hold the same symbols, whatever the order.
pub fn same_set(a: &[Symbol], b: &[Symbol]) -> bool {
    let a: HashSet<&Symbol> = a.iter().collect();
    let b: HashSet<&Symbol> = b.iter().collect();
    a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syms(list: &[&str]) -> Vec<Symbol> {
        list.iter().map(|s| Symbol::parse(s).unwrap()).collect()
    }

    #[test]
    fn adds_allowed_wanted_symbols_and_drops_them_after_the_grace() {
        let t0 = Instant::now();
        let mut d = OnDemand::new(
            syms(&["BNBBTC"]),
            syms(&["ETHUSDT", "SOLUSDT"]),
            Duration::from_secs(2),
        );
        assert_eq!(d.wanted(&[], t0), syms(&["BNBBTC"]));
        let want = vec![
            "ethusdt".to_owned(),
            "XRPUSDT".to_owned(),
            "bad symbol!".to_owned(),
        ];
        assert_eq!(d.wanted(&want, t0), syms(&["BNBBTC", "ETHUSDT"]));
        // Still within the grace after the last want.
        assert_eq!(
            d.wanted(&[], t0 + Duration::from_millis(1900)),
            syms(&["BNBBTC", "ETHUSDT"])
        );
        assert_eq!(
            d.wanted(&[], t0 + Duration::from_secs(2)),
            syms(&["BNBBTC"])
        );
        // A pinned symbol that is also wanted appears once.
        let both = vec!["BNBBTC".to_owned(), "SOLUSDT".to_owned()];
        d.set_pinned(syms(&["BNBBTC"]));
        assert_eq!(d.wanted(&both, t0), syms(&["BNBBTC", "SOLUSDT"]));
        assert!(same_set(&syms(&["A", "B"]), &syms(&["B", "A"])));
        assert!(!same_set(&syms(&["A"]), &syms(&["A", "B"])));
    }
}

//! The market mood: breadth and a fear-and-greed index over the universe.
//!
//! Inputs per symbol with fresh data (a trade or tick within the freshness
//! window): its day return `r = last / open of the UTC day's bar - 1`, the
//! volatility ratio (mean |log return| of its newest 5 closed bars over that
//! of up to 60, from 20 returns on) and its last volume ratio. Components,
//! each 0..100, averaged over those available:
//! - momentum `M = clamp(50 + 10 * mean(r in %), 0, 100)` (+5 % on average is 100);
//! - breadth `B = 100 * advancing / (advancing + declining)`, 50 when both are 0;
//! - volatility `V = clamp(50 - 50 * (mean ratio - 1), 0, 100)`: calmer than
//!   usual is greed, twice as wild is fear 0;
//! - volume surge `S = 50 + 50 * clamp(mean volume ratio - 1, -1, 1) * sign(mean r)`:
//!   heavy volume pushes the index in the direction prices move.
//!
//! `market_fear_greed = round(mean of components)`; mood: < 25
//! `extreme_fear`, < 45 `fear`, <= 55 `neutral`, <= 75 `greed`, else
//! `extreme_greed`; sentiment: < 45 `bearish`, > 55 `bullish`, else
//! `neutral`. `confidence` = fresh symbols / universe. `trending_topics`: the
//! (up to 5) fresh symbols with the largest |r|, non-zero, largest first.

use serde::Serialize;

/// Symbols listed in `trending_topics` at most.
pub const TRENDING_MAX: usize = 5;

/// What the mood needs from one symbol.
#[derive(Debug, Clone, PartialEq)]
pub struct SymbolMood {
    /// The symbol.
    pub symbol: String,
    /// Whether a trade or tick arrived within the freshness window.
    pub fresh: bool,
    /// Open of the UTC day's bar.
    pub day_open: f64,
    /// Last price.
    pub last: f64,
    /// Volatility ratio, if enough bars.
    pub volatility_ratio: Option<f64>,
    /// Volume ratio of the last closed bar, if defined.
    pub volume_ratio: Option<f64>,
}

/// Advancing, declining and unchanged symbols since the day's open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct Breadth {
    /// Above the day's open.
    pub advancing: usize,
    /// Below the day's open.
    pub declining: usize,
    /// At the day's open.
    pub unchanged: usize,
}

/// The `sentiment` payload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mood {
    /// `bullish`, `neutral` or `bearish`.
    pub overall_sentiment: &'static str,
    /// Fear-and-greed index 0..100.
    pub market_fear_greed: u8,
    /// `extreme_fear` .. `extreme_greed`.
    pub market_mood: &'static str,
    /// Share of the universe with fresh data, 0..1.
    pub confidence: f64,
    /// The symbols moving most today.
    pub trending_topics: Vec<String>,
    /// RFC 3339 time of computation.
    pub timestamp: String,
    /// Breadth over the fresh symbols.
    pub breadth: Breadth,
}

fn mean(xs: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// Computes the mood of a universe; `timestamp` is stamped as given.
pub fn compute(universe: &[SymbolMood], timestamp: String) -> Mood {
    let fresh: Vec<&SymbolMood> = universe
        .iter()
        .filter(|s| s.fresh && s.day_open > 0.0 && s.last > 0.0)
        .collect();
    let ret = |s: &SymbolMood| s.last / s.day_open - 1.0;
    let mut breadth = Breadth::default();
    for s in &fresh {
        match s.last.partial_cmp(&s.day_open) {
            Some(std::cmp::Ordering::Greater) => breadth.advancing += 1,
            Some(std::cmp::Ordering::Less) => breadth.declining += 1,
            _ => breadth.unchanged += 1,
        }
    }
    let mut components = Vec::with_capacity(4);
    let mean_r = mean(fresh.iter().map(|s| ret(s)));
    if let Some(r) = mean_r {
        components.push((50.0 + 10.0 * r * 100.0).clamp(0.0, 100.0));
        let moved = breadth.advancing + breadth.declining;
        components.push(if moved == 0 {
            50.0
        } else {
            100.0 * breadth.advancing as f64 / moved as f64
        });
    }
    if let Some(q) = mean(fresh.iter().filter_map(|s| s.volatility_ratio)) {
        components.push((50.0 - 50.0 * (q - 1.0)).clamp(0.0, 100.0));
    }
    if let Some(v) = mean(fresh.iter().filter_map(|s| s.volume_ratio)) {
        let dir = mean_r.map_or(0.0, |r| {
            if r > 0.0 {
                1.0
            } else if r < 0.0 {
                -1.0
            } else {
                0.0
            }
        });
        components.push(50.0 + 50.0 * (v - 1.0).clamp(-1.0, 1.0) * dir);
    }
    let index = mean(components.into_iter())
        .unwrap_or(50.0)
        .round()
        .clamp(0.0, 100.0) as u8;
    let mut movers: Vec<(&SymbolMood, f64)> = fresh
        .iter()
        .map(|s| (*s, ret(s).abs()))
        .filter(|(_, m)| *m > 0.0)
        .collect();
    movers.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then_with(|| a.0.symbol.cmp(&b.0.symbol))
    });
    let confidence = if universe.is_empty() {
        0.0
    } else {
        fresh.len() as f64 / universe.len() as f64
    };
    Mood {
        overall_sentiment: match index {
            0..=44 => "bearish",
            45..=55 => "neutral",
            _ => "bullish",
        },
        market_fear_greed: index,
        market_mood: match index {
            0..=24 => "extreme_fear",
            25..=44 => "fear",
            45..=55 => "neutral",
            56..=75 => "greed",
            _ => "extreme_greed",
        },
        confidence,
        trending_topics: movers
            .into_iter()
            .take(TRENDING_MAX)
            .map(|(s, _)| s.symbol.clone())
            .collect(),
        timestamp,
        breadth,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(name: &str, open: f64, last: f64) -> SymbolMood {
        SymbolMood {
            symbol: name.into(),
            fresh: true,
            day_open: open,
            last,
            volatility_ratio: None,
            volume_ratio: None,
        }
    }

    #[test]
    fn worked_example() {
        // Returns +2 %, -1 %, 0 %, and one stale symbol.
        let mut stale = sym("OLD", 1.0, 2.0);
        stale.fresh = false;
        let mut a = sym("AAA", 100.0, 102.0);
        a.volatility_ratio = Some(0.5);
        a.volume_ratio = Some(2.0);
        let mut b = sym("BBB", 100.0, 99.0);
        b.volatility_ratio = Some(1.5);
        let universe = vec![a, b, sym("CCC", 5.0, 5.0), stale];
        let m = compute(&universe, "t".into());
        // M = 50 + 10 * (1/3 %) = 53.33; B = 100 * 1/2 = 50; V = 50 - 50 * 0 = 50;
        // S = 50 + 50 * 1 * (+1) = 100 → mean 63.33 → 63.
        assert_eq!(m.market_fear_greed, 63);
        assert_eq!((m.overall_sentiment, m.market_mood), ("bullish", "greed"));
        assert_eq!(
            m.breadth,
            Breadth {
                advancing: 1,
                declining: 1,
                unchanged: 1
            }
        );
        assert_eq!(m.confidence, 0.75);
        assert_eq!(m.trending_topics, ["AAA", "BBB"]);
    }

    #[test]
    fn nothing_fresh_is_neutral_with_no_confidence() {
        let m = compute(&[], "t".into());
        assert_eq!(
            (m.market_fear_greed, m.market_mood, m.confidence),
            (50, "neutral", 0.0)
        );
        assert!(m.trending_topics.is_empty());
    }

    #[test]
    fn a_crash_is_extreme_fear() {
        let mut a = sym("AAA", 100.0, 90.0);
        a.volatility_ratio = Some(3.0);
        a.volume_ratio = Some(4.0);
        let m = compute(&[a], "t".into());
        // M 0, B 0, V 0, S 0.
        assert_eq!(
            (m.market_fear_greed, m.market_mood, m.overall_sentiment),
            (0, "extreme_fear", "bearish")
        );
    }
}

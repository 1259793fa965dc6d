//! OHLCV bars on UTC boundaries of the exchange timestamp, for one symbol.
//!
//! Pure and clock-free: every call takes the exchange time of the input and
//! the arrival time (`now_ms`, our clock), so the boundary rules are tested on
//! explicit timestamps. The rules:
//! - A bar covers `[start, start + interval)`; `start` is the exchange
//!   timestamp floored to the interval (epoch ms, so UTC midnight for `1d`).
//! - Once a series has seen its first input there is always a bar in
//!   progress. When the clock reaches its end it is closed (a `Closed` event)
//!   and the next one starts flat at the previous close with volume 0; if no
//!   input arrives it closes like that, so there are no holes.
//! - An input for an already closed bar that arrives no later than
//!   `end + grace` corrects that bar (a `Corrected` event); later ones are
//!   counted and skipped. A closed bar is `Final` (what indicators consume)
//!   once the clock passes `end + grace`.
//! - Trades set volume to the sum of sizes; ticks (quotes, no size) count one
//!   each: tick volume, never the ticks' rolling 24 h `volume`. While a
//!   symbol has trades, its ticks do not touch its bars (see the engine).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// A candle interval; the names are the `candles:` channel's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Interval {
    /// One minute.
    #[serde(rename = "1m")]
    M1,
    /// Five minutes.
    #[serde(rename = "5m")]
    M5,
    /// Fifteen minutes.
    #[serde(rename = "15m")]
    M15,
    /// One hour.
    #[serde(rename = "1h")]
    H1,
    /// One UTC day.
    #[serde(rename = "1d")]
    D1,
}

impl Interval {
    /// Every interval, in the order bars are built and published.
    pub const ALL: [Interval; 5] = [
        Interval::M1,
        Interval::M5,
        Interval::M15,
        Interval::H1,
        Interval::D1,
    ];

    /// Length in milliseconds.
    pub const fn ms(self) -> i64 {
        match self {
            Interval::M1 => 60_000,
            Interval::M5 => 300_000,
            Interval::M15 => 900_000,
            Interval::H1 => 3_600_000,
            Interval::D1 => 86_400_000,
        }
    }

    /// The name in channels and payloads (`1m`).
    pub const fn name(self) -> &'static str {
        match self {
            Interval::M1 => "1m",
            Interval::M5 => "5m",
            Interval::M15 => "15m",
            Interval::H1 => "1h",
            Interval::D1 => "1d",
        }
    }

    /// Parses a name from [`Interval::name`].
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|i| i.name() == raw)
    }

    /// The start of the bar holding `ts_ms`, on the UTC grid.
    pub const fn floor(self, ts_ms: i64) -> i64 {
        ts_ms.div_euclid(self.ms()) * self.ms()
    }
}

/// What a bar's prices and volume were built from, so consumers know what `volume` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Trades: volume is the sum of trade sizes.
    Trades,
    /// Ticks only: volume is the number of ticks (tick volume).
    Ticks,
}

/// One OHLCV bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    /// Interval of the bar.
    pub interval: Interval,
    /// Start, epoch ms (inclusive).
    pub start_ms: i64,
    /// First price in the bar (previous close when it had no input).
    pub open: f64,
    /// Highest price.
    pub high: f64,
    /// Lowest price.
    pub low: f64,
    /// Last price.
    pub close: f64,
    /// Trade sizes summed, or ticks counted (see [`Source`]).
    pub volume: f64,
    /// Inputs (trades or ticks) in the bar.
    pub trades: u64,
    /// Whether the bar has ended.
    pub closed: bool,
    /// What it was built from.
    pub source: Source,
}

impl Bar {
    /// End, epoch ms (exclusive): the next bar's start.
    pub fn end_ms(&self) -> i64 {
        self.start_ms + self.interval.ms()
    }

    /// A bar with no input yet: flat at `price`, volume 0.
    pub fn flat(interval: Interval, start_ms: i64, price: f64, source: Source) -> Self {
        Self {
            interval,
            start_ms,
            open: price,
            high: price,
            low: price,
            close: price,
            volume: 0.0,
            trades: 0,
            closed: false,
            source,
        }
    }

    /// Adds one input; the first one of the bar sets the open.
    pub fn apply(&mut self, price: f64, volume: f64) {
        if self.trades == 0 {
            self.open = price;
            self.high = price;
            self.low = price;
        } else {
            self.high = self.high.max(price);
            self.low = self.low.min(price);
        }
        self.close = price;
        self.volume += volume;
        self.trades += 1;
    }
}

/// The candle JSON as published and stored (`start`/`end` RFC 3339, UTC).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CandleJson {
    symbol: String,
    interval: Interval,
    #[serde(with = "tickstream_model::time::serde_rfc3339")]
    start: chrono::DateTime<chrono::Utc>,
    #[serde(with = "tickstream_model::time::serde_rfc3339")]
    end: chrono::DateTime<chrono::Utc>,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
    trades: u64,
    closed: bool,
    source: Source,
}

/// Why stored or received candle JSON is unusable.
#[derive(Debug, thiserror::Error)]
pub enum CandleError {
    /// Not the candle JSON.
    #[error("invalid candle JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Parsed but inconsistent (a start off the grid, a bad price).
    #[error("invalid candle: {0}")]
    Field(&'static str),
}

impl Bar {
    /// The `candle` event payload for `symbol`.
    pub fn to_json(&self, symbol: &str) -> String {
        let at = |ms| chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
        let json = CandleJson {
            symbol: symbol.to_owned(),
            interval: self.interval,
            start: at(self.start_ms),
            end: at(self.end_ms()),
            open: self.open,
            high: self.high,
            low: self.low,
            close: self.close,
            volume: self.volume,
            trades: self.trades,
            closed: self.closed,
            source: self.source,
        };
        // Plain data with finite numbers: serialization cannot fail.
        serde_json::to_string(&json).unwrap_or_default()
    }

    /// Parses a payload written by [`Bar::to_json`], checking it is usable; returns the symbol too.
    pub fn from_json(raw: &[u8]) -> Result<(String, Bar), CandleError> {
        let j: CandleJson = serde_json::from_slice(raw)?;
        let start_ms = j.start.timestamp_millis();
        if j.interval.floor(start_ms) != start_ms {
            return Err(CandleError::Field("start is not on the interval's grid"));
        }
        let prices = [j.open, j.high, j.low, j.close];
        if prices.iter().any(|p| !p.is_finite() || *p <= 0.0) || j.low > j.high {
            return Err(CandleError::Field(
                "prices must be positive with low <= high",
            ));
        }
        if !j.volume.is_finite() || j.volume < 0.0 {
            return Err(CandleError::Field("volume must be a non-negative number"));
        }
        Ok((
            j.symbol,
            Bar {
                interval: j.interval,
                start_ms,
                open: j.open,
                high: j.high,
                low: j.low,
                close: j.close,
                volume: j.volume,
                trades: j.trades,
                closed: j.closed,
                source: j.source,
            },
        ))
    }
}

/// What happened to a series; the engine publishes, stores or feeds indicators from these.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BarEvent {
    /// A bar ended (published and stored at once).
    Closed(Bar),
    /// A closed bar took a late input within the grace (republished).
    Corrected(Bar),
    /// A closed bar can no longer change: indicators take it.
    Final(Bar),
}

/// Why an input was not applied; counted by the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// For a bar closed longer than the grace ago (or older than any kept).
    Late,
    /// Ticks of a symbol whose bars come from trades.
    TickIgnored,
}

/// The timing rules every series follows, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// How long after its end a closed bar still takes late inputs (ms).
    pub grace_ms: i64,
    /// Most flat bars produced for one silence; older ones would be trimmed from storage anyway.
    pub max_fill: usize,
}

/// One input to a bar: a trade, or a tick counted as volume 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Input {
    /// Exchange time, epoch ms.
    pub ts_ms: i64,
    /// Price.
    pub price: f64,
    /// Trade size, or 1 for a tick.
    pub volume: f64,
    /// Trade or tick.
    pub source: Source,
}

/// One symbol's bars of one interval: the bar in progress and the closed bars still correctable.
#[derive(Debug, Clone)]
pub struct Series {
    /// The interval.
    interval: Interval,
    /// The bar in progress; `None` before the first input or restored bar.
    open: Option<Bar>,
    /// Closed bars not yet final (within the grace), oldest first.
    pending: VecDeque<Bar>,
    /// Whether the bar in progress changed since it was last published.
    dirty: bool,
}

impl Series {
    /// An empty series; it starts with its first input.
    pub fn new(interval: Interval) -> Self {
        Self {
            interval,
            open: None,
            pending: VecDeque::new(),
            dirty: false,
        }
    }

    /// The interval.
    pub fn interval(&self) -> Interval {
        self.interval
    }

    /// The bar in progress.
    pub fn open_bar(&self) -> Option<&Bar> {
        self.open.as_ref()
    }

    /// Continues from a stored bar: the bar in progress if it was open, else the one after it, flat.
    pub fn restore(&mut self, stored: Bar) {
        let bar = if stored.closed {
            Bar::flat(self.interval, stored.end_ms(), stored.close, stored.source)
        } else {
            stored
        };
        self.open = Some(bar);
        self.dirty = false;
    }

    /// Switches the bar in progress to `source`: it restarts from the next input (open, volume and count).
    pub fn switch_to(&mut self, source: Source) {
        if let Some(bar) = self.open.as_mut() {
            if bar.source != source {
                bar.source = source;
                bar.volume = 0.0;
                // The next input is the bar's first: it sets the open, high and low.
                bar.trades = 0;
            }
        }
    }

    /// Whether an input with exchange time `ts_ms` arriving at `now_ms` would be applied (not late).
    pub fn accepts(&self, ts_ms: i64, now_ms: i64, rules: Rules) -> bool {
        let start = self.interval.floor(ts_ms);
        match self.open {
            None => true,
            Some(open) if start >= open.start_ms => true,
            Some(_) => self
                .pending
                .iter()
                .any(|b| b.start_ms == start && now_ms <= b.end_ms() + rules.grace_ms),
        }
    }

    /// Takes the bar in progress for publishing if it changed since last time.
    pub fn take_dirty(&mut self) -> Option<Bar> {
        if self.dirty {
            self.dirty = false;
            self.open
        } else {
            None
        }
    }

    /// Closes every bar whose end the clock (`now_ms`) has reached and finalizes
    /// closed bars past the grace. At most `rules.max_fill` flat bars are
    /// produced for a long silence.
    pub fn advance(&mut self, now_ms: i64, rules: Rules, out: &mut Vec<BarEvent>) {
        let Rules { grace_ms, max_fill } = rules;
        if let Some(mut bar) = self.open {
            if now_ms >= bar.end_ms() {
                let iv = self.interval.ms();
                let behind = (now_ms - bar.end_ms()) / iv;
                // Close the bar in progress, then the flat ones up to now (bounded).
                bar.closed = true;
                self.close(bar, out);
                let mut next = bar.end_ms();
                let skip = behind.saturating_sub(max_fill as i64);
                if skip > 0 {
                    next += skip * iv;
                }
                while next + iv <= now_ms {
                    let mut flat = Bar::flat(self.interval, next, bar.close, bar.source);
                    flat.closed = true;
                    self.close(flat, out);
                    next += iv;
                }
                self.open = Some(Bar::flat(self.interval, next, bar.close, bar.source));
                self.dirty = true;
            }
        }
        while let Some(first) = self.pending.front() {
            if now_ms > first.end_ms() + grace_ms {
                out.push(BarEvent::Final(*first));
                self.pending.pop_front();
            } else {
                break;
            }
        }
    }

    fn close(&mut self, bar: Bar, out: &mut Vec<BarEvent>) {
        out.push(BarEvent::Closed(bar));
        self.pending.push_back(bar);
        // Bounded: only bars within the grace are kept, and a silence of
        // max_fill bars cannot all be within it; keep the newest few.
        while self.pending.len() > 64 {
            if let Some(old) = self.pending.pop_front() {
                out.push(BarEvent::Final(old));
            }
        }
    }

    /// Applies one input with exchange time `ts_ms` arriving at `now_ms`.
    ///
    /// `volume` is the trade size, or 1 for a tick. Inputs ahead of our clock
    /// close bars up to their own (the exchange's clock is ahead of ours).
    pub fn apply(
        &mut self,
        input: Input,
        now_ms: i64,
        rules: Rules,
        out: &mut Vec<BarEvent>,
    ) -> Result<(), Skip> {
        let Input {
            ts_ms,
            price,
            volume,
            source,
        } = input;
        let start = self.interval.floor(ts_ms);
        let Some(open) = self.open else {
            let mut bar = Bar::flat(self.interval, start, price, source);
            bar.apply(price, volume);
            self.open = Some(bar);
            self.dirty = true;
            return Ok(());
        };
        if start > open.start_ms {
            self.advance(start, rules, out);
        }
        match self.open.as_mut() {
            Some(bar) if bar.start_ms == start => {
                bar.apply(price, volume);
                self.dirty = true;
                return Ok(());
            }
            _ => {}
        }
        // Older than the bar in progress: a closed bar, correctable within the grace.
        let Some(bar) = self.pending.iter_mut().find(|b| b.start_ms == start) else {
            return Err(Skip::Late);
        };
        if now_ms > bar.end_ms() + rules.grace_ms {
            return Err(Skip::Late);
        }
        bar.apply(price, volume);
        out.push(BarEvent::Corrected(*bar));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: i64 = 2_000;
    const T0: i64 = 1_764_892_800_000; // 2025-12-05T00:00:00Z, a UTC midnight.
    const MIN: i64 = 60_000;
    const RULES: Rules = Rules {
        grace_ms: GRACE,
        max_fill: 1000,
    };

    fn trade(ts: i64, price: f64, volume: f64) -> Input {
        Input {
            ts_ms: T0 + ts,
            price,
            volume,
            source: Source::Trades,
        }
    }

    #[derive(Debug, Clone, Copy)]
    enum Step {
        /// Trade (exchange ts, price, size) arriving at now.
        Trade(i64, f64, f64, i64),
        /// Clock reaches now.
        Clock(i64),
    }
    use Step::*;

    /// What a run produced: the closed bars (start, o, h, l, c, v, n) in order,
    /// corrections, finals, skips, and the bar in progress.
    #[derive(Debug, Default)]
    struct Run {
        closed: Vec<(i64, f64, f64, f64, f64, f64, u64)>,
        corrected: Vec<(i64, f64, f64, u64)>,
        finals: Vec<i64>,
        late: usize,
        open: Option<(i64, f64, f64, f64, f64, f64, u64)>,
    }

    fn ohlcv(b: &Bar) -> (i64, f64, f64, f64, f64, f64, u64) {
        (
            b.start_ms - T0,
            b.open,
            b.high,
            b.low,
            b.close,
            b.volume,
            b.trades,
        )
    }

    fn run(interval: Interval, steps: &[Step]) -> Run {
        let mut s = Series::new(interval);
        let mut out = Vec::new();
        let mut r = Run::default();
        for step in steps {
            match *step {
                Trade(ts, p, v, now) => {
                    if s.apply(trade(ts, p, v), T0 + now, RULES, &mut out) == Err(Skip::Late) {
                        r.late += 1;
                    }
                    s.advance(T0 + now, RULES, &mut out);
                }
                Clock(now) => s.advance(T0 + now, RULES, &mut out),
            }
        }
        for e in out {
            match e {
                BarEvent::Closed(b) => {
                    assert!(b.closed);
                    r.closed.push(ohlcv(&b));
                }
                BarEvent::Corrected(b) => {
                    r.corrected
                        .push((b.start_ms - T0, b.high, b.volume, b.trades))
                }
                BarEvent::Final(b) => r.finals.push(b.start_ms - T0),
            }
        }
        r.open = s.open_bar().map(ohlcv);
        r
    }

    #[test]
    fn boundary_table() {
        struct Case {
            name: &'static str,
            interval: Interval,
            steps: Vec<Step>,
            closed: Vec<(i64, f64, f64, f64, f64, f64, u64)>,
            corrected: Vec<(i64, f64, f64, u64)>,
            late: usize,
            open: Option<(i64, f64, f64, f64, f64, f64, u64)>,
        }
        let cases = vec![
            Case {
                name: "a trade exactly on a boundary opens the new bar",
                interval: Interval::M1,
                steps: vec![
                    Trade(10_000, 100.0, 1.0, 10_000),
                    Trade(59_999, 101.0, 2.0, 59_999),
                    Trade(MIN, 102.0, 3.0, MIN),
                ],
                closed: vec![(0, 100.0, 101.0, 100.0, 101.0, 3.0, 2)],
                corrected: vec![],
                late: 0,
                open: Some((MIN, 102.0, 102.0, 102.0, 102.0, 3.0, 1)),
            },
            Case {
                name: "out of order within the grace corrects the closed bar",
                interval: Interval::M1,
                steps: vec![
                    Trade(1_000, 100.0, 1.0, 1_000),
                    Clock(MIN),
                    Trade(59_000, 105.0, 2.0, MIN + 1_500),
                    Trade(59_500, 99.0, 1.0, MIN + GRACE),
                ],
                closed: vec![(0, 100.0, 100.0, 100.0, 100.0, 1.0, 1)],
                corrected: vec![(0, 105.0, 3.0, 2), (0, 105.0, 4.0, 3)],
                late: 0,
                open: Some((MIN, 100.0, 100.0, 100.0, 100.0, 0.0, 0)),
            },
            Case {
                name: "late beyond the grace is counted and skipped",
                interval: Interval::M1,
                steps: vec![
                    Trade(1_000, 100.0, 1.0, 1_000),
                    Clock(MIN),
                    Trade(59_000, 105.0, 2.0, MIN + GRACE + 1),
                    Trade(-5 * MIN, 105.0, 2.0, MIN + 10),
                ],
                closed: vec![(0, 100.0, 100.0, 100.0, 100.0, 1.0, 1)],
                corrected: vec![],
                late: 2,
                open: Some((MIN, 100.0, 100.0, 100.0, 100.0, 0.0, 0)),
            },
            Case {
                name: "empty intervals close flat at the previous close, volume 0",
                interval: Interval::M1,
                steps: vec![
                    Trade(1_000, 100.0, 1.0, 1_000),
                    Trade(2_000, 103.0, 1.0, 2_000),
                    Clock(3 * MIN + 5),
                    Trade(3 * MIN + 10, 104.0, 1.0, 3 * MIN + 10),
                ],
                closed: vec![
                    (0, 100.0, 103.0, 100.0, 103.0, 2.0, 2),
                    (MIN, 103.0, 103.0, 103.0, 103.0, 0.0, 0),
                    (2 * MIN, 103.0, 103.0, 103.0, 103.0, 0.0, 0),
                ],
                corrected: vec![],
                late: 0,
                open: Some((3 * MIN, 104.0, 104.0, 104.0, 104.0, 1.0, 1)),
            },
            Case {
                name: "a trade after a silence fills the gap without a clock tick",
                interval: Interval::M5,
                steps: vec![Trade(0, 10.0, 1.0, 0), Trade(11 * MIN, 12.0, 1.0, 11 * MIN)],
                closed: vec![
                    (0, 10.0, 10.0, 10.0, 10.0, 1.0, 1),
                    (5 * MIN, 10.0, 10.0, 10.0, 10.0, 0.0, 0),
                ],
                corrected: vec![],
                late: 0,
                open: Some((10 * MIN, 12.0, 12.0, 12.0, 12.0, 1.0, 1)),
            },
            Case {
                name: "the day rolls over at UTC midnight",
                interval: Interval::D1,
                steps: vec![
                    Trade(-1, 50.0, 1.0, -1),
                    Trade(0, 51.0, 2.0, 0),
                    Trade(86_399_999, 49.0, 1.0, 86_399_999),
                ],
                closed: vec![(-86_400_000, 50.0, 50.0, 50.0, 50.0, 1.0, 1)],
                corrected: vec![],
                late: 0,
                open: Some((0, 51.0, 51.0, 49.0, 49.0, 3.0, 2)),
            },
            Case {
                name: "an exchange clock ahead of ours closes the bar early; stragglers correct it",
                interval: Interval::M1,
                steps: vec![
                    Trade(30_000, 100.0, 1.0, 30_000),
                    Trade(MIN + 50, 101.0, 1.0, MIN - 50),
                    Trade(59_990, 102.0, 1.0, MIN - 40),
                ],
                closed: vec![(0, 100.0, 100.0, 100.0, 100.0, 1.0, 1)],
                corrected: vec![(0, 102.0, 2.0, 2)],
                late: 0,
                open: Some((MIN, 101.0, 101.0, 101.0, 101.0, 1.0, 1)),
            },
        ];
        for c in cases {
            let r = run(c.interval, &c.steps);
            assert_eq!(r.closed, c.closed, "{}: closed", c.name);
            assert_eq!(r.corrected, c.corrected, "{}: corrected", c.name);
            assert_eq!(r.late, c.late, "{}: late", c.name);
            assert_eq!(r.open, c.open, "{}: open", c.name);
        }
    }

    #[test]
    fn json_round_trips_and_garbage_is_refused() {
        let mut b = Bar::flat(Interval::M15, T0 + 15 * MIN, 2.5, Source::Ticks);
        b.apply(2.0, 1.0);
        b.closed = true;
        let json = b.to_json("EUR/USD");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["start"], "2025-12-05T00:15:00.000Z");
        assert_eq!(v["end"], "2025-12-05T00:30:00.000Z");
        assert_eq!(v["interval"], "15m");
        assert_eq!(v["source"], "ticks");
        assert_eq!(v["closed"], true);
        assert_eq!(
            Bar::from_json(json.as_bytes()).unwrap(),
            ("EUR/USD".to_owned(), b)
        );
        let off_grid = json.replace("00:15:00.000Z", "00:15:01.000Z");
        assert!(Bar::from_json(off_grid.as_bytes()).is_err());
        assert!(Bar::from_json(json.replace("2.0", "-2.0").as_bytes()).is_err());
        assert!(Bar::from_json(b"[]").is_err());
    }

    #[test]
    fn bars_become_final_after_the_grace() {
        let r = run(
            Interval::M1,
            &[
                Trade(1_000, 100.0, 1.0, 1_000),
                Clock(MIN + GRACE),
                Clock(MIN + GRACE + 1),
            ],
        );
        assert_eq!(r.finals, vec![0]);
    }

    #[test]
    fn a_long_silence_fills_at_most_max_fill_bars() {
        let mut s = Series::new(Interval::M1);
        let mut out = Vec::new();
        let rules = Rules {
            grace_ms: GRACE,
            max_fill: 10,
        };
        s.apply(trade(0, 1.0, 1.0), T0, rules, &mut out).unwrap();
        s.advance(T0 + 1_000 * MIN + 1, rules, &mut out);
        let closed: Vec<i64> = out
            .iter()
            .filter_map(|e| match e {
                BarEvent::Closed(b) => Some((b.start_ms - T0) / MIN),
                _ => None,
            })
            .collect();
        // The bar with the trade, then the newest 10 flat bars.
        assert_eq!(
            closed,
            [0, 990, 991, 992, 993, 994, 995, 996, 997, 998, 999]
        );
        assert_eq!(s.open_bar().map(|b| (b.start_ms - T0) / MIN), Some(1000));
    }

    #[test]
    fn ticks_count_one_each_and_a_first_trade_switches_the_bar() {
        let mut s = Series::new(Interval::M1);
        let mut out = Vec::new();
        for (i, p) in [10.0, 12.0, 9.0].into_iter().enumerate() {
            let tick = Input {
                source: Source::Ticks,
                ..trade(i as i64, p, 1.0)
            };
            s.apply(tick, T0, RULES, &mut out).unwrap();
        }
        let b = *s.open_bar().unwrap();
        assert_eq!(
            (b.open, b.high, b.low, b.close, b.volume, b.trades),
            (10.0, 12.0, 9.0, 9.0, 3.0, 3)
        );
        assert_eq!(b.source, Source::Ticks);
        s.switch_to(Source::Trades);
        s.apply(trade(5, 11.0, 0.5), T0, RULES, &mut out).unwrap();
        let b = *s.open_bar().unwrap();
        assert_eq!(b.source, Source::Trades);
        assert_eq!(
            (b.open, b.high, b.low, b.close, b.volume, b.trades),
            (11.0, 11.0, 11.0, 11.0, 0.5, 1)
        );
    }

    #[test]
    fn restore_continues_an_open_bar_and_follows_a_closed_one() {
        let mut stored = Bar::flat(Interval::M1, T0, 5.0, Source::Trades);
        stored.apply(5.0, 2.0);
        stored.apply(7.0, 1.0);
        let mut s = Series::new(Interval::M1);
        s.restore(stored);
        let mut out = Vec::new();
        s.apply(trade(30_000, 4.0, 1.0), T0 + 30_000, RULES, &mut out)
            .unwrap();
        let b = *s.open_bar().unwrap();
        assert_eq!(
            (b.open, b.high, b.low, b.close, b.volume, b.trades),
            (5.0, 7.0, 4.0, 4.0, 4.0, 3)
        );

        stored.closed = true;
        let mut s = Series::new(Interval::M1);
        s.restore(stored);
        assert_eq!(
            s.open_bar().map(|b| (b.start_ms - T0, b.open, b.trades)),
            Some((MIN, 7.0, 0))
        );
    }
}

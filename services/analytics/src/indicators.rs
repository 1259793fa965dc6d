//! Incremental indicators over closed bars: O(1) per bar, no history kept
//! beyond the volume window and the volatility window.
//!
//! Definitions (they match TA-Lib's, which the reference test checks):
//! - **EMA(n)**: `α = 2 / (n + 1)`; the first value, at the n-th bar, is the
//!   simple mean of the first n closes; then `ema = (close - ema) * α + ema`.
//! - **RSI(n)**, Wilder: changes `d = close - previous close`; the first
//!   average gain/loss, at bar n + 1, is the simple mean of the first n gains
//!   (`max(d, 0)`) and losses (`max(-d, 0)`); then
//!   `avg = (avg * (n - 1) + x) / n`; `RSI = 100 * gain / (gain + loss)`, and
//!   50 when both averages are 0 (no movement at all; TA-Lib says 0 there).
//! - **VWAP**, session = UTC day of the bar's start: `Σ typical * volume /
//!   Σ volume` over the session's bars so far, typical = `(high + low +
//!   close) / 3`; none while the session has no volume.
//! - **Volume ratio(n)**: bar volume over the mean volume of the last n bars,
//!   this one included; none before n bars or when that mean is 0.

use std::collections::VecDeque;

use crate::candle::Bar;

/// Milliseconds in a VWAP session (one UTC day).
const SESSION_MS: i64 = 86_400_000;

/// Absolute log returns kept for the volatility part of the market mood.
pub const VOLATILITY_WINDOW: usize = 60;
/// Returns averaged for "volatility now" in the market mood.
pub const VOLATILITY_RECENT: usize = 5;

/// Exponential moving average that starts from the simple mean of its first `period` values.
#[derive(Debug, Clone)]
pub struct Ema {
    period: usize,
    alpha: f64,
    seen: usize,
    sum: f64,
    value: Option<f64>,
}

impl Ema {
    /// An EMA over `period` values (at least 1).
    pub fn new(period: usize) -> Self {
        let period = period.max(1);
        Self {
            period,
            alpha: 2.0 / (period as f64 + 1.0),
            seen: 0,
            sum: 0.0,
            value: None,
        }
    }

    /// Takes the next value; `None` until `period` values were seen.
    pub fn update(&mut self, x: f64) -> Option<f64> {
        match self.value {
            Some(v) => self.value = Some((x - v) * self.alpha + v),
            None => {
                self.sum += x;
                self.seen += 1;
                if self.seen == self.period {
                    self.value = Some(self.sum / self.period as f64);
                }
            }
        }
        self.value
    }

    /// The current value, if warmed up.
    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

/// Wilder's relative strength index.
#[derive(Debug, Clone)]
pub struct Rsi {
    period: usize,
    prev: Option<f64>,
    seen: usize,
    gain: f64,
    loss: f64,
    value: Option<f64>,
}

impl Rsi {
    /// An RSI over `period` changes (at least 1).
    pub fn new(period: usize) -> Self {
        Self {
            period: period.max(1),
            prev: None,
            seen: 0,
            gain: 0.0,
            loss: 0.0,
            value: None,
        }
    }

    /// Takes the next close; `None` until `period + 1` closes were seen.
    pub fn update(&mut self, close: f64) -> Option<f64> {
        let prev = self.prev.replace(close)?;
        let d = close - prev;
        let n = self.period as f64;
        if self.seen < self.period {
            if d < 0.0 {
                self.loss -= d;
            } else {
                self.gain += d;
            }
            self.seen += 1;
            if self.seen < self.period {
                return None;
            }
            self.loss /= n;
            self.gain /= n;
        } else {
            self.loss *= n - 1.0;
            self.gain *= n - 1.0;
            if d < 0.0 {
                self.loss -= d;
            } else {
                self.gain += d;
            }
            self.loss /= n;
            self.gain /= n;
        }
        let total = self.gain + self.loss;
        let rsi = if total == 0.0 {
            50.0
        } else {
            100.0 * (self.gain / total)
        };
        self.value = Some(rsi);
        self.value
    }

    /// The current value, if warmed up.
    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

/// Volume-weighted average price over the UTC day.
#[derive(Debug, Clone, Default)]
pub struct Vwap {
    day: Option<i64>,
    pv: f64,
    v: f64,
}

impl Vwap {
    /// Takes the next bar; a bar of a new UTC day starts a new session.
    pub fn update(&mut self, bar: &Bar) -> Option<f64> {
        let day = bar.start_ms.div_euclid(SESSION_MS);
        if self.day != Some(day) {
            self.day = Some(day);
            self.pv = 0.0;
            self.v = 0.0;
        }
        let typical = (bar.high + bar.low + bar.close) / 3.0;
        self.pv += typical * bar.volume;
        self.v += bar.volume;
        self.value()
    }

    /// The session's VWAP, if it has volume.
    pub fn value(&self) -> Option<f64> {
        (self.v > 0.0).then(|| self.pv / self.v)
    }
}

/// Bar volume over the mean of the last `period` bar volumes.
#[derive(Debug, Clone)]
pub struct VolumeRatio {
    period: usize,
    window: VecDeque<f64>,
    sum: f64,
    value: Option<f64>,
}

impl VolumeRatio {
    /// A ratio over `period` bars (at least 1).
    pub fn new(period: usize) -> Self {
        let period = period.max(1);
        Self {
            period,
            window: VecDeque::with_capacity(period),
            sum: 0.0,
            value: None,
        }
    }

    /// Takes the next bar volume; `None` before `period` bars or when the mean is 0.
    pub fn update(&mut self, volume: f64) -> Option<f64> {
        self.sum += volume;
        self.window.push_back(volume);
        self.value = None;
        if self.window.len() == self.period {
            let mean = self.sum / self.period as f64;
            self.value = (mean > 0.0).then(|| volume / mean);
            if let Some(oldest) = self.window.pop_front() {
                self.sum -= oldest;
            }
        }
        self.value
    }

    /// The current value, if defined.
    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

/// Periods of the indicators, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periods {
    /// Fast EMA (12).
    pub ema_fast: usize,
    /// Slow EMA (26).
    pub ema_slow: usize,
    /// RSI (14).
    pub rsi: usize,
    /// Volume ratio window (20).
    pub volume: usize,
}

impl Default for Periods {
    fn default() -> Self {
        Self {
            ema_fast: 12,
            ema_slow: 26,
            rsi: 14,
            volume: 20,
        }
    }
}

/// The indicator values after one bar; `None` = not warmed up (or undefined).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Snapshot {
    /// Fast EMA of closes.
    pub ema_fast: Option<f64>,
    /// Slow EMA of closes.
    pub ema_slow: Option<f64>,
    /// Wilder RSI of closes.
    pub rsi: Option<f64>,
    /// Session VWAP.
    pub vwap: Option<f64>,
    /// Bar volume over its window mean.
    pub volume_ratio: Option<f64>,
    /// Close of the bar.
    pub close: f64,
    /// End of the bar (epoch ms).
    pub end_ms: i64,
    /// Bars consumed so far.
    pub bars: u64,
}

/// Every indicator of one symbol, fed closed (final) bars of one interval.
#[derive(Debug, Clone)]
pub struct Indicators {
    ema_fast: Ema,
    ema_slow: Ema,
    rsi: Rsi,
    vwap: Vwap,
    volume_ratio: VolumeRatio,
    /// Absolute log returns of closes, newest last, for the market mood's volatility.
    abs_returns: VecDeque<f64>,
    prev_close: Option<f64>,
    last: Option<Snapshot>,
    bars: u64,
    /// Start of the last bar taken, so a bar is never counted twice.
    last_start: Option<i64>,
}

impl Indicators {
    /// Fresh indicators with the given periods.
    pub fn new(periods: Periods) -> Self {
        Self {
            ema_fast: Ema::new(periods.ema_fast),
            ema_slow: Ema::new(periods.ema_slow),
            rsi: Rsi::new(periods.rsi),
            vwap: Vwap::default(),
            volume_ratio: VolumeRatio::new(periods.volume),
            abs_returns: VecDeque::with_capacity(VOLATILITY_WINDOW),
            prev_close: None,
            last: None,
            bars: 0,
            last_start: None,
        }
    }

    /// Takes the next closed bar (older or repeated bars are ignored) and returns the new values.
    pub fn update(&mut self, bar: &Bar) -> Option<Snapshot> {
        if self.last_start.is_some_and(|s| bar.start_ms <= s) {
            return None;
        }
        self.last_start = Some(bar.start_ms);
        self.bars += 1;
        if let Some(prev) = self.prev_close {
            if prev > 0.0 && bar.close > 0.0 {
                if self.abs_returns.len() == VOLATILITY_WINDOW {
                    self.abs_returns.pop_front();
                }
                self.abs_returns.push_back((bar.close / prev).ln().abs());
            }
        }
        self.prev_close = Some(bar.close);
        let snapshot = Snapshot {
            ema_fast: self.ema_fast.update(bar.close),
            ema_slow: self.ema_slow.update(bar.close),
            rsi: self.rsi.update(bar.close),
            vwap: self.vwap.update(bar),
            volume_ratio: self.volume_ratio.update(bar.volume),
            close: bar.close,
            end_ms: bar.end_ms(),
            bars: self.bars,
        };
        self.last = Some(snapshot);
        self.last
    }

    /// The values after the last bar, if any bar was taken.
    pub fn last(&self) -> Option<Snapshot> {
        self.last
    }

    /// Mean absolute log return of the newest `VOLATILITY_RECENT` bars over that of the whole window; `None` until 20 returns.
    pub fn volatility_ratio(&self) -> Option<f64> {
        if self.abs_returns.len() < 20 {
            return None;
        }
        let all = self.abs_returns.iter().sum::<f64>() / self.abs_returns.len() as f64;
        let recent = self
            .abs_returns
            .iter()
            .rev()
            .take(VOLATILITY_RECENT)
            .sum::<f64>()
            / VOLATILITY_RECENT as f64;
        Some(if all > 0.0 { recent / all } else { 1.0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::candle::{Interval, Source};

    fn close(x: f64, a: f64) -> bool {
        (x - a).abs() <= 1e-12 * a.abs().max(1.0)
    }

    #[test]
    fn ema_starts_from_the_mean_then_smooths() {
        let mut e = Ema::new(3);
        assert_eq!(e.update(1.0), None);
        assert_eq!(e.update(2.0), None);
        assert_eq!(e.update(3.0), Some(2.0));
        // α = 0.5: (6 - 2) * 0.5 + 2 = 4.
        assert_eq!(e.update(6.0), Some(4.0));
    }

    #[test]
    fn rsi_worked_example() {
        // Period 2: changes +2, -1 → gain 1, loss 0.5 → RSI 66.67;
        // then +3: gain (1*1 + 3)/2 = 2, loss 0.25 → 88.89.
        let mut r = Rsi::new(2);
        assert_eq!(r.update(10.0), None);
        assert_eq!(r.update(12.0), None);
        assert!(close(r.update(11.0).unwrap(), 200.0 / 3.0));
        assert!(close(r.update(14.0).unwrap(), 100.0 * 2.0 / 2.25));
        let mut flat = Rsi::new(2);
        for _ in 0..4 {
            flat.update(5.0);
        }
        assert_eq!(flat.value(), Some(50.0));
    }

    fn bar(start_ms: i64, h: f64, l: f64, c: f64, v: f64) -> Bar {
        Bar {
            interval: Interval::M1,
            start_ms,
            open: c,
            high: h,
            low: l,
            close: c,
            volume: v,
            trades: 1,
            closed: true,
            source: Source::Trades,
        }
    }

    #[test]
    fn vwap_resets_at_utc_midnight_and_needs_volume() {
        let mut w = Vwap::default();
        let day = SESSION_MS * 20_000;
        assert_eq!(w.update(&bar(day - 60_000, 3.0, 3.0, 3.0, 0.0)), None);
        // typical 3 * 1 + typical 6 * 2 → 15 / 3 = 5
        assert_eq!(w.update(&bar(day - 60_000, 3.0, 3.0, 3.0, 1.0)), Some(3.0));
        assert_eq!(w.update(&bar(day - 30_000, 9.0, 3.0, 6.0, 2.0)), Some(5.0));
        assert_eq!(w.update(&bar(day, 10.0, 10.0, 10.0, 1.0)), Some(10.0));
    }

    #[test]
    fn volume_ratio_includes_the_bar_in_its_window() {
        let mut v = VolumeRatio::new(3);
        assert_eq!(v.update(1.0), None);
        assert_eq!(v.update(2.0), None);
        assert_eq!(v.update(3.0), Some(1.5));
        assert_eq!(v.update(0.0), Some(0.0));
        assert_eq!(v.update(0.0), Some(0.0));
        assert_eq!(v.update(0.0), None);
    }

    #[test]
    fn indicators_ignore_repeated_bars_and_report_warm_up() {
        let mut ind = Indicators::new(Periods::default());
        for i in 0..25 {
            let s = ind
                .update(&bar(i * 60_000, 2.0, 1.0, 1.5 + i as f64, 1.0))
                .unwrap();
            assert_eq!(s.ema_slow, None);
            assert_eq!(s.ema_fast.is_some(), i >= 11);
            assert_eq!(s.rsi.is_some(), i >= 14);
        }
        assert_eq!(ind.update(&bar(24 * 60_000, 2.0, 1.0, 1.0, 1.0)), None);
        let s = ind.update(&bar(25 * 60_000, 2.0, 1.0, 30.0, 1.0)).unwrap();
        assert!(s.ema_slow.is_some());
        assert_eq!(s.bars, 26);
        assert!(ind.volatility_ratio().is_some());
    }
}

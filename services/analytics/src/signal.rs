//! The trading-signal rule: EMA trend, confirmed by the RSI zone, volume and VWAP.
//!
//! With `trend` = sign of `ema_fast - ema_slow` on the last closed bar:
//! - **BUY**: trend up and `50 <= RSI < 70` (momentum with the trend, not overbought).
//! - **STRONG_BUY**: BUY, and `volume_ratio >= 1.5`, and `close > VWAP`.
//! - **SELL**: trend down and `30 < RSI <= 50`.
//! - **STRONG_SELL**: SELL, and `volume_ratio >= 1.5`, and `close < VWAP`.
//! - **HOLD** otherwise, and while EMA slow or RSI are warming up.
//!
//! Strength: HOLD 0.5; BUY/SELL `0.6 + 0.1` per extra confirmation met
//! (volume ratio >= 1.5, close on the trend's side of VWAP; at most one of
//! them is met, else it is STRONG), so 0.6 or 0.7; STRONG
//! `0.9 + 0.1 * min(1, (volume_ratio - 1.5) / 1.5)`, 0.9 to 1.0; rounded to
//! two decimals.

use serde::Serialize;

use crate::indicators::Snapshot;

/// Lower bound of the bullish RSI zone.
pub const RSI_MID: f64 = 50.0;
/// RSI at or above which a market is overbought: no BUY.
pub const RSI_OVERBOUGHT: f64 = 70.0;
/// RSI at or below which a market is oversold: no SELL.
pub const RSI_OVERSOLD: f64 = 30.0;
/// Volume ratio that confirms a move.
pub const VOLUME_CONFIRM: f64 = 1.5;

/// The signal word, as clients see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Kind {
    /// Uptrend confirmed by RSI, volume and VWAP.
    StrongBuy,
    /// Uptrend confirmed by RSI.
    Buy,
    /// No confirmed trend.
    Hold,
    /// Downtrend confirmed by RSI.
    Sell,
    /// Downtrend confirmed by RSI, volume and VWAP.
    StrongSell,
}

/// The rule's outcome for one bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The signal.
    pub kind: Kind,
    /// 0.5 to 1.0.
    pub strength: f64,
    /// Why, in words with the numbers that decided it.
    pub reason: String,
}

/// Strength is shown to people: two decimals.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Applies the rule to the indicator values of the last closed bar (or to none: warming up).
pub fn decide(s: Option<&Snapshot>, slow_period: usize, rsi_period: usize) -> Decision {
    let hold = |reason: String| Decision {
        kind: Kind::Hold,
        strength: 0.5,
        reason,
    };
    let bars = s.map_or(0, |s| s.bars);
    let (Some(s), Some(fast), Some(slow), Some(rsi)) = (
        s,
        s.and_then(|s| s.ema_fast),
        s.and_then(|s| s.ema_slow),
        s.and_then(|s| s.rsi),
    ) else {
        let need = slow_period.max(rsi_period + 1);
        return hold(format!("warming up: {bars} of {need} closed bars"));
    };
    let up = fast > slow;
    let down = fast < slow;
    let vr = s.volume_ratio;
    let volume_ok = vr.is_some_and(|v| v >= VOLUME_CONFIRM);
    let vwap_ok = s
        .vwap
        .is_some_and(|w| (up && s.close > w) || (down && s.close < w));
    let trend = if up { "above" } else { "below" };
    let base = format!("EMA fast {fast:.6} {trend} slow {slow:.6}, RSI {rsi:.1}");
    if !(up || down) {
        return hold(format!("EMA fast equals slow ({fast:.6}), RSI {rsi:.1}"));
    }
    let zone_ok = if up {
        (RSI_MID..RSI_OVERBOUGHT).contains(&rsi)
    } else {
        rsi > RSI_OVERSOLD && rsi <= RSI_MID
    };
    if !zone_ok {
        let why = if up && rsi >= RSI_OVERBOUGHT {
            "overbought"
        } else if down && rsi <= RSI_OVERSOLD {
            "oversold"
        } else {
            "RSI against the trend"
        };
        return hold(format!("{base}: {why}"));
    }
    let vr_text = vr.map_or("n/a".to_owned(), |v| format!("{v:.2}"));
    if volume_ok && vwap_ok {
        let extra = vr.map_or(0.0, |v| {
            ((v - VOLUME_CONFIRM) / VOLUME_CONFIRM).clamp(0.0, 1.0)
        });
        return Decision {
            kind: if up {
                Kind::StrongBuy
            } else {
                Kind::StrongSell
            },
            strength: round2(0.9 + 0.1 * extra),
            reason: format!(
                "{base}, volume ratio {vr_text}, close {} VWAP",
                if up { "above" } else { "below" }
            ),
        };
    }
    let confirmations = u8::from(volume_ok) + u8::from(vwap_ok);
    Decision {
        kind: if up { Kind::Buy } else { Kind::Sell },
        strength: round2(0.6 + 0.1 * f64::from(confirmations)),
        reason: format!("{base}, volume ratio {vr_text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(fast: f64, slow: f64, rsi: f64, vr: Option<f64>, vwap: Option<f64>) -> Snapshot {
        Snapshot {
            ema_fast: Some(fast),
            ema_slow: Some(slow),
            rsi: Some(rsi),
            vwap,
            volume_ratio: vr,
            close: 100.0,
            end_ms: 0,
            bars: 30,
        }
    }

    #[test]
    fn rule_table() {
        let cases = [
            (
                snap(101.0, 100.0, 55.0, Some(1.0), Some(101.0)),
                Kind::Buy,
                0.6,
            ),
            (
                snap(101.0, 100.0, 55.0, Some(1.6), Some(101.0)),
                Kind::Buy,
                0.7,
            ),
            (
                snap(101.0, 100.0, 50.0, Some(1.0), Some(99.0)),
                Kind::Buy,
                0.7,
            ),
            (
                snap(101.0, 100.0, 69.9, Some(1.5), Some(99.0)),
                Kind::StrongBuy,
                0.9,
            ),
            (
                snap(101.0, 100.0, 60.0, Some(3.0), Some(99.0)),
                Kind::StrongBuy,
                1.0,
            ),
            (
                snap(101.0, 100.0, 70.0, Some(3.0), Some(99.0)),
                Kind::Hold,
                0.5,
            ),
            (
                snap(101.0, 100.0, 49.9, Some(3.0), Some(99.0)),
                Kind::Hold,
                0.5,
            ),
            (snap(99.0, 100.0, 45.0, None, None), Kind::Sell, 0.6),
            (
                snap(99.0, 100.0, 50.0, Some(2.25), Some(101.0)),
                Kind::StrongSell,
                0.95,
            ),
            (
                snap(99.0, 100.0, 30.0, Some(2.0), Some(101.0)),
                Kind::Hold,
                0.5,
            ),
            (
                snap(99.0, 100.0, 51.0, Some(2.0), Some(101.0)),
                Kind::Hold,
                0.5,
            ),
            (
                snap(100.0, 100.0, 55.0, Some(2.0), Some(99.0)),
                Kind::Hold,
                0.5,
            ),
        ];
        for (s, kind, strength) in cases {
            let d = decide(Some(&s), 26, 14);
            assert_eq!(
                (d.kind, d.strength),
                (kind, strength),
                "{s:?}: {}",
                d.reason
            );
        }
    }

    #[test]
    fn warm_up_is_hold_and_says_so() {
        let d = decide(None, 26, 14);
        assert_eq!(d.kind, Kind::Hold);
        assert_eq!(d.reason, "warming up: 0 of 26 closed bars");
        let mut s = snap(1.0, 1.0, 50.0, None, None);
        s.ema_slow = None;
        s.bars = 12;
        assert_eq!(
            decide(Some(&s), 26, 14).reason,
            "warming up: 12 of 26 closed bars"
        );
    }
}

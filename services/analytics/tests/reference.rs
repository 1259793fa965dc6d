//! Indicator values against an independent implementation: TA-Lib's Python
//! package (EMA, RSI, SMA for the volume mean) and a numpy session VWAP, run
//! from the venv `scripts/ensure-analytics-ref.sh` installs, on the same
//! 5,000+ closed 1m bars our candle builder makes from a generated trade
//! series with gaps (empty minutes: flat bars, volume 0), flat stretches and
//! UTC day roll-overs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

use analytics::candle::{Bar, BarEvent, Input, Interval, Rules, Series, Source};
use analytics::indicators::{Indicators, Periods, Snapshot};

const INSTALL_HINT: &str =
    "run `scripts/ensure-analytics-ref.sh` (make test runs it) to install the TA-Lib reference";

/// 2025-12-05T00:00:00Z.
const T0: i64 = 1_764_892_800_000;
const MIN: i64 = 60_000;
/// Minutes of trades: ~3.7 days, so four VWAP sessions.
const MINUTES: i64 = 5_300;
const TOLERANCE: f64 = 1e-9;

fn python() -> PathBuf {
    let py = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv-analytics/bin/python");
    assert!(py.exists(), "{} missing: {INSTALL_HINT}", py.display());
    py
}

/// xorshift64*: a fixed, dependency-free stream of numbers for the series.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Closed 1m bars built by the real candle builder from a generated trade series.
fn bars() -> Vec<Bar> {
    let mut g = Gen(0x9e37_79b9_7f4a_7c15);
    let rules = Rules {
        grace_ms: 2_000,
        max_fill: 10_000,
    };
    let mut series = Series::new(Interval::M1);
    let mut events = Vec::new();
    let mut price: f64 = 43_000.0;
    let mut minute = 0;
    while minute < MINUTES {
        let r = g.next();
        if r < 0.04 {
            // A gap: up to 30 empty minutes.
            minute += 1 + (g.next() * 30.0) as i64;
            continue;
        }
        let flat = r < 0.07;
        let stretch = if flat {
            1 + (g.next() * 40.0) as i64
        } else {
            1
        };
        for _ in 0..stretch {
            let n = 1 + (g.next() * 8.0) as i64;
            for k in 0..n {
                if !flat {
                    // A random walk with drifting regimes, so RSI visits both zones.
                    let drift = ((minute as f64) / 400.0).sin() * 0.0004;
                    price *= 1.0 + drift + (g.next() - 0.5) * 0.004;
                }
                let ts = T0 + minute * MIN + k * (MIN / n) + (g.next() * 1_000.0) as i64;
                let input = Input {
                    ts_ms: ts,
                    price,
                    volume: (g.next() * 3.0 * 1e4).round() / 1e4,
                    source: Source::Trades,
                };
                series.apply(input, ts, rules, &mut events).unwrap();
            }
            minute += 1;
        }
    }
    series.advance(T0 + (MINUTES + 10) * MIN, rules, &mut events);
    let bars: Vec<Bar> = events
        .into_iter()
        .filter_map(|e| match e {
            BarEvent::Final(b) => Some(b),
            _ => None,
        })
        .collect();
    assert!(bars.len() >= 5_000, "{} bars", bars.len());
    assert!(
        bars.iter().any(|b| b.volume == 0.0),
        "no gaps in the series"
    );
    bars
}

const SCRIPT: &str = r#"
import sys, math
import numpy as np
import talib
rows = [line.split(",") for line in sys.stdin.read().split()]
start = np.array([int(r[0]) for r in rows], dtype=np.int64)
high, low, close, vol = (np.array([float(r[i]) for r in rows]) for i in (1, 2, 3, 4))
ema_fast = talib.EMA(close, timeperiod=12)
ema_slow = talib.EMA(close, timeperiod=26)
rsi = talib.RSI(close, timeperiod=14)
vmean = talib.SMA(vol, timeperiod=20)
# VWAP: cumulative within the UTC day of the bar's start.
day = start // 86400000
vwap = np.full(len(close), np.nan)
pv = v = 0.0
for i in range(len(close)):
    if i == 0 or day[i] != day[i - 1]:
        pv = v = 0.0
    pv += (high[i] + low[i] + close[i]) / 3.0 * vol[i]
    v += vol[i]
    vwap[i] = pv / v if v > 0 else np.nan
def out(x):
    return "nan" if x is None or not math.isfinite(x) else repr(float(x))
for i in range(len(close)):
    ratio = vol[i] / vmean[i] if math.isfinite(vmean[i]) and vmean[i] > 0 else None
    print(",".join(out(x) for x in (ema_fast[i], ema_slow[i], rsi[i], vwap[i], ratio)))
"#;

fn ours(s: &Snapshot) -> [Option<f64>; 5] {
    [s.ema_fast, s.ema_slow, s.rsi, s.vwap, s.volume_ratio]
}

#[test]
fn indicators_match_talib_over_5000_bars() {
    let bars = bars();
    let mut ind = Indicators::new(Periods::default());
    let snapshots: Vec<Snapshot> = bars.iter().map(|b| ind.update(b).unwrap()).collect();

    let mut csv = String::new();
    for b in &bars {
        // `{:?}` prints the shortest text that parses back to the same f64.
        writeln!(
            csv,
            "{},{:?},{:?},{:?},{:?}",
            b.start_ms, b.high, b.low, b.close, b.volume
        )
        .unwrap();
    }
    let mut child = Command::new(python())
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running the reference: {e}; {INSTALL_HINT}"));
    {
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(csv.as_bytes())
            .unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "reference failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), bars.len());

    let names = ["ema_fast", "ema_slow", "rsi", "vwap", "volume_ratio"];
    let mut max_rel = [0.0f64; 5];
    let mut compared = [0usize; 5];
    for (i, (line, snap)) in lines.iter().zip(&snapshots).enumerate() {
        let theirs: Vec<Option<f64>> = line
            .split(',')
            .map(|x| {
                if x == "nan" {
                    None
                } else {
                    Some(x.parse::<f64>().unwrap())
                }
            })
            .collect();
        for (k, (a, b)) in ours(snap).iter().zip(&theirs).enumerate() {
            match (a, b) {
                (None, None) => {}
                (Some(a), Some(b)) => {
                    let rel = (a - b).abs() / b.abs().max(f64::MIN_POSITIVE);
                    let rel = if a == b { 0.0 } else { rel };
                    assert!(
                        rel <= TOLERANCE,
                        "bar {i} {}: ours {a} reference {b} (relative error {rel:e})",
                        names[k]
                    );
                    max_rel[k] = max_rel[k].max(rel);
                    compared[k] += 1;
                }
                _ => panic!(
                    "bar {i} {}: ours {a:?} reference {b:?} (warm-up or definedness differs)",
                    names[k]
                ),
            }
        }
    }
    // Warm-up is exact: the first value at bar 12, 26 and 15 (1-based), none before.
    assert_eq!(
        snapshots.iter().position(|s| s.ema_fast.is_some()),
        Some(11)
    );
    assert_eq!(
        snapshots.iter().position(|s| s.ema_slow.is_some()),
        Some(25)
    );
    assert_eq!(snapshots.iter().position(|s| s.rsi.is_some()), Some(14));
    for (k, name) in names.iter().enumerate() {
        assert!(
            compared[k] > 4_500,
            "{name}: only {} values compared",
            compared[k]
        );
        eprintln!(
            "{name}: {} values, max relative error {:e}",
            compared[k], max_rel[k]
        );
    }
}

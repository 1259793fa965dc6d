//! The per-trade update: one trade into all five intervals, plus the clock
//! tick that closes bars and feeds the indicators every minute of exchange time.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use analytics::candle::{Interval, Rules};
use analytics::engine::{Engine, EngineConfig};
use analytics::indicators::Periods;
use criterion::{black_box, criterion_group, Criterion};
use tickstream_model::{Symbol, Trade};

const T0: i64 = 1_764_892_800_000;

fn engine() -> Engine {
    let mut e = Engine::new(EngineConfig {
        rules: Rules {
            grace_ms: 2_000,
            max_fill: 2_000,
        },
        update_ms: 250,
        periods: Periods::default(),
        indicator_interval: Interval::M1,
        fresh_ms: 60_000,
    });
    e.add_symbol(&Symbol::parse("BTCUSDT").unwrap(), &[], &[], T0);
    e
}

fn trade(ms: i64, price: f64) -> Trade {
    Trade {
        symbol: Symbol::parse("BTCUSDT").unwrap(),
        price,
        size: 0.01,
        side: None,
        trade_id: None,
        timestamp: chrono::DateTime::from_timestamp_millis(ms).unwrap(),
        source: "bench".to_owned(),
        seq: 1,
    }
}

fn per_trade(c: &mut Criterion) {
    // 100 trades per second of exchange time, so bars close and indicators
    // update at the real proportion (one 1m close per 6,000 trades).
    let mut e = engine();
    let mut out = Vec::new();
    let mut i: i64 = 0;
    c.bench_function("trade_update_all_intervals_and_indicators", |b| {
        b.iter(|| {
            i += 1;
            let ms = T0 + i * 10;
            let price = 50_000.0 + ((i % 997) as f64 - 498.0);
            e.on_trade(black_box(&trade(ms, price)), ms, &mut out);
            e.on_clock(ms, &mut out);
            out.clear();
        })
    });
    // The parse of a trade payload, which the service does first.
    let raw = br#"{"symbol":"BTCUSDT","price":50123.5,"size":0.01,"side":"buy","trade_id":"1","timestamp":"2025-12-05T00:00:00.010Z","source":"binance","seq":1}"#;
    c.bench_function("trade_parse", |b| {
        b.iter(|| Trade::from_json(black_box(raw)))
    });
}

/// Resident memory of this process in bytes (Linux), 0 elsewhere.
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Memory per symbol: 10,000 symbols with every interval's bar open and 40
/// minutes of closed 1m bars behind their indicators.
fn memory_per_symbol() {
    const N: usize = 10_000;
    let before = rss();
    let mut e = Engine::new(EngineConfig {
        rules: Rules {
            grace_ms: 2_000,
            max_fill: 2_000,
        },
        update_ms: 250,
        periods: Periods::default(),
        indicator_interval: Interval::M1,
        fresh_ms: 60_000,
    });
    let symbols: Vec<Symbol> = (0..N)
        .map(|i| Symbol::parse(&format!("SYM{i:05}USDT")).unwrap())
        .collect();
    for s in &symbols {
        e.add_symbol(s, &[], &[], T0);
    }
    let mut out = Vec::new();
    for minute in 0..40 {
        let ms = T0 + minute * 60_000 + 5_000;
        for (i, s) in symbols.iter().enumerate() {
            let t = Trade {
                symbol: s.clone(),
                price: 100.0 + (minute as f64) + i as f64 * 1e-3,
                size: 1.0,
                side: None,
                trade_id: None,
                timestamp: chrono::DateTime::from_timestamp_millis(ms).unwrap(),
                source: "bench".to_owned(),
                seq: 1,
            };
            e.on_trade(&t, ms, &mut out);
        }
        e.on_clock(ms + 1_000, &mut out);
        out.clear();
    }
    e.refresh_signals(T0 + 40 * 60_000, &mut out);
    out.clear();
    out.shrink_to_fit();
    let after = rss();
    eprintln!(
        "memory per symbol: {} bytes ({N} symbols, RSS {} -> {} MB)",
        (after.saturating_sub(before)) / N as u64,
        before / 1_000_000,
        after / 1_000_000
    );
    black_box(&e);
}

criterion_group!(benches, per_trade);

fn main() {
    memory_per_symbol();
    benches();
    Criterion::default().configure_from_args().final_summary();
}

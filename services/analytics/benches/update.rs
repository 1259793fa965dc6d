//! The per-trade update: one trade into all five intervals, plus the clock
//! tick that closes bars and feeds the indicators every minute of exchange time.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use analytics::candle::{Interval, Rules};
use analytics::engine::{Engine, EngineConfig, Trade};
use analytics::indicators::Periods;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use tickstream_model::Symbol;

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
        timestamp: chrono::DateTime::from_timestamp_millis(ms).unwrap(),
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
    let raw = br#"{"symbol":"BTCUSDT","price":50123.5,"size":0.01,"side":"buy","trade_id":1,"timestamp":"2025-12-05T00:00:00.010Z","source":"binance","seq":1}"#;
    c.bench_function("trade_parse", |b| {
        b.iter(|| Trade::from_json(black_box(raw)))
    });
}

criterion_group!(benches, per_trade);
criterion_main!(benches);

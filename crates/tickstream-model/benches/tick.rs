//! Criterion benchmarks of the tick's JSON encode and decode, the per-tick work of every service.
//!
//! `cargo bench -p tickstream-model` (quick look: append `-- --quick`).

// criterion_group!/criterion_main! expand to undocumented pub functions.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use tickstream_model::Tick;

/// The normalized tick as documented in `docs/redis.md`, as an ingestor publishes it.
const DESIGN_EXAMPLE: &str = r#"{"symbol":"BTCUSDT","price":43250.5,"volume":1234567.89,"high":43500.0,"low":42800.0,"change":450.5,"changePercent":1.05,"bid":43250.4,"ask":43250.6,"timestamp":"2025-11-01T10:30:00.123Z","source":"binance","seq":1842}"#;

/// The same tick with only the required fields (what a quote-less upstream gives).
const MINIMAL: &str = r#"{"symbol":"AAPL","price":190.1,"timestamp":"2025-11-01T10:30:00.000Z","source":"finnhub","seq":1}"#;

fn tick(c: &mut Criterion) {
    let mut group = c.benchmark_group("tick");
    group.throughput(Throughput::Elements(1));
    for (name, raw) in [("design_example", DESIGN_EXAMPLE), ("minimal", MINIMAL)] {
        let parsed = match Tick::from_json(raw.as_bytes()) {
            Ok(t) => t,
            Err(e) => panic!("benchmark input {name} is not a valid tick: {e}"),
        };
        group.bench_function(format!("from_json/{name}"), |b| {
            b.iter(|| Tick::from_json(black_box(raw.as_bytes())))
        });
        group.bench_function(format!("to_json/{name}"), |b| {
            b.iter(|| black_box(&parsed).to_json())
        });
    }
    group.finish();
}

criterion_group!(benches, tick);
criterion_main!(benches);

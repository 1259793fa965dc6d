//! Parser throughput: one documented combined-stream ticker frame → quote.

use criterion::{black_box, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let frame = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/test_data/ws_ticker_combined.json"
    ))
    .unwrap_or_default();
    c.bench_function("binance_parse_ws_ticker", |b| {
        b.iter(|| ingest_binance::parse::parse_ws(black_box(&frame)))
    });
    // The same frame as Binance sends it: compact JSON (the fixture is pretty-printed).
    let compact = serde_json::from_str::<serde_json::Value>(&frame)
        .map(|v| v.to_string())
        .unwrap_or_default();
    c.bench_function("binance_parse_ws_ticker_compact", |b| {
        b.iter(|| ingest_binance::parse::parse_ws(black_box(&compact)))
    });
    let rest = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/test_data/rest_ticker_24hr.json"
    ))
    .unwrap_or_default();
    c.bench_function("binance_parse_rest_24hr", |b| {
        b.iter(|| ingest_binance::parse::parse_rest(black_box(&rest)))
    });
}

// criterion's macro generates an undocumented `pub fn benches`.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);

//! Parser throughput: one documented ticker message → quote, and one documented match → trade.

use criterion::{black_box, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let frame = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/test_data/ws_ticker.json"
    ))
    .unwrap_or_default();
    // A fresh parser per iteration: the sequence check would drop repeats.
    c.bench_function("coinbase_parse_ws_ticker", |b| {
        b.iter(|| ingest_coinbase::parse::CoinbaseParser::default().parse_ws(black_box(&frame)))
    });
    let matched = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/test_data/ws_match.json"
    ))
    .unwrap_or_default();
    // A fresh parser per iteration: the trade-id check would drop repeats.
    c.bench_function("coinbase_parse_ws_match", |b| {
        b.iter(|| ingest_coinbase::parse::CoinbaseParser::default().parse_ws(black_box(&matched)))
    });
    let rest = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/test_data/rest_ticker.json"
    ))
    .unwrap_or_default();
    let symbol = tickstream_model::Symbol::parse("BTC-USD").unwrap_or_else(|_| unreachable!());
    c.bench_function("coinbase_parse_rest_ticker", |b| {
        b.iter(|| ingest_coinbase::parse::parse_rest(&symbol, black_box(&rest)))
    });
}

// criterion's macro generates an undocumented `pub fn benches`.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);

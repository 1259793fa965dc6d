//! Parser throughput: one documented price event and one REST batch → quotes.

use criterion::{black_box, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let dir = env!("CARGO_MANIFEST_DIR");
    let frame = std::fs::read_to_string(format!("{dir}/test_data/ws_price_crypto.json"))
        .unwrap_or_default();
    c.bench_function("twelvedata_parse_ws_price", |b| {
        b.iter(|| ingest_twelvedata::parse::parse_ws(black_box(&frame)))
    });
    let rest = std::fs::read_to_string(format!("{dir}/test_data/rest_price_batch.json"))
        .unwrap_or_default();
    let symbols = tickstream_model::Symbol::parse_list("AAPL,EUR/USD").unwrap_or_default();
    let at = tickstream_model::time::now_millis();
    c.bench_function("twelvedata_parse_rest_batch", |b| {
        b.iter(|| ingest_twelvedata::parse::parse_rest(&symbols, black_box(&rest), at))
    });
}

// criterion's macro generates an undocumented `pub fn benches`.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);

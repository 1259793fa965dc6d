//! Parser throughput: one documented trade message and one REST quote → quotes.

use criterion::{black_box, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let dir = env!("CARGO_MANIFEST_DIR");
    let frame =
        std::fs::read_to_string(format!("{dir}/test_data/ws_trade.json")).unwrap_or_default();
    let parser = ingest_finnhub::parse::FinnhubParser::default();
    c.bench_function("finnhub_parse_ws_trade", |b| {
        b.iter(|| parser.parse_ws(black_box(&frame)))
    });
    let rest =
        std::fs::read_to_string(format!("{dir}/test_data/rest_quote.json")).unwrap_or_default();
    let symbol = tickstream_model::Symbol::parse("AAPL").unwrap_or_else(|_| unreachable!());
    c.bench_function("finnhub_parse_rest_quote", |b| {
        b.iter(|| ingest_finnhub::parse::parse_rest(&symbol, black_box(&rest)))
    });
}

// criterion's macro generates an undocumented `pub fn benches`.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);

//! Parser throughput: one documented trade message → its trade and quote, a live-shaped
//! batch of several trades, and one REST quote → quote.

use criterion::{black_box, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let dir = env!("CARGO_MANIFEST_DIR");
    let frame =
        std::fs::read_to_string(format!("{dir}/test_data/ws_trade.json")).unwrap_or_default();
    let parser = ingest_finnhub::parse::FinnhubParser::default();
    c.bench_function("finnhub_parse_ws_trade", |b| {
        b.iter(|| parser.parse_ws(black_box(&frame)))
    });
    // A batch as Finnhub sends it for US stocks: several trades, two symbols, conditions.
    let batch = r#"{"data":[{"c":["1","8","24","12"],"p":122.1,"s":"TSLA","t":1672348887195,"v":1},{"c":["1","8","24","12"],"p":122.09,"s":"TSLA","t":1672348887196,"v":4},{"c":["1","8","24","12"],"p":122.09,"s":"TSLA","t":1672348887196,"v":10},{"c":["1","24","12"],"p":129.58,"s":"AAPL","t":1672348887666,"v":1},{"c":["1","24","12"],"p":129.575,"s":"AAPL","t":1672348887785,"v":1}],"type":"trade"}"#;
    c.bench_function("finnhub_parse_ws_trade_batch_of_5", |b| {
        b.iter(|| parser.parse_ws(black_box(batch)))
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

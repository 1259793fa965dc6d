//! Parser throughput: one combined-stream ticker frame → quote (documented example, and
//! live-shaped), and one trade frame → trade beside it.

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
    // A frame as a live BTCUSDT stream sends it: the documented shape with the exchange's
    // 8-decimal strings and full-size ids (longer values than the docs' example).
    let live = r#"{"stream":"btcusdt@ticker","data":{"e":"24hrTicker","E":1672515782136,"s":"BTCUSDT","p":"-312.45000000","P":"-0.717","w":"43367.11835212","x":"43562.96000000","c":"43250.51000000","Q":"0.00231000","b":"43250.50000000","B":"3.60212000","a":"43250.51000000","A":"1.92817000","o":"43562.96000000","h":"43820.00000000","l":"42800.00000000","v":"32143.77512000","q":"1393978562.81732350","O":1672429382136,"C":1672515782136,"F":3361215823,"L":3362467432,"n":1251610}}"#;
    c.bench_function("binance_parse_ws_ticker_live", |b| {
        b.iter(|| ingest_binance::parse::parse_ws(black_box(live)))
    });
    let trade = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/test_data/ws_trade_combined.json"
    ))
    .map(|t| {
        serde_json::from_str::<serde_json::Value>(&t)
            .map(|v| v.to_string())
            .unwrap_or_default()
    })
    .unwrap_or_default();
    c.bench_function("binance_parse_ws_trade_compact", |b| {
        b.iter(|| ingest_binance::parse::parse_ws(black_box(&trade)))
    });
    // A trade frame as a live BTCUSDT stream sends it.
    let live_trade = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1672515782136,"s":"BTCUSDT","t":3362467433,"p":"43250.51000000","q":"0.00231000","T":1672515782135,"m":true,"M":true}}"#;
    c.bench_function("binance_parse_ws_trade_live", |b| {
        b.iter(|| ingest_binance::parse::parse_ws(black_box(live_trade)))
    });
    // Same-run baseline: the same frame decoded generically (serde_json::Value, no mapping),
    // so the figure above can be read as a ratio on any machine.
    c.bench_function("baseline_serde_json_value_live", |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(live)))
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

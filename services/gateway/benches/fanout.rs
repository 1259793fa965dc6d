//! Fan-out hot path: one tick from Redis to 100 subscribers' queues, and the per-tick encode.

use criterion::{black_box, criterion_main, BenchmarkId, Criterion, Throughput};
use gateway::fanout::{Hub, Outlet, Publication};
use gateway::metrics::GatewayMetrics;
use tickstream_bus::ChannelHandler;
use tickstream_model::{Channel, Tick};

const TICK: &str = r#"{"symbol":"BTCUSDT","price":67321.45,"volume":28754.12,"high":68010.0,"low":66250.5,"change":812.3,"changePercent":1.22,"bid":67321.4,"ask":67321.5,"timestamp":"2026-11-22T10:30:00.123Z","source":"binance","seq":1}"#;

fn bench(c: &mut Criterion) {
    let tick = Tick::from_json(TICK.as_bytes()).unwrap_or_else(|e| panic!("fixture: {e}"));
    c.bench_function("gateway_encode_tick_frame", |b| {
        // Validated tick → publication → its native WebSocket frame (what every native receiver shares).
        b.iter(|| black_box(Publication::tick(black_box(&tick)).ws().len()))
    });

    let channel = Channel::parse("ticks:BTCUSDT").unwrap_or_else(|e| panic!("channel: {e}"));
    let mut group = c.benchmark_group("gateway_fanout");
    for receivers in [1usize, 100] {
        let hub = Hub::new(GatewayMetrics::new());
        let mut queues = Vec::new();
        for id in 0..receivers {
            let (outlet, rx) = Outlet::new(1024);
            hub.subscribe(id as u64, &outlet, std::slice::from_ref(&channel));
            queues.push((outlet, rx));
        }
        group.throughput(Throughput::Elements(receivers as u64));
        // Redis payload in → decoded, validated, encoded once → offered to every queue → taken out.
        group.bench_with_input(
            BenchmarkId::new("tick_to_receivers", receivers),
            &receivers,
            |b, _| {
                b.iter(|| {
                    hub.on_message("ticks:BTCUSDT", black_box(TICK.as_bytes()));
                    // Each receiver takes the frame and its shared native bytes, as a connection task does.
                    for (_, rx) in &mut queues {
                        black_box(rx.try_recv().map(|p| p.ws().len()));
                    }
                })
            },
        );
    }
    group.finish();
}

// criterion's macro generates an undocumented `pub fn benches`.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);

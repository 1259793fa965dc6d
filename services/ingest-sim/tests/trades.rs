//! ingest-sim → real Redis → gateway → a WebSocket client subscribed to
//! `trades:BTCUSDT`, every process the real binary: each trade is at the price
//! of the tick it caused, and its seq continues across a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use tickstream_mock_upstream::harness::GatewayClient;
use tickstream_model::{Tick, Trade};
use tickstream_testkit::{RedisServer, Service, TickChannel};

/// Generous bound for anything that should take well under a second on a busy machine.
const WAIT: Duration = Duration::from_secs(20);

fn trade(v: serde_json::Value) -> Trade {
    Trade::from_json(v.to_string().as_bytes()).unwrap_or_else(|e| panic!("invalid trade {v}: {e}"))
}

#[tokio::test]
async fn sim_trades_reach_a_trades_subscriber_at_the_tick_prices_and_continue_across_a_restart() {
    let redis = RedisServer::start().await.unwrap();
    let mut client = GatewayClient::start_channels(&redis, &["trades:BTCUSDT"]).await;
    let mut ticks = TickChannel::subscribe(&redis, "BTCUSDT").await;
    let url = redis.url();
    let mut svc = Service::spawn_path(
        Path::new(env!("CARGO_BIN_EXE_ingest-sim")),
        &[
            ("REDIS_URL", url.as_str()),
            ("SYMBOLS", "BTCUSDT"),
            ("TICKSTREAM_SIM__RATE", "20"),
        ],
    )
    .await
    .unwrap();

    // On a fresh Redis, trade n is the trade behind tick n.
    let mut last = 0;
    for _ in 0..5 {
        let raw = client.next_trade("BTCUSDT", WAIT, |_| true).await;
        let t = trade(raw.clone());
        assert_eq!(t.seq, last + 1, "trade seqs are consecutive: {raw}");
        last = t.seq;
        let tick = loop {
            let tick = Tick::from_json(ticks.next(WAIT).await.to_string().as_bytes()).unwrap();
            if tick.seq == t.seq {
                break tick;
            }
        };
        assert_eq!(
            (t.price, t.timestamp),
            (tick.price, tick.timestamp),
            "{raw}"
        );
        assert_eq!(t.source, "sim");
        assert!(
            t.side.is_some() && t.size > 0.0 && t.trade_id.is_none(),
            "{raw}"
        );
    }

    // SIGKILL mid-stream, then the same binary again: the trade seq continues.
    let restart_at = chrono::Utc::now();
    svc.restart().await.unwrap();
    loop {
        let t = trade(client.next_trade("BTCUSDT", WAIT, |_| true).await);
        assert_eq!(t.seq, last + 1, "no gap and no repeat across the restart");
        last = t.seq;
        if t.timestamp > restart_at {
            break;
        }
    }
}

#[tokio::test]
async fn with_trades_off_only_ticks_are_published() {
    let redis = RedisServer::start().await.unwrap();
    let mut ticks = TickChannel::subscribe(&redis, "BTCUSDT").await;
    let url = redis.url();
    let svc = Service::spawn_path(
        Path::new(env!("CARGO_BIN_EXE_ingest-sim")),
        &[
            ("REDIS_URL", url.as_str()),
            ("SYMBOLS", "BTCUSDT"),
            ("TICKSTREAM_SIM__RATE", "50"),
            ("TICKSTREAM_SIM__TRADES", "false"),
        ],
    )
    .await
    .unwrap();
    for _ in 0..5 {
        ticks.next(WAIT).await;
    }
    let (_, metrics) = tickstream_testkit::http_get_text(&svc.http_url("/metrics"))
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"tickstream_ingest_trades_published_total{source="sim"} 0"#),
        "{metrics}"
    );
    let mut c = redis.client().await.unwrap();
    let last: Option<String> = redis::cmd("GET")
        .arg("last:trades:BTCUSDT")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(last, None);
}

//! ingest-binance, the real binary, against a local mock of Binance's
//! combined-stream WebSocket and REST API, publishing into a real Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tickstream_mock_upstream::harness::{
    cached_tick, metric, wait_health, Ingestor, TickChannel, Upstreams,
};
use tickstream_mock_upstream::{ConnEvent, MockResponse};
use tickstream_testkit::assert_rejected;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Bound on any single awaited condition.
const STEP: Duration = Duration::from_secs(10);

/// ingest-binance on one symbol, with a 1 s heartbeat.
const BINANCE: Ingestor = Ingestor::new(
    env!("CARGO_BIN_EXE_ingest-binance"),
    "BINANCE_WS_URL",
    "BINANCE_REST_URL",
)
.with_env(&[
    ("SYMBOLS", "bnbbtc"),
    ("TICKSTREAM_UPSTREAM__HEARTBEAT_SECS", "1"),
]);

#[tokio::test]
async fn subscribes_by_url_and_publishes_the_documented_ticker() {
    let s = BINANCE.start(&[]).await;
    s.ws.wait_connections(1, STEP).await;
    assert_eq!(s.ws.path(0), "/stream?streams=bnbbtc@ticker/bnbbtc@trade");
    let mut channel = TickChannel::subscribe(&s.redis, "BNBBTC").await;
    s.ws.send(0, &s.frame("ws_ticker_combined.json")).await;

    let tick = channel.next(STEP).await;
    let want = serde_json::json!({
        "symbol": "BNBBTC", "price": 0.0025, "volume": 10000.0, "high": 0.0025, "low": 0.001,
        "change": 0.0015, "changePercent": 250.0, "bid": 0.0024, "ask": 0.0026,
        "timestamp": "2022-12-31T19:43:02.136Z", "source": "binance", "seq": 1
    });
    assert_eq!(tick, want);
    assert_eq!(cached_tick(&s.redis, "BNBBTC").await.unwrap(), want);

    let (code, health) = wait_health(&s.svc, STEP, |_, h| h["status"] == "healthy").await;
    assert_eq!(code, 200);
    assert_eq!(health["upstream"]["connected"], true);
    assert_eq!(health["upstream"]["reconnects"], 0);
    assert_eq!(health["symbols"], serde_json::json!(["BNBBTC"]));
    assert!(
        health["upstream"]["last_message_age_seconds"]
            .as_f64()
            .unwrap()
            < 10.0
    );
    assert_eq!(
        s.metric("tickstream_upstream_messages_total").await,
        Some(1.0)
    );
    assert_eq!(
        s.metric("tickstream_ingest_ticks_published_total").await,
        Some(1.0)
    );
    assert_eq!(s.metric("tickstream_upstream_connected").await, Some(1.0));
    assert_eq!(
        s.metric("tickstream_ingest_latency_seconds_count").await,
        Some(1.0)
    );
    assert_eq!(metric(&s.svc, "tickstream_redis_up").await, Some(1.0));
}

#[tokio::test]
async fn answers_server_pings() {
    let s = BINANCE.start(&[]).await;
    s.ws.wait_connections(1, STEP).await;
    s.ws.ping(0, b"binance-ping-1").await;
    s.ws.wait_pong(0, b"binance-ping-1", STEP).await;
    assert_eq!(s.ws.connections(), 1);
}

#[tokio::test]
async fn garbage_truncated_and_drifted_frames_are_counted_and_skipped() {
    let s = BINANCE.start(&[]).await;
    s.ws.wait_connections(1, STEP).await;
    let good = BINANCE.frame("ws_ticker_combined.json");
    let bad = [
        "this is not json".to_owned(),
        good[..good.len() / 2].to_owned(),
        // Schema drift: the last price is gone.
        good.replace("\"c\":\"0.0025\",", ""),
        // Schema drift: a number that is not one.
        good.replace("\"c\":\"0.0025\"", "\"c\":\"n/a\""),
    ];
    for b in &bad {
        s.ws.send(0, b).await;
    }
    // Extra fields are fine; missing optional ones stay absent.
    let extra = good.replace("\"b\":\"0.0024\",", "").replace(
        "\"e\":\"24hrTicker\",",
        "\"e\":\"24hrTicker\",\"z\":\"new\",",
    );
    s.ws.send(0, &extra).await;
    let tick = s.wait_tick("BNBBTC", STEP, |_| true).await;
    assert!(tick.get("bid").is_none(), "bid invented: {tick}");
    assert_eq!(tick["ask"], 0.0026);
    let errors = s
        .wait_metric("tickstream_upstream_parse_errors_total", STEP, |v| v >= 4.0)
        .await;
    assert_eq!(errors, 4.0);
    assert_eq!(
        s.ws.connections(),
        1,
        "garbage must not cost the connection"
    );
    assert!(s.ws.is_open(0));
}

#[tokio::test]
async fn reconnects_and_resubscribes_after_close_and_drop_and_seq_continues() {
    let s = BINANCE.start(&[]).await;
    s.ws.wait_connections(1, STEP).await;
    s.ws.send(0, &s.frame("ws_ticker_combined.json")).await;
    s.wait_tick("BNBBTC", STEP, |t| t["seq"] == 1).await;

    // Binance's 24 h cut looks like this from the client: a close by the server.
    s.ws.close(0, CloseCode::Normal, "24h").await;
    s.ws.wait_connections(2, STEP).await;
    assert_eq!(s.ws.path(1), "/stream?streams=bnbbtc@ticker/bnbbtc@trade");
    s.ws.send(1, &s.frame("ws_ticker_combined.json")).await;
    s.wait_tick("BNBBTC", STEP, |t| t["seq"] == 2).await;

    // A network failure: no close frame at all.
    s.ws.drop_conn(1).await;
    s.ws.wait_connections(3, STEP).await;
    assert_eq!(s.ws.path(2), "/stream?streams=bnbbtc@ticker/bnbbtc@trade");
    s.ws.send(2, &s.frame("ws_ticker_combined.json")).await;
    s.wait_tick("BNBBTC", STEP, |t| t["seq"] == 3).await;
    let reconnects = s
        .metric("tickstream_upstream_reconnects_total")
        .await
        .unwrap();
    assert_eq!(reconnects, 2.0);
    let (_, health) = wait_health(&s.svc, STEP, |_, h| h["upstream"]["connected"] == true).await;
    assert_eq!(health["upstream"]["reconnects"], 2);
}

#[tokio::test]
async fn server_shutdown_event_rotates_without_a_gap() {
    let s = BINANCE.start(&[]).await;
    s.ws.wait_connections(1, STEP).await;
    s.ws.send(0, &s.frame("ws_server_shutdown.json")).await;
    s.ws.wait_connections(2, STEP).await;
    s.ws.wait_closed(0, STEP).await;
    let events = s.ws.events();
    let opened_new = events.iter().position(|e| *e == ConnEvent::Opened(1));
    let closed_old = events.iter().position(|e| *e == ConnEvent::Closed(0));
    assert!(
        opened_new < closed_old,
        "the replacement must open before the old connection closes: {events:?}"
    );
    s.ws.send(1, &s.frame("ws_ticker_combined.json")).await;
    s.wait_tick("BNBBTC", STEP, |t| t["seq"] == 1).await;
}

#[tokio::test]
async fn rotates_at_the_maximum_connection_age() {
    let s = BINANCE
        .start(&[("TICKSTREAM_UPSTREAM__MAX_CONNECTION_AGE_SECS", "1")])
        .await;
    s.ws.wait_connections(2, STEP).await;
    s.ws.wait_closed(0, STEP).await;
    let events = s.ws.events();
    let opened_new = events.iter().position(|e| *e == ConnEvent::Opened(1));
    let closed_old = events.iter().position(|e| *e == ConnEvent::Closed(0));
    assert!(opened_new < closed_old, "{events:?}");
}

#[tokio::test]
async fn stall_watchdog_reconnects() {
    let s = BINANCE
        .start(&[("TICKSTREAM_UPSTREAM__STALL_TIMEOUT_MS", "500")])
        .await;
    s.ws.wait_connections(1, STEP).await;
    // The mock stays silent: only the watchdog can end this connection.
    s.ws.wait_connections(2, STEP).await;
    s.svc.wait_for_log(STEP, "stall watchdog").await.unwrap();
    assert_eq!(s.ws.path(1), "/stream?streams=bnbbtc@ticker/bnbbtc@trade");
}

#[tokio::test]
async fn rest_fallback_engages_honours_retry_after_and_releases() {
    let u = Upstreams::start().await;
    u.ws.refuse(true);
    u.rest
        .push("/api/v3/ticker/24hr", MockResponse::rate_limited(429, 1));
    u.rest.set(
        "/api/v3/ticker/24hr",
        MockResponse::ok(BINANCE.fixture("rest_ticker_24hr.json")),
    );
    let s = u
        .spawn(
            &BINANCE,
            &[
                ("TICKSTREAM_UPSTREAM__FALLBACK_AFTER_MS", "300"),
                ("TICKSTREAM_UPSTREAM__REST_INTERVAL_MS", "200"),
            ],
        )
        .await;

    let tick = s.wait_rest_tick("BNBBTC", STEP).await;
    assert_eq!(tick["price"], 4.000002);
    assert_eq!(tick["timestamp"], "2017-07-12T14:31:39.040Z");
    let r = s.rest.requests();
    assert_eq!(
        r[0], "/api/v3/ticker/24hr?symbols=%5B%22BNBBTC%22%5D",
        "{r:?}"
    );
    s.assert_retry_after_honoured("/api/v3/ticker/24hr");
    assert_eq!(
        s.metric("tickstream_upstream_fallback_active").await,
        Some(1.0)
    );
    assert_eq!(
        metric(
            &s.svc,
            "tickstream_upstream_rest_requests_total{outcome=\"rate_limited\",source=\"binance\"}"
        )
        .await,
        Some(1.0)
    );
    let (code, health) = wait_health(&s.svc, STEP, |_, h| {
        h["upstream"]["fallback_active"] == true
    })
    .await;
    assert_eq!(code, 503);
    assert_eq!(health["status"], "degraded");

    // The stream comes back: the fallback stops and live ticks resume.
    s.restore_stream(1, STEP).await;
    let polls = s.rest.count("/api/v3/ticker/24hr");
    s.ws.send(0, &s.frame("ws_ticker_combined.json")).await;
    let live = s
        .wait_tick("BNBBTC", STEP, |t| t["source"] == "binance")
        .await;
    assert!(live["seq"].as_u64().unwrap() > tick["seq"].as_u64().unwrap());
    wait_health(&s.svc, STEP, |code, h| {
        code == 200 && h["status"] == "healthy"
    })
    .await;
    // One poll may have been in flight when the stream came back; no more after it.
    assert!(s.rest.count("/api/v3/ticker/24hr") <= polls + 1);
}

#[tokio::test]
async fn seq_continues_across_a_restart() {
    let mut s = BINANCE.start(&[]).await;
    s.ws.wait_connections(1, STEP).await;
    for _ in 0..3 {
        s.ws.send(0, &s.frame("ws_ticker_combined.json")).await;
    }
    s.wait_tick("BNBBTC", STEP, |t| t["seq"] == 3).await;
    s.svc.restart().await.unwrap();
    s.ws.wait_connections(2, STEP).await;
    s.ws.send(1, &s.frame("ws_ticker_combined.json")).await;
    s.wait_tick("BNBBTC", STEP, |t| t["seq"] == 4).await;
}

#[tokio::test]
async fn bad_configuration_exits_naming_the_key() {
    for (key, value, needle) in [
        ("SYMBOLS", "btc-usdt", "binance.symbols"),
        ("BINANCE_WS_URL", "http://x", "binance.ws_url"),
        (
            "TICKSTREAM_UPSTREAM__STALL_TIMEOUT_MS",
            "0",
            "upstream.stall_timeout_ms",
        ),
        (
            "TICKSTREAM_UPSTREAM__STALL_TIMEOUT_MS",
            "soon",
            "stall_timeout_ms",
        ),
    ] {
        let bin = std::path::Path::new(BINANCE.bin);
        assert_rejected(bin, &[(key, value)], &[], &[needle], STEP).await;
    }
}

#[tokio::test]
async fn example_config_file_is_accepted() {
    BINANCE.assert_accepts_example_config().await;
}

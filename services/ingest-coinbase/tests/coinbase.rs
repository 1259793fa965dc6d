//! ingest-coinbase, the real binary, against a local mock of the Coinbase
//! Exchange feed and REST API, publishing into a real Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tickstream_mock_upstream::harness::{
    wait_health, Ingestor, OnDemandCase, Setup, TickChannel, Upstreams,
};
use tickstream_mock_upstream::MockResponse;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const STEP: Duration = Duration::from_secs(10);
const SUBSCRIBE: &str =
    r#"{"channels":["ticker","matches","heartbeat"],"product_ids":["ETH-USD"],"type":"subscribe"}"#;

/// ingest-coinbase on one product.
const COINBASE: Ingestor = Ingestor::new(
    env!("CARGO_BIN_EXE_ingest-coinbase"),
    "COINBASE_WS_URL",
    "COINBASE_REST_URL",
)
.with_env(&[("SYMBOLS", "eth-usd")]);

/// The documented ticker with another sequence number, so it is not dropped as stale.
fn ticker(sequence: u64) -> String {
    COINBASE
        .frame("ws_ticker.json")
        .replace("37475248783", &sequence.to_string())
}

/// Coinbase acknowledges a subscribe with the resulting subscriptions.
async fn start(extra: &[(&str, &str)]) -> Setup {
    let u = Upstreams::start().await;
    u.ws.reply_to(
        "\"subscribe\"",
        vec![COINBASE.frame("ws_subscriptions.json")],
    );
    u.spawn(&COINBASE, extra).await
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap()
}

#[tokio::test]
async fn subscribes_as_documented_and_publishes_tickers() {
    let s = start(&[]).await;
    s.ws.wait_connections(1, STEP).await;
    let sub = s.ws.wait_received(0, "subscribe", STEP).await;
    assert_eq!(json(&sub), json(SUBSCRIBE));
    let mut channel = TickChannel::subscribe(&s.redis, "ETH-USD").await;
    s.ws.send(0, &s.frame("ws_heartbeat.json")).await;
    s.ws.send(0, &s.frame("ws_ticker.json")).await;
    let tick = channel.next(STEP).await;
    assert_eq!(tick["symbol"], "ETH-USD");
    assert_eq!(tick["source"], "coinbase");
    assert_eq!(tick["price"], 1285.22);
    assert_eq!(tick["bid"], 1285.04);
    assert_eq!(tick["ask"], 1285.27);
    assert_eq!(tick["volume"], 245532.79269678);
    assert_eq!(tick["high"], 1313.8);
    assert_eq!(tick["low"], 1280.52);
    assert!(
        (tick["change"].as_f64().unwrap() + 25.57).abs() < 1e-9,
        "{tick}"
    );
    assert!((tick["changePercent"].as_f64().unwrap() + 1.950732).abs() < 1e-5);
    assert_eq!(tick["timestamp"], "2022-10-19T23:28:22.061769Z");
    assert_eq!(tick["seq"], 1);
    // subscriptions + heartbeat + ticker.
    s.wait_metric("tickstream_upstream_messages_total", STEP, |v| v == 3.0)
        .await;
    let (code, health) = wait_health(&s.svc, STEP, |_, h| h["status"] == "healthy").await;
    assert_eq!(code, 200);
    assert_eq!(health["symbols"], serde_json::json!(["ETH-USD"]));
}

#[tokio::test]
async fn errors_garbage_and_stale_sequences_are_counted_or_dropped() {
    let s = start(&[]).await;
    s.ws.wait_connections(1, STEP).await;
    s.ws.send(0, &s.frame("ws_error.json")).await;
    s.wait_metric("tickstream_upstream_error_messages_total", STEP, |v| {
        v == 1.0
    })
    .await;
    let good = ticker(100);
    for bad in [
        "{not json".to_owned(),
        good[..good.len() - 20].to_owned(),
        good.replace("\"price\":\"1285.22\",", ""),
        good.replace("\"type\":\"ticker\"", "\"type\":\"tickerV2\""),
    ] {
        s.ws.send(0, &bad).await;
    }
    s.ws.send(0, &good).await;
    s.wait_tick("ETH-USD", STEP, |t| t["seq"] == 1).await;
    // An older sequence is stale and dropped; a newer one goes through.
    s.ws.send(0, &ticker(99).replace("1285.22", "1.5")).await;
    s.ws.send(0, &ticker(101).replace("\"best_bid\":\"1285.04\",", ""))
        .await;
    let t = s.wait_tick("ETH-USD", STEP, |t| t["seq"] == 2).await;
    assert_eq!(t["price"], 1285.22, "stale ticker published: {t}");
    assert!(t.get("bid").is_none(), "bid invented: {t}");
    assert_eq!(
        s.metric("tickstream_upstream_parse_errors_total").await,
        Some(4.0)
    );
    assert_eq!(s.ws.connections(), 1);
}

#[tokio::test]
async fn resubscribes_after_the_server_closes() {
    let s = start(&[]).await;
    s.ws.wait_connections(1, STEP).await;
    s.ws.wait_received(0, "subscribe", STEP).await;
    s.ws.close(0, CloseCode::Away, "maintenance").await;
    s.ws.wait_connections(2, STEP).await;
    let sub = s.ws.wait_received(1, "subscribe", STEP).await;
    assert_eq!(json(&sub), json(SUBSCRIBE));
    s.ws.send(1, &ticker(5)).await;
    s.wait_tick("ETH-USD", STEP, |t| t["seq"] == 1).await;
    assert_eq!(
        s.metric("tickstream_upstream_reconnects_total").await,
        Some(1.0)
    );
}

#[tokio::test]
async fn stall_watchdog_reconnects() {
    let s = start(&[("TICKSTREAM_UPSTREAM__STALL_TIMEOUT_MS", "500")]).await;
    s.ws.wait_connections(2, STEP).await;
    s.svc.wait_for_log(STEP, "stall watchdog").await.unwrap();
    s.ws.wait_received(1, "subscribe", STEP).await;
}

#[tokio::test]
async fn rest_fallback_engages_and_releases() {
    let u = Upstreams::start().await;
    u.ws.refuse(true);
    u.rest.push(
        "/products/ETH-USD/ticker",
        MockResponse::rate_limited(429, 1),
    );
    u.rest.set(
        "/products/ETH-USD/ticker",
        MockResponse::ok(COINBASE.fixture("rest_ticker.json")),
    );
    let s = u
        .spawn(
            &COINBASE,
            &[
                ("SYMBOLS", "ETH-USD"),
                ("TICKSTREAM_UPSTREAM__FALLBACK_AFTER_MS", "300"),
                ("TICKSTREAM_UPSTREAM__REST_INTERVAL_MS", "200"),
            ],
        )
        .await;
    let t = s.wait_rest_tick("ETH-USD", STEP).await;
    assert_eq!(t["price"], 6268.48);
    assert_eq!(t["bid"], 6265.15);
    assert!(t.get("high").is_none(), "high invented: {t}");
    s.assert_retry_after_honoured("/products/ETH-USD/ticker");
    s.restore_stream(1, STEP).await;
    s.ws.send(0, &ticker(7)).await;
    s.wait_tick("ETH-USD", STEP, |t| t["source"] == "coinbase")
        .await;
}

#[tokio::test]
async fn example_config_file_is_accepted() {
    COINBASE.assert_accepts_example_config().await;
}

#[tokio::test]
async fn on_demand_subscribes_a_wanted_product_live_and_unsubscribes_it_after_the_grace() {
    let u = Upstreams::start().await;
    u.ws.reply_to(
        "\"subscribe\"",
        vec![COINBASE.frame("ws_subscriptions.json")],
    );
    let channels = serde_json::json!(["ticker", "matches", "heartbeat"]);
    let case = OnDemandCase {
        pinned: "BTC-USD",
        allowed: "ETH-USD,SOL-USD",
        wanted: "ETH-USD",
        frame: COINBASE.frame("ws_ticker.json"),
        subscribe: serde_json::json!({"type":"subscribe","product_ids":["ETH-USD"],"channels":channels}),
        unsubscribe: serde_json::json!({"type":"unsubscribe","product_ids":["ETH-USD"],"channels":channels}),
    };
    let f = COINBASE.on_demand_round_trip(u, case, STEP).await;
    assert!(f.unsubscribe >= Duration::from_millis(500), "{f:?}");
}

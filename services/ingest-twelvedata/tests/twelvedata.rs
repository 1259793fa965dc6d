//! ingest-twelvedata, the real binary, against a local mock of Twelve Data's
//! WebSocket and REST API, publishing into a real Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tickstream_mock_upstream::harness::{
    wait_health, Ingestor, OnDemandCase, Setup, TickChannel, Upstreams,
};
use tickstream_mock_upstream::MockResponse;

const STEP: Duration = Duration::from_secs(10);

/// ingest-twelvedata with a key, a stock, a crypto pair and a symbol Twelve
/// Data refuses, sending its heartbeat every second.
const TWELVE_DATA: Ingestor = Ingestor::new(
    env!("CARGO_BIN_EXE_ingest-twelvedata"),
    "TWELVE_DATA_WS_URL",
    "TWELVE_DATA_REST_URL",
)
.with_ws_path("/v1/quotes/price")
.with_env(&[
    ("TWELVE_DATA_API_KEY", "td-key"),
    ("SYMBOLS", "AAPL,BTC/USD,INVALID"),
    ("TICKSTREAM_TWELVEDATA__HEARTBEAT_SECS", "1"),
]);

/// The mock answers the subscribe and each heartbeat as Twelve Data does.
async fn start(extra: &[(&str, &str)]) -> Setup {
    let u = Upstreams::start().await;
    u.ws.reply_to(
        "\"subscribe\"",
        vec![TWELVE_DATA.frame("ws_subscribe_status.json")],
    );
    u.ws.reply_to(
        "\"heartbeat\"",
        vec![TWELVE_DATA.frame("ws_heartbeat.json")],
    );
    u.spawn(&TWELVE_DATA, extra).await
}

#[tokio::test]
async fn subscribes_heartbeats_and_publishes_prices() {
    let s = start(&[]).await;
    s.ws.wait_connections(1, STEP).await;
    assert_eq!(s.ws.path(0), "/v1/quotes/price?apikey=td-key");
    let sub = s.ws.wait_received(0, "subscribe", STEP).await;
    assert_eq!(
        sub,
        r#"{"action":"subscribe","params":{"symbols":"AAPL,BTC/USD,INVALID"}}"#
    );
    // The documented subscribe-status lists INVALID under `fails`: logged and counted.
    s.wait_metric("tickstream_upstream_error_messages_total", STEP, |v| {
        v == 1.0
    })
    .await;
    s.svc.wait_for_log(STEP, "INVALID").await.unwrap();
    // The application heartbeat goes out on its period and is answered.
    let hb = s.ws.wait_received(0, "heartbeat", STEP).await;
    assert_eq!(hb, r#"{"action":"heartbeat"}"#);

    let mut channel = TickChannel::subscribe(&s.redis, "BTC/USD").await;
    s.ws.send(0, &s.frame("ws_price_crypto.json")).await;
    let tick = channel.next(STEP).await;
    assert_eq!(
        tick,
        serde_json::json!({"symbol":"BTC/USD","price":30202.1,"volume":45647.0,"bid":30202.1,
            "ask":30202.1,"timestamp":"2022-05-13T10:48:13.000Z","source":"twelvedata","seq":1})
    );
    s.ws.send(0, &s.frame("ws_price_stock.json")).await;
    let aapl = s.wait_tick("AAPL", STEP, |_| true).await;
    assert!(aapl.get("bid").is_none(), "bid invented: {aapl}");
    assert_eq!(aapl["volume"], 27631112.0);
    wait_health(&s.svc, STEP, |c, h| c == 200 && h["status"] == "healthy").await;
}

#[tokio::test]
async fn missing_api_key_is_unhealthy_and_never_calls_twelve_data() {
    let s = start(&[
        ("TWELVE_DATA_API_KEY", ""),
        ("TICKSTREAM_UPSTREAM__FALLBACK_AFTER_MS", "100"),
        ("TICKSTREAM_UPSTREAM__REST_INTERVAL_MS", "100"),
    ])
    .await;
    let (code, health) = wait_health(&s.svc, STEP, |_, h| h["status"] == "unhealthy").await;
    assert_eq!(code, 503);
    assert!(health["message"]
        .as_str()
        .unwrap()
        .contains("TWELVE_DATA_API_KEY"));
    s.svc
        .wait_for_log(STEP, "Not connecting to the upstream")
        .await
        .unwrap();
    // The fallback decides once, at start, that it has nothing to poll.
    s.svc
        .wait_for_log(STEP, "No REST fallback configured")
        .await
        .unwrap();
    assert_eq!(s.ws.connections(), 0);
    assert!(s.rest.requests().is_empty());
}

#[tokio::test]
async fn garbage_is_counted_and_the_connection_stays() {
    let s = start(&[]).await;
    s.ws.wait_connections(1, STEP).await;
    for bad in [
        "<html>502</html>",
        r#"{"event":"price","symbol":"AAPL","#,
        r#"{"event":"price","symbol":"AAPL","timestamp":1592249566}"#,
    ] {
        s.ws.send(0, bad).await;
    }
    s.ws.send(0, &s.frame("ws_price_stock.json")).await;
    s.wait_tick("AAPL", STEP, |t| t["seq"] == 1).await;
    assert_eq!(
        s.metric("tickstream_upstream_parse_errors_total").await,
        Some(3.0)
    );
    assert!(s.ws.is_open(0));
}

#[tokio::test]
async fn stall_reconnects_and_resubscribes() {
    // Heartbeats are answered by the mock, so silence needs a long heartbeat period.
    let s = start(&[
        ("TICKSTREAM_UPSTREAM__STALL_TIMEOUT_MS", "500"),
        ("TICKSTREAM_TWELVEDATA__HEARTBEAT_SECS", "60"),
    ])
    .await;
    s.ws.wait_connections(2, STEP).await;
    s.svc.wait_for_log(STEP, "stall watchdog").await.unwrap();
    s.ws.wait_received(1, "subscribe", STEP).await;
}

#[tokio::test]
async fn rest_fallback_polls_price_then_releases() {
    let s = start(&[
        ("TICKSTREAM_UPSTREAM__FALLBACK_AFTER_MS", "300"),
        ("TICKSTREAM_UPSTREAM__REST_INTERVAL_MS", "200"),
        ("SYMBOLS", "AAPL"),
    ])
    .await;
    s.ws.wait_connections(1, STEP).await;
    s.rest.push("/price", MockResponse::rate_limited(429, 1));
    // Twelve Data's own out-of-credits answer comes with HTTP 200.
    s.rest.push(
        "/price",
        MockResponse::ok(r#"{"code":429,"message":"You have run out of API credits for the current minute.","status":"error"}"#),
    );
    s.rest.set(
        "/price",
        MockResponse::ok(TWELVE_DATA.fixture("rest_price.json")),
    );
    s.cut_stream().await;
    let t = s.wait_rest_tick("AAPL", STEP).await;
    assert_eq!(t["price"], 200.99001);
    assert_eq!(s.rest.requests()[0], "/price?symbol=AAPL&apikey=td-key");
    s.assert_retry_after_honoured("/price");
    s.restore_stream(2, STEP).await;
}

#[tokio::test]
async fn example_config_file_is_accepted() {
    TWELVE_DATA.assert_accepts_example_config().await;
}

#[tokio::test]
async fn on_demand_subscribes_a_wanted_symbol_live_and_unsubscribes_it_after_the_grace() {
    let u = Upstreams::start().await;
    u.ws.reply_to(
        "\"subscribe\"",
        vec![TWELVE_DATA.frame("ws_subscribe_status.json")],
    );
    u.ws.reply_to(
        "\"heartbeat\"",
        vec![TWELVE_DATA.frame("ws_heartbeat.json")],
    );
    let case = OnDemandCase {
        pinned: "EUR/USD",
        allowed: "AAPL,MSFT",
        wanted: "AAPL",
        frame: TWELVE_DATA.frame("ws_price_stock.json"),
        subscribe: serde_json::json!({"action":"subscribe","params":{"symbols":"AAPL"}}),
        unsubscribe: serde_json::json!({"action":"unsubscribe","params":{"symbols":"AAPL"}}),
    };
    let f = TWELVE_DATA.on_demand_round_trip(u, case, STEP).await;
    assert!(f.unsubscribe >= Duration::from_millis(500), "{f:?}");
}

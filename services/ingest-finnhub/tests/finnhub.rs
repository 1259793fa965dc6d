//! ingest-finnhub, the real binary, against a local mock of Finnhub's
//! WebSocket and REST API, publishing into a real Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tickstream_mock_upstream::harness::{
    wait_health, Ingestor, OnDemandCase, TickChannel, Upstreams,
};
use tickstream_mock_upstream::MockResponse;
use tickstream_testkit::wait_until;

const STEP: Duration = Duration::from_secs(10);

/// ingest-finnhub with a key, a stock and a crypto symbol, and a 1 s heartbeat.
const FINNHUB: Ingestor = Ingestor::new(
    env!("CARGO_BIN_EXE_ingest-finnhub"),
    "FINNHUB_WS_URL",
    "FINNHUB_REST_URL",
)
.with_env(&[
    ("FINNHUB_API_KEY", "test-key"),
    ("SYMBOLS", "AAPL,BINANCE:BTCUSDT"),
    ("TICKSTREAM_UPSTREAM__HEARTBEAT_SECS", "1"),
]);

#[tokio::test]
async fn subscribes_per_symbol_with_the_token_and_publishes_trades() {
    let s = FINNHUB.start(&[]).await;
    s.ws.wait_connections(1, STEP).await;
    assert_eq!(s.ws.path(0), "/?token=test-key");
    s.ws.wait_received(0, "BINANCE:BTCUSDT", STEP).await;
    assert_eq!(
        s.ws.received(0),
        vec![
            r#"{"symbol":"AAPL","type":"subscribe"}"#.to_owned(),
            r#"{"symbol":"BINANCE:BTCUSDT","type":"subscribe"}"#.to_owned(),
        ]
    );
    let mut channel = TickChannel::subscribe(&s.redis, "BTCUSDT").await;
    s.ws.send(0, &s.frame("ws_ping.json")).await;
    s.ws.send(0, &s.frame("ws_trade.json")).await;
    let tick = channel.next(STEP).await;
    assert_eq!(
        tick,
        serde_json::json!({"symbol":"BTCUSDT","price":7296.89,"volume":0.011467,
            "timestamp":"2019-12-05T06:18:11.134Z","source":"finnhub","seq":1})
    );
    // The ping was received and ignored.
    s.wait_metric("tickstream_upstream_messages_total", STEP, |v| v == 2.0)
        .await;
    assert_eq!(
        s.metric("tickstream_ingest_ticks_published_total").await,
        Some(1.0)
    );
    let (_, health) = wait_health(&s.svc, STEP, |_, h| h["status"] == "healthy").await;
    assert_eq!(health["symbols"], serde_json::json!(["AAPL", "BTCUSDT"]));
}

#[tokio::test]
async fn missing_api_key_is_unhealthy_and_never_calls_finnhub() {
    let s = FINNHUB
        .start(&[
            ("FINNHUB_API_KEY", ""),
            ("TICKSTREAM_UPSTREAM__FALLBACK_AFTER_MS", "100"),
            ("TICKSTREAM_UPSTREAM__REST_INTERVAL_MS", "100"),
        ])
        .await;
    let (code, health) = wait_health(&s.svc, STEP, |_, h| h["status"] == "unhealthy").await;
    assert_eq!(code, 503);
    assert!(
        health["message"]
            .as_str()
            .unwrap()
            .contains("FINNHUB_API_KEY"),
        "{health}"
    );
    // Let the service run through several heartbeats (each about 1 s) and
    // fallback periods, then check it never dialled out.
    let c = s.redis.client().await.unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    wait_until(STEP, "three distinct heartbeat records", || {
        let mut c = c.clone();
        let seen = seen.clone();
        async move {
            let raw: Option<String> = redis::cmd("GET")
                .arg("tickstream:ingestor:finnhub")
                .query_async(&mut c)
                .await
                .unwrap();
            let mut seen = seen.lock().unwrap();
            if let Some(raw) = raw {
                let hb: serde_json::Value = serde_json::from_str(&raw).unwrap();
                assert_eq!(hb["status"], "unhealthy");
                seen.insert(hb["updated_at"].as_str().unwrap().to_owned());
            }
            seen.len() >= 3
        }
    })
    .await
    .unwrap();
    assert_eq!(s.ws.connections(), 0, "connected without a key");
    assert!(
        s.rest.requests().is_empty(),
        "polled without a key: {:?}",
        s.rest.requests()
    );
}

#[tokio::test]
async fn garbage_and_schema_drift_are_counted_and_skipped() {
    let s = FINNHUB.start(&[]).await;
    s.ws.wait_connections(1, STEP).await;
    for bad in [
        "]]",
        r#"{"data":[{"p":7296.89,"s":"BINANCE:BTCUSDT""#,
        r#"{"data":[{"price":7296.89,"s":"BINANCE:BTCUSDT","t":1575526691134}],"type":"trade"}"#,
        r#"{"type":"trade"}"#,
    ] {
        s.ws.send(0, bad).await;
    }
    s.ws.send(0, &s.frame("ws_trade.json")).await;
    s.wait_tick("BTCUSDT", STEP, |t| t["seq"] == 1).await;
    assert_eq!(
        s.metric("tickstream_upstream_parse_errors_total").await,
        Some(4.0)
    );
    assert!(s.ws.is_open(0));
}

#[tokio::test]
async fn reconnects_after_a_drop_and_resubscribes() {
    let s = FINNHUB.start(&[]).await;
    s.ws.wait_connections(1, STEP).await;
    s.ws.drop_conn(0).await;
    s.ws.wait_connections(2, STEP).await;
    s.ws.wait_received(1, "BINANCE:BTCUSDT", STEP).await;
    assert_eq!(s.ws.received(1).len(), 2);
}

#[tokio::test]
async fn rest_fallback_polls_quotes_then_releases() {
    let s = FINNHUB
        .start(&[
            ("TICKSTREAM_UPSTREAM__FALLBACK_AFTER_MS", "300"),
            ("TICKSTREAM_UPSTREAM__REST_INTERVAL_MS", "200"),
            ("SYMBOLS", "AAPL"),
        ])
        .await;
    s.ws.wait_connections(1, STEP).await;
    s.rest.set(
        "/api/v1/quote",
        MockResponse::ok(FINNHUB.fixture("rest_quote.json")),
    );
    s.cut_stream().await;
    let t = s.wait_rest_tick("AAPL", STEP).await;
    assert_eq!(t["price"], 261.74);
    assert_eq!(t["changePercent"], 0.8826);
    assert_eq!(t["timestamp"], "2020-02-25T14:30:00.000Z");
    assert_eq!(
        s.rest.requests()[0],
        "/api/v1/quote?symbol=AAPL&token=test-key"
    );
    s.restore_stream(2, STEP).await;
}

#[tokio::test]
async fn alpha_vantage_serves_the_fallback_when_only_its_key_is_set() {
    let u = Upstreams::start().await;
    u.rest.set(
        "/query",
        MockResponse::ok(FINNHUB.fixture("rest_global_quote.json")),
    );
    let av = u.rest.url();
    let s = u
        .spawn(
            &FINNHUB,
            &[
                ("FINNHUB_API_KEY", ""),
                ("ALPHA_VANTAGE_URL", av.as_str()),
                ("ALPHA_VANTAGE_API_KEY", "av-key"),
                ("SYMBOLS", "IBM"),
                ("TICKSTREAM_UPSTREAM__FALLBACK_AFTER_MS", "100"),
                ("TICKSTREAM_UPSTREAM__REST_INTERVAL_MS", "60000"),
            ],
        )
        .await;
    let t = s.wait_rest_tick("IBM", STEP).await;
    assert_eq!(t["price"], 134.24);
    assert_eq!(t["changePercent"], 0.7808);
    assert_eq!(
        s.rest.requests(),
        vec!["/query?function=GLOBAL_QUOTE&symbol=IBM&apikey=av-key".to_owned()]
    );
    // Still unhealthy: the stream needs the Finnhub key.
    let (_, h) = wait_health(&s.svc, STEP, |_, h| h["status"] == "unhealthy").await;
    assert!(h["message"].as_str().unwrap().contains("FINNHUB_API_KEY"));
    assert_eq!(s.ws.connections(), 0);
}

#[tokio::test]
async fn example_config_file_is_accepted() {
    FINNHUB.assert_accepts_example_config().await;
}

#[tokio::test]
async fn on_demand_subscribes_a_wanted_symbol_live_and_unsubscribes_it_after_the_grace() {
    // Allowed in Finnhub notation; clients want the tick symbol.
    let case = OnDemandCase {
        pinned: "AAPL",
        allowed: "BINANCE:BTCUSDT,MSFT",
        wanted: "BTCUSDT",
        frame: FINNHUB.frame("ws_trade.json"),
        subscribe: serde_json::json!({"type":"subscribe","symbol":"BINANCE:BTCUSDT"}),
        unsubscribe: serde_json::json!({"type":"unsubscribe","symbol":"BINANCE:BTCUSDT"}),
    };
    let f = FINNHUB
        .on_demand_round_trip(Upstreams::start().await, case, STEP)
        .await;
    assert!(f.unsubscribe >= Duration::from_millis(500), "{f:?}");
}

//! The secondary REST provider ExchangeRate-API of the real ingest-twelvedata
//! binary: with the stream and Twelve Data's own REST down, it asks
//! `/v6/{key}/latest/{BASE}` on the local mock (payload as ExchangeRate-API
//! documents it), its ticks carry `source: "exchangerate-rest"`, a 429 with
//! `Retry-After` is honoured, and the key never reaches the log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tickstream_mock_upstream::harness::{Ingestor, Upstreams};
use tickstream_mock_upstream::MockResponse;

/// Bound on any single awaited condition.
const STEP: Duration = Duration::from_secs(15);
/// ExchangeRate-API's documented `latest/USD` answer, as the tests serve it.
const LATEST_USD: &str =
    include_str!("../../../crates/tickstream-upstream/test_data/exchangerate_latest_usd.json");
/// The key the test configures; it must never be logged.
const KEY: &str = "er-test-key-0123";

const TWELVE_DATA: Ingestor = Ingestor::new(
    env!("CARGO_BIN_EXE_ingest-twelvedata"),
    "TWELVE_DATA_WS_URL",
    "TWELVE_DATA_REST_URL",
)
.with_ws_path("/v1/quotes/price")
.with_env(&[
    ("TWELVE_DATA_API_KEY", "td-key"),
    ("SYMBOLS", "USD/CAD,AAPL"),
    ("TICKSTREAM_UPSTREAM__HEARTBEAT_SECS", "1"),
]);

#[tokio::test]
async fn exchangerate_serves_fx_when_twelve_data_rest_fails_and_honours_retry_after() {
    let u = Upstreams::start().await;
    u.ws.refuse(true);
    let path = format!("/v6/{KEY}/latest/USD");
    // Twelve Data's own REST answers 404 (nothing routed); ExchangeRate-API rate limits once.
    u.rest.push(&path, MockResponse::rate_limited(429, 1));
    u.rest.set(&path, MockResponse::ok(LATEST_USD));
    let rest_url = u.rest.url();
    let s = u
        .spawn(
            &TWELVE_DATA,
            &[
                ("TICKSTREAM_UPSTREAM__FALLBACK_AFTER_MS", "200"),
                ("TICKSTREAM_UPSTREAM__REST_INTERVAL_MS", "200"),
                ("TICKSTREAM_UPSTREAM__REST_PROVIDERS", "exchangerate"),
                ("TICKSTREAM_UPSTREAM__EXCHANGERATE_URL", rest_url.as_str()),
                ("TICKSTREAM_UPSTREAM__EXCHANGERATE_API_KEY", KEY),
            ],
        )
        .await;
    let tick = s
        .wait_tick("USD/CAD", STEP, |t| t["source"] == "exchangerate-rest")
        .await;
    assert_eq!(tick["price"], 1.3168);
    assert_eq!(tick["timestamp"], "2020-03-27T00:00:00.000Z");
    for absent in [
        "volume",
        "high",
        "low",
        "bid",
        "ask",
        "change",
        "changePercent",
    ] {
        assert!(tick.get(absent).is_none(), "{absent} invented: {tick}");
    }
    let requests = s.rest.requests();
    assert!(
        requests.iter().all(|r| !r.contains("/latest/AAPL")),
        "asked for a stock: {requests:?}"
    );
    s.assert_retry_after_honoured(&path);
    let logs = s.svc.logs().join("\n");
    assert!(!logs.contains(KEY), "the key reached the log");
}

#[tokio::test]
async fn the_exchangerate_provider_without_a_key_fails_fast_naming_it() {
    let u = Upstreams::start().await;
    let redis = u.redis.url();
    let ws = u.ws.url();
    let rest = u.rest.url();
    tickstream_testkit::assert_rejected(
        std::path::Path::new(env!("CARGO_BIN_EXE_ingest-twelvedata")),
        &[
            ("REDIS_URL", redis.as_str()),
            ("TWELVE_DATA_WS_URL", ws.as_str()),
            ("TWELVE_DATA_REST_URL", rest.as_str()),
            ("TICKSTREAM_UPSTREAM__REST_PROVIDERS", "exchangerate"),
        ],
        &[],
        &["upstream.exchangerate_api_key"],
        STEP,
    )
    .await;
}

//! The secondary REST providers ExchangeRate-API (FX) and Alpha Vantage
//! (stocks) of the real ingest-twelvedata binary: with the stream and Twelve
//! Data's own REST down, it asks `/v6/{key}/latest/{BASE}` and
//! `GLOBAL_QUOTE` on the local mock (payloads as each provider documents
//! them), their ticks carry `source: "exchangerate-rest"` /
//! `"alphavantage-rest"`, a 429 with `Retry-After` is honoured, the keys
//! never reach the log, and once the stream returns neither is polled any more.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tickstream_mock_upstream::harness::{Ingestor, Upstreams};
use tickstream_mock_upstream::MockResponse;

/// Bound on any single awaited condition.
const STEP: Duration = Duration::from_secs(15);
/// ExchangeRate-API's documented `latest/USD` answer, as the tests serve it.
const LATEST_USD: &str =
    include_str!("../../../crates/tickstream-upstream/test_data/exchangerate_latest_usd.json");
/// Alpha Vantage's documented `GLOBAL_QUOTE` answer (for IBM).
const GLOBAL_QUOTE: &str =
    include_str!("../../../crates/tickstream-upstream/test_data/alphavantage_global_quote.json");
/// The key the test configures; it must never be logged.
const KEY: &str = "er-test-key-0123";
/// The Alpha Vantage key, set through `ALPHA_VANTAGE_API_KEY`; never logged either.
const AV_KEY: &str = "avtestkey0123";

const TWELVE_DATA: Ingestor = Ingestor::new(
    env!("CARGO_BIN_EXE_ingest-twelvedata"),
    "TWELVE_DATA_WS_URL",
    "TWELVE_DATA_REST_URL",
)
.with_ws_path("/v1/quotes/price")
.with_env(&[
    ("TWELVE_DATA_API_KEY", "td-key"),
    ("SYMBOLS", "USD/CAD,IBM"),
    ("TICKSTREAM_UPSTREAM__HEARTBEAT_SECS", "1"),
]);

#[tokio::test]
async fn exchangerate_and_alphavantage_serve_when_twelve_data_rest_fails_honour_retry_after_and_are_released_when_the_stream_returns(
) {
    let u = Upstreams::start().await;
    u.ws.refuse(true);
    let path = format!("/v6/{KEY}/latest/USD");
    // Twelve Data's own REST answers 404 (nothing routed); ExchangeRate-API rate limits once.
    u.rest.push(&path, MockResponse::rate_limited(429, 1));
    u.rest.set(&path, MockResponse::ok(LATEST_USD));
    u.rest.set(
        "/query?function=GLOBAL_QUOTE&symbol=IBM",
        MockResponse::ok(GLOBAL_QUOTE),
    );
    let rest_url = u.rest.url();
    let s = u
        .spawn(
            &TWELVE_DATA,
            &[
                ("TICKSTREAM_UPSTREAM__FALLBACK_AFTER_MS", "200"),
                ("TICKSTREAM_UPSTREAM__REST_INTERVAL_MS", "200"),
                (
                    "TICKSTREAM_UPSTREAM__REST_PROVIDERS",
                    "exchangerate,alphavantage",
                ),
                ("TICKSTREAM_UPSTREAM__EXCHANGERATE_URL", rest_url.as_str()),
                ("TICKSTREAM_UPSTREAM__EXCHANGERATE_API_KEY", KEY),
                ("TICKSTREAM_UPSTREAM__ALPHA_VANTAGE_URL", rest_url.as_str()),
                ("ALPHA_VANTAGE_API_KEY", AV_KEY),
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
    let stock = s
        .wait_tick("IBM", STEP, |t| t["source"] == "alphavantage-rest")
        .await;
    assert_eq!(stock["price"], 134.24);
    assert_eq!(stock["high"], 134.89);
    assert_eq!(stock["low"], 133.14);
    assert_eq!(stock["volume"], 3436541.0);
    assert_eq!(stock["change"], 1.04);
    assert_eq!(stock["changePercent"], 0.7808);
    let requests = s.rest.requests();
    assert!(
        requests.iter().all(|r| !r.contains("/latest/IBM")),
        "asked ExchangeRate-API for a stock: {requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r == &format!("/query?function=GLOBAL_QUOTE&symbol=IBM&apikey={AV_KEY}")),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .all(|r| !(r.starts_with("/query") && r.contains("symbol=USD"))),
        "asked Alpha Vantage for an FX pair: {requests:?}"
    );
    s.assert_retry_after_honoured(&path);
    let logs = s.svc.logs().join("\n");
    assert!(
        !logs.contains(KEY),
        "the ExchangeRate-API key reached the log"
    );
    assert!(
        !logs.contains(AV_KEY),
        "the Alpha Vantage key reached the log"
    );
    s.assert_fallback_released(
        1,
        &[path.as_str(), "/query?function=GLOBAL_QUOTE", "/price"],
        STEP,
    )
    .await;
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

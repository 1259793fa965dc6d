//! The secondary REST provider (CoinGecko) of the real ingest-binance binary:
//! with the stream and Binance's own REST down, it polls CoinGecko's
//! `simple/price` on the local mock (payload as CoinGecko documents it), its
//! ticks carry `source: "coingecko-rest"`, a 429 with `Retry-After` is honoured,
//! and once the stream returns CoinGecko is polled no more.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tickstream_mock_upstream::harness::{Ingestor, Upstreams};
use tickstream_mock_upstream::MockResponse;

/// Bound on any single awaited condition.
const STEP: Duration = Duration::from_secs(15);
/// CoinGecko's documented `simple/price` answer, as the tests serve it.
const SIMPLE_PRICE: &str =
    include_str!("../../../crates/tickstream-upstream/test_data/coingecko_simple_price.json");
/// The path the ingestor asks CoinGecko for BTCUSDT.
const PATH: &str = "/api/v3/simple/price?ids=bitcoin&vs_currencies=usd&include_24hr_change=true&include_last_updated_at=true";

const BINANCE: Ingestor = Ingestor::new(
    env!("CARGO_BIN_EXE_ingest-binance"),
    "BINANCE_WS_URL",
    "BINANCE_REST_URL",
)
.with_env(&[
    ("SYMBOLS", "btcusdt"),
    ("TICKSTREAM_UPSTREAM__HEARTBEAT_SECS", "1"),
]);

#[tokio::test]
async fn coingecko_serves_when_binance_rest_fails_honours_retry_after_and_is_released_when_the_stream_returns(
) {
    let u = Upstreams::start().await;
    u.ws.refuse(true);
    // Binance's own REST answers 404 (nothing routed); CoinGecko rate limits once, then answers.
    u.rest
        .push("/api/v3/simple/price", MockResponse::rate_limited(429, 1));
    u.rest
        .set("/api/v3/simple/price", MockResponse::ok(SIMPLE_PRICE));
    let rest_url = u.rest.url();
    let s = u
        .spawn(
            &BINANCE,
            &[
                ("TICKSTREAM_UPSTREAM__FALLBACK_AFTER_MS", "200"),
                ("TICKSTREAM_UPSTREAM__REST_INTERVAL_MS", "200"),
                ("TICKSTREAM_UPSTREAM__REST_PROVIDERS", "coingecko"),
                ("TICKSTREAM_UPSTREAM__COINGECKO_URL", rest_url.as_str()),
            ],
        )
        .await;
    let tick = s
        .wait_tick("BTCUSDT", STEP, |t| t["source"] == "coingecko-rest")
        .await;
    assert_eq!(tick["price"], 67187.3358936566);
    assert_eq!(tick["changePercent"], 3.63727894677354);
    assert_eq!(tick["timestamp"], "2024-03-25T08:45:00.000Z");
    for absent in ["volume", "high", "low", "bid", "ask", "change"] {
        assert!(tick.get(absent).is_none(), "{absent} invented: {tick}");
    }
    let requests = s.rest.requests();
    assert!(requests.iter().any(|r| r == PATH), "{requests:?}");
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("/api/v3/ticker/24hr")),
        "Binance's own REST was not tried first: {requests:?}"
    );
    s.assert_retry_after_honoured("/api/v3/simple/price");
    s.assert_fallback_released(1, &["/api/v3/simple/price", "/api/v3/ticker/24hr"], STEP)
        .await;
}

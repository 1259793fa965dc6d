//! Mock Coinbase → ingest-coinbase → real Redis → gateway → WebSocket client,
//! every process the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tickstream_mock_upstream::harness::Ingestor;

const STEP: Duration = Duration::from_secs(15);

/// ingest-coinbase on one product.
const COINBASE: Ingestor = Ingestor::new(
    env!("CARGO_BIN_EXE_ingest-coinbase"),
    "COINBASE_WS_URL",
    "COINBASE_REST_URL",
)
.with_env(&[("SYMBOLS", "ETH-USD")]);

#[tokio::test]
async fn coinbase_ticker_reaches_a_gateway_websocket_client() {
    let tick = COINBASE
        .tick_through_gateway("ETH-USD", "ws_ticker.json", STEP)
        .await;
    assert_eq!(tick["source"], "coinbase");
    assert_eq!(tick["price"], 1285.22);
    assert_eq!(tick["timestamp"], "2022-10-19T23:28:22.061769Z");
    assert_eq!(tick["seq"], 1);
}

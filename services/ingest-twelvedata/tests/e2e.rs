//! Mock Twelve Data → ingest-twelvedata → real Redis → gateway → WebSocket
//! client, every process the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tickstream_mock_upstream::harness::Ingestor;

const STEP: Duration = Duration::from_secs(15);

/// ingest-twelvedata with a key and one crypto pair.
const TWELVE_DATA: Ingestor = Ingestor::new(
    env!("CARGO_BIN_EXE_ingest-twelvedata"),
    "TWELVE_DATA_WS_URL",
    "TWELVE_DATA_REST_URL",
)
.with_env(&[("TWELVE_DATA_API_KEY", "k"), ("SYMBOLS", "BTC/USD")]);

#[tokio::test]
async fn twelvedata_price_reaches_a_gateway_websocket_client() {
    let tick = TWELVE_DATA
        .tick_through_gateway("BTC/USD", "ws_price_crypto.json", STEP)
        .await;
    assert_eq!(tick["source"], "twelvedata");
    assert_eq!(tick["price"], 30202.1);
    assert_eq!(tick["timestamp"], "2022-05-13T10:48:13.000Z");
}

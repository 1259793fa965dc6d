//! Mock Twelve Data → ingest-twelvedata → real Redis → gateway → WebSocket
//! client, every process the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tickstream_mock_upstream::fixture_frame;
use tickstream_mock_upstream::harness::{GatewayClient, Ingestor};

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
    let s = TWELVE_DATA.start(&[]).await;
    s.ws.wait_connections(1, STEP).await;
    s.ws.wait_received(0, "subscribe", STEP).await;
    let mut client = GatewayClient::start(&s.redis, "BTC/USD").await;
    s.ws.send(
        0,
        &fixture_frame(env!("CARGO_MANIFEST_DIR"), "ws_price_crypto.json"),
    )
    .await;
    let tick = client.next_tick("BTC/USD", STEP, |_| true).await;
    assert_eq!(tick["source"], "twelvedata");
    assert_eq!(tick["price"], 30202.1);
    assert_eq!(tick["timestamp"], "2022-05-13T10:48:13.000Z");
}

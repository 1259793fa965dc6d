//! Mock Coinbase → ingest-coinbase → real Redis → gateway → WebSocket client,
//! every process the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tickstream_mock_upstream::fixture_frame;
use tickstream_mock_upstream::harness::{GatewayClient, Ingestor};

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
    let s = COINBASE.start(&[]).await;
    s.ws.wait_connections(1, STEP).await;
    s.ws.wait_received(0, "subscribe", STEP).await;
    let mut client = GatewayClient::start(&s.redis, "ETH-USD").await;
    s.ws.send(
        0,
        &fixture_frame(env!("CARGO_MANIFEST_DIR"), "ws_ticker.json"),
    )
    .await;
    let tick = client.next_tick("ETH-USD", STEP, |_| true).await;
    assert_eq!(tick["source"], "coinbase");
    assert_eq!(tick["price"], 1285.22);
    assert_eq!(tick["timestamp"], "2022-10-19T23:28:22.061769Z");
    assert_eq!(tick["seq"], 1);
}

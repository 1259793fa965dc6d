//! Mock Coinbase → ingest-coinbase → real Redis → gateway → WebSocket client,
//! every process the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tickstream_mock_upstream::harness::GatewayClient;
use tickstream_mock_upstream::{fixture_frame, MockWs};
use tickstream_testkit::{RedisServer, Service};

const STEP: Duration = Duration::from_secs(15);

#[tokio::test]
async fn coinbase_ticker_reaches_a_gateway_websocket_client() {
    let redis = RedisServer::start().await.unwrap();
    let ws = MockWs::start().await;
    let (redis_url, ws_url) = (redis.url(), ws.url());
    let _ingest = Service::spawn(
        "ingest-coinbase",
        &[
            ("REDIS_URL", redis_url.as_str()),
            ("COINBASE_WS_URL", ws_url.as_str()),
            ("SYMBOLS", "ETH-USD"),
            ("TICKSTREAM_UPSTREAM__FALLBACK_AFTER_MS", "0"),
        ],
    )
    .await
    .unwrap();
    ws.wait_connections(1, STEP).await;
    ws.wait_received(0, "subscribe", STEP).await;
    let mut client = GatewayClient::start(&redis, "ETH-USD").await;
    ws.send(
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

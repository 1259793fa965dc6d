//! Mock Twelve Data → ingest-twelvedata → real Redis → gateway → WebSocket
//! client, every process the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tickstream_mock_upstream::harness::GatewayClient;
use tickstream_mock_upstream::{fixture_frame, MockWs};
use tickstream_testkit::{RedisServer, Service};

const STEP: Duration = Duration::from_secs(15);

#[tokio::test]
async fn twelvedata_price_reaches_a_gateway_websocket_client() {
    let redis = RedisServer::start().await.unwrap();
    let ws = MockWs::start().await;
    let (redis_url, ws_url) = (redis.url(), ws.url());
    let _ingest = Service::spawn(
        "ingest-twelvedata",
        &[
            ("REDIS_URL", redis_url.as_str()),
            ("TWELVE_DATA_WS_URL", ws_url.as_str()),
            ("TWELVE_DATA_API_KEY", "k"),
            ("SYMBOLS", "BTC/USD"),
            ("TICKSTREAM_UPSTREAM__FALLBACK_AFTER_MS", "0"),
        ],
    )
    .await
    .unwrap();
    ws.wait_connections(1, STEP).await;
    ws.wait_received(0, "subscribe", STEP).await;
    let mut client = GatewayClient::start(&redis, "BTC/USD").await;
    ws.send(
        0,
        &fixture_frame(env!("CARGO_MANIFEST_DIR"), "ws_price_crypto.json"),
    )
    .await;
    let tick = client.next_tick("BTC/USD", STEP, |_| true).await;
    assert_eq!(tick["source"], "twelvedata");
    assert_eq!(tick["price"], 30202.1);
    assert_eq!(tick["timestamp"], "2022-05-13T10:48:13.000Z");
}

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

#[tokio::test]
async fn coinbase_match_reaches_a_trades_subscriber_and_its_seq_survives_a_restart() {
    // The documented match is of BTC-USD.
    const COINBASE_BTC: Ingestor = COINBASE.with_env(&[("SYMBOLS", "BTC-USD")]);
    let (first, second) = COINBASE_BTC
        .trades_through_gateway("BTC-USD", "ws_match.json", STEP)
        .await;
    assert_eq!(
        first,
        serde_json::json!({"symbol":"BTC-USD","price":400.23,"size":5.23512,"side":"buy",
            "trade_id":"10","timestamp":"2014-11-07T08:19:27.028459Z","source":"coinbase","seq":1}),
        "the maker sold, so the taker bought"
    );
    assert_eq!(
        second["seq"], 2,
        "the restarted ingestor continued the trade seq"
    );
    assert_eq!(second["trade_id"], "10");
}

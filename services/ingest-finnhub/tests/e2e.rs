//! Mock Finnhub → ingest-finnhub → real Redis → gateway → WebSocket client,
//! every process the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tickstream_mock_upstream::harness::Ingestor;

const STEP: Duration = Duration::from_secs(15);

/// ingest-finnhub with a key and one crypto symbol.
const FINNHUB: Ingestor = Ingestor::new(
    env!("CARGO_BIN_EXE_ingest-finnhub"),
    "FINNHUB_WS_URL",
    "FINNHUB_REST_URL",
)
.with_env(&[("FINNHUB_API_KEY", "k"), ("SYMBOLS", "BINANCE:BTCUSDT")]);

#[tokio::test]
async fn finnhub_trade_reaches_a_gateway_websocket_client() {
    let tick = FINNHUB
        .tick_through_gateway("BTCUSDT", "ws_trade.json", STEP)
        .await;
    assert_eq!(tick["source"], "finnhub");
    assert_eq!(tick["price"], 7296.89);
    assert_eq!(tick["timestamp"], "2019-12-05T06:18:11.134Z");
}

#[tokio::test]
async fn finnhub_trade_reaches_a_trades_subscriber_and_its_seq_survives_a_restart() {
    let (first, second) = FINNHUB
        .trades_through_gateway("BTCUSDT", "ws_trade.json", STEP)
        .await;
    assert_eq!(
        first,
        serde_json::json!({"symbol":"BTCUSDT","price":7296.89,"size":0.011467,
            "timestamp":"2019-12-05T06:18:11.134Z","source":"finnhub","seq":1}),
        "every documented field, no side and no trade_id (Finnhub gives neither)"
    );
    assert_eq!(
        second["seq"], 2,
        "the restarted ingestor continued the trade seq"
    );
    assert_eq!(second["price"], 7296.89);
}

//! Mock Binance → ingest-binance → real Redis → gateway → WebSocket client,
//! every process the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tickstream_mock_upstream::harness::{GatewayClient, Ingestor};

const STEP: Duration = Duration::from_secs(15);

/// ingest-binance on one symbol.
const BINANCE: Ingestor = Ingestor::new(
    env!("CARGO_BIN_EXE_ingest-binance"),
    "BINANCE_WS_URL",
    "BINANCE_REST_URL",
)
.with_env(&[("SYMBOLS", "bnbbtc")])
.with_url_subscriptions();

#[tokio::test]
async fn binance_ticker_reaches_a_gateway_websocket_client() {
    let s = BINANCE.start(&[]).await;
    s.ws.wait_connections(1, STEP).await;
    let frame = BINANCE.frame("ws_ticker_combined.json");
    s.ws.send(0, &frame).await;
    s.wait_tick("BNBBTC", STEP, |t| t["seq"] == 1).await;

    let mut client = GatewayClient::start(&s.redis, "BNBBTC").await;
    // First the cached tick, then a live one from the upstream.
    let cached = client.next_tick("BNBBTC", STEP, |_| true).await;
    assert_eq!(cached["seq"], 1);
    s.ws.send(0, &frame).await;
    let live = client.next_tick("BNBBTC", STEP, |d| d["seq"] == 2).await;
    assert_eq!(live["source"], "binance");
    assert_eq!(live["price"], 0.0025);
    assert_eq!(live["bid"], 0.0024);
    assert_eq!(live["changePercent"], 250.0);
    assert_eq!(live["timestamp"], "2022-12-31T19:43:02.136Z");

    // The gateway knows the ingestor from its heartbeat.
    let symbols_url = client.gateway().http_url("/symbols");
    tickstream_testkit::wait_until(STEP, "binance in /symbols", || {
        let u = symbols_url.clone();
        async move {
            matches!(tickstream_testkit::http_get_json(&u).await, Ok((200, v))
                if v["data"]["supported"]["binance"] == serde_json::json!(["BNBBTC"]))
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn binance_trade_reaches_a_trades_subscriber_and_its_seq_survives_a_restart() {
    let (first, second) = BINANCE
        .trades_through_gateway("BNBBTC", "ws_trade_combined.json", STEP)
        .await;
    assert_eq!(
        first,
        serde_json::json!({"symbol":"BNBBTC","price":0.001,"size":100.0,"side":"sell",
            "trade_id":"12345","timestamp":"2022-12-31T19:43:02.136Z","source":"binance","seq":1}),
        "the buyer was the maker, so the taker sold"
    );
    assert_eq!(
        second["seq"], 2,
        "the restarted ingestor continued the trade seq"
    );
    assert_eq!(second["trade_id"], "12345");
}

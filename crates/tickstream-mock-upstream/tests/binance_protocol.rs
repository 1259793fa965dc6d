//! The Binance mode of the mock, driven by a raw WebSocket client: control
//! messages answered as Binance documents them, tickers only for subscribed
//! streams, and Binance's limits enforced.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tickstream_mock_upstream::{BinanceOptions, MockWs};
use tokio_tungstenite::tungstenite::Message;

const STEP: Duration = Duration::from_secs(10);

/// The documented raw `24hrTicker` payload (Binance Spot WebSocket Streams).
const TICKER: &str = r#"{"e":"24hrTicker","E":1672515782136,"s":"BNBBTC","p":"0.0015","P":"250.00","w":"0.0018","x":"0.0009","c":"0.0025","Q":"10","b":"0.0024","B":"10","a":"0.0026","A":"100","o":"0.0010","h":"0.0025","l":"0.0010","v":"10000","q":"18","O":0,"C":86400000,"F":0,"L":18150,"n":18151}"#;

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn mock() -> MockWs {
    MockWs::start_binance(BinanceOptions {
        ticker_template: TICKER.to_owned(),
        tick_interval: None,
    })
    .await
}

async fn connect(mock: &MockWs, streams: &str) -> Client {
    let url = format!("{}/stream?streams={streams}", mock.url());
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// The next text frame as JSON (or `None` when the server closed).
async fn next_json(c: &mut Client) -> Option<Value> {
    loop {
        match tokio::time::timeout(STEP, c.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(t.as_str()).unwrap()),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

async fn request(c: &mut Client, v: Value) -> Value {
    c.send(Message::text(v.to_string())).await.unwrap();
    next_json(c).await.unwrap()
}

#[tokio::test]
async fn subscribe_list_unsubscribe_with_ids_and_tickers_only_for_subscribed_streams() {
    let m = mock().await;
    let mut c = connect(&m, "bnbbtc@ticker").await;
    m.wait_connections(1, STEP).await;
    assert_eq!(m.subscriptions(0), ["bnbbtc@ticker"]);

    let r = request(
        &mut c,
        json!({"method":"SUBSCRIBE","params":["ethbtc@ticker"],"id":1}),
    )
    .await;
    assert_eq!(r, json!({"result": null, "id": 1}));
    let r = request(&mut c, json!({"method":"LIST_SUBSCRIPTIONS","id":2})).await;
    assert_eq!(
        r,
        json!({"result": ["bnbbtc@ticker", "ethbtc@ticker"], "id": 2})
    );
    let r = request(
        &mut c,
        json!({"method":"UNSUBSCRIBE","params":["bnbbtc@ticker"],"id":3}),
    )
    .await;
    assert_eq!(r, json!({"result": null, "id": 3}));
    assert_eq!(m.subscriptions(0), ["ethbtc@ticker"]);

    assert_eq!(m.push_ticker("BNBBTC").await, 0, "unsubscribed stream");
    assert_eq!(m.push_ticker("ETHBTC").await, 1);
    let t = next_json(&mut c).await.unwrap();
    assert_eq!(t["stream"], "ethbtc@ticker");
    assert_eq!(t["data"]["s"], "ETHBTC");
    assert_eq!(t["data"]["c"], "0.0025");

    let controls = m.controls(0);
    let ids: Vec<Value> = controls.iter().map(|c| c.id.clone().unwrap()).collect();
    assert_eq!(ids, [json!(1), json!(2), json!(3)]);
    assert_eq!(controls[0].method, "SUBSCRIBE");
    assert_eq!(controls[0].params, ["ethbtc@ticker"]);

    // Errors are shaped like the docs' "Error Messages".
    let r = request(&mut c, json!({"method":"SUBSCRIBER","params":[],"id":4})).await;
    assert_eq!(r["id"], 4);
    assert_eq!(r["error"]["code"], 2);
    let r = request(&mut c, json!({"method":"LIST_SUBSCRIPTIONS","id":{}})).await;
    assert_eq!(r["code"], 2);
    assert!(r["msg"].as_str().unwrap().contains("request ID"));
    assert!(m.rate_limited().is_empty());
}

#[tokio::test]
async fn more_than_1024_streams_is_refused() {
    let m = mock().await;
    let mut c = connect(&m, "bnbbtc@ticker").await;
    let params: Vec<String> = (0..1024).map(|i| format!("s{i}usdt@ticker")).collect();
    let r = request(&mut c, json!({"method":"SUBSCRIBE","params":params,"id":7})).await;
    assert_eq!(r["id"], 7);
    assert!(r["error"]["msg"].as_str().unwrap().contains("1024"), "{r}");
    assert_eq!(m.subscriptions(0), ["bnbbtc@ticker"]);
    let r = request(
        &mut c,
        json!({"method":"SUBSCRIBE","params":&params[..1023],"id":8}),
    )
    .await;
    assert_eq!(r, json!({"result": null, "id": 8}));
    assert_eq!(m.subscriptions(0).len(), 1024);
}

#[tokio::test]
async fn more_than_five_messages_a_second_disconnects() {
    let m = mock().await;
    let mut c = connect(&m, "bnbbtc@ticker").await;
    m.wait_connections(1, STEP).await;
    for id in 0..7 {
        let frame = json!({"method":"LIST_SUBSCRIPTIONS","id":id}).to_string();
        if c.send(Message::text(frame)).await.is_err() {
            break;
        }
    }
    // Replies to the first five, then the close.
    let mut replies = 0;
    while next_json(&mut c).await.is_some() {
        replies += 1;
    }
    assert!(replies <= 5, "{replies} replies");
    m.wait_closed(0, STEP).await;
    assert_eq!(m.rate_limited(), [0]);
}

#[tokio::test]
async fn a_url_with_more_than_1024_streams_is_closed() {
    let m = mock().await;
    let streams: Vec<String> = (0..1025).map(|i| format!("s{i}usdt@ticker")).collect();
    let mut c = connect(&m, &streams.join("/")).await;
    assert!(next_json(&mut c).await.is_none());
    m.wait_closed(0, STEP).await;
}

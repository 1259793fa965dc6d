//! On-demand streaming end to end: a real gateway keeps interest leases in a
//! private redis-server for the symbols its WebSocket clients hold, and the
//! real ingest-binance in on-demand mode streams its pinned symbol plus the
//! allowed symbols someone wants, live on the mock Binance (which records every
//! SUBSCRIBE/UNSUBSCRIBE), dropping them after the grace once nobody wants them
//! (the last client leaves, or the gateway dies).
//!
//! Needs the workspace's binaries built (`cargo build --bins`, as `make test` does).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tickstream_mock_upstream::harness::{Ingestor, Upstreams};
use tickstream_mock_upstream::{BinanceOptions, MockWs};
use tickstream_testkit::{bin_path, wait_until, Service};
use tokio_tungstenite::tungstenite::Message;

/// Bound on any awaited condition.
const STEP: Duration = Duration::from_secs(15);
/// The ingestor's grace in this test.
const GRACE_MS: &str = "500";

fn binance() -> Ingestor {
    let bin = bin_path("ingest-binance");
    assert!(
        bin.exists(),
        "ingest-binance not built: run `cargo build --bins` first"
    );
    let bin: &'static str = Box::leak(bin.to_string_lossy().into_owned().into_boxed_str());
    Ingestor::new(bin, "BINANCE_WS_URL", "BINANCE_REST_URL")
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A native client of `gw` subscribed to `symbols` (waits for `subscribed`).
async fn client(gw: &Service, symbols: &[&str]) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(gw.ws_url("/ws"))
        .await
        .unwrap();
    let req = json!({"event": "subscribe", "data": {"symbols": symbols}});
    ws.send(Message::text(req.to_string())).await.unwrap();
    tokio::time::timeout(STEP, async {
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["event"] == "subscribed" {
                    return;
                }
            }
        }
        panic!("the gateway closed before subscribed");
    })
    .await
    .expect("no subscribed reply");
    ws
}

/// Every stream connection 0 of the mock was told to (un)subscribe, as `METHOD stream`.
fn controls(ws: &MockWs) -> Vec<String> {
    ws.controls(0)
        .into_iter()
        .flat_map(|c| {
            c.params
                .into_iter()
                .map(move |p| format!("{} {p}", c.method))
        })
        .collect()
}

async fn wait_control(ws: &MockWs, want: &str) -> Instant {
    wait_until(STEP, want, || async {
        controls(ws).iter().any(|c| c == want)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; controls: {:?}", controls(ws)));
    Instant::now()
}

#[tokio::test]
async fn binance_subscribes_wanted_symbols_and_unsubscribes_after_the_grace() {
    let binance = binance();
    let mock = MockWs::start_binance(BinanceOptions {
        ticker_template: binance.frame("ws_ticker_raw.json"),
        tick_interval: Some(Duration::from_millis(200)),
    })
    .await;
    let s = Upstreams::with_ws(mock)
        .await
        .spawn(
            &binance,
            &[
                ("SYMBOLS", "bnbbtc"),
                ("TICKSTREAM_UPSTREAM__ON_DEMAND", "true"),
                ("TICKSTREAM_UPSTREAM__ON_DEMAND_SYMBOLS", "ETHUSDT,SOLUSDT"),
                ("TICKSTREAM_UPSTREAM__ON_DEMAND_GRACE_MS", GRACE_MS),
            ],
        )
        .await;
    s.ws.wait_connections(1, STEP).await;
    assert_eq!(
        s.ws.path(0),
        "/stream?streams=bnbbtc@ticker/bnbbtc@trade",
        "pinned only at start"
    );
    let url = s.redis.url();
    let mut gw = Service::spawn("gateway", &[("REDIS_URL", url.as_str())])
        .await
        .unwrap();

    // A client wants ETHUSDT (allowed) and XRPUSDT (not allowed): only ETHUSDT is subscribed.
    let asked = Instant::now();
    let mut a = client(&gw, &["ETHUSDT", "XRPUSDT"]).await;
    let subscribed = wait_control(&s.ws, "SUBSCRIBE ethusdt@ticker").await;
    eprintln!(
        "on demand: SUBSCRIBE {:?} after the client subscribed",
        subscribed - asked
    );
    // The mock now sends ETHUSDT tickers: they reach the client through the gateway.
    tokio::time::timeout(STEP, async {
        while let Some(Ok(msg)) = a.next().await {
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["event"] == "price_update" && v["data"]["symbol"] == "ETHUSDT" {
                    return;
                }
            }
        }
    })
    .await
    .expect("no ETHUSDT tick reached the client");

    // A second client of the same symbol, then both leave: unsubscribed after lease + grace.
    let b = client(&gw, &["ETHUSDT"]).await;
    a.close(None).await.unwrap();
    drop(a);
    drop(b);
    let left = Instant::now();
    let unsubscribed = wait_control(&s.ws, "UNSUBSCRIBE ethusdt@ticker").await;
    let after = unsubscribed - left;
    eprintln!("on demand: UNSUBSCRIBE {after:?} after the last client left");
    assert!(after < Duration::from_secs(10), "{after:?}");
    // Within the grace it was not dropped early: the lease alone is 3 s.
    assert!(after >= Duration::from_millis(500), "{after:?}");
    assert_eq!(
        s.ws.open_subscriptions(),
        vec![(
            0,
            vec!["bnbbtc@ticker".to_owned(), "bnbbtc@trade".to_owned()]
        )]
    );
    assert!(!controls(&s.ws).iter().any(|c| c.contains("xrpusdt")));

    // The gateway dies while a client holds SOLUSDT: the interest expires by itself.
    let _c = client(&gw, &["SOLUSDT"]).await;
    wait_control(&s.ws, "SUBSCRIBE solusdt@ticker").await;
    gw.kill().unwrap();
    let died = Instant::now();
    let dropped = wait_control(&s.ws, "UNSUBSCRIBE solusdt@ticker").await;
    eprintln!(
        "on demand: UNSUBSCRIBE {:?} after the gateway died",
        dropped - died
    );
    assert_eq!(s.ws.connections(), 1, "changed live, no reconnect");
}

//! ingest-sim → real Redis → gateway → WebSocket client, all real binaries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;
use tickstream_testkit::{http_get_json, wait_until, RedisServer, Service};

#[tokio::test]
async fn sim_ticks_reach_a_websocket_client_through_redis() {
    let redis = RedisServer::start().await.unwrap();
    let url = redis.url();
    let _sim = Service::spawn(
        "ingest-sim",
        &[
            ("REDIS_URL", url.as_str()),
            ("SYMBOLS", "BTCUSDT,ETHUSDT,EUR/USD"),
            ("TICKSTREAM_SIM__RATE", "300"),
        ],
    )
    .await
    .unwrap();
    let gateway = Service::spawn("gateway", &[("REDIS_URL", url.as_str())])
        .await
        .unwrap();

    let price_url = gateway.http_url("/price/BTCUSDT");
    wait_until(STEP, "/price/BTCUSDT answers 200", || {
        let u = price_url.clone();
        async move { matches!(http_get_json(&u).await, Ok((200, _))) }
    })
    .await
    .unwrap();

    let (mut ws, _) = tokio_tungstenite::connect_async(gateway.ws_url("/ws"))
        .await
        .unwrap();
    expect_event(&mut ws, "connected").await;
    send(
        &mut ws,
        json!({"event": "subscribe", "data": {"symbols": ["BTCUSDT"]}}),
    )
    .await;
    expect_event(&mut ws, "subscribed").await;
    let mut last_seq = 0;
    for i in 0..20 {
        let v = expect_event(&mut ws, "price_update").await;
        let d = &v["data"];
        assert_eq!(d["symbol"], "BTCUSDT", "{v}");
        assert_eq!(d["source"], "sim");
        assert!(d["price"].as_f64().unwrap() > 0.0);
        for field in [
            "volume",
            "high",
            "low",
            "change",
            "changePercent",
            "bid",
            "ask",
            "timestamp",
        ] {
            assert!(!d[field].is_null(), "sim tick lacks {field}: {v}");
        }
        let seq = d["seq"].as_u64().unwrap();
        assert!(
            seq > last_seq,
            "seq not increasing at frame {i}: {seq} after {last_seq}"
        );
        last_seq = seq;
    }

    let health_url = gateway.http_url("/health");
    wait_until(STEP, "gateway healthy with the sim heartbeat", || {
        let u = health_url.clone();
        async move {
            matches!(http_get_json(&u).await, Ok((200, h))
                if h["status"] == "healthy" && h["dependencies"]["ingestors"]["sim"]["status"] == "healthy")
        }
    })
    .await
    .unwrap();
    let (_, s) = http_get_json(&gateway.http_url("/symbols")).await.unwrap();
    assert_eq!(
        s["data"]["supported"]["sim"],
        json!(["BTCUSDT", "ETHUSDT", "EUR/USD"])
    );
    let (code, p) = http_get_json(&gateway.http_url("/price/eur%2Fusd"))
        .await
        .unwrap();
    assert_eq!(code, 200);
    assert_eq!(p["data"]["symbol"], "EUR/USD");
}

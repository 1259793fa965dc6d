//! End to end through the real gateway: ingest-sim → Redis → analytics →
//! Redis → gateway → a WebSocket client subscribed to `candles:1m:BTCUSDT`,
//! `signals:BTCUSDT` and `sentiment`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tickstream_testkit::{bin_path, RedisServer, Service};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(30);

async fn spawn(bin: &Path, envs: &[(&str, &str)]) -> Service {
    Service::spawn_path(bin, envs).await.unwrap_or_else(|e| {
        panic!(
            "{e}: build the binaries with `cargo build --bins` (make test does): {}",
            bin.display()
        )
    })
}

#[tokio::test]
async fn analytics_channels_reach_a_websocket_client_through_the_gateway() {
    let redis = RedisServer::start().await.unwrap();
    let url = redis.url();
    let _sim = spawn(
        &bin_path("ingest-sim"),
        &[
            ("REDIS_URL", &url),
            ("SYMBOLS", "BTCUSDT,ETHUSDT"),
            ("TICKSTREAM_SIM__RATE", "40"),
            ("TICKSTREAM_SIM__HEARTBEAT_SECS", "1"),
        ],
    )
    .await;
    let _analytics = spawn(
        Path::new(env!("CARGO_BIN_EXE_analytics")),
        &[
            ("REDIS_URL", &url),
            ("TICKSTREAM_ANALYTICS__UPDATE_MS", "50"),
            ("TICKSTREAM_ANALYTICS__SIGNAL_REFRESH_MS", "300"),
            ("TICKSTREAM_ANALYTICS__SENTIMENT_MS", "300"),
            ("TICKSTREAM_ANALYTICS__UNIVERSE_REFRESH_MS", "200"),
        ],
    )
    .await;
    let gateway = spawn(&bin_path("gateway"), &[("REDIS_URL", &url)]).await;

    let (mut ws, _) = tokio_tungstenite::connect_async(
        gateway.ws_url("/ws?channels=candles:1m:BTCUSDT,signals:BTCUSDT,sentiment"),
    )
    .await
    .unwrap();
    let (mut candle, mut signal, mut mood) = (None, None, None);
    let deadline = tokio::time::Instant::now() + WAIT;
    while candle.is_none() || signal.is_none() || mood.is_none() {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| {
                panic!("timed out: candle {candle:?} signal {signal:?} mood {mood:?}")
            })
            .expect("connection open")
            .unwrap();
        let Message::Text(text) = frame else { continue };
        let v: Value = serde_json::from_str(text.as_str()).unwrap();
        let data = v["data"].clone();
        match v["event"].as_str() {
            Some("candle") => candle = Some(data),
            Some("trading_signal") => signal = Some(data),
            Some("sentiment_update") => mood = Some(data),
            _ => {}
        }
    }
    let candle = candle.unwrap();
    assert_eq!(
        (&candle["symbol"], &candle["interval"]),
        (&Value::from("BTCUSDT"), &Value::from("1m")),
        "{candle}"
    );
    // ingest-sim publishes a trade behind every tick: bars are built from trades.
    assert_eq!(candle["source"], "trades", "{candle}");
    let signal = signal.unwrap();
    assert_eq!(signal["symbol"], "BTCUSDT", "{signal}");
    assert!(signal["strength"].is_f64(), "{signal}");
    let mood = mood.unwrap();
    assert!(
        mood["market_fear_greed"].as_u64().is_some_and(|f| f <= 100),
        "{mood}"
    );

    // REST agrees with what the socket delivered.
    let get = |path: &str| {
        let url = gateway.http_url(path);
        async move {
            let (status, body) = tickstream_testkit::http_get_text(&url).await.unwrap();
            (status, serde_json::from_str::<Value>(&body).unwrap())
        }
    };
    let (status, bars) = get("/candles/btcusdt?interval=1m&limit=1000").await;
    assert_eq!(status, 200, "{bars}");
    let stored: Vec<&Value> = bars["data"]["candles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["start"] == candle["start"])
        .collect();
    assert_eq!(stored.len(), 1, "the received bar is stored: {bars}");
    assert_eq!(stored[0]["open"], candle["open"], "same bar: {}", stored[0]);
    let (status, latest) = get("/signals/BTCUSDT").await;
    assert_eq!(
        (status, &latest["data"]["symbol"]),
        (200, &Value::from("BTCUSDT"))
    );
    let (status, latest) = get("/sentiment").await;
    assert_eq!(status, 200, "{latest}");
    assert!(latest["data"]["market_fear_greed"].is_number(), "{latest}");
    for (path, want) in [
        ("/candles/BTCUSDT?interval=2m", 400),
        ("/candles/BTCUSDT?limit=zero", 400),
        ("/candles/BTCUSDT?from=yesterday", 400),
        ("/candles/NOSUCH?interval=1m", 404),
        ("/signals/NOSUCH", 404),
    ] {
        let (status, body) = get(path).await;
        assert_eq!(status, want, "{path}: {body}");
        assert_eq!(body["success"], false, "{path}");
    }
}

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
    assert_eq!(candle["source"], "ticks", "{candle}");
    let signal = signal.unwrap();
    assert_eq!(signal["symbol"], "BTCUSDT", "{signal}");
    assert!(signal["strength"].is_f64(), "{signal}");
    let mood = mood.unwrap();
    assert!(
        mood["market_fear_greed"].as_u64().is_some_and(|f| f <= 100),
        "{mood}"
    );
}

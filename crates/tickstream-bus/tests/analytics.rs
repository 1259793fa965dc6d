//! The analytics records against a private redis-server: stored candles
//! (replace by start, trim, ranges), latest signal and sentiment, heartbeat.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tickstream_bus::analytics::{analytics_heartbeat_key, candle_store_key};
use tickstream_bus::{CandleRange, Heartbeat, IngestorStatus, Redis, RedisOptions, StoredCandle};
use tickstream_model::{Channel, Symbol};
use tickstream_testkit::RedisServer;

fn bar(start: i64, close: f64, closed: bool) -> String {
    serde_json::json!({"start": start, "close": close, "closed": closed}).to_string()
}

fn starts(raw: &[Vec<u8>]) -> Vec<i64> {
    raw.iter()
        .map(|b| {
            serde_json::from_slice::<serde_json::Value>(b).unwrap()["start"]
                .as_i64()
                .unwrap()
        })
        .collect()
}

const ALL: CandleRange = CandleRange {
    from_ms: None,
    to_ms: None,
    limit: 10_000,
};

#[tokio::test]
async fn candles_are_replaced_by_start_trimmed_and_read_by_range() {
    let server = RedisServer::start().await.unwrap();
    let redis = Redis::connect_lazy(RedisOptions::new(server.url())).unwrap();
    let m1 = Channel::parse("candles:1m:BTCUSDT").unwrap();
    let h1 = Channel::parse("candles:1h:BTCUSDT").unwrap();

    let jsons: Vec<String> = (0..10)
        .map(|i| bar(i * 60_000, 100.0 + i as f64, true))
        .collect();
    let batch: Vec<StoredCandle> = jsons
        .iter()
        .enumerate()
        .map(|(i, json)| StoredCandle {
            channel: &m1,
            start_ms: i as i64 * 60_000,
            json,
        })
        .collect();
    redis.store_candles(&batch, 5).await.unwrap();
    // Trimmed to the newest 5.
    let got = redis.candles(&m1, ALL).await.unwrap();
    assert_eq!(starts(&got), [300_000, 360_000, 420_000, 480_000, 540_000]);

    // Rewriting a start replaces the member instead of adding one.
    let open = bar(540_000, 1.0, false);
    let again = bar(540_000, 2.0, true);
    for json in [&open, &again] {
        redis
            .store_candles(
                &[StoredCandle {
                    channel: &m1,
                    start_ms: 540_000,
                    json,
                }],
                5,
            )
            .await
            .unwrap();
    }
    let got = redis.candles(&m1, ALL).await.unwrap();
    assert_eq!(got.len(), 5);
    assert_eq!(got.last().unwrap(), again.as_bytes());

    // Ranges are inclusive; the limit keeps the newest, returned oldest first.
    let range = CandleRange {
        from_ms: Some(360_000),
        to_ms: Some(480_000),
        limit: 2,
    };
    assert_eq!(
        starts(&redis.candles(&m1, range).await.unwrap()),
        [420_000, 480_000]
    );
    let none = CandleRange { limit: 0, ..ALL };
    assert!(redis.candles(&m1, none).await.unwrap().is_empty());
    // Another interval is another set; other kinds hold no bars.
    assert!(redis.candles(&h1, ALL).await.unwrap().is_empty());
    let ticks = Channel::parse("ticks:BTCUSDT").unwrap();
    assert!(redis.candles(&ticks, ALL).await.unwrap().is_empty());

    let mut con = server.client().await.unwrap();
    let n: usize = redis::cmd("ZCARD")
        .arg(candle_store_key(&m1))
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(n, 5);
}

#[tokio::test]
async fn latest_signal_sentiment_and_heartbeat() {
    let server = RedisServer::start().await.unwrap();
    let redis = Redis::connect_lazy(RedisOptions::new(server.url())).unwrap();
    let sym = Symbol::parse("ETHUSDT").unwrap();
    assert_eq!(redis.latest_signal(&sym).await.unwrap(), None);
    assert_eq!(redis.latest_sentiment().await.unwrap(), None);

    let signals = Channel::for_symbol("signals", &sym).unwrap();
    redis
        .publish_event(&signals, r#"{"signal":"BUY"}"#)
        .await
        .unwrap();
    let sentiment = Channel::parse("sentiment").unwrap();
    redis
        .publish_event(&sentiment, r#"{"market_fear_greed":61}"#)
        .await
        .unwrap();
    assert_eq!(
        redis.latest_signal(&sym).await.unwrap().as_deref(),
        Some(&br#"{"signal":"BUY"}"#[..])
    );
    assert_eq!(
        redis.latest_sentiment().await.unwrap().as_deref(),
        Some(&br#"{"market_fear_greed":61}"#[..])
    );

    let hb = Heartbeat {
        name: "analytics".into(),
        status: IngestorStatus::Healthy,
        message: None,
        symbols: vec!["ETHUSDT".into()],
        last_tick: None,
        ticks_published: 0,
        updated_at: "2025-11-01T10:30:00.000Z".into(),
    };
    redis
        .write_analytics_heartbeat(&hb, Duration::from_secs(10))
        .await
        .unwrap();
    // Never listed among the ingestors.
    assert!(redis.heartbeats().await.unwrap().is_empty());
    let mut con = server.client().await.unwrap();
    let raw: Vec<u8> = redis::cmd("GET")
        .arg(analytics_heartbeat_key("analytics"))
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(serde_json::from_slice::<Heartbeat>(&raw).unwrap(), hb);
}

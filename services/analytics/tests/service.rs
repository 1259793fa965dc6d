//! The real `analytics` binary against a private `redis-server`: a restart
//! continues the bar in progress, ingest-sim → Redis → analytics → Redis end
//! to end, and bad config fails naming the key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use analytics::candle::{Bar, Interval, Source};
use futures_util::{Stream, StreamExt};
use serde_json::Value;
use tickstream_bus::{CandleRange, Redis, RedisOptions, StoredCandle};
use tickstream_model::Channel;
use tickstream_testkit::{
    http_get_json, http_get_text, wait_for, wait_until, RedisServer, Service,
};

/// Generous bound for anything that should take well under a second, on a
/// busy 2-core machine running debug builds.
const WAIT: Duration = Duration::from_secs(30);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_analytics"))
}

/// Fast periods so the test runs in seconds; the boundary logic itself is unit-tested on explicit timestamps.
const FAST: [(&str, &str); 5] = [
    ("TICKSTREAM_ANALYTICS__CLOCK_MS", "20"),
    ("TICKSTREAM_ANALYTICS__UPDATE_MS", "50"),
    ("TICKSTREAM_ANALYTICS__SIGNAL_REFRESH_MS", "300"),
    ("TICKSTREAM_ANALYTICS__SENTIMENT_MS", "300"),
    ("TICKSTREAM_ANALYTICS__UNIVERSE_REFRESH_MS", "200"),
];

async fn spawn_analytics(redis_url: &str, extra: &[(&str, &str)]) -> Service {
    let mut envs: Vec<(&str, &str)> = vec![("REDIS_URL", redis_url)];
    envs.extend_from_slice(&FAST);
    envs.extend_from_slice(extra);
    Service::spawn_path(bin(), &envs).await.unwrap()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn rfc3339(ms: i64) -> String {
    tickstream_model::time::format(&tickstream_model::time::from_millis(ms).unwrap())
}

async fn bus(server: &RedisServer) -> Redis {
    Redis::connect_lazy(RedisOptions::new(server.url())).unwrap()
}

/// The newest stored bar of a candles channel, parsed.
async fn newest(redis: &Redis, channel: &Channel) -> Option<Value> {
    let range = CandleRange {
        from_ms: None,
        to_ms: None,
        limit: 1,
    };
    let raw = redis.candles(channel, range).await.ok()?;
    raw.last().map(|r| serde_json::from_slice(r).unwrap())
}

/// The value of a counter line in a `/metrics` text (0 if absent).
fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// Garbage messages `svc` has counted so far.
async fn invalid_count(svc: &Service) -> u64 {
    let Ok((_, metrics)) = http_get_text(&svc.http_url("/metrics")).await else {
        return 0;
    };
    counter(
        &metrics,
        r#"tickstream_analytics_skipped_total{reason="invalid"}"#,
    )
}

/// Waits until `svc` (this process, not a killed predecessor whose connection
/// Redis may not have dropped yet) reads `trades:BTCUSDT`: publishes garbage
/// until the process counts more than it had.
async fn subscribed(server: &RedisServer, svc: &Service) {
    let before = invalid_count(svc).await;
    wait_until(
        WAIT,
        "the service to count garbage on trades:BTCUSDT",
        || async {
            let _ = publish_maybe(server, "trades:BTCUSDT", "{not json").await;
            invalid_count(svc).await > before
        },
    )
    .await
    .unwrap();
}

/// PUBLISH that reports failure instead of panicking (Redis may be restarting).
async fn publish_maybe(server: &RedisServer, channel: &str, payload: &str) -> Option<i64> {
    let mut con = server.client().await.ok()?;
    redis::cmd("PUBLISH")
        .arg(channel)
        .arg(payload)
        .query_async(&mut con)
        .await
        .ok()
}

async fn health_is(svc: &Service, code: u16, status: &str) -> bool {
    matches!(http_get_json(&svc.http_url("/health")).await, Ok((c, b)) if c == code && b["status"] == status)
}

#[tokio::test]
async fn a_redis_outage_degrades_health_and_bars_resume_after_it() {
    let mut server = RedisServer::start().await.unwrap();
    let redis = bus(&server).await;
    let svc = spawn_analytics(
        &server.url(),
        &[
            ("SYMBOLS", "BTCUSDT"),
            ("TICKSTREAM_ANALYTICS__HEARTBEAT_SECS", "1"),
        ],
    )
    .await;
    wait_until(WAIT, "/health healthy", || health_is(&svc, 200, "healthy"))
        .await
        .unwrap();
    server.kill();
    wait_until(WAIT, "/health degraded while Redis is down", || {
        health_is(&svc, 503, "degraded")
    })
    .await
    .unwrap();
    server.restart().await.unwrap();
    wait_until(WAIT, "/health healthy again", || {
        health_is(&svc, 200, "healthy")
    })
    .await
    .unwrap();
    // The subscription came back by itself; a trade after the outage is stored again.
    subscribed(&server, &svc).await;
    publish(&server, "trades:BTCUSDT", &trade(now_ms(), 101.0, 1.0)).await;
    let d1 = Channel::parse("candles:1d:BTCUSDT").unwrap();
    wait_until(WAIT, "a stored 1d bar after the outage", || {
        let (r, c) = (&redis, &d1);
        async move { newest(r, c).await.is_some_and(|b| b["close"] == 101.0) }
    })
    .await
    .unwrap();
}

async fn publish(server: &RedisServer, channel: &str, payload: &str) {
    let mut con = server.client().await.unwrap();
    let _: i64 = redis::cmd("PUBLISH")
        .arg(channel)
        .arg(payload)
        .query_async(&mut con)
        .await
        .unwrap();
}

fn trade(ms: i64, price: f64, size: f64) -> String {
    serde_json::json!({"symbol":"BTCUSDT","price":price,"size":size,"side":"buy",
        "timestamp":rfc3339(ms),"source":"test","seq":1})
    .to_string()
}

#[tokio::test]
async fn a_restart_continues_the_bar_in_progress() {
    let server = RedisServer::start().await.unwrap();
    let redis = bus(&server).await;
    // Assert on a bar whose end is not near: the hour's, or the day's in the last 2 minutes of an hour.
    let interval = if Interval::H1.floor(now_ms()) + Interval::H1.ms() - now_ms() > 120_000 {
        Interval::H1
    } else {
        Interval::D1
    };
    let channel = Channel::parse(&format!("candles:{}:BTCUSDT", interval.name())).unwrap();
    let mut svc = spawn_analytics(&server.url(), &[("SYMBOLS", "BTCUSDT")]).await;

    // Garbage is counted and skipped, not a crash; that it is counted proves this process reads the channel.
    subscribed(&server, &svc).await;
    for (price, size) in [(100.0, 1.0), (110.0, 2.0), (95.0, 3.0)] {
        publish(&server, "trades:BTCUSDT", &trade(now_ms(), price, size)).await;
    }
    wait_until(WAIT, "the stored bar with 3 trades", || {
        let (r, c) = (&redis, &channel);
        async move { newest(r, c).await.is_some_and(|b| b["trades"] == 3) }
    })
    .await
    .unwrap();

    let (code, health) = http_get_json(&svc.http_url("/health")).await.unwrap();
    assert_eq!(
        (code, &health["status"]),
        (200, &Value::from("healthy")),
        "{health}"
    );
    assert_eq!(health["symbols"], serde_json::json!(["BTCUSDT"]));
    let (_, metrics) = http_get_text(&svc.http_url("/metrics")).await.unwrap();
    assert!(
        counter(
            &metrics,
            r#"tickstream_analytics_inputs_total{kind="trade"}"#
        ) >= 4
    );
    for want in ["tickstream_analytics_symbols 1", "tickstream_redis_up 1"] {
        assert!(metrics.contains(want), "{want} missing from\n{metrics}");
    }

    // A crash mid-bar (SIGKILL), then the same binary again.
    svc.restart().await.unwrap();
    subscribed(&server, &svc).await;
    for (price, size) in [(120.0, 1.0), (90.0, 0.5)] {
        publish(&server, "trades:BTCUSDT", &trade(now_ms(), price, size)).await;
    }
    let bar = wait_for(WAIT, "the stored bar with 5 trades", || {
        let (r, c) = (&redis, &channel);
        async move { newest(r, c).await.filter(|b| b["trades"] == 5) }
    })
    .await
    .unwrap();
    assert_eq!(bar["open"], 100.0, "{bar}");
    assert_eq!(bar["high"], 120.0, "{bar}");
    assert_eq!(bar["low"], 90.0, "{bar}");
    assert_eq!(bar["close"], 90.0, "{bar}");
    assert_eq!(bar["volume"], 7.5, "{bar}");
    assert_eq!(bar["closed"], false, "{bar}");
    assert_eq!(bar["source"], "trades", "{bar}");

    svc.terminate().unwrap();
    let status = svc
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("exits after SIGTERM");
    assert!(
        status.success(),
        "{status}; logs:\n{}",
        svc.logs().join("\n")
    );
}

async fn subscribe(
    server: &RedisServer,
    channels: &[&str],
) -> impl Stream<Item = redis::Msg> + Unpin {
    let client = redis::Client::open(server.url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    for channel in channels {
        pubsub.subscribe(*channel).await.unwrap();
    }
    pubsub.into_on_message()
}

/// 40 closed 1m bars from ticks of a gentle climb, the newest starting 3 minutes ago.
async fn store_history(redis: &Redis, channel: &Channel) {
    let newest_start = Interval::M1.floor(now_ms()) - 3 * 60_000;
    let bars: Vec<(i64, String)> = (0..40)
        .map(|i| {
            let start = newest_start - (39 - i) * 60_000;
            let mut b = Bar::flat(Interval::M1, start, 90_000.0, Source::Ticks);
            let wiggle = if i % 2 == 0 { 40.0 } else { -30.0 };
            b.apply(90_000.0 + i as f64 * 5.0 + wiggle, 1.0);
            b.apply(90_000.0 + i as f64 * 5.0, 1.0);
            b.closed = true;
            (start, b.to_json("BTCUSDT"))
        })
        .collect();
    let stored: Vec<StoredCandle> = bars
        .iter()
        .map(|(start, json)| StoredCandle {
            channel,
            start_ms: *start,
            json,
        })
        .collect();
    redis.store_candles(&stored, 2_000).await.unwrap();
}

#[tokio::test]
async fn ingest_sim_to_analytics_end_to_end() {
    let server = RedisServer::start().await.unwrap();
    let redis = bus(&server).await;
    let m1 = Channel::parse("candles:1m:BTCUSDT").unwrap();
    store_history(&redis, &m1).await;
    let mut stream = subscribe(
        &server,
        &["candles:1m:BTCUSDT", "signals:BTCUSDT", "sentiment"],
    )
    .await;

    let sim_bin = tickstream_testkit::bin_path("ingest-sim");
    let _sim = Service::spawn_path(
        &sim_bin,
        &[
            ("REDIS_URL", &server.url()),
            ("SYMBOLS", "BTCUSDT,ETHUSDT"),
            ("TICKSTREAM_SIM__RATE", "40"),
            ("TICKSTREAM_SIM__HEARTBEAT_SECS", "1"),
            // Ticks only: this run covers bars of a symbol without trades (tick volume).
            ("TICKSTREAM_SIM__TRADES", "false"),
        ],
    )
    .await
    .unwrap_or_else(|e| panic!("{e}: build it with `cargo build -p ingest-sim`"));
    // No SYMBOLS: the universe comes from the simulator's heartbeat.
    let _svc = spawn_analytics(&server.url(), &[]).await;

    let mut closed: Vec<Value> = Vec::new();
    let mut open: Option<Value> = None;
    let mut signal: Option<Value> = None;
    let mut mood: Option<Value> = None;
    let deadline = tokio::time::Instant::now() + WAIT;
    let flat = |c: &Value| c["volume"] == 0.0;
    // Until a gap bar: on a loaded machine the minute may turn first and close a bar with ticks.
    while !closed.iter().any(flat) || open.is_none() || signal.is_none() || mood.is_none() {
        let msg = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| {
                panic!("timed out: closed {closed:?} open {open:?} signal {signal:?} mood {mood:?}")
            })
            .expect("pub/sub open");
        let v: Value = serde_json::from_slice(msg.get_payload_bytes()).unwrap();
        match msg.get_channel_name() {
            "candles:1m:BTCUSDT" if v["closed"] == true => closed.push(v),
            "candles:1m:BTCUSDT" if v["trades"].as_u64() > Some(0) => open = Some(v),
            "signals:BTCUSDT" if v["indicators"]["ema_slow"].is_f64() => signal = Some(v),
            "sentiment" if v["confidence"].as_f64() > Some(0.0) => mood = Some(v),
            _ => {}
        }
    }

    // The stored history ended minutes ago: the empty minutes since close flat, volume 0, in time order.
    let first = closed.iter().find(|c| flat(c)).unwrap();
    assert_eq!(first["open"], first["close"], "{first}");
    let starts: Vec<&str> = closed.iter().filter_map(|c| c["start"].as_str()).collect();
    assert!(
        starts.len() == closed.len() && starts.windows(2).all(|w| w[0] < w[1]),
        "closed bars out of order: {starts:?}"
    );
    let open = open.unwrap();
    assert_eq!(open["source"], "ticks", "{open}");
    assert_eq!(open["symbol"], "BTCUSDT");
    assert_eq!(
        open["volume"].as_f64(),
        open["trades"].as_f64(),
        "tick volume: {open}"
    );

    let signal = signal.unwrap();
    assert_eq!(signal["symbol"], "BTCUSDT");
    assert_eq!(signal["interval"], "1m");
    let strength = signal["strength"].as_f64().unwrap();
    assert!((0.5..=1.0).contains(&strength), "{signal}");
    assert!(
        ["STRONG_BUY", "BUY", "HOLD", "SELL", "STRONG_SELL"]
            .contains(&signal["signal"].as_str().unwrap()),
        "{signal}"
    );
    assert!(signal["indicators"]["rsi"].is_f64(), "{signal}");

    let mood = mood.unwrap();
    let fg = mood["market_fear_greed"].as_u64().unwrap();
    assert!(fg <= 100, "{mood}");
    let b = &mood["breadth"];
    let counted = b["advancing"].as_u64().unwrap()
        + b["declining"].as_u64().unwrap()
        + b["unchanged"].as_u64().unwrap();
    assert!((1..=2).contains(&counted), "{mood}");
    for t in mood["trending_topics"].as_array().unwrap() {
        assert!(
            ["BTCUSDT", "ETHUSDT"].contains(&t.as_str().unwrap()),
            "{mood}"
        );
    }

    // What was published is what is stored: closed bars exactly, the open one at least as new.
    let all = redis
        .candles(
            &m1,
            CandleRange {
                from_ms: None,
                to_ms: None,
                limit: 5_000,
            },
        )
        .await
        .unwrap();
    let stored: Vec<Value> = all
        .iter()
        .map(|r| serde_json::from_slice(r).unwrap())
        .collect();
    for c in &closed {
        let s = stored
            .iter()
            .find(|s| s["start"] == c["start"])
            .expect("closed bar stored");
        assert_eq!(s, c);
    }
    let s = stored
        .iter()
        .find(|s| s["start"] == open["start"])
        .expect("open bar stored");
    assert_eq!(s["open"], open["open"]);
    assert!(
        s["trades"].as_u64() >= open["trades"].as_u64(),
        "{s} vs {open}"
    );
    // The cache holds the latest publication.
    let latest = redis
        .latest_signal(&tickstream_model::Symbol::parse("BTCUSDT").unwrap())
        .await
        .unwrap();
    assert!(latest.is_some());
    assert!(redis.latest_sentiment().await.unwrap().is_some());
}

/// Started stopped (a stop stored before this start), analytics follows its symbol but
/// computes nothing; the bars that ended in the silence since the stored history are
/// closed and published once it is started, beginning with the first missing minute.
/// (Before, restoring a symbol closed them at once, and a stop dropped them unpublished.)
#[tokio::test]
async fn bars_that_ended_before_a_start_are_published_after_it() {
    let server = RedisServer::start().await.unwrap();
    let redis = bus(&server).await;
    let m1 = Channel::parse("candles:1m:BTCUSDT").unwrap();
    // The stored history's newest bar starts 3 minutes before the current one.
    let first_missing = Interval::M1.floor(now_ms()) - 2 * 60_000;
    store_history(&redis, &m1).await;
    redis
        .set_desired_state("analytics", tickstream_bus::Desired::Stopped)
        .await
        .unwrap();
    let mut stream = subscribe(&server, &["candles:1m:BTCUSDT"]).await;
    let svc = spawn_analytics(&server.url(), &[("SYMBOLS", "BTCUSDT")]).await;
    wait_until(WAIT, "analytics stopped, following BTCUSDT", || async {
        let Ok((_, metrics)) = http_get_text(&svc.http_url("/metrics")).await else {
            return false;
        };
        counter(&metrics, "tickstream_analytics_symbols") == 1
            && health_is(&svc, 200, "stopped").await
    })
    .await
    .unwrap();

    redis
        .set_desired_state("analytics", tickstream_bus::Desired::Running)
        .await
        .unwrap();
    let closed = loop {
        let msg = tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("a closed bar after the start")
            .expect("pub/sub open");
        let v: Value = serde_json::from_slice(msg.get_payload_bytes()).unwrap();
        if v["closed"] == true {
            break v;
        }
    };
    // Taken before the history was stored: the minute may have turned in between.
    let start = closed["start"].as_str().unwrap().to_owned();
    assert!(
        start == rfc3339(first_missing) || start == rfc3339(first_missing + 60_000),
        "the first closed bar is not the first missing minute ({}): {closed}",
        rfc3339(first_missing)
    );
    assert_eq!(closed["volume"], 0.0, "{closed}");
}

#[tokio::test]
async fn bad_config_fails_fast_naming_the_key() {
    let out = tokio::process::Command::new(bin())
        .env("TICKSTREAM_ANALYTICS__INDICATOR_INTERVAL", "2m")
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .env("PORT", "0")
        .env("RUST_LIB_BACKTRACE", "0")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("analytics.indicator_interval") && err.contains("2m"),
        "{err}"
    );
}

#[tokio::test]
async fn publishes_its_feed_status_on_the_feeds_channel() {
    let server = RedisServer::start().await.unwrap();
    let mut feeds = tickstream_testkit::JsonChannel::subscribe(&server, "feeds").await;
    let svc = spawn_analytics(
        &server.url(),
        &[
            ("SYMBOLS", "BTCUSDT"),
            ("TICKSTREAM_ANALYTICS__HEARTBEAT_SECS", "1"),
        ],
    )
    .await;
    let status = feeds
        .wait(WAIT, |f| {
            f["name"] == "analytics" && f["status"] == "healthy"
        })
        .await;
    assert_eq!(status["mode"], "stream", "{status}");
    assert_eq!(status["connected"], true);
    assert_eq!(status["symbols"], serde_json::json!(["BTCUSDT"]));
    assert!(status["timestamp"].is_string());
    // An input makes the last message age known; GET /feeds' key holds the same status.
    subscribed(&server, &svc).await;
    publish(&server, "trades:BTCUSDT", &trade(now_ms(), 100.0, 1.0)).await;
    feeds
        .wait(WAIT, |f| {
            f["name"] == "analytics" && f["last_message_age_ms"].is_u64()
        })
        .await;
    let stored = bus(&server).await.feed_statuses().await.unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].name, "analytics");
}

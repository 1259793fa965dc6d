//! The real `ingest-sim` binary against a private `redis-server`: what it
//! publishes, how it continues seqs across restarts, and how it rides out a
//! Redis outage.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use tickstream_model::Tick;
use tickstream_testkit::{
    env_with, http_get_json, http_get_text, wait_until, RedisServer, Service, TickChannel,
};

/// Generous bound for anything that should take well under a second, on a
/// busy 2-core machine running debug builds.
const WAIT: Duration = Duration::from_secs(20);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ingest-sim"))
}

/// Runs the simulator on `redis` with two symbols, a fast rate and a 1 s heartbeat; `extra` overrides.
async fn spawn_sim(redis_url: &str, extra: &[(&str, &str)]) -> Service {
    let base = vec![
        ("REDIS_URL", redis_url),
        ("SYMBOLS", "BTCUSDT,EUR/USD"),
        ("TICKSTREAM_SIM__RATE", "1000"),
        ("TICKSTREAM_SIM__HEARTBEAT_SECS", "1"),
    ];
    Service::spawn_path(bin(), &env_with(base, extra))
        .await
        .unwrap()
}

/// A published or cached tick, validated against the tick contract.
fn tick(v: serde_json::Value) -> Tick {
    Tick::from_json(v.to_string().as_bytes()).unwrap_or_else(|e| panic!("invalid tick {v}: {e}"))
}

/// The next tick on the channel, validated.
async fn next_tick(channel: &mut TickChannel) -> Tick {
    tick(channel.next(WAIT).await)
}

async fn get(redis: &RedisServer, key: &str) -> Option<Vec<u8>> {
    let mut con = redis.client().await.ok()?;
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut con)
        .await
        .ok()?
}

async fn cached_tick(redis: &RedisServer, symbol: &str) -> Option<Tick> {
    tickstream_testkit::cached_tick(redis, symbol)
        .await
        .map(tick)
}

async fn health_is(svc: &Service, code: u16, status: &str) -> bool {
    match http_get_json(&svc.http_url("/health")).await {
        Ok((c, body)) => c == code && body["status"] == status,
        Err(_) => false,
    }
}

fn assert_sane(t: &Tick) {
    assert_eq!(t.source, "sim", "{t:?}");
    let (high, low) = (t.high.unwrap(), t.low.unwrap());
    assert!(high >= t.price && t.price >= low, "{t:?}");
    assert!(
        t.bid.unwrap() < t.price && t.price < t.ask.unwrap(),
        "{t:?}"
    );
    assert!(t.volume.unwrap() > 0.0, "{t:?}");
    let open = t.price - t.change.unwrap();
    assert!(
        (t.change_percent.unwrap() - 100.0 * t.change.unwrap() / open).abs() < 1e-3,
        "{t:?}"
    );
}

#[tokio::test]
async fn publishes_ticks_cache_and_heartbeat() {
    let redis = RedisServer::start().await.unwrap();
    let mut ticks = TickChannel::subscribe(&redis, "BTCUSDT").await;
    let mut svc = spawn_sim(&redis.url(), &[]).await;

    let mut seen = Vec::new();
    for _ in 0..50 {
        seen.push(next_tick(&mut ticks).await);
    }
    assert_eq!(seen[0].seq, 1, "a fresh Redis starts every symbol at seq 1");
    for t in &seen {
        assert_eq!(t.symbol.as_str(), "BTCUSDT");
        assert!((50_000.0..200_000.0).contains(&t.price), "{t:?}");
        assert_sane(t);
    }
    for w in seen.windows(2) {
        assert!(
            w[1].seq > w[0].seq,
            "seq not increasing: {} then {}",
            w[0].seq,
            w[1].seq
        );
    }

    let btc = cached_tick(&redis, "BTCUSDT").await.expect("price:BTCUSDT");
    assert_eq!(btc.symbol.as_str(), "BTCUSDT");
    let eur = cached_tick(&redis, "EUR/USD").await.expect("price:EUR/USD");
    assert_eq!(eur.symbol.as_str(), "EUR/USD");
    assert!((0.9..1.3).contains(&eur.price), "{eur:?}");
    assert_sane(&eur);

    wait_until(WAIT, "the heartbeat record", || async {
        get(&redis, "tickstream:ingestor:sim").await.is_some()
    })
    .await
    .unwrap();
    let hb: serde_json::Value =
        serde_json::from_slice(&get(&redis, "tickstream:ingestor:sim").await.unwrap()).unwrap();
    assert_eq!(hb["name"], "sim");
    assert_eq!(hb["symbols"], serde_json::json!(["BTCUSDT", "EUR/USD"]));
    let mut con = redis.client().await.unwrap();
    let ttl: i64 = redis::cmd("TTL")
        .arg("tickstream:ingestor:sim")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(
        (1..=5).contains(&ttl),
        "heartbeat TTL is 5 periods of 1 s, got {ttl}"
    );
    let seq: u64 = redis::cmd("HGET")
        .arg("tickstream:seq")
        .arg("BTCUSDT")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(seq >= 50, "{seq}");

    wait_until(WAIT, "/health healthy", || health_is(&svc, 200, "healthy"))
        .await
        .unwrap();
    let (_, health) = http_get_json(&svc.http_url("/health")).await.unwrap();
    assert_eq!(health["service"], "ingest-sim");
    assert_eq!(health["port"], svc.addr().port());
    assert_eq!(health["dependencies"]["redis"]["status"], "healthy");
    assert_eq!(health["symbols"], serde_json::json!(["BTCUSDT", "EUR/USD"]));
    assert!(
        health["ticks_published"].as_u64().unwrap() >= 50,
        "{health}"
    );
    assert!(
        health["last_tick_age_seconds"].as_f64().unwrap() < 10.0,
        "{health}"
    );
    assert!(
        health["uptime"].is_string() && health["timestamp"].is_string(),
        "{health}"
    );

    let (code, metrics) = http_get_text(&svc.http_url("/metrics")).await.unwrap();
    assert_eq!(code, 200);
    for want in [
        "tickstream_ingest_ticks_published_total{source=\"sim\"} ",
        "tickstream_ingest_publish_errors_total{source=\"sim\"} 0",
        "tickstream_ingest_publish_batch_seconds_bucket{source=\"sim\",le=\"0.01\"} ",
        "tickstream_ingest_symbols{source=\"sim\"} 2",
        "tickstream_redis_up 1",
    ] {
        assert!(metrics.contains(want), "{want} missing from\n{metrics}");
    }

    svc.terminate().unwrap();
    let status = svc
        .wait_exit(Duration::from_secs(5))
        .await
        .expect("exits within 5 s of SIGTERM");
    assert!(
        status.success(),
        "{status}; logs:\n{}",
        svc.logs().join("\n")
    );
}

#[tokio::test]
async fn continues_seq_and_price_from_redis() {
    let redis = RedisServer::start().await.unwrap();
    let mut con = redis.client().await.unwrap();
    let _: () = redis::cmd("HSET")
        .arg("tickstream:seq")
        .arg("BTCUSDT")
        .arg(1000)
        .query_async(&mut con)
        .await
        .unwrap();
    let cached = r#"{"symbol":"EUR/USD","price":1.2,"volume":5000000,"high":1.21,"low":1.18,"change":0.01,"changePercent":0.84,"timestamp":"2025-11-01T10:30:00.000Z","source":"sim","seq":500}"#;
    let _: () = redis::cmd("SET")
        .arg("price:EUR/USD")
        .arg(cached)
        .query_async(&mut con)
        .await
        .unwrap();
    let mut btc = TickChannel::subscribe(&redis, "BTCUSDT").await;
    let mut eur = TickChannel::subscribe(&redis, "EUR/USD").await;
    let _svc = spawn_sim(&redis.url(), &[("TICKSTREAM_SIM__RATE", "20")]).await;

    assert_eq!(next_tick(&mut btc).await.seq, 1001);
    let first = next_tick(&mut eur).await;
    assert_eq!(
        first.seq, 501,
        "the cached tick's seq counts when the hash lacks the symbol"
    );
    assert!(
        (first.price - 1.2).abs() < 0.01,
        "continues from the cached price: {first:?}"
    );
    assert!(
        (first.price - first.change.unwrap() - 1.19).abs() < 1e-9,
        "keeps the cached open: {first:?}"
    );
    assert!(
        first.high.unwrap() >= 1.21 && first.low.unwrap() <= 1.18,
        "{first:?}"
    );
    assert!(first.volume.unwrap() > 5_000_000.0, "{first:?}");
}

#[tokio::test]
async fn seq_keeps_increasing_across_a_crash_and_restart() {
    let redis = RedisServer::start().await.unwrap();
    let mut ticks = TickChannel::subscribe(&redis, "BTCUSDT").await;
    let mut svc = spawn_sim(&redis.url(), &[]).await;
    let mut before = Vec::new();
    for _ in 0..20 {
        before.push(next_tick(&mut ticks).await);
    }

    // SIGKILL mid-stream (no chance to flush), then the same binary again.
    let restart_at = chrono::Utc::now();
    svc.restart().await.unwrap();

    // One subscriber sees both processes in publish order: seqs must keep rising.
    let mut last = before.last().unwrap().seq;
    let first_after = loop {
        let t = next_tick(&mut ticks).await;
        assert!(
            t.seq > last,
            "seq went from {last} to {} across the restart",
            t.seq
        );
        last = t.seq;
        if t.timestamp > restart_at {
            break t;
        }
    };
    let max_before = before.iter().map(|t| t.seq).max().unwrap();
    assert!(
        first_after.seq > max_before,
        "{} <= {max_before}",
        first_after.seq
    );
    for _ in 0..20 {
        let t = next_tick(&mut ticks).await;
        assert!(t.seq > last);
        last = t.seq;
    }
}

#[tokio::test]
async fn survives_a_redis_outage() {
    let mut redis = RedisServer::start().await.unwrap();
    let mut svc = spawn_sim(&redis.url(), &[("TICKSTREAM_SIM__RATE", "200")]).await;
    wait_until(WAIT, "/health healthy", || health_is(&svc, 200, "healthy"))
        .await
        .unwrap();
    wait_until(WAIT, "price:BTCUSDT", || async {
        cached_tick(&redis, "BTCUSDT").await.is_some()
    })
    .await
    .unwrap();
    let seq_before = cached_tick(&redis, "BTCUSDT").await.unwrap().seq;

    redis.kill();
    wait_until(WAIT, "/health 503 degraded", || {
        health_is(&svc, 503, "degraded")
    })
    .await
    .unwrap();
    let (_, health) = http_get_json(&svc.http_url("/health")).await.unwrap();
    assert_eq!(
        health["dependencies"]["redis"]["status"], "unhealthy",
        "{health}"
    );
    assert!(
        health["dependencies"]["redis"]["message"].is_string(),
        "{health}"
    );
    let (_, metrics) = http_get_text(&svc.http_url("/metrics")).await.unwrap();
    assert!(metrics.contains("tickstream_redis_up 0"), "{metrics}");
    assert_eq!(
        svc.wait_exit(Duration::ZERO).await,
        None,
        "the process must stay up without Redis"
    );

    // The outage lasts past the time the reconnect backoff needs to reach its
    // cap, so the 2 s bound below covers the worst case.
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The restarted Redis is empty: ticks, cache and heartbeat must come back by themselves.
    redis.restart().await.unwrap();
    // restart() returns once the new redis-server answers: Redis is back from here.
    // Ticks flow again within 2 s (the simulator publishes every 10 ms per symbol).
    let back = std::time::Instant::now();
    let mut ticks = TickChannel::subscribe(&redis, "BTCUSDT").await;
    let first = next_tick(&mut ticks).await;
    let flowing_in = back.elapsed();
    eprintln!("ticks flowing again {flowing_in:?} after Redis was back");
    assert!(
        flowing_in < Duration::from_secs(2),
        "first tick published {flowing_in:?} after Redis was back: {first:?}"
    );
    assert!(first.seq > seq_before, "{} <= {seq_before}", first.seq);
    drop(ticks);
    wait_until(WAIT, "/health healthy again", || {
        health_is(&svc, 200, "healthy")
    })
    .await
    .unwrap();
    wait_until(WAIT, "price:BTCUSDT after the outage", || async {
        cached_tick(&redis, "BTCUSDT")
            .await
            .is_some_and(|t| t.seq > seq_before)
    })
    .await
    .unwrap();
    wait_until(WAIT, "the heartbeat after the outage", || async {
        get(&redis, "tickstream:ingestor:sim").await.is_some()
    })
    .await
    .unwrap();
    let mut ticks = TickChannel::subscribe(&redis, "EUR/USD").await;
    let t = next_tick(&mut ticks).await;
    assert!(t.seq > 1, "in-memory seqs continue after the outage: {t:?}");
    assert_eq!(svc.wait_exit(Duration::ZERO).await, None);
}

#[tokio::test]
async fn waits_for_redis_at_start_and_stops_cleanly() {
    let mut redis = RedisServer::start().await.unwrap();
    redis.kill();
    let mut svc = spawn_sim(&redis.url(), &[]).await;
    wait_until(WAIT, "/health 503 degraded while Redis is down", || {
        health_is(&svc, 503, "degraded")
    })
    .await
    .unwrap();
    let (_, health) = http_get_json(&svc.http_url("/health")).await.unwrap();
    assert!(
        health["message"].as_str().unwrap().contains("seq"),
        "{health}"
    );
    assert_eq!(health["ticks_published"], 0);

    redis.restart().await.unwrap();
    wait_until(WAIT, "/health healthy once Redis is up", || {
        health_is(&svc, 200, "healthy")
    })
    .await
    .unwrap();
    wait_until(WAIT, "price:EUR/USD", || async {
        cached_tick(&redis, "EUR/USD").await.is_some()
    })
    .await
    .unwrap();

    // SIGTERM while the start-up retry loop runs must also exit 0 promptly.
    redis.kill();
    let mut idle = spawn_sim(&redis.url(), &[]).await;
    idle.terminate().unwrap();
    let status = idle
        .wait_exit(Duration::from_secs(5))
        .await
        .expect("exits within 5 s");
    assert!(status.success(), "{status}");
    svc.terminate().unwrap();
    let status = svc
        .wait_exit(Duration::from_secs(5))
        .await
        .expect("exits within 5 s while Redis is down");
    assert!(status.success(), "{status}");
}

//! The gateway binary against a real redis-server and a real WebSocket client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use serde_json::json;
use tickstream_testkit::{http_get_json, http_get_text, wait_until};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn subscribe_gets_cached_tick_first_then_only_its_symbols() {
    let stack = Stack::start(&[]).await;
    let mut ws = stack.ws("/ws").await;
    let hello = expect_event(&mut ws, "connected").await;
    assert!(hello["data"]["client_id"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    assert_eq!(
        hello["data"]["message"],
        "Connected to WebSocket Streaming Service"
    );

    let cached = stack.cache("BTCUSDT", 5, 43000.5).await;
    send(
        &mut ws,
        json!({"event": "subscribe", "data": {"symbols": ["btcusdt"]}, "id": 1}),
    )
    .await;
    let sub = expect_event(&mut ws, "subscribed").await;
    assert_eq!(sub["id"], 1);
    assert_eq!(sub["data"]["symbols"], json!(["BTCUSDT"]));
    assert_eq!(sub["data"]["message"], "Subscribed to 1 symbols");
    let first = expect_event(&mut ws, "price_update").await;
    assert_eq!(first["data"], cached, "cached tick comes first, unchanged");

    // A second client holds ETHUSDT so the gateway does receive it; the first must not see it.
    let mut other = stack.ws("/ws").await;
    expect_event(&mut other, "connected").await;
    subscribe(&mut other, &["ETHUSDT"]).await;
    stack.wait_numsub("BTCUSDT", 1).await;
    stack.wait_numsub("ETHUSDT", 1).await;
    stack.publish("ETHUSDT", 1, 3000.0).await;
    let live = stack.publish("BTCUSDT", 6, 43001.0).await;
    let got = expect_event(&mut ws, "price_update").await;
    assert_eq!(got["data"], live);
    let eth = expect_event(&mut other, "price_update").await;
    assert_eq!(eth["data"]["symbol"], "ETHUSDT");

    send(&mut ws, json!({"event": "list", "id": "l"})).await;
    let list = expect_event(&mut ws, "subscriptions").await;
    assert_eq!(list["data"]["symbols"], json!(["BTCUSDT"]));
    assert_eq!(list["id"], "l");

    send(
        &mut ws,
        json!({"event": "unsubscribe", "data": {"symbols": ["BTCUSDT"]}, "id": 2}),
    )
    .await;
    let unsub = expect_event(&mut ws, "unsubscribed").await;
    assert_eq!(unsub["id"], 2);
    assert_eq!(unsub["data"]["message"], "Unsubscribed from 1 symbols");
    // Last local subscriber left: the gateway drops the Redis subscription.
    stack.wait_numsub("BTCUSDT", 0).await;
    stack.wait_numsub("ETHUSDT", 1).await;
    stack.publish("BTCUSDT", 7, 1.0).await;
    assert_usable(&mut ws, "after-unsub").await;
    send(&mut ws, json!({"event": "list"})).await;
    assert_eq!(
        expect_event(&mut ws, "subscriptions").await["data"]["symbols"],
        json!([])
    );
}

#[tokio::test]
async fn query_symbols_subscribe_at_connect() {
    let stack = Stack::start(&[]).await;
    stack.cache("EUR/USD", 9, 1.08).await;
    let mut ws = stack.ws("/ws?symbols=btcusdt,EUR/USD").await;
    expect_event(&mut ws, "connected").await;
    let sub = expect_event(&mut ws, "subscribed").await;
    assert_eq!(sub["data"]["symbols"], json!(["BTCUSDT", "EUR/USD"]));
    let cached = expect_event(&mut ws, "price_update").await;
    assert_eq!(cached["data"]["symbol"], "EUR/USD");
    stack.wait_numsub("EUR/USD", 1).await;
    let live = stack.publish("EUR/USD", 10, 1.09).await;
    assert_eq!(expect_event(&mut ws, "price_update").await["data"], live);

    let mut bad = stack.ws("/ws?symbols=OK,bad*").await;
    expect_event(&mut bad, "connected").await;
    expect_error(&mut bad, "invalid_symbol").await;
    assert_usable(&mut bad, "x").await;
}

#[tokio::test]
async fn every_error_code_leaves_the_connection_usable() {
    let stack = Stack::start(&[
        ("TICKSTREAM_GATEWAY__MAX_SYMBOLS_PER_CONNECTION", "3"),
        ("TICKSTREAM_GATEWAY__REQUESTS_PER_SECOND", "3"),
        ("TICKSTREAM_GATEWAY__MAX_MESSAGE_BYTES", "1024"),
    ])
    .await;
    let mut ws = stack.ws("/ws").await;
    expect_event(&mut ws, "connected").await;

    ws.send(Message::text("this is not json")).await.unwrap();
    expect_error(&mut ws, "bad_json").await;
    assert_usable(&mut ws, "1").await;

    send(
        &mut ws,
        json!({"event": "subscribe", "data": {"symbols": "nope-not-a-list-of-objects"}, "id": 9}),
    )
    .await;
    // A string is accepted as a comma list; a wrong type is not.
    let r = next_json(&mut ws).await;
    assert_eq!(r["event"], "subscribed");
    send(
        &mut ws,
        json!({"event": "unsubscribe", "data": {"symbols": 42}, "id": 9}),
    )
    .await;
    let e = expect_error(&mut ws, "bad_json").await;
    assert_eq!(e["id"], 9, "id echoed on errors");

    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    expect_error(&mut ws, "bad_json").await;
    assert_usable(&mut ws, "2").await;

    send(&mut ws, json!({"event": "teleport"})).await;
    expect_error(&mut ws, "unknown_event").await;
    assert_usable(&mut ws, "3").await;

    // A fresh connection has a full rate-limit bucket for the remaining cases.
    let mut ws = stack.ws("/ws").await;
    expect_event(&mut ws, "connected").await;
    send(
        &mut ws,
        json!({"event": "subscribe", "data": {"symbols": ["GOOD", "bad symbol"]}}),
    )
    .await;
    expect_error(&mut ws, "invalid_symbol").await;
    assert_usable(&mut ws, "4").await;

    send(
        &mut ws,
        json!({"event": "subscribe", "data": {"symbols": ["A", "B", "C", "D"]}}),
    )
    .await;
    expect_error(&mut ws, "too_many_symbols").await;
    assert_usable(&mut ws, "5").await;

    let big = "x".repeat(2000);
    send(&mut ws, json!({"event": "ping", "data": big})).await;
    expect_error(&mut ws, "too_large").await;
    assert_usable(&mut ws, "6").await;

    // Burst past the 3/s bucket.
    let mut limited = 0;
    for i in 0..8 {
        send(
            &mut ws,
            json!({"event": "unsubscribe", "data": {"symbols": ["A"]}, "id": i}),
        )
        .await;
    }
    for _ in 0..8 {
        let v = next_json(&mut ws).await;
        if v["event"] == "error" {
            assert_eq!(v["data"]["code"], "rate_limited", "{v}");
            limited += 1;
        } else {
            assert_eq!(v["event"], "unsubscribed");
        }
    }
    assert!(limited >= 4, "only {limited} of 8 rate limited");
    assert_usable(&mut ws, "7").await;

    let (_, metrics) = http_get_text(&stack.gateway.http_url("/metrics"))
        .await
        .unwrap();
    for code in [
        "bad_json",
        "unknown_event",
        "invalid_symbol",
        "too_many_symbols",
        "too_large",
        "rate_limited",
    ] {
        let line = format!("tickstream_gateway_client_errors_total{{code=\"{code}\"}}");
        let n: f64 = metrics
            .lines()
            .find(|l| l.starts_with(&line))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0);
        assert!(n >= 1.0, "{code} not counted");
    }
}

#[tokio::test]
async fn abuse_and_oversized_frames_close_with_a_reason() {
    let stack = Stack::start(&[
        ("TICKSTREAM_GATEWAY__MAX_VIOLATIONS", "5"),
        ("TICKSTREAM_GATEWAY__MAX_MESSAGE_BYTES", "1024"),
        ("TICKSTREAM_GATEWAY__MAX_FRAME_BYTES", "4096"),
    ])
    .await;
    let mut ws = stack.ws("/ws").await;
    expect_event(&mut ws, "connected").await;
    for _ in 0..6 {
        ws.send(Message::text("garbage")).await.unwrap();
    }
    for _ in 0..6 {
        expect_error(&mut ws, "bad_json").await;
    }
    let (code, reason) = expect_close(&mut ws).await;
    assert_eq!(code, CloseCode::Policy);
    assert!(reason.contains("too many"), "{reason}");

    let mut ws = stack.ws("/ws").await;
    expect_event(&mut ws, "connected").await;
    ws.send(Message::text("y".repeat(10_000))).await.unwrap();
    expect_error(&mut ws, "too_large").await;
    let (code, _) = expect_close(&mut ws).await;
    assert_eq!(code, CloseCode::Size);

    // Others are unaffected.
    let mut fine = stack.ws("/ws").await;
    expect_event(&mut fine, "connected").await;
    assert_usable(&mut fine, "ok").await;
}

#[tokio::test]
async fn rest_shapes_and_status_codes() {
    let stack = Stack::start(&[]).await;
    let eur = stack.cache("EUR/USD", 3, 1.0812).await;
    let btc = stack.cache("BTCUSDT", 4, 43250.5).await;

    for path in ["/price/EUR/USD", "/price/EUR%2FUSD", "/price/eur/usd"] {
        let (code, v) = http_get_json(&stack.gateway.http_url(path)).await.unwrap();
        assert_eq!(code, 200, "{path}");
        assert_eq!(
            v,
            json!({"success": true, "data": eur, "source": "cache"}),
            "{path}"
        );
    }
    let (code, v) = http_get_json(&stack.gateway.http_url("/price/btcusdt"))
        .await
        .unwrap();
    assert_eq!((code, &v["data"]), (200, &btc));
    let (code, v) = http_get_json(&stack.gateway.http_url("/price/NOPE"))
        .await
        .unwrap();
    assert_eq!(code, 404);
    assert_eq!(v["success"], false);
    assert!(v["error"].as_str().unwrap().contains("NOPE"));
    let (code, v) = http_get_json(&stack.gateway.http_url("/price/bad*sym"))
        .await
        .unwrap();
    assert_eq!(code, 400);
    assert_eq!(v["success"], false);

    let (code, v) = http_get_json(
        &stack
            .gateway
            .http_url("/prices?symbols=btcusdt,EUR/USD,NOPE"),
    )
    .await
    .unwrap();
    assert_eq!(code, 200);
    assert_eq!(v["data"]["BTCUSDT"], btc);
    assert_eq!(v["data"]["EUR/USD"], eur);
    assert_eq!(v["missing"], json!(["NOPE"]));
    let (code, _) = http_get_json(&stack.gateway.http_url("/prices?symbols=a*b"))
        .await
        .unwrap();
    assert_eq!(code, 400);
    let (code, _) = http_get_json(&stack.gateway.http_url("/prices"))
        .await
        .unwrap();
    assert_eq!(code, 400);

    // A heartbeat as an ingestor writes it makes /health healthy and /symbols list the source.
    let hb = json!({"name": "sim", "status": "healthy", "symbols": ["BTCUSDT", "EUR/USD"],
        "ticks_published": 10, "updated_at": "2025-11-01T10:30:00.000Z"});
    let mut c = stack.redis().await;
    let _: () = redis::cmd("SET")
        .arg("tickstream:ingestor:sim")
        .arg(hb.to_string())
        .arg("EX")
        .arg(60)
        .query_async(&mut c)
        .await
        .unwrap();

    let mut ws = stack.ws("/ws?symbols=BTCUSDT,EUR/USD").await;
    expect_event(&mut ws, "connected").await;
    expect_event(&mut ws, "subscribed").await;
    let mut ws2 = stack.ws("/ws?symbols=BTCUSDT").await;
    expect_event(&mut ws2, "connected").await;
    expect_event(&mut ws2, "subscribed").await;

    let (code, h) = http_get_json(&stack.gateway.http_url("/health"))
        .await
        .unwrap();
    assert_eq!(code, 200, "{h}");
    assert_eq!(h["status"], "healthy", "{h}");
    assert_eq!(h["service"], "tickstream-gateway");
    assert_eq!(h["port"], stack.gateway.addr().port());
    assert_eq!(h["dependencies"]["redis"]["status"], "healthy");
    assert_eq!(h["dependencies"]["ingestors"]["sim"]["status"], "healthy");
    assert!(h["uptime"].as_str().unwrap().ends_with('s'));
    assert!(h["timestamp"].as_str().is_some());
    assert_eq!(h["metrics"]["active_streams"], 2);
    assert_eq!(h["metrics"]["total_subscriptions"], 3);
    assert_eq!(
        h["metrics"]["active_symbols"],
        json!(["BTCUSDT", "EUR/USD"])
    );

    let (code, s) = http_get_json(&stack.gateway.http_url("/stats"))
        .await
        .unwrap();
    assert_eq!(code, 200);
    assert_eq!(s["success"], true);
    assert_eq!(
        s["data"]["subscriptions_by_symbol"],
        json!({"BTCUSDT": 2, "EUR/USD": 1})
    );
    assert_eq!(s["data"]["total_subscriptions"], 3);
    assert_eq!(s["data"]["active_streams"], 2);
    assert!(s["data"]["ticks_per_second"].is_number());

    let (code, s) = http_get_json(&stack.gateway.http_url("/symbols"))
        .await
        .unwrap();
    assert_eq!(code, 200);
    assert_eq!(s["data"]["supported"]["sim"], json!(["BTCUSDT", "EUR/USD"]));
    assert_eq!(s["data"]["active_symbols"], json!(["BTCUSDT", "EUR/USD"]));
    assert!(s["data"]["default_symbols"]
        .as_array()
        .unwrap()
        .contains(&json!("BTCUSDT")));

    let (code, m) = http_get_text(&stack.gateway.http_url("/metrics"))
        .await
        .unwrap();
    assert_eq!(code, 200);
    for name in [
        "tickstream_gateway_connections{protocol=\"native\"} 2",
        "tickstream_gateway_subscriptions 3",
        "tickstream_redis_up",
        "process_resident_memory_bytes",
    ] {
        assert!(m.contains(name), "missing {name}");
    }

    // Without Redis: 503 with the error shape, and the process stays up.
    stack_without_redis_answers_503(stack).await;
}

async fn stack_without_redis_answers_503(mut stack: Stack) {
    stack.redis.kill();
    let (code, h) = http_get_json(&stack.gateway.http_url("/health"))
        .await
        .unwrap();
    assert_eq!(code, 503, "{h}");
    assert_eq!(h["status"], "degraded");
    assert_eq!(h["dependencies"]["redis"]["status"], "unhealthy");
    let (code, v) = http_get_json(&stack.gateway.http_url("/price/BTCUSDT"))
        .await
        .unwrap();
    assert_eq!(code, 503);
    assert_eq!(v["success"], false);
    assert!(stack
        .gateway
        .wait_exit(Duration::from_millis(10))
        .await
        .is_none());
}

/// Issue 7: ticks reach clients again within 2 s of Redis being back.
const REDIS_BACK_WITHIN: Duration = Duration::from_secs(2);
/// How long Redis stays down: past the time the reconnect backoff needs to reach its cap.
const OUTAGE: Duration = Duration::from_secs(3);

/// Publishes a new tick of `symbol` (seq from `first_seq` up) every 20 ms until aborted, ignoring failures.
fn spawn_feed(
    redis_url: String,
    symbol: &'static str,
    first_seq: u64,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = redis::Client::open(redis_url).unwrap();
        let mut conn = None;
        for seq in first_seq.. {
            if conn.is_none() {
                conn = client.get_multiplexed_async_connection().await.ok();
            }
            if let Some(c) = conn.as_mut() {
                let tick = tick_json(symbol, seq, 190.0 + seq as f64);
                let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
                    .arg(format!("ticks:{symbol}"))
                    .arg(tick.to_string())
                    .query_async(c)
                    .await;
                if sent.is_err() {
                    conn = None;
                }
            }
            // Pacing of the feed, not synchronisation: the test awaits the client's frame.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

#[tokio::test]
async fn redis_restart_keeps_clients_and_restores_subscriptions() {
    let mut stack = Stack::start(&[]).await;
    let mut ws = stack.ws("/ws?symbols=AAPL").await;
    expect_event(&mut ws, "connected").await;
    expect_event(&mut ws, "subscribed").await;
    stack.wait_numsub("AAPL", 1).await;
    let t = stack.publish("AAPL", 1, 190.0).await;
    assert_eq!(expect_event(&mut ws, "price_update").await["data"], t);

    stack.redis.kill();
    let url = stack.gateway.http_url("/health");
    wait_until(STEP, "health 503 while Redis is down", || {
        let url = url.clone();
        async move { matches!(http_get_json(&url).await, Ok((503, v)) if v["status"] == "degraded") }
    })
    .await
    .unwrap();
    assert_usable(&mut ws, "redis-down").await;
    assert!(
        stack
            .gateway
            .wait_exit(Duration::from_millis(10))
            .await
            .is_none(),
        "gateway exited"
    );

    // The outage itself lasts long enough for the reconnect backoff to reach
    // its cap (tickstream-bus: 100 ms doubling to 1 s), so the bound below
    // covers the worst case, not a lucky early retry.
    tokio::time::sleep(OUTAGE).await;
    stack.redis.restart().await.unwrap();
    // restart() returns once the new redis-server answers: Redis is back from here.
    let back = std::time::Instant::now();
    // Pub/sub keeps nothing, so publish a fresh tick every 20 ms (as a live
    // feed would) and time the first one the client gets: issue 7 wants
    // ticks flowing again within 2 s of Redis being back, with no client action.
    let feed = spawn_feed(stack.redis.url(), "AAPL", 2);
    let first = expect_event(&mut ws, "price_update").await;
    let flowing_in = back.elapsed();
    feed.abort();
    eprintln!("ticks reached the client {flowing_in:?} after Redis was back");
    assert!(
        flowing_in < REDIS_BACK_WITHIN,
        "first tick reached the client {flowing_in:?} after Redis was back: {first}"
    );
    assert_eq!(first["data"]["symbol"], "AAPL", "{first}");
    assert!(
        first["data"]["seq"].as_u64() >= Some(2),
        "a tick from before the outage: {first}"
    );
    // Restored exactly once: no duplicate subscription after the reconnect.
    stack.wait_numsub("AAPL", 1).await;
    wait_until(STEP, "health 200 after Redis is back", || {
        let url = url.clone();
        async move { matches!(http_get_json(&url).await, Ok((200, _))) }
    })
    .await
    .unwrap();
    let (_, m) = http_get_text(&stack.gateway.http_url("/metrics"))
        .await
        .unwrap();
    assert!(m.contains("tickstream_redis_reconnects_total"), "{m}");
}

#[tokio::test]
async fn invalid_ticks_from_third_parties_are_skipped() {
    let stack = Stack::start(&[]).await;
    let mut ws = stack.ws("/ws?symbols=MSFT").await;
    expect_event(&mut ws, "connected").await;
    expect_event(&mut ws, "subscribed").await;
    stack.wait_numsub("MSFT", 1).await;
    let mut c = stack.redis().await;
    for garbage in ["nope", "{\"symbol\":\"MSFT\"}", "{\"symbol\":\"AAPL\",\"price\":1,\"timestamp\":\"2025-11-01T10:30:00Z\",\"source\":\"x\",\"seq\":1}"] {
        let _: i64 = redis::cmd("PUBLISH").arg("ticks:MSFT").arg(garbage).query_async(&mut c).await.unwrap();
    }
    let good = stack.publish("MSFT", 1, 420.0).await;
    assert_eq!(expect_event(&mut ws, "price_update").await["data"], good);
    let (_, m) = http_get_text(&stack.gateway.http_url("/metrics"))
        .await
        .unwrap();
    assert!(
        m.contains("tickstream_gateway_ticks_invalid_total 3"),
        "{m}"
    );
}

#[tokio::test]
async fn sigterm_closes_clients_with_1001_and_exits() {
    let mut stack = Stack::start(&[]).await;
    let mut ws = stack.ws("/ws?symbols=BTCUSDT").await;
    expect_event(&mut ws, "connected").await;
    expect_event(&mut ws, "subscribed").await;
    stack.gateway.terminate().unwrap();
    let (code, reason) = expect_close(&mut ws).await;
    assert_eq!(code, CloseCode::Away);
    assert!(reason.contains("shutting down"), "{reason}");
    let status = stack
        .gateway
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("did not exit");
    assert!(status.success(), "{status:?}");
}

/// With write batching on, a burst of ticks arrives complete and in order, and never before the delay has passed.
#[tokio::test]
async fn write_batching_holds_each_write_for_the_delay_and_loses_nothing() {
    let stack = Stack::start(&[("TICKSTREAM_GATEWAY__WRITE_DELAY_MS", "150")]).await;
    let mut ws = stack.ws("/ws").await;
    expect_event(&mut ws, "connected").await;
    subscribe(&mut ws, &["BATCHA"]).await;
    stack.wait_numsub("BATCHA", 1).await;
    for round in 0..2u64 {
        let published = std::time::Instant::now();
        for i in 1..=20 {
            stack.publish("BATCHA", round * 20 + i, 100.0).await;
        }
        for i in 1..=20 {
            let update = expect_event(&mut ws, "price_update").await;
            assert_eq!(update["data"]["seq"], round * 20 + i, "{update}");
            if i == 1 {
                let waited = published.elapsed();
                assert!(
                    waited >= Duration::from_millis(150),
                    "the first tick of a burst came after {waited:?}, before the 150 ms write delay"
                );
            }
        }
    }
    assert_usable(&mut ws, "batched").await;
}

#[tokio::test]
async fn bad_config_fails_fast_naming_the_key() {
    for (key, value, needle) in [
        ("PORT", "not-a-port", "PORT"),
        (
            "TICKSTREAM_GATEWAY__QUEUE_CAPACITY",
            "0",
            "gateway.queue_capacity",
        ),
        ("DEFAULT_SYMBOLS", "OK,bad sym", "DEFAULT_SYMBOLS"),
        (
            "TICKSTREAM_GATEWAY__WRITE_DELAY_MS",
            "5000",
            "gateway.write_delay_ms",
        ),
        ("LOG_FORMAT", "xml", "format"),
        ("REDIS_URL", "http://nope", "redis_url"),
    ] {
        let out = tokio::process::Command::new(tickstream_testkit::bin_path("gateway"))
            .env(key, value)
            .env("PORT", if key == "PORT" { value } else { "0" })
            .env("HOST", "127.0.0.1")
            .output();
        let out = tokio::time::timeout(STEP, out).await.unwrap().unwrap();
        assert!(!out.status.success(), "{key}={value} was accepted");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains(needle),
            "{key}={value}: message does not name {needle}: {text}"
        );
    }
}

#[tokio::test]
async fn example_config_file_is_accepted_by_every_service() {
    let redis = tickstream_testkit::RedisServer::start().await.unwrap();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/tickstream.example.toml"
    );
    let url = redis.url();
    for bin in ["gateway", "ingest-sim"] {
        let env = [("TICKSTREAM_CONFIG", path), ("REDIS_URL", url.as_str())];
        let svc = tickstream_testkit::Service::spawn(bin, &env).await;
        assert!(svc.is_ok(), "{bin} rejected {path}: {:?}", svc.err());
    }
}

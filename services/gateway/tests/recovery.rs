//! History and recovery through the real gateway and a real redis-server: reconnects with `since`
//! over `/ws` and a stock Socket.IO client, Redis crashes with and without its data, the refusals,
//! `history` requests and the REST history endpoints.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::sio::{node, ClientProc};
use common::*;
use serde_json::{json, Value};
use tickstream_bus::{Redis, RedisOptions};
use tickstream_model::{Symbol, Tick};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The ten symbols of the reconnect scenario.
const SYMBOLS: [&str; 10] = [
    "RCA", "RCB", "RCC", "RCD", "RCE", "RCF", "RCG", "RCH", "RCI", "RCJ",
];

/// How long a client stays away in the reconnect scenario.
const AWAY: Duration = Duration::from_secs(3);

fn tick(symbol: &str, seq: u64) -> Tick {
    Tick {
        symbol: Symbol::parse(symbol).unwrap(),
        price: 100.0 + (seq % 50) as f64 * 0.25,
        volume: None,
        high: None,
        low: None,
        change: None,
        change_percent: None,
        bid: None,
        ask: None,
        timestamp: chrono::Utc::now(),
        source: "test".to_owned(),
        seq,
    }
}

/// Publishes one tick per symbol every 10 ms (100 ticks/s per symbol, 1,000/s for ten)
/// through the bus, as an ingestor does (cache, history and PUBLISH in one step).
/// A batch Redis refused is retried until it goes through, so every seq ends up
/// published; the task returns the last seq of each symbol once stopped.
struct Publisher {
    stop: watch::Sender<bool>,
    task: JoinHandle<u64>,
}

impl Publisher {
    fn start(url: &str, symbols: &'static [&'static str]) -> Publisher {
        let bus = Redis::connect_lazy(RedisOptions::new(url)).unwrap();
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut seq = 0;
            let mut every = tokio::time::interval(Duration::from_millis(10));
            loop {
                tokio::select! {
                    _ = stopped.changed() => return seq,
                    _ = every.tick() => {}
                }
                let batch: Vec<Tick> = symbols.iter().map(|s| tick(s, seq + 1)).collect();
                if bus.publish(&batch).await.is_ok() {
                    seq += 1;
                }
            }
        });
        Publisher { stop, task }
    }

    /// Stops publishing; the last seq published for every symbol.
    async fn finish(self) -> u64 {
        let _ = self.stop.send(true);
        self.task.await.unwrap()
    }
}

/// Reads `price_update`s into `seen` (seqs per symbol, in arrival order) until `done` holds.
async fn read_ticks(
    ws: &mut Ws,
    seen: &mut HashMap<String, Vec<u64>>,
    done: impl Fn(&HashMap<String, Vec<u64>>) -> bool,
) {
    while !done(seen) {
        let v = next_json(ws).await;
        if v["event"] == "price_update" {
            let sym = v["data"]["symbol"].as_str().unwrap().to_owned();
            seen.entry(sym)
                .or_default()
                .push(v["data"]["seq"].as_u64().unwrap());
        }
    }
}

/// Every symbol's seqs, across sessions, are exactly `first..=last` in order: no gap, no duplicate.
fn assert_contiguous(seen: &HashMap<String, Vec<u64>>, last: u64) {
    for sym in SYMBOLS {
        let seqs = &seen[sym];
        let first = seqs[0];
        let want: Vec<u64> = (first..=last).collect();
        if *seqs != want {
            let gaps: Vec<(u64, u64)> = seqs
                .windows(2)
                .filter(|w| w[1] != w[0] + 1)
                .map(|w| (w[0], w[1]))
                .take(10)
                .collect();
            panic!(
                "{sym}: {} items from {first} to {last}; jumps {gaps:?}",
                seqs.len()
            );
        }
    }
}

fn since_of(seen: &HashMap<String, Vec<u64>>) -> Value {
    let map: serde_json::Map<String, Value> = seen
        .iter()
        .map(|(s, seqs)| {
            (
                format!("ticks:{s}"),
                json!(seqs.last().copied().unwrap_or(0)),
            )
        })
        .collect();
    Value::Object(map)
}

/// Subscribes the ten symbols and waits until Redis holds the gateway's subscription to each.
async fn subscribe_all(stack: &Stack, ws: &mut Ws) -> Value {
    let sub = subscribe(ws, &SYMBOLS).await;
    for sym in SYMBOLS {
        stack.wait_numsub(sym, 1).await;
    }
    sub
}

#[tokio::test]
async fn a_native_client_back_after_3_s_with_since_gets_every_tick_exactly_once() {
    let stack = Stack::start(&[]).await;
    let mut first = stack.ws("/ws").await;
    expect_event(&mut first, "connected").await;
    subscribe_all(&stack, &mut first).await;
    let publisher = Publisher::start(&stack.redis.url(), &SYMBOLS);

    let mut seen: HashMap<String, Vec<u64>> = HashMap::new();
    read_ticks(&mut first, &mut seen, |s| {
        SYMBOLS
            .iter()
            .all(|sym| s.get(*sym).is_some_and(|v| v.len() >= 30))
    })
    .await;
    drop(first);
    let away_from = since_of(&seen);
    // The outage the scenario is about: ~300 ticks per symbol go by meanwhile.
    tokio::time::sleep(AWAY).await;

    let mut back = stack.ws("/ws").await;
    expect_event(&mut back, "connected").await;
    send(
        &mut back,
        json!({"event": "subscribe", "data": {"symbols": SYMBOLS, "since": away_from}}),
    )
    .await;
    let sub = expect_event(&mut back, "subscribed").await;
    assert!(sub["data"]["epoch"].is_string(), "{sub}");
    for sym in SYMBOLS {
        let r = &sub["data"]["recovery"][format!("ticks:{sym}")];
        assert_eq!(r["recovered"], true, "{sym}: {sub}");
        assert!(r["replayed"].as_u64().unwrap() >= 200, "{sym}: {r}");
    }
    // Keep receiving live for a while, then stop and drain to the last seq.
    read_ticks(&mut back, &mut seen, |s| {
        SYMBOLS
            .iter()
            .all(|sym| s.get(*sym).is_some_and(|v| v.len() >= 450))
    })
    .await;
    let last = publisher.finish().await;
    read_ticks(&mut back, &mut seen, |s| {
        SYMBOLS.iter().all(|sym| s[*sym].last() == Some(&last))
    })
    .await;
    assert_contiguous(&seen, last);
}

/// Reads the client's lines, recording `price_update` seqs into `seen`, until `done` holds.
async fn read_sio_ticks(
    client: &mut ClientProc,
    seen: &mut HashMap<String, Vec<u64>>,
    done: impl Fn(&HashMap<String, Vec<u64>>) -> bool,
) {
    while !done(seen) {
        let line = client.next_line(STEP).await;
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if v["ev"] == "price_update" {
            let sym = v["data"]["symbol"].as_str().unwrap().to_owned();
            seen.entry(sym)
                .or_default()
                .push(v["data"]["seq"].as_u64().unwrap());
        }
    }
}

#[tokio::test]
async fn a_socketio_client_back_after_3_s_with_since_gets_every_tick_exactly_once() {
    let stack = Stack::start(&[]).await;
    let spawn_client = || {
        let mut cmd = node();
        cmd.arg("sio-client.js")
            .arg(stack.gateway.http_url(""))
            .arg("websocket");
        ClientProc::spawn("node sio-client.js (recovery)", cmd)
    };
    let mut client = spawn_client();
    client.wait_event(STEP, "connected", |_| true).await;
    client
        .cmd(json!({"emit": "subscribe", "data": {"symbols": SYMBOLS}}))
        .await;
    client.wait_event(STEP, "subscribed", |_| true).await;
    for sym in SYMBOLS {
        stack.wait_numsub(sym, 1).await;
    }
    let publisher = Publisher::start(&stack.redis.url(), &SYMBOLS);
    let mut seen: HashMap<String, Vec<u64>> = HashMap::new();
    read_sio_ticks(&mut client, &mut seen, |s| {
        SYMBOLS
            .iter()
            .all(|sym| s.get(*sym).is_some_and(|v| v.len() >= 30))
    })
    .await;
    client.kill().await;
    let away_from = since_of(&seen);
    tokio::time::sleep(AWAY).await;

    let mut client = spawn_client();
    client.wait_event(STEP, "connected", |_| true).await;
    client
        .cmd(json!({"emit": "subscribe", "data": {"symbols": SYMBOLS, "since": away_from}}))
        .await;
    let sub = client.wait_event(STEP, "subscribed", |_| true).await;
    for sym in SYMBOLS {
        assert_eq!(
            sub["data"]["recovery"][format!("ticks:{sym}")]["recovered"],
            true,
            "{sub}"
        );
    }
    read_sio_ticks(&mut client, &mut seen, |s| {
        SYMBOLS
            .iter()
            .all(|sym| s.get(*sym).is_some_and(|v| v.len() >= 450))
    })
    .await;
    let last = publisher.finish().await;
    read_sio_ticks(&mut client, &mut seen, |s| {
        SYMBOLS.iter().all(|sym| s[*sym].last() == Some(&last))
    })
    .await;
    assert_contiguous(&seen, last);
    client.exit().await;
}

#[tokio::test]
async fn a_redis_crash_that_keeps_its_data_costs_connected_clients_no_tick() {
    let mut stack = Stack::start_persistent(&[]).await;
    let url = stack.redis.url();
    let mut ws = stack.ws("/ws").await;
    expect_event(&mut ws, "connected").await;
    subscribe_all(&stack, &mut ws).await;
    let publisher = Publisher::start(&url, &SYMBOLS);
    let mut seen: HashMap<String, Vec<u64>> = HashMap::new();
    read_ticks(&mut ws, &mut seen, |s| {
        SYMBOLS
            .iter()
            .all(|sym| s.get(*sym).is_some_and(|v| v.len() >= 30))
    })
    .await;
    stack.redis.kill();
    // Redis is away for 2 s; the publisher retries, the gateway keeps its clients.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stack.redis.restart().await.unwrap();
    let target = seen["RCA"].last().copied().unwrap_or(0) + 300;
    read_ticks(&mut ws, &mut seen, |s| {
        SYMBOLS
            .iter()
            .all(|sym| s.get(*sym).and_then(|v| v.last()) >= Some(&target))
    })
    .await;
    let last = publisher.finish().await;
    read_ticks(&mut ws, &mut seen, |s| {
        SYMBOLS.iter().all(|sym| s[*sym].last() == Some(&last))
    })
    .await;
    assert_contiguous(&seen, last);
    assert_usable(&mut ws, "after-the-crash").await;
}

#[tokio::test]
async fn refusals_say_why_and_history_reads_serve_ws_and_rest() {
    let mut stack = Stack::start(&[("TICKSTREAM_GATEWAY__RECOVERY_MAX_ITEMS", "100")]).await;
    let mut opts = RedisOptions::new(stack.redis.url());
    opts.history_len = 200;
    let bus = Redis::connect_lazy(opts).unwrap();
    let ticks: Vec<Tick> = (1..=1000).map(|s| tick("BTCUSDT", s)).collect();
    bus.publish(&ticks).await.unwrap();
    let trades: Vec<tickstream_model::Trade> = (1..=5)
        .map(|seq| tickstream_model::Trade {
            symbol: Symbol::parse("BTCUSDT").unwrap(),
            price: 10.5,
            size: 2.0,
            side: Some(tickstream_model::Side::Buy),
            trade_id: Some(seq.to_string()),
            timestamp: chrono::Utc::now(),
            source: "test".to_owned(),
            seq,
        })
        .collect();
    bus.publish_trades(&trades).await.unwrap();
    let epoch = bus.epoch().await.unwrap();

    let mut ws = stack.ws("/ws").await;
    expect_event(&mut ws, "connected").await;
    // Trimmed: the stream keeps about the newest 200, seq 11 is long gone.
    // Too far behind: 150 to replay, above the cap of 100.
    // Epoch changed: the client's seqs are from another data set.
    // Recovered: trades 2..=5, and its own seq after.
    for (since, epoch_sent, channel, want) in [
        (
            10,
            None,
            "ticks:BTCUSDT",
            json!({"recovered": false, "reason": "trimmed"}),
        ),
        (
            850,
            None,
            "ticks:BTCUSDT",
            json!({"recovered": false, "reason": "too_far_behind"}),
        ),
        (
            990,
            Some("not-this-one"),
            "ticks:BTCUSDT",
            json!({"recovered": false, "reason": "epoch_changed"}),
        ),
        (
            1,
            Some(epoch.as_str()),
            "trades:BTCUSDT",
            json!({"recovered": true, "replayed": 4}),
        ),
        (
            0,
            None,
            "trades:ETHUSDT",
            json!({"recovered": false, "reason": "no_history"}),
        ),
    ] {
        send(
            &mut ws,
            json!({"event": "subscribe", "data": {"since": {channel: since}, "epoch": epoch_sent}}),
        )
        .await;
        let sub = expect_event(&mut ws, "subscribed").await;
        assert_eq!(sub["data"]["recovery"][channel], want, "{since}: {sub}");
        assert_eq!(sub["data"]["epoch"], epoch.as_str());
        if want["recovered"] == true {
            for seq in 2..=5 {
                let t = expect_event(&mut ws, "trade").await;
                assert_eq!(t["data"]["seq"], seq);
            }
        } else if channel == "ticks:BTCUSDT" {
            // Not recovered: the latest snapshot, as for any new subscription.
            let snap = expect_event(&mut ws, "price_update").await;
            assert_eq!(snap["data"]["seq"], 1000);
        }
        send(
            &mut ws,
            json!({"event": "unsubscribe", "data": {"channels": [channel]}}),
        )
        .await;
        expect_event(&mut ws, "unsubscribed").await;
    }

    send(
        &mut ws,
        json!({"event": "history", "data": {"channel": "ticks:btcusdt", "since_seq": 995, "limit": 3}, "id": 9}),
    )
    .await;
    let h = expect_event(&mut ws, "history").await;
    assert_eq!(h["id"], 9);
    assert_eq!(h["data"]["channel"], "ticks:BTCUSDT");
    assert_eq!(h["data"]["epoch"], epoch.as_str());
    let seqs: Vec<u64> = h["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [996, 997, 998]);
    for bad in [
        json!({"channel": "sentiment"}),
        json!({"channel": "candles:1m:BTCUSDT"}),
        json!({"channel": "nope:X"}),
    ] {
        send(&mut ws, json!({"event": "history", "data": bad})).await;
        expect_error(&mut ws, "invalid_channel").await;
    }
    send(
        &mut ws,
        json!({"event": "history", "data": {"channel": "ticks:A", "limit": -1}}),
    )
    .await;
    expect_error(&mut ws, "bad_json").await;

    let get = |path: &str| {
        let url = stack.gateway.http_url(path);
        async move { tickstream_testkit::http_get_text(&url).await }
    };
    let (status, body) = get("/history/btcusdt?since_seq=998").await.unwrap();
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let seqs: Vec<u64> = v["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [999, 1000]);
    assert_eq!(v["data"]["epoch"], epoch.as_str());
    assert_eq!(v["data"]["newest_seq"], 1000);
    let (status, body) = get("/trades/BTCUSDT?limit=2").await.unwrap();
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["items"][1]["trade_id"], "2");
    for (path, want) in [
        ("/history/BTCUSDT?limit=abc", 400),
        ("/history/BTCUSDT?since_seq=-4", 400),
        ("/history/BTCUSDT?limit=0", 400),
        ("/history/BAD%20SYMBOL", 400),
        ("/history/NOSUCH", 404),
        ("/trades/ETHUSDT", 404),
    ] {
        let (status, body) = get(path).await.unwrap();
        assert_eq!(status, want, "{path}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["success"], false, "{path}");
    }

    // Redis restarted empty: a new epoch, so the old seqs cannot be recovered.
    stack.redis.restart().await.unwrap();
    tickstream_testkit::wait_until(STEP, "a publish to the restarted Redis", || async {
        bus.publish(&[tick("BTCUSDT", 1)]).await.is_ok()
    })
    .await
    .unwrap();
    let health = stack.gateway.http_url("/health");
    tickstream_testkit::wait_until(STEP, "the gateway's Redis back", || {
        let url = health.clone();
        async move { matches!(tickstream_testkit::http_get_text(&url).await, Ok((200, _))) }
    })
    .await
    .unwrap();
    let mut again = stack.ws("/ws").await;
    expect_event(&mut again, "connected").await;
    send(
        &mut again,
        json!({"event": "subscribe", "data": {"symbols": ["BTCUSDT"], "since": {"ticks:BTCUSDT": 999}, "epoch": epoch}}),
    )
    .await;
    let sub = expect_event(&mut again, "subscribed").await;
    assert_ne!(sub["data"]["epoch"], epoch.as_str(), "{sub}");
    assert_eq!(
        sub["data"]["recovery"]["ticks:BTCUSDT"],
        json!({"recovered": false, "reason": "epoch_changed"})
    );
    assert_eq!(
        expect_event(&mut again, "price_update").await["data"]["seq"],
        1
    );
}

/// The gateway's resident memory, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[tokio::test]
async fn an_oversized_replay_is_refused_and_memory_stays_bounded() {
    // Default caps: a replay of more than 5,000 items is refused.
    let stack = Stack::start(&[]).await;
    let mut opts = RedisOptions::new(stack.redis.url());
    opts.history_len = 20_000;
    let bus = Redis::connect_lazy(opts).unwrap();
    for chunk in (1..=12_000u64).collect::<Vec<_>>().chunks(1000) {
        let ticks: Vec<Tick> = chunk.iter().map(|s| tick("BIGSYM", *s)).collect();
        bus.publish(&ticks).await.unwrap();
    }
    let mut ws = stack.ws("/ws").await;
    expect_event(&mut ws, "connected").await;
    let pid = stack.gateway.pid();
    let before = rss_kib(pid);
    for round in 0..15 {
        send(
            &mut ws,
            json!({"event": "subscribe", "data": {"since": {"ticks:BIGSYM": round}}}),
        )
        .await;
        let sub = expect_event(&mut ws, "subscribed").await;
        assert_eq!(
            sub["data"]["recovery"]["ticks:BIGSYM"],
            json!({"recovered": false, "reason": "too_far_behind"}),
            "{sub}"
        );
        // The snapshot on the first subscribe, and nothing replayed: the next frame is the next reply.
        if round == 0 {
            assert_eq!(
                expect_event(&mut ws, "price_update").await["data"]["seq"],
                12_000
            );
        }
    }
    assert_usable(&mut ws, "after-refusals").await;
    let grown = rss_kib(pid).saturating_sub(before);
    // 15 replays of ~12,000 ticks queued would be tens of MiB; refused, they cost a bounded read each.
    assert!(grown < 16 * 1024, "gateway RSS grew {grown} KiB");
}

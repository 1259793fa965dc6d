//! The bus on a private Redis Cluster (3 masters + 3 replicas): sharded
//! publish/subscribe, every other command, a killed master and a live reshard.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tickstream_bus::{
    ChannelHandler, Desired, FeedMode, FeedStatus, Heartbeat, IngestorStatus, Redis, RedisOptions,
    Subscriber,
};
use tickstream_model::{Channel, Symbol, Tick};
use tickstream_testkit::{symbol_slot, wait_until, RedisCluster};

/// Generous bound for any one awaited condition (a busy 2-core machine).
const STEP: Duration = Duration::from_secs(20);
/// What the issue promises for a failed master with `cluster-node-timeout` 2 s.
const FAILOVER_BOUND: Duration = Duration::from_secs(10);
/// Pause between two publish rounds of the test publisher.
const ROUND: Duration = Duration::from_millis(20);

/// Records every message the subscriber delivers; wants the channels in `wanted`.
#[derive(Default)]
struct Recorder {
    wanted: Mutex<Vec<String>>,
    got: Mutex<Vec<(String, u64, Instant)>>,
}

impl ChannelHandler for Recorder {
    fn on_message(&self, channel: &str, payload: &[u8]) {
        let seq = Tick::from_json(payload).map(|t| t.seq).unwrap_or(0);
        self.got
            .lock()
            .unwrap()
            .push((channel.to_owned(), seq, Instant::now()));
    }
    fn wants(&self, channel: &str) -> bool {
        self.wanted.lock().unwrap().iter().any(|s| s == channel)
    }
    fn wanted(&self) -> Vec<String> {
        self.wanted.lock().unwrap().clone()
    }
}

impl Recorder {
    fn seqs(&self, channel: &str) -> Vec<u64> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(c, _, _)| c == channel)
            .map(|(_, s, _)| *s)
            .collect()
    }
    fn channels(&self) -> Vec<String> {
        let mut c: Vec<String> = self
            .got
            .lock()
            .unwrap()
            .iter()
            .map(|(c, _, _)| c.clone())
            .collect();
        c.sort();
        c.dedup();
        c
    }
    /// When `channel` first delivered a tick with seq above `after`.
    fn first_after(&self, channel: &str, after: u64) -> Option<Instant> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .find(|(c, s, _)| c == channel && *s > after)
            .map(|(_, _, t)| *t)
    }
    fn total(&self) -> usize {
        self.got.lock().unwrap().len()
    }
}

fn tick(symbol: &str, seq: u64) -> Tick {
    Tick {
        symbol: Symbol::parse(symbol).unwrap(),
        price: 100.0 + seq as f64,
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

fn bus(cluster: &RedisCluster) -> Redis {
    let mut opts = RedisOptions::new("redis://unused:1");
    opts.cluster_nodes = cluster.seeds().split(',').map(str::to_owned).collect();
    opts.history_len = 1_000;
    Redis::connect_lazy(opts).unwrap()
}

/// Publishes one tick per symbol per round until stopped; returns the last seq published per round.
struct Publisher {
    stop: Arc<AtomicBool>,
    seq: Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Publisher {
    fn start(redis: Redis, symbols: Vec<String>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let seq = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (s, q) = (stop.clone(), seq.clone());
        let task = tokio::spawn(async move {
            let mut n = 0u64;
            while !s.load(Ordering::Relaxed) {
                n += 1;
                let ticks: Vec<Tick> = symbols.iter().map(|sym| tick(sym, n)).collect();
                // A batch may fail in part while a master is down; the next round goes on.
                let _ = redis.publish(&ticks).await;
                q.store(n, Ordering::Relaxed);
                tokio::time::sleep(ROUND).await;
            }
        });
        Self { stop, seq, task }
    }
    fn seq(&self) -> u64 {
        self.seq.load(Ordering::Relaxed)
    }
    async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
    }
}

fn assert_increasing(rec: &Recorder, channel: &str) {
    let seqs = rec.seqs(channel);
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "{channel}: seqs not strictly increasing: {seqs:?}"
    );
}

async fn subscribe_all(sub: &Subscriber, rec: &Recorder, channels: &[String]) {
    rec.wanted.lock().unwrap().extend(channels.iter().cloned());
    for c in channels {
        assert!(
            sub.sync_confirmed(c, STEP).await,
            "SSUBSCRIBE {c} not confirmed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_publish_reaches_only_wanted_channels_and_every_command_works() {
    let cluster = RedisCluster::start().await.unwrap();
    let redis = bus(&cluster);
    let symbols: Vec<String> = (0..200).map(|i| format!("SYM{i}")).collect();
    let rec = Arc::new(Recorder::default());
    let sub = Subscriber::spawn_for(&redis, rec.clone());
    let wanted: Vec<String> = symbols[..10].iter().map(|s| format!("ticks:{s}")).collect();
    subscribe_all(&sub, &rec, &wanted).await;

    let publisher = Publisher::start(redis.clone(), symbols.clone());
    wait_until(STEP, "every wanted channel delivers 20 ticks", || async {
        wanted.iter().all(|c| rec.seqs(c).len() >= 20)
    })
    .await
    .unwrap();
    let published_rounds = publisher.seq();
    publisher.stop().await;

    // Only the wanted channels came from Redis, each in seq order, untagged.
    assert_eq!(rec.channels(), {
        let mut w = wanted.clone();
        w.sort();
        w
    });
    for c in &wanted {
        assert_increasing(&rec, c);
    }
    let received = rec.total();
    let offered = published_rounds as usize * symbols.len();
    eprintln!("cluster input: {received} messages received of {offered} published (10 of 200 symbols wanted)");
    assert!(received * 10 < offered, "{received} of {offered}");

    // The symbols really are spread over the three masters.
    let mut masters = std::collections::HashSet::new();
    for s in &symbols[..10] {
        masters.insert(cluster.master_of_slot(symbol_slot(s)).await.unwrap());
    }
    assert!(masters.len() >= 2, "wanted symbols on one master only");

    // Cache, seq, history and the epoch, with hash-tagged names under the hood.
    let last = redis.latest("SYM3").await.unwrap().unwrap();
    assert!(Tick::from_json(&last).unwrap().seq >= 20);
    let many = redis
        .latest_many(&["SYM1", "SYM150", "NOPE"])
        .await
        .unwrap();
    assert!(many[0].is_some() && many[1].is_some() && many[2].is_none());
    let syms: Vec<Symbol> = ["SYM1", "SYM199"]
        .iter()
        .map(|s| Symbol::parse(s).unwrap())
        .collect();
    let seqs = redis.load_seqs(&syms).await.unwrap();
    assert_eq!(seqs.len(), 2, "{seqs:?}");
    let ch = Channel::parse("ticks:SYM7").unwrap();
    let page = redis.history(&ch, 5, 3).await.unwrap();
    assert_eq!(
        page.items.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![6, 7, 8]
    );
    assert_eq!(page.epoch, redis.epoch().await.unwrap());
    let (values, epoch) = redis
        .latest_channels_and_epoch(&[ch.clone(), Channel::parse("ticks:SYM100").unwrap()])
        .await
        .unwrap();
    assert!(values.iter().all(Option::is_some) && epoch == Some(page.epoch.clone()));
    // A stale tick is refused on a cluster too.
    redis.publish(&[tick("SYM7", 1)]).await.unwrap();
    assert!(redis.stale_ticks_skipped() >= 1);

    // Heartbeats and feed statuses are found by SCAN on every master.
    for name in ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"] {
        let hb = Heartbeat {
            name: name.to_owned(),
            status: IngestorStatus::Healthy,
            message: None,
            symbols: vec![],
            last_tick: None,
            ticks_published: 0,
            updated_at: "2026-12-05T00:00:00Z".to_owned(),
        };
        redis
            .write_heartbeat(&hb, Duration::from_secs(30))
            .await
            .unwrap();
        let status = FeedStatus {
            name: name.to_owned(),
            status: "healthy".to_owned(),
            mode: FeedMode::Stream,
            connected: true,
            symbols: vec![],
            can_serve: vec![],
            on_demand: false,
            last_message_age_ms: None,
            reconnects: 0,
            timestamp: "2026-12-05T00:00:00Z".to_owned(),
        };
        redis
            .publish_feed_status(&status, Duration::from_secs(30))
            .await
            .unwrap();
    }
    assert_eq!(redis.heartbeats().await.unwrap().len(), 6);
    assert_eq!(redis.feed_statuses().await.unwrap().len(), 6);
    redis
        .set_desired_state("alpha", Desired::Stopped)
        .await
        .unwrap();
    assert_eq!(
        redis.desired_state("alpha").await.unwrap(),
        Some(Desired::Stopped)
    );
    redis
        .renew_interest(
            &["SYM1".to_owned(), "SYM2".to_owned()],
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let mut interest = redis.interest().await.unwrap();
    interest.sort();
    assert_eq!(interest, ["SYM1", "SYM2"]);
    // A non-tick channel (no symbol: tagged by its whole name) is published and cached.
    let sentiment = Channel::parse("sentiment").unwrap();
    rec.wanted.lock().unwrap().push("sentiment".to_owned());
    assert!(sub.sync_confirmed("sentiment", STEP).await);
    redis
        .publish_event(&sentiment, r#"{"seq":1}"#)
        .await
        .unwrap();
    wait_until(STEP, "sentiment delivered", || async {
        !rec.seqs("sentiment").is_empty()
    })
    .await
    .unwrap();
    assert!(redis.latest_sentiment().await.unwrap().is_some());
    redis.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_is_replaced_and_its_channels_resume() {
    let mut cluster = RedisCluster::start().await.unwrap();
    let redis = bus(&cluster);
    let symbols: Vec<String> = (0..60).map(|i| format!("FO{i}")).collect();
    let rec = Arc::new(Recorder::default());
    let sub = Subscriber::spawn_for(&redis, rec.clone());
    let wanted: Vec<String> = symbols[..10].iter().map(|s| format!("ticks:{s}")).collect();
    subscribe_all(&sub, &rec, &wanted).await;
    let publisher = Publisher::start(redis.clone(), symbols.clone());
    wait_until(STEP, "every wanted channel flows", || async {
        wanted.iter().all(|c| rec.seqs(c).len() >= 5)
    })
    .await
    .unwrap();

    let victim_symbol = &symbols[0];
    let victim = cluster
        .master_of_slot(symbol_slot(victim_symbol))
        .await
        .unwrap();
    let on_victim: Vec<String> = {
        let mut v = Vec::new();
        for s in &symbols[..10] {
            if cluster.master_of_slot(symbol_slot(s)).await.unwrap() == victim {
                v.push(format!("ticks:{s}"));
            }
        }
        v
    };
    let at_kill = publisher.seq();
    let killed = Instant::now();
    cluster.kill(victim);

    // Degraded while the master is lost...
    let health = redis.health().clone();
    wait_until(STEP, "health degraded after the kill", || {
        let h = health.clone();
        async move { h.partial().is_some() || !h.is_up() }
    })
    .await
    .unwrap();
    // ... and its channels flow again from the promoted replica.
    let r = wait_until(
        FAILOVER_BOUND + STEP,
        "the lost master's channels deliver again",
        || async {
            on_victim
                .iter()
                .all(|c| rec.first_after(c, at_kill + 1).is_some())
        },
    )
    .await;
    if r.is_err() {
        eprintln!(
            "killed master {victim}; slot owner now {:?}",
            cluster.master_of_slot(symbol_slot(victim_symbol)).await
        );
        for p in cluster.ports() {
            eprintln!("log of node {p}:\n{}", cluster.log_tail(p));
        }
    }
    r.unwrap();
    let resumed = on_victim
        .iter()
        .filter_map(|c| rec.first_after(c, at_kill + 1))
        .max()
        .unwrap();
    let took = resumed.duration_since(killed);
    eprintln!(
        "failover: {} channel(s) of the killed master resumed {:.2} s after the kill",
        on_victim.len(),
        took.as_secs_f64()
    );
    assert!(
        took <= FAILOVER_BOUND,
        "resumed after {took:?}, bound {FAILOVER_BOUND:?}"
    );
    wait_until(STEP, "health healthy again", || async {
        redis.ping().await.is_ok()
    })
    .await
    .unwrap();
    // Every wanted channel still flows, in order.
    let now = publisher.seq();
    wait_until(
        STEP,
        "all wanted channels flow after the failover",
        || async { wanted.iter().all(|c| rec.first_after(c, now).is_some()) },
    )
    .await
    .unwrap();
    publisher.stop().await;
    for c in &wanted {
        assert_increasing(&rec, c);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_follow_a_live_reshard() {
    let cluster = RedisCluster::start().await.unwrap();
    let redis = bus(&cluster);
    // A symbol in the first slots of the first master, so a small reshard moves it.
    let from = cluster.master_of_slot(0).await.unwrap();
    let to = cluster.master_of_slot(16383).await.unwrap();
    assert_ne!(from, to);
    let moving = (0..100_000)
        .map(|i| format!("RS{i}"))
        .find(|s| symbol_slot(s) < 20)
        .unwrap();
    let mut symbols: Vec<String> = (0..30).map(|i| format!("ST{i}")).collect();
    symbols.push(moving.clone());
    let rec = Arc::new(Recorder::default());
    let sub = Subscriber::spawn_for(&redis, rec.clone());
    let wanted: Vec<String> = symbols.iter().map(|s| format!("ticks:{s}")).collect();
    subscribe_all(&sub, &rec, &wanted).await;
    let publisher = Publisher::start(redis.clone(), symbols.clone());
    let moving_ch = format!("ticks:{moving}");
    wait_until(STEP, "the moving channel flows", || async {
        rec.seqs(&moving_ch).len() >= 5
    })
    .await
    .unwrap();

    cluster.reshard(from, to, 20).await.unwrap();
    assert_eq!(
        cluster.master_of_slot(symbol_slot(&moving)).await.unwrap(),
        to
    );
    let after = publisher.seq();
    wait_until(STEP, "every channel flows after the reshard", || async {
        wanted.iter().all(|c| rec.first_after(c, after).is_some())
    })
    .await
    .unwrap();
    publisher.stop().await;
    let per_channel: HashMap<&String, usize> =
        wanted.iter().map(|c| (c, rec.seqs(c).len())).collect();
    eprintln!(
        "reshard: moving channel delivered {} ticks",
        per_channel[&moving_ch]
    );
    for c in &wanted {
        assert_increasing(&rec, c);
    }
}

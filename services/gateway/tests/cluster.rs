//! ingest-sim → Redis Cluster (3 masters + 3 replicas, sharded pub/sub) → two
//! gateways → native WebSocket and Socket.IO clients, all real processes: interest-following
//! input per gateway, a killed master, a live reshard.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::sio::{node, ClientProc};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tickstream_testkit::{
    http_get_json, http_get_text, symbol_slot, wait_until, RedisCluster, Service,
};
use tokio_tungstenite::tungstenite::Message;

/// Generous bound on any one awaited condition: 2 shared cores run 6 redis-servers, the sim and 2 gateways.
const WAIT: Duration = Duration::from_secs(30);
/// What the issue promises for a failed master with `cluster-node-timeout` 2 s.
const FAILOVER_BOUND: Duration = Duration::from_secs(10);
/// Symbols the simulator publishes, spread over every slot range.
const SYMBOLS: usize = 200;

/// A native client whose frames are read by a task that records every `price_update`.
struct Client {
    /// `(symbol, seq, when)` of every price update, in arrival order.
    got: Arc<Mutex<Vec<(String, u64, Instant)>>>,
    /// Set when the socket closed or failed.
    closed: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Client {
    async fn connect(gateway: &Service, symbols: &[String]) -> Client {
        let (mut ws, _) = tokio_tungstenite::connect_async(gateway.ws_url("/ws"))
            .await
            .unwrap();
        expect_event(&mut ws, "connected").await;
        send(
            &mut ws,
            json!({"event": "subscribe", "data": {"symbols": symbols}}),
        )
        .await;
        let got = Arc::new(Mutex::new(Vec::new()));
        let closed = Arc::new(AtomicBool::new(false));
        let (g, c) = (got.clone(), closed.clone());
        let task = tokio::spawn(async move {
            while let Some(msg) = ws.next().await {
                match msg {
                    Ok(Message::Text(t)) => {
                        let v: Value = serde_json::from_str(&t).unwrap();
                        if v["event"] == "price_update" {
                            let sym = v["data"]["symbol"].as_str().unwrap().to_owned();
                            let seq = v["data"]["seq"].as_u64().unwrap();
                            g.lock().unwrap().push((sym, seq, Instant::now()));
                        }
                    }
                    Ok(Message::Close(_)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            c.store(true, Ordering::Relaxed);
        });
        Client { got, closed, task }
    }

    fn count(&self, symbol: &str) -> usize {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _, _)| s == symbol)
            .count()
    }

    fn max_seq(&self, symbol: &str) -> u64 {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _, _)| s == symbol)
            .map(|(_, q, _)| *q)
            .max()
            .unwrap_or(0)
    }

    fn first_after(&self, symbol: &str, seq: u64) -> Option<Instant> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .find(|(s, q, _)| s == symbol && *q > seq)
            .map(|(_, _, t)| *t)
    }

    /// Every symbol received, and whether each one's seqs only ever increased.
    fn check(&self, wanted: &[String]) {
        let got = self.got.lock().unwrap();
        let mut last: HashMap<&str, u64> = HashMap::new();
        for (s, q, _) in got.iter() {
            assert!(wanted.contains(s), "received unwanted symbol {s}");
            if let Some(prev) = last.insert(s, *q) {
                assert!(*q > prev, "{s}: seq {q} after {prev}");
            }
        }
    }

    fn is_open(&self) -> bool {
        !self.closed.load(Ordering::Relaxed)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The cluster, the simulator and two gateways, all in cluster mode.
struct ClusterStack {
    cluster: RedisCluster,
    sim: Service,
    a: Service,
    b: Service,
    symbols: Vec<String>,
}

impl ClusterStack {
    /// `extra` symbols are simulated besides `SYM0..SYM{SYMBOLS}`.
    async fn start(extra: &[String]) -> ClusterStack {
        let cluster = RedisCluster::start().await.unwrap();
        let seeds = cluster.seeds();
        let mut symbols: Vec<String> = (0..SYMBOLS).map(|i| format!("SYM{i}")).collect();
        symbols.extend_from_slice(extra);
        let list = symbols.join(",");
        let rate = (symbols.len() * 4).to_string();
        let sim = Service::spawn(
            "ingest-sim",
            &[
                ("REDIS_CLUSTER_NODES", seeds.as_str()),
                ("SYMBOLS", list.as_str()),
                ("TICKSTREAM_SIM__RATE", rate.as_str()),
                ("TICKSTREAM_SIM__TRADES", "false"),
            ],
        )
        .await
        .unwrap();
        let env = [("REDIS_CLUSTER_NODES", seeds.as_str())];
        let a = Service::spawn("gateway", &env).await.unwrap();
        let b = Service::spawn("gateway", &env).await.unwrap();
        ClusterStack {
            cluster,
            sim,
            a,
            b,
            symbols,
        }
    }

    /// Shard channels with a subscriber on any master, untagged and sorted; `None` if a node did not answer.
    async fn shard_channels(&self) -> Option<BTreeSet<String>> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)));
        let mut out = BTreeSet::new();
        for port in self.cluster.ports() {
            let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
            let mut c = client
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .ok()?;
            let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut c).await.ok()?;
            let role: String = redis::from_redis_value(role.into_iter().next()?).ok()?;
            if role != "master" {
                continue;
            }
            let chans: Vec<String> = redis::cmd("PUBSUB")
                .arg("SHARDCHANNELS")
                .query_async(&mut c)
                .await
                .ok()?;
            out.extend(chans.into_iter().map(|c| c.replace(['{', '}'], "")));
        }
        Some(out)
    }

    /// Waits until the `ticks:` shard channels subscribed on the masters are exactly `expected`.
    async fn wait_shard_ticks(&self, expected: &BTreeSet<String>) {
        let last: Arc<Mutex<Option<BTreeSet<String>>>> = Arc::default();
        let found = wait_until(
            WAIT,
            "the masters' shard channels are the wanted ones",
            || {
                let last = last.clone();
                async move {
                    let got: Option<BTreeSet<String>> = self
                        .shard_channels()
                        .await
                        .map(|s| s.into_iter().filter(|c| c.starts_with("ticks:")).collect());
                    let ok = got.as_ref() == Some(expected);
                    *last.lock().unwrap() = got;
                    ok
                }
            },
        )
        .await;
        let last = last.lock().unwrap().clone();
        assert!(
            found.is_ok(),
            "shard channels {last:?}, wanted {expected:?}"
        );
    }
}

/// A counter's value in a Prometheus text page (0 when absent).
async fn metric(service: &Service, name: &str) -> f64 {
    let (_, text) = http_get_text(&service.http_url("/metrics")).await.unwrap();
    text.lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn ticks(symbols: &[String]) -> Vec<String> {
    symbols.iter().map(|s| format!("ticks:{s}")).collect()
}

async fn wait_flowing(
    stack: &ClusterStack,
    client: &Client,
    symbols: &[String],
    n: usize,
    what: &str,
) {
    let r = wait_until(WAIT, what, || async {
        symbols.iter().all(|s| client.count(s) >= n)
    })
    .await;
    if r.is_err() {
        let counts: Vec<(String, usize)> = symbols
            .iter()
            .map(|s| (s.clone(), client.count(s)))
            .collect();
        for (name, svc) in [
            ("sim", &stack.sim),
            ("gateway A", &stack.a),
            ("gateway B", &stack.b),
        ] {
            let logs = svc.logs();
            eprintln!(
                "--- {name} log tail:\n{}",
                logs[logs.len().saturating_sub(25)..].join("\n")
            );
        }
        let published = metric(&stack.sim, "tickstream_ingest_ticks_published_total").await;
        let errors = metric(&stack.sim, "tickstream_ingest_publish_errors_total").await;
        let received = metric(&stack.a, "tickstream_gateway_ticks_received_total").await;
        let health = http_get_json(&stack.a.http_url("/health")).await.ok();
        panic!("{what}: timed out; updates per symbol {counts:?}; sim published {published} (errors {errors}), gateway A received {received}; A health {health:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_on_a_cluster_deliver_only_their_clients_symbols() {
    let stack = ClusterStack::start(&[]).await;
    // Ten symbols on gateway A, five on gateway B (one of them shared).
    let want_a: Vec<String> = (0..10).map(|i| format!("SYM{}", i * 17)).collect();
    let want_b: Vec<String> = vec!["SYM0", "SYM5", "SYM50", "SYM99", "SYM199"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    let ca = Client::connect(&stack.a, &want_a).await;
    let cb = Client::connect(&stack.b, &want_b).await;
    wait_flowing(
        &stack,
        &ca,
        &want_a,
        10,
        "gateway A's client gets all its symbols",
    )
    .await;
    wait_flowing(
        &stack,
        &cb,
        &want_b,
        10,
        "gateway B's client gets all its symbols",
    )
    .await;
    ca.check(&want_a);
    cb.check(&want_b);

    // Redis carries exactly the wanted channels to the gateways: nothing else is SSUBSCRIBEd.
    let mut wanted: BTreeSet<String> = ticks(&want_a).into_iter().collect();
    wanted.extend(ticks(&want_b));
    stack.wait_shard_ticks(&wanted).await;

    // Each gateway's input from Redis follows its clients' interest.
    let published = metric(&stack.sim, "tickstream_ingest_ticks_published_total").await;
    let in_a = metric(&stack.a, "tickstream_gateway_ticks_received_total").await;
    let in_b = metric(&stack.b, "tickstream_gateway_ticks_received_total").await;
    eprintln!(
        "redis input: sim published {published} ticks over {} symbols; gateway A (10 symbols) received {in_a}, gateway B (5 symbols) received {in_b}",
        stack.symbols.len()
    );
    assert!(in_a > 0.0 && in_b > 0.0);
    assert!(in_a * 5.0 < published, "A received {in_a} of {published}");
    assert!(in_b * 10.0 < published, "B received {in_b} of {published}");

    // Both gateways report healthy on the cluster.
    for g in [&stack.a, &stack.b] {
        let url = g.http_url("/health");
        wait_until(WAIT, "gateway healthy on the cluster", || {
            let u = url.clone();
            async move {
                matches!(http_get_json(&u).await, Ok((200, h))
                    if h["dependencies"]["redis"]["status"] == "healthy")
            }
        })
        .await
        .unwrap();
    }
    assert!(ca.is_open() && cb.is_open());

    // Then a stock Socket.IO client on each gateway (the other gateway's symbol set):
    // its symbols only, each in seq order.
    for (gateway, symbols) in [(&stack.a, &want_b), (&stack.b, &want_a)] {
        let mut cmd = node();
        cmd.arg("sio-client.js").arg(gateway.http_url(""));
        let mut sio = ClientProc::spawn("node sio-client.js (cluster)", cmd);
        sio.wait_event(WAIT, "connected", |_| true).await;
        sio.cmd(json!({"emit": "subscribe", "data": {"symbols": symbols}}))
            .await;
        let mut last: HashMap<String, u64> = HashMap::new();
        let mut counts: HashMap<String, usize> = HashMap::new();
        while symbols
            .iter()
            .any(|s| counts.get(s).copied().unwrap_or(0) < 5)
        {
            let v = sio.wait_event(WAIT, "price_update", |_| true).await;
            let sym = v["data"]["symbol"].as_str().unwrap().to_owned();
            let seq = v["data"]["seq"].as_u64().unwrap();
            assert!(
                symbols.contains(&sym),
                "Socket.IO client got unwanted {sym}"
            );
            if let Some(prev) = last.insert(sym.clone(), seq) {
                assert!(seq > prev, "{sym}: seq {seq} after {prev} over Socket.IO");
            }
            *counts.entry(sym).or_default() += 1;
        }
        sio.exit().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_fails_over_and_ticks_resume_on_open_sockets() {
    let mut stack = ClusterStack::start(&[]).await;
    let want: Vec<String> = (0..10).map(|i| format!("SYM{}", i * 19)).collect();
    let ca = Client::connect(&stack.a, &want).await;
    wait_flowing(&stack, &ca, &want, 5, "the client gets all its symbols").await;

    let victim = stack
        .cluster
        .master_of_slot(symbol_slot(&want[0]))
        .await
        .unwrap();
    let mut on_victim = Vec::new();
    for s in &want {
        if stack.cluster.master_of_slot(symbol_slot(s)).await.unwrap() == victim {
            on_victim.push(s.clone());
        }
    }
    // Health of gateway A, sampled every 100 ms from now on.
    let samples: Arc<Mutex<Vec<(Instant, u16, String)>>> = Arc::default();
    let sampler = {
        let (samples, url) = (samples.clone(), stack.a.http_url("/health"));
        tokio::spawn(async move {
            loop {
                if let Ok((code, h)) = http_get_json(&url).await {
                    let redis = h["dependencies"]["redis"]["status"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned();
                    samples.lock().unwrap().push((Instant::now(), code, redis));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let before: HashMap<String, u64> = on_victim
        .iter()
        .map(|s| (s.clone(), ca.max_seq(s)))
        .collect();
    let killed = Instant::now();
    stack.cluster.kill(victim);
    wait_until(
        WAIT,
        "the killed master's symbols deliver again",
        || async {
            on_victim
                .iter()
                .all(|s| ca.first_after(s, before[s]).is_some())
        },
    )
    .await
    .unwrap();
    let resumed = on_victim
        .iter()
        .filter_map(|s| ca.first_after(s, before[s]))
        .max()
        .unwrap();
    let took = resumed.duration_since(killed);
    eprintln!(
        "failover through the gateway: {} symbol(s) of the killed master resumed {:.2} s after the kill",
        on_victim.len(),
        took.as_secs_f64()
    );
    assert!(took <= FAILOVER_BOUND, "resumed after {took:?}");

    // /health went degraded (503, redis unhealthy) and came back healthy.
    let url = stack.a.http_url("/health");
    wait_until(WAIT, "gateway A's Redis healthy again", || {
        let u = url.clone();
        async move {
            matches!(http_get_json(&u).await, Ok((200, h))
                if h["dependencies"]["redis"]["status"] == "healthy")
        }
    })
    .await
    .unwrap();
    sampler.abort();
    let samples = samples.lock().unwrap().clone();
    let degraded = samples
        .iter()
        .filter(|(t, code, redis)| *t >= killed && (*code == 503 || redis != "healthy"))
        .count();
    assert!(
        degraded > 0,
        "no degraded /health sample after the kill: {samples:?}"
    );

    // Nothing exited; the client's socket stayed open and every symbol flows on it.
    assert!(
        stack
            .sim
            .wait_exit(Duration::from_millis(10))
            .await
            .is_none(),
        "ingest-sim exited"
    );
    assert!(
        stack.a.wait_exit(Duration::from_millis(10)).await.is_none(),
        "gateway A exited"
    );
    assert!(
        stack.b.wait_exit(Duration::from_millis(10)).await.is_none(),
        "gateway B exited"
    );
    let now: HashMap<String, u64> = want.iter().map(|s| (s.clone(), ca.max_seq(s))).collect();
    wait_until(WAIT, "every symbol flows after the failover", || async {
        want.iter().all(|s| ca.first_after(s, now[s]).is_some())
    })
    .await
    .unwrap();
    assert!(ca.is_open());
    ca.check(&want);

    // A client that was away recovers, from the promoted replica's history, what it missed.
    let sym = &on_victim[0];
    let since = before[sym].saturating_sub(10);
    let (mut ws, _) = tokio_tungstenite::connect_async(stack.b.ws_url("/ws"))
        .await
        .unwrap();
    expect_event(&mut ws, "connected").await;
    let channel = format!("ticks:{sym}");
    send(
        &mut ws,
        json!({"event": "subscribe", "data": {"since": {&channel: since}}}),
    )
    .await;
    let reply = expect_event(&mut ws, "subscribed").await;
    assert_eq!(
        reply["data"]["recovery"][&channel]["recovered"], true,
        "{reply}"
    );
    let replayed = reply["data"]["recovery"][&channel]["replayed"]
        .as_u64()
        .unwrap();
    let mut seqs = Vec::new();
    while (seqs.len() as u64) < replayed {
        let v = expect_event(&mut ws, "price_update").await;
        seqs.push(v["data"]["seq"].as_u64().unwrap());
    }
    assert_eq!(seqs.first(), Some(&(since + 1)), "{seqs:?}");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let held = seqs.iter().filter(|q| **q <= before[sym]).count();
    eprintln!(
        "recovery after failover: {held} of the 10 items before the kill were on the promoted replica; {replayed} replayed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_follow_a_live_reshard() {
    // A symbol in the first slots of the first master, so moving 20 slots moves it.
    let moving = (0..100_000)
        .map(|i| format!("RS{i}"))
        .find(|s| symbol_slot(s) < 20)
        .unwrap();
    let stack = ClusterStack::start(std::slice::from_ref(&moving)).await;
    let mut want: Vec<String> = (0..9).map(|i| format!("SYM{}", i * 21)).collect();
    want.push(moving.clone());
    let ca = Client::connect(&stack.a, &want).await;
    wait_flowing(&stack, &ca, &want, 5, "the client gets all its symbols").await;

    let from = stack.cluster.master_of_slot(0).await.unwrap();
    let to = stack.cluster.master_of_slot(16383).await.unwrap();
    assert_ne!(from, to);
    stack.cluster.reshard(from, to, 20).await.unwrap();
    assert_eq!(
        stack
            .cluster
            .master_of_slot(symbol_slot(&moving))
            .await
            .unwrap(),
        to
    );
    let now: HashMap<String, u64> = want.iter().map(|s| (s.clone(), ca.max_seq(s))).collect();
    wait_until(WAIT, "every symbol flows after the reshard", || async {
        want.iter().all(|s| ca.first_after(s, now[s] + 3).is_some())
    })
    .await
    .unwrap();
    assert!(ca.is_open());
    ca.check(&want);
    // Exactly the wanted channels are subscribed, the moved one on its new owner.
    stack
        .wait_shard_ticks(&ticks(&want).into_iter().collect())
        .await;
}

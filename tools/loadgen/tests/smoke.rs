//! Smoke test of the benchmark tools: the real `loadgen` binary against the real gateway and a private Redis.
//!
//! Tiny sizes, counts only: it proves the tools connect, subscribe, publish,
//! count and report, never how fast anything is.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tickstream_testkit::{RedisCluster, RedisServer, Service};

/// Upper bound for the whole loadgen run (1 s warm-up + 2 s window + connect and teardown).
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn loadgen_measures_the_gateway_native_protocol() {
    smoke("native", "/ws", 1, false).await;
}

#[tokio::test]
async fn loadgen_measures_the_gateway_socketio_protocol() {
    smoke(
        "socketio",
        "/socket.io/?EIO=4&transport=websocket",
        1,
        false,
    )
    .await;
}

/// `--shards 3`: the clients run in three child processes and the report is still exact.
#[tokio::test]
async fn loadgen_shards_merge_into_one_exact_report() {
    smoke("native", "/ws", 3, false).await;
}

/// `--redis-cluster-nodes`: loadgen publishes into a Redis Cluster (the ingestors' script, `SPUBLISH`)
/// and a gateway on that cluster delivers it: what the scale-out benchmark runs.
#[tokio::test]
async fn loadgen_publishes_into_a_redis_cluster() {
    smoke("native", "/ws", 1, true).await;
}

/// Runs the loadgen binary with tiny sizes against a fresh gateway (on one Redis, or on a Redis
/// Cluster with `cluster`) and checks every count in its JSON report.
async fn smoke(protocol: &str, path: &str, shards: usize, cluster: bool) {
    let (_redis, _cluster, redis_env, redis_args) = if cluster {
        let c = RedisCluster::start().await.unwrap();
        let seeds = c.seeds();
        let env = ("REDIS_CLUSTER_NODES", seeds.clone());
        (
            None,
            Some(c),
            env,
            vec!["--redis-cluster-nodes".to_owned(), seeds],
        )
    } else {
        let r = RedisServer::start().await.unwrap();
        let url = r.url();
        let env = ("REDIS_URL", url.clone());
        (Some(r), None, env, vec!["--redis-url".to_owned(), url])
    };
    let gateway = Service::spawn("gateway", &[(redis_env.0, redis_env.1.as_str())])
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!(
        "loadgen-smoke-{protocol}-{shards}-{cluster}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("report.json");
    let pid = gateway.pid().to_string();

    let (clients, symbols, per_client, rate) = (20u64, 5u64, 2u64, 200u64);
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"));
    cmd.args(["--threads", "1", "run", "--protocol", protocol, "--url"])
        .arg(gateway.ws_url(path))
        .args(&redis_args)
        .args(["--clients", &clients.to_string()])
        .args(["--symbols", &symbols.to_string()])
        .args(["--per-client", &per_client.to_string()])
        .args(["--rate", &rate.to_string()])
        .args(["--warmup", "1", "--duration", "2"])
        .args(["--source-ips", "2"])
        .args(["--scenario", "smoke", "--server", "gateway"])
        .args(["--watch", &format!("server={pid}")])
        .args(["--shards", &shards.to_string()])
        .arg("--json")
        .arg(&json)
        .kill_on_drop(true);
    let out = tokio::time::timeout(RUN_TIMEOUT, cmd.output())
        .await
        .expect("loadgen finished in time")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "loadgen failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("latency ms: p50"), "{stdout}");
    if shards > 1 {
        assert!(
            stderr.contains(&format!("loadgen: {shards} shard processes ready")),
            "{stderr}"
        );
        for k in 1..=shards {
            assert!(
                stderr.contains(&format!("loadgen shard {k}/{shards}: ")),
                "{stderr}"
            );
        }
    }
    assert!(stdout.contains(&format!("({protocol})")), "{stdout}");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let n = |k: &str| {
        report[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k} in {report}"))
    };
    assert_eq!(report["protocol"], protocol);
    assert_eq!(n("clients"), clients);
    assert_eq!(n("connected"), clients, "{stderr}");
    assert_eq!(n("connect_failures"), 0);
    assert_eq!(n("errors"), 0);
    assert_eq!(n("disconnects"), 0);
    assert_eq!(n("clients_receiving"), clients);

    // Each tick of a symbol reaches clients × per_client / symbols = 8 clients.
    let published = n("published");
    assert!(
        published >= rate,
        "a 2 s window at {rate}/s published {published}"
    );
    assert_eq!(
        n("expected"),
        published * clients * per_client / symbols,
        "{report}"
    );
    let delivered = n("delivered");
    assert!(
        delivered * 10 >= n("expected") * 9,
        "delivered {delivered} of {} expected",
        n("expected")
    );
    let latency = &report["latency"];
    assert_eq!(latency["count"].as_u64(), Some(delivered));
    let p50 = latency["p50_ms"].as_f64().unwrap();
    let p99 = latency["p99_ms"].as_f64().unwrap();
    let max = latency["max_ms"].as_f64().unwrap();
    assert!(p50 <= p99 && p99 <= max, "{latency}");

    let server = report["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "server")
        .expect("the watched server is reported");
    assert_eq!(server["pid"].as_u64(), Some(u64::from(gateway.pid())));
    assert!(server["rss_max_kib"].as_u64().unwrap() > 0);
    // The load generator is every process it ran: itself and its shards, summed.
    let loadgen = report["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "loadgen")
        .expect("loadgen reports itself");
    let pids = loadgen["pids"].as_array().map_or(1, Vec::len);
    assert_eq!(pids, if shards > 1 { shards + 1 } else { 1 }, "{loadgen}");

    // The table tool reads the report back.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("report")
        .arg(&json)
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.contains("| smoke | gateway | 20 | 200 |"), "{md}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--stalled`: a client that never reads is reported apart, and reports how the gateway ended it (1008 `slow consumer`).
#[tokio::test]
async fn loadgen_reports_how_a_stalled_client_was_cut() {
    let redis = RedisServer::start().await.unwrap();
    let url = redis.url();
    // A short slow-consumer timeout and a tiny queue so the cut happens inside a 3 s window.
    let gateway = Service::spawn(
        "gateway",
        &[
            ("REDIS_URL", url.as_str()),
            ("TICKSTREAM_GATEWAY__QUEUE_CAPACITY", "16"),
            ("TICKSTREAM_GATEWAY__SLOW_CONSUMER_TIMEOUT_MS", "300"),
        ],
    )
    .await
    .unwrap();
    let dir = std::env::temp_dir().join(format!("loadgen-stalled-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("report.json");
    let (clients, symbols) = (4u64, 4u64);
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"));
    cmd.args(["--threads", "1", "run", "--url"])
        .arg(gateway.ws_url("/ws"))
        .args(["--redis-url", &url])
        .args(["--clients", &clients.to_string()])
        .args(["--symbols", &symbols.to_string()])
        .args(["--per-client", "1", "--rate", "4000"])
        .args(["--warmup", "1", "--duration", "3", "--stalled", "1"])
        .args(["--scenario", "slow-consumer", "--server", "gateway"])
        .args(["--watch", &format!("server={}", gateway.pid())])
        .arg("--json")
        .arg(&json)
        .kill_on_drop(true);
    let out = tokio::time::timeout(RUN_TIMEOUT, cmd.output())
        .await
        .expect("loadgen finished in time")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "loadgen failed:\n{stdout}\n{stderr}");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    // The stalled client counts nowhere but in `stalled`.
    assert_eq!(report["connected"].as_u64(), Some(clients), "{report}");
    assert_eq!(report["disconnects"].as_u64(), Some(0), "{report}");
    assert_eq!(report["clients_receiving"].as_u64(), Some(clients));
    let stalled = report["stalled"].as_array().expect("stalled in the report");
    assert_eq!(stalled.len(), 1, "{report}");
    let s = &stalled[0];
    assert_eq!(s["subscribed"], true, "{s}");
    assert_eq!(s["ended"], "closed", "{s}\n{stdout}");
    assert_eq!(s["close_code"], 1008, "{s}");
    assert_eq!(s["close_reason"], "slow consumer", "{s}");
    assert!(
        stdout.contains(r#"stalled client 0: 1008 "slow consumer""#),
        "{stdout}"
    );
    let server = report["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "server")
        .unwrap();
    assert!(server["rss_end_kib"].as_u64().unwrap() > 0, "{server}");
    assert!(
        !server["rss_samples_kib"].as_array().unwrap().is_empty(),
        "{server}"
    );

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("report")
        .arg(&json)
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(
        md.contains("| slow-consumer +1 stalled | gateway |"),
        "{md}"
    );
    assert!(md.contains("**Slow consumer**"), "{md}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--churn-fraction`: churners drop their connection, come back with `since`, and every seq of the
/// window still reaches every client exactly once (the gateway replays from history).
#[tokio::test]
async fn loadgen_churners_recover_every_seq_exactly_once() {
    let redis = RedisServer::start().await.unwrap();
    let url = redis.url();
    let gateway = Service::spawn("gateway", &[("REDIS_URL", url.as_str())])
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("loadgen-churn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("report.json");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"));
    cmd.args(["--threads", "1", "run", "--url"])
        .arg(gateway.ws_url("/ws"))
        .args(["--redis-url", &url])
        .args(["--clients", "10", "--symbols", "5", "--per-client", "2"])
        .args(["--rate", "500", "--warmup", "1", "--duration", "3"])
        .args(["--churn-fraction", "0.5", "--churn-every", "0.5"])
        .args(["--churn-offline", "0.1"])
        .args(["--scenario", "recovery", "--server", "gateway"])
        .arg("--json")
        .arg(&json)
        .kill_on_drop(true);
    let out = tokio::time::timeout(RUN_TIMEOUT, cmd.output())
        .await
        .expect("loadgen finished in time")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "loadgen failed:\n{stdout}\n{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let r = &report["recovery"];
    assert_eq!(r["churning_clients"], 5, "{r}");
    assert_eq!(r["steady_clients"], 5, "{r}");
    // 5 churners, every 0.5 s, over 1 s warm-up + 3 s window: about 40 reconnects.
    let reconnects = r["reconnects"].as_u64().unwrap();
    assert!(reconnects >= 20, "{r}");
    assert_eq!(r["reconnect_failures"], 0, "{r}");
    assert_eq!(
        r["channels_recovered"].as_u64(),
        Some(reconnects * 2),
        "{r}"
    );
    assert_eq!(r["channels_not_recovered"], 0, "{r}");
    // 100 ms away at 100 ticks/s per symbol: each recovered channel replays about 10 items.
    assert!(r["replayed"].as_u64().unwrap() >= reconnects * 2 * 5, "{r}");
    // Each tick of a symbol reaches 10 × 2 / 5 = 4 clients.
    assert_eq!(
        r["window_expected"].as_u64(),
        Some(report["published"].as_u64().unwrap() * 4),
        "{r}"
    );
    assert_eq!(r["exactly_once_ratio"], 1.0, "{r}");
    assert_eq!(r["gaps"], 0, "{r}");
    assert_eq!(r["duplicates"], 0, "{r}");
    assert!(r["caught_up"]["count"].as_u64().unwrap() > 0, "{r}");
    assert!(r["steady_latency"]["count"].as_u64().unwrap() > 0, "{r}");

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("report")
        .arg(&json)
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.contains("**Recovery**"), "{md}");
    assert!(
        md.contains("| gateway | 10 (5) | 500 | 50 % every 0.5 s, 0.1 s away |"),
        "{md}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

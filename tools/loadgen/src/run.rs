//! One measured run: connect everyone, publish, warm up, measure, report.
//!
//! The clients run in this process (`LocalClients`) or, with `--shards N`, in N
//! child processes that this one steers through the same phases
//! ([`crate::shard`]); either way their figures end up in one [`Tally`].

use std::net::Ipv4Addr;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::client::{self, ClientCtx, ClientOutcome, Protocol};
use crate::procstat;
use crate::publisher::Publisher;
use crate::recovery::{self, ChurnPlan, RecoveryShared};
use crate::report::{Latency, ProcessStats, Report, StalledClient};
use crate::shard::{self, ShardSet};
use crate::stalled;
use crate::stats::{Shared, Tally};
use crate::transient::{self, TransientCounts};
use crate::ws::Target;

/// How often watched processes' RSS is sampled during the window.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(500);
/// How long client tasks get to finish after the window before they are abandoned.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Most processes `--shards` may start (a sanity bound: each takes its own slice of 127.0.0.x).
pub const MAX_SHARDS: usize = 64;

/// Options of `loadgen run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunConfig {
    /// Server WebSocket URL: `ws://127.0.0.1:5021/ws` (native) or
    /// `ws://127.0.0.1:PORT/socket.io/?EIO=4&transport=websocket` (Socket.IO).
    #[arg(long)]
    pub url: String,
    /// Wire protocol of the clients.
    #[arg(long, value_enum, default_value_t = Protocol::Native)]
    pub protocol: Protocol,
    /// Number of WebSocket clients.
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    /// Number of symbols published (`{prefix}0000` …).
    #[arg(long, default_value_t = 100)]
    pub symbols: usize,
    /// Symbols each client subscribes to.
    #[arg(long, default_value_t = 10)]
    pub per_client: usize,
    /// Symbol name prefix.
    #[arg(long, default_value = "BENCH")]
    pub symbol_prefix: String,
    /// Redis to publish into; without it nothing is published (use ingest-sim or `loadgen publish`).
    #[arg(long)]
    pub redis_url: Option<String>,
    /// Redis Cluster seed nodes (`host:port`, comma-separated) to publish into instead of
    /// `--redis-url`: each tick through the ingestors' single-slot script with `SPUBLISH` (as
    /// `--history` does on one Redis), so a run on a cluster compares with `--history` runs.
    #[arg(long, value_delimiter = ',')]
    pub redis_cluster_nodes: Vec<String>,
    /// Total ticks/s over all symbols.
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Seconds between the start of publishing and the measured window.
    #[arg(long, default_value_t = 5.0)]
    pub warmup: f64,
    /// Seconds of the measured window.
    #[arg(long, default_value_t = 20.0)]
    pub duration: f64,
    /// How many 127.0.0.x source addresses to spread clients over (127.0.0.1 …); each has ~28k ports.
    #[arg(long, default_value_t = 1)]
    pub source_ips: u8,
    /// Clients in the connect/subscribe phase at once.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,
    /// Seconds one client may take from connect to `subscribed`.
    #[arg(long, default_value_t = 30.0)]
    pub subscribe_timeout: f64,
    /// Seconds all clients together may take to connect and subscribe.
    #[arg(long, default_value_t = 300.0)]
    pub connect_timeout: f64,
    /// Processes to sample for CPU and RSS, as `NAME=PID` (e.g. `server=1234`); repeatable. Several
    /// processes count as one, their CPU and RSS summed, when given as `NAME=PID1,PID2,...` or under a
    /// repeated NAME (e.g. `server=11,12,13` for three gateway replicas).
    #[arg(long = "watch", value_parser = parse_watch)]
    pub watch: Vec<Watch>,
    /// Scenario name written into the report.
    #[arg(long, default_value = "fanout")]
    pub scenario: String,
    /// Server name written into the report.
    #[arg(long, default_value = "server")]
    pub server: String,
    /// Stalled clients beside the measured ones: each subscribes to every symbol, then never reads
    /// until the run ends (slow consumers); their figures are kept apart in the report's `stalled`.
    #[arg(long, default_value_t = 0)]
    pub stalled: usize,
    /// `SO_RCVBUF` of the stalled clients' sockets, bytes (Linux doubles it), so they push back at once.
    #[arg(long, default_value_t = 4096)]
    pub stalled_recv_buffer: u32,
    /// Spread the clients over this many processes (this binary run again as `loadgen shard`), each
    /// with its share of the clients and of the source addresses, under its own open-file limit; this
    /// process alone publishes, watches and runs stalled clients, and merges everything into one
    /// report. 1 (the default): every client in this process.
    #[arg(long, default_value_t = 1)]
    pub shards: usize,
    /// Share of the clients that churn (0..=1): each of them drops its TCP connection
    /// `--churn-every` seconds after each (re)connect (the first at its own phase), reconnects (new
    /// TCP + WebSocket; at once when the server ends the connection) and
    /// subscribes again with `since` = its last seq per symbol and the `epoch` it was given. Implies
    /// `--track-seq` and `--history`. Native protocol, one process (`--shards 1`).
    #[arg(long, default_value_t = 0.0)]
    pub churn_fraction: f64,
    /// Seconds a churner stays connected before it drops (the period of its reconnects).
    #[arg(long, default_value_t = 1.0)]
    pub churn_every: f64,
    /// Seconds a churner stays away before reconnecting.
    #[arg(long, default_value_t = 0.0)]
    pub churn_offline: f64,
    /// Every client checks each symbol's seqs (gaps, duplicates, exactly-once over the window's seqs);
    /// the report gets `recovery`. Native protocol, one process.
    #[arg(long)]
    pub track_seq: bool,
    /// Publish through the ingestors' atomic script (history stream, seq check, price cache, epoch)
    /// instead of a bare `PUBLISH`, so the server can replay from history.
    #[arg(long)]
    pub history: bool,
    /// Transient clients started per second, from the first publish to the end of the window: each
    /// connects (from 127.0.0.101–104), subscribes to `--per-client` symbols, stays
    /// `--transient-linger` seconds and closes. Counted apart (`transient`), never measured.
    #[arg(long, default_value_t = 0.0)]
    pub transient_rate: f64,
    /// Seconds a transient client stays after `subscribed`.
    #[arg(long, default_value_t = 0.0)]
    pub transient_linger: f64,
}

/// How long seq-tracking clients keep reading after the window, so the window's last items (and a
/// churner's replay in progress) arrive before the exactly-once count.
const TRACK_DRAIN: Duration = Duration::from_secs(2);

impl RunConfig {
    /// Whether the clients track seqs (and the report has `recovery`).
    pub fn tracking(&self) -> bool {
        self.track_seq || self.churn_fraction > 0.0
    }
}

/// One `--watch` entry: a name and the processes (one or more) reported under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    /// What it is in the report (`server`, `redis`).
    pub name: String,
    /// Its processes; several are summed (gateway replicas).
    pub pids: Vec<u32>,
}

fn parse_watch(s: &str) -> Result<Watch, String> {
    let (name, pids) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=PID[,PID...], got {s:?}"))?;
    let pids = pids
        .split(',')
        .map(|pid| {
            pid.trim()
                .parse()
                .map_err(|e| format!("pid {pid:?} in {s:?}: {e}"))
        })
        .collect::<Result<Vec<u32>, String>>()?;
    Ok(Watch {
        name: name.to_owned(),
        pids,
    })
}

/// `--watch` entries with the same name joined into one (first appearance keeps its place; no pid twice).
pub fn group_watches(watches: &[Watch]) -> Vec<Watch> {
    let mut out: Vec<Watch> = Vec::new();
    for w in watches {
        let at = match out.iter().position(|g| g.name == w.name) {
            Some(at) => at,
            None => {
                out.push(Watch {
                    name: w.name.clone(),
                    pids: Vec::new(),
                });
                out.len() - 1
            }
        };
        for pid in &w.pids {
            if !out[at].pids.contains(pid) {
                out[at].pids.push(*pid);
            }
        }
    }
    out
}

/// The symbols a run publishes and subscribes to.
pub fn symbol_names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:04}")).collect()
}

/// Runs the scenario described by `cfg` and returns what it measured.
pub async fn run(cfg: RunConfig) -> anyhow::Result<Report> {
    anyhow::ensure!(cfg.symbols > 0, "--symbols must be at least 1");
    anyhow::ensure!(
        (1..=cfg.symbols).contains(&cfg.per_client),
        "--per-client must be between 1 and --symbols"
    );
    anyhow::ensure!(cfg.source_ips > 0, "--source-ips must be at least 1");
    anyhow::ensure!(
        (1..=MAX_SHARDS).contains(&cfg.shards),
        "--shards must be between 1 and {MAX_SHARDS}"
    );
    anyhow::ensure!(
        cfg.shards == 1 || cfg.shards <= cfg.clients,
        "--shards ({}) must not exceed --clients ({})",
        cfg.shards,
        cfg.clients
    );
    for (name, secs) in [
        ("--warmup", cfg.warmup),
        ("--duration", cfg.duration),
        ("--subscribe-timeout", cfg.subscribe_timeout),
        ("--connect-timeout", cfg.connect_timeout),
    ] {
        // Duration::from_secs_f64 panics on negative, NaN or huge values.
        anyhow::ensure!(
            secs.is_finite() && (0.0..=86_400.0).contains(&secs),
            "{name} must be between 0 and 86400 seconds, got {secs}"
        );
    }
    anyhow::ensure!(cfg.duration > 0.0, "--duration must be more than 0");
    anyhow::ensure!(
        (0.0..=1.0).contains(&cfg.churn_fraction),
        "--churn-fraction must be between 0 and 1"
    );
    anyhow::ensure!(
        cfg.churn_every.is_finite() && (0.01..=86_400.0).contains(&cfg.churn_every),
        "--churn-every must be between 0.01 and 86400 seconds"
    );
    anyhow::ensure!(
        cfg.churn_offline.is_finite() && (0.0..=86_400.0).contains(&cfg.churn_offline),
        "--churn-offline must be between 0 and 86400 seconds"
    );
    if cfg.tracking() {
        anyhow::ensure!(
            cfg.protocol == Protocol::Native,
            "--track-seq and --churn-fraction speak the native protocol only"
        );
        anyhow::ensure!(
            cfg.shards == 1,
            "--track-seq and --churn-fraction run in one process (--shards 1)"
        );
    }
    anyhow::ensure!(
        cfg.transient_rate.is_finite() && (0.0..=10_000.0).contains(&cfg.transient_rate),
        "--transient-rate must be between 0 and 10000 clients/s"
    );
    anyhow::ensure!(
        cfg.transient_linger.is_finite() && (0.0..=3_600.0).contains(&cfg.transient_linger),
        "--transient-linger must be between 0 and 3600 seconds"
    );
    let history = cfg.history || cfg.churn_fraction > 0.0;
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let target = Target::resolve(&cfg.url).await?;
    let symbols = symbol_names(&cfg.symbol_prefix, cfg.symbols);

    // Shards start (and sit idle) first, so "RSS before the clients connected" includes them.
    let shards = if cfg.shards > 1 {
        let threads = tokio::runtime::Handle::current().metrics().num_workers();
        Some(ShardSet::spawn(shard::split(&cfg), threads).await?)
    } else {
        None
    };
    let mut watched = group_watches(&cfg.watch);
    let mut own = vec![std::process::id()];
    own.extend(shards.iter().flat_map(ShardSet::pids));
    watched.push(Watch {
        name: "loadgen".to_owned(),
        pids: own,
    });
    let before: Vec<Vec<Option<procstat::Sample>>> = watched
        .iter()
        .map(|w| procstat::sample_all(&w.pids))
        .collect();

    let publisher = match &cfg.redis_url {
        _ if !cfg.redis_cluster_nodes.is_empty() => Some(
            Publisher::connect_cluster(&cfg.redis_cluster_nodes, &symbols, cfg.rate)
                .await
                .context("connecting to the Redis Cluster")?,
        ),
        Some(url) => {
            let mut p = Publisher::connect(url, &symbols, cfg.rate)
                .await
                .with_context(|| format!("connecting to Redis at {url}"))?;
            p.seed_prices().await.context("seeding price:{SYMBOL}")?;
            Some(if history { p.with_history(url)? } else { p })
        }
        None => None,
    };
    let subscribe_timeout = Duration::from_secs_f64(cfg.subscribe_timeout);
    let (stop_tx, stop_rx) = watch::channel(false);

    // Stalled clients first, with their own tallies: nothing they do counts in the measured figures.
    let stalled_tasks = if cfg.stalled > 0 {
        let stalled_ctx = Arc::new(ClientCtx {
            target: target.clone(),
            protocol: cfg.protocol,
            sources: vec![Ipv4Addr::LOCALHOST],
            connecting: Semaphore::new(cfg.connect_concurrency.max(1)),
            subscribe_timeout,
            recv_buffer: Some(cfg.stalled_recv_buffer),
            shared: Arc::new(Shared::new()?),
            recovery: None,
        });
        let tasks: Vec<_> = (0..cfg.stalled)
            .map(|i| {
                tokio::spawn(stalled::run(
                    i,
                    stalled_ctx.clone(),
                    symbols.clone(),
                    stop_rx.clone(),
                ))
            })
            .collect();
        let deadline = tokio::time::Instant::now() + subscribe_timeout;
        wait_settled(&stalled_ctx.shared, cfg.stalled, deadline).await;
        eprintln!(
            "loadgen: {} stalled clients subscribed to all {} symbols, {} failed",
            stalled_ctx.shared.ready.load(Ordering::Relaxed),
            symbols.len(),
            stalled_ctx.shared.connect_failures.load(Ordering::Relaxed)
        );
        tasks
    } else {
        Vec::new()
    };
    let recovery_shared = if cfg.tracking() {
        let plan = (cfg.churn_fraction > 0.0).then(|| ChurnPlan {
            every: Duration::from_secs_f64(cfg.churn_every),
            offline: Duration::from_secs_f64(cfg.churn_offline),
        });
        Some(Arc::new(RecoveryShared::new(plan)?))
    } else {
        None
    };
    let mut clients = match shards {
        None => {
            let ctx = Arc::new(ClientCtx {
                target,
                protocol: cfg.protocol,
                sources: (1..=cfg.source_ips)
                    .map(|k| Ipv4Addr::new(127, 0, 0, k))
                    .collect(),
                connecting: Semaphore::new(cfg.connect_concurrency.max(1)),
                subscribe_timeout,
                recv_buffer: None,
                shared: Arc::new(Shared::new()?),
                recovery: recovery_shared.clone(),
            });
            let churn = recovery::churners(cfg.clients, cfg.churn_fraction);
            Clients::Local(LocalClients::spawn_with(
                ctx,
                0..cfg.clients,
                cfg.per_client,
                &symbols,
                stop_rx.clone(),
                &churn,
            ))
        }
        Some(mut shards) => {
            shards.connect().await?;
            Clients::Shards(shards)
        }
    };

    // Everyone connected (or failed) before the clock starts.
    let connect_started = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(cfg.connect_timeout);
    let (ready, failed) = clients.wait_settled(deadline).await?;
    eprintln!(
        "loadgen: {ready} clients subscribed, {failed} failed, in {:.1} s",
        connect_started.elapsed().as_secs_f64()
    );

    let measuring = Arc::new(AtomicBool::new(false));
    let pub_task = publisher.map(|p| tokio::spawn(p.run(stop_rx.clone(), measuring.clone())));
    if let Some(rec) = &recovery_shared {
        // Churn from the first publish on: before it there is nothing to miss or replay.
        rec.churning.store(rec.plan.is_some(), Ordering::Relaxed);
    }
    let (transient_stop_tx, transient_stop_rx) = watch::channel(false);
    let transient_counts = Arc::new(TransientCounts::default());
    let transient_task = if cfg.transient_rate > 0.0 {
        let ctx = Arc::new(ClientCtx {
            target: Target::resolve(&cfg.url).await?,
            protocol: cfg.protocol,
            sources: (101..=104).map(|k| Ipv4Addr::new(127, 0, 0, k)).collect(),
            connecting: Semaphore::new(cfg.connect_concurrency.max(1)),
            subscribe_timeout,
            recv_buffer: None,
            shared: Arc::new(Shared::new()?),
            recovery: None,
        });
        Some(tokio::spawn(transient::run(
            ctx,
            symbols.clone(),
            cfg.per_client,
            cfg.transient_rate,
            Duration::from_secs_f64(cfg.transient_linger),
            transient_counts.clone(),
            transient_stop_rx,
        )))
    } else {
        None
    };
    tokio::time::sleep(Duration::from_secs_f64(cfg.warmup)).await;

    // The window: both flags flip together, so published and delivered cover the same span.
    let start_samples: Vec<Vec<Option<procstat::Sample>>> = watched
        .iter()
        .map(|w| procstat::sample_all(&w.pids))
        .collect();
    let mut rss_max: Vec<u64> = start_samples
        .iter()
        .map(|s| procstat::rss_sum_kib(s).unwrap_or(0))
        .collect();
    let mut rss_samples: Vec<Vec<u64>> = vec![Vec::new(); watched.len()];
    let fds_start: Vec<Option<u64>> = watched
        .iter()
        .map(|w| procstat::open_fds_sum(&w.pids))
        .collect();
    let machine_start = procstat::sample_machine();
    let window_start = Instant::now();
    clients.set_measuring(true).await?;
    measuring.store(true, Ordering::Relaxed);
    let window_end = tokio::time::Instant::now() + Duration::from_secs_f64(cfg.duration);
    let mut rss_tick = tokio::time::interval(RSS_SAMPLE_EVERY);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(window_end) => break,
            _ = rss_tick.tick() => {
                for (i, w) in watched.iter().enumerate() {
                    if let Some(rss) = procstat::rss_sum_kib(&procstat::sample_all(&w.pids)) {
                        rss_max[i] = rss_max[i].max(rss);
                        rss_samples[i].push(rss);
                    }
                }
            }
        }
    }
    measuring.store(false, Ordering::Relaxed);
    clients.set_measuring(false).await?;
    let window_secs = window_start.elapsed().as_secs_f64();
    let end_samples: Vec<Vec<Option<procstat::Sample>>> = watched
        .iter()
        .map(|w| procstat::sample_all(&w.pids))
        .collect();
    let fds_end: Vec<Option<u64>> = watched
        .iter()
        .map(|w| procstat::open_fds_sum(&w.pids))
        .collect();
    let _ = transient_stop_tx.send(true);
    if let Some(t) = transient_task {
        let _ = t.await;
    }
    let machine_cpu_percent = match (machine_start, procstat::sample_machine()) {
        (Some(a), Some(b)) => procstat::machine_percent(&a, &b),
        _ => 0.0,
    };
    if let Some(rec) = &recovery_shared {
        // No more drops; the window's last items and any replay in progress still arrive.
        rec.churning.store(false, Ordering::Relaxed);
        tokio::time::sleep(TRACK_DRAIN).await;
    }

    let _ = stop_tx.send(true);
    clients.stop().await?;
    let published = match pub_task {
        Some(t) => t.await.ok(),
        None => None,
    };
    let tally = clients.finish(symbols.len()).await?;
    // Stalled clients drain in parallel with the normal ones' closing; each bounds its own drain.
    let mut stalled_clients: Vec<StalledClient> = Vec::with_capacity(stalled_tasks.len());
    for t in stalled_tasks {
        stalled_clients.push(
            t.await.unwrap_or_else(|e| {
                StalledClient::failed(format!("stalled client task failed: {e}"))
            }),
        );
    }

    let hist = &tally.latency;
    let (published_window, expected, publish_errors) = match &published {
        Some(p) => (
            p.window.iter().sum::<u64>(),
            p.window
                .iter()
                .zip(&tally.subs_per_symbol)
                .map(|(n, s)| n * s)
                .sum::<u64>(),
            p.errors,
        ),
        None => (0, 0, 0),
    };
    let latency = Latency::of(hist);
    let recovery = match (&recovery_shared, &published) {
        (Some(rec), Some(p)) => Some(recovery::report(
            rec,
            cfg.churn_fraction,
            &p.window_first_seq,
            &p.window,
        )?),
        (Some(rec), None) => Some(recovery::report(rec, cfg.churn_fraction, &[], &[])?),
        (None, _) => None,
    };
    let connected = tally.connected;
    let processes: Vec<ProcessStats> = watched
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let cpu = procstat::cpu_percent_sum(&start_samples[i], &end_samples[i]);
            let rss_before = procstat::rss_sum_kib(&before[i]).unwrap_or(0);
            let rss_end = procstat::rss_sum_kib(&end_samples[i]).unwrap_or(0);
            let rss_max = rss_max[i].max(rss_end);
            ProcessStats {
                name: w.name.clone(),
                pid: w.pids.first().copied().unwrap_or(0),
                pids: if w.pids.len() > 1 {
                    w.pids.clone()
                } else {
                    Vec::new()
                },
                cpu_percent: cpu,
                rss_before_kib: rss_before,
                rss_max_kib: rss_max,
                rss_per_connection_bytes: if connected > 0 {
                    rss_max.saturating_sub(rss_before) as f64 * 1024.0 / connected as f64
                } else {
                    0.0
                },
                rss_start_kib: procstat::rss_sum_kib(&start_samples[i]).unwrap_or(0),
                rss_end_kib: rss_end,
                rss_samples_kib: std::mem::take(&mut rss_samples[i]),
                fds_start: fds_start[i],
                fds_end: fds_end[i],
            }
        })
        .collect();

    let watched_cpu: f64 = processes.iter().map(|p| p.cpu_percent).sum();
    Ok(Report {
        machine_cpu_percent,
        other_cpu_percent: (machine_cpu_percent - watched_cpu).max(0.0),
        scenario: cfg.scenario.clone(),
        server: cfg.server.clone(),
        url: cfg.url.clone(),
        protocol: match cfg.protocol {
            Protocol::Native => "native",
            Protocol::Socketio => "socketio",
        }
        .to_owned(),
        started_at,
        clients: cfg.clients as u64,
        connected,
        connect_failures: tally.connect_failures,
        errors: tally.errors,
        disconnects: tally.disconnects,
        clients_receiving: tally.receiving,
        symbols: cfg.symbols as u64,
        symbols_per_client: cfg.per_client as u64,
        rate: if published.is_some() { cfg.rate } else { 0 },
        warmup_secs: cfg.warmup,
        window_secs,
        published: published_window,
        published_per_sec: published_window as f64 / window_secs,
        expected,
        delivered: tally.delivered,
        delivered_per_sec: tally.delivered as f64 / window_secs,
        delivered_ratio: if expected > 0 {
            tally.delivered as f64 / expected as f64
        } else {
            0.0
        },
        latency,
        delivered_total: tally.delivered_total,
        publish_errors,
        processes,
        stalled: stalled_clients,
        recovery,
        transient: (cfg.transient_rate > 0.0).then(|| {
            transient_counts.report(
                cfg.transient_rate,
                Duration::from_secs_f64(cfg.transient_linger),
            )
        }),
    })
}

/// Where a run's clients live: in this process, or in shard processes steered from here.
enum Clients {
    /// Tasks of this process.
    Local(LocalClients),
    /// `--shards N` child processes.
    Shards(ShardSet),
}

impl Clients {
    /// Waits for the connect phase to end: (subscribed, failed).
    async fn wait_settled(&mut self, deadline: tokio::time::Instant) -> anyhow::Result<(u64, u64)> {
        match self {
            Self::Local(c) => Ok(c.wait_settled(deadline).await),
            Self::Shards(s) => s.wait_settled(deadline).await,
        }
    }

    /// Opens or closes the measured window.
    async fn set_measuring(&mut self, on: bool) -> anyhow::Result<()> {
        match self {
            Self::Local(c) => {
                c.set_measuring(on);
                Ok(())
            }
            Self::Shards(s) => s.set_measuring(on).await,
        }
    }

    /// Tells the clients to close (local ones follow the run's stop channel already).
    async fn stop(&mut self) -> anyhow::Result<()> {
        match self {
            Self::Local(_) => Ok(()),
            Self::Shards(s) => s.stop().await,
        }
    }

    /// Waits for the clients to end and returns what they measured, merged.
    async fn finish(self, symbols: usize) -> anyhow::Result<Tally> {
        match self {
            Self::Local(c) => c.finish().await,
            Self::Shards(s) => s.finish(symbols).await,
        }
    }
}

/// Client tasks of this process: the clients with global indices `range` (all of a run, or one shard's).
pub(crate) struct LocalClients {
    /// Their shared context and tallies.
    ctx: Arc<ClientCtx>,
    /// Each client's global index (it fixes its symbols) and task.
    tasks: Vec<(usize, JoinHandle<ClientOutcome>)>,
    /// Symbols per client.
    per_client: usize,
    /// Symbols in the run.
    symbols: usize,
}

impl LocalClients {
    /// Spawns clients `range`, each subscribing to [`client::symbols_for`] its global index, until `stop`.
    pub(crate) fn spawn(
        ctx: Arc<ClientCtx>,
        range: Range<usize>,
        per_client: usize,
        symbols: &[String],
        stop: watch::Receiver<bool>,
    ) -> Self {
        Self::spawn_with(ctx, range, per_client, symbols, stop, &[])
    }

    /// [`Self::spawn`]; with `ctx.recovery`, seq-tracking clients, client `i` a churner if `churners[i]`.
    pub(crate) fn spawn_with(
        ctx: Arc<ClientCtx>,
        range: Range<usize>,
        per_client: usize,
        symbols: &[String],
        stop: watch::Receiver<bool>,
        churners: &[bool],
    ) -> Self {
        let tasks = range
            .map(|i| {
                let mine = client::symbols_for(i, per_client, symbols);
                let task = if ctx.recovery.is_some() {
                    let ids = (0..per_client)
                        .map(|j| (i * per_client + j) % symbols.len())
                        .collect();
                    let churner = churners.get(i).copied().unwrap_or(false);
                    tokio::spawn(recovery::run(
                        i,
                        ctx.clone(),
                        mine,
                        ids,
                        churner,
                        stop.clone(),
                    ))
                } else {
                    tokio::spawn(client::run(i, ctx.clone(), mine, stop.clone()))
                };
                (i, task)
            })
            .collect();
        Self {
            ctx,
            tasks,
            per_client,
            symbols: symbols.len(),
        }
    }

    /// Waits until every client is subscribed or failed, or `deadline`: (subscribed, failed).
    pub(crate) async fn wait_settled(&self, deadline: tokio::time::Instant) -> (u64, u64) {
        let shared = &self.ctx.shared;
        wait_settled(shared, self.tasks.len(), deadline).await;
        (
            shared.ready.load(Ordering::Relaxed),
            shared.connect_failures.load(Ordering::Relaxed),
        )
    }

    /// Opens or closes the measured window.
    pub(crate) fn set_measuring(&self, on: bool) {
        self.ctx.shared.measuring.store(on, Ordering::Relaxed);
    }

    /// Waits (at most [`STOP_GRACE`]) for the stopped clients to end, then tallies them.
    pub(crate) async fn finish(self) -> anyhow::Result<Tally> {
        let mut tally = Tally::empty(self.symbols)?;
        let grace = tokio::time::Instant::now() + STOP_GRACE;
        for (i, t) in self.tasks {
            if let Ok(Ok(outcome)) = tokio::time::timeout_at(grace, t).await {
                if outcome.ready {
                    tally.connected += 1;
                    for j in 0..self.per_client {
                        tally.subs_per_symbol[(i * self.per_client + j) % self.symbols] += 1;
                    }
                }
                if outcome.window_ticks > 0 {
                    tally.receiving += 1;
                }
            }
        }
        let shared = &self.ctx.shared;
        let (hist, delivered, delivered_total, bad) = shared.merged()?;
        tally.latency = hist;
        tally.delivered = delivered;
        tally.delivered_total = delivered_total;
        tally.errors = shared.errors.load(Ordering::Relaxed) + bad;
        tally.connect_failures = shared.connect_failures.load(Ordering::Relaxed);
        tally.disconnects = shared.disconnects.load(Ordering::Relaxed);
        Ok(tally)
    }
}

/// Waits until `n` clients reported ready or failed, or `deadline`; says so when it gives up.
pub(crate) async fn wait_settled(shared: &Shared, n: usize, deadline: tokio::time::Instant) {
    loop {
        let notified = shared.settled_notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if shared.settled.load(Ordering::Acquire) >= n as u64 {
            return;
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            eprintln!(
                "loadgen: connect phase timed out with {} of {n} clients settled",
                shared.settled.load(Ordering::Acquire)
            );
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_takes_one_pid_a_list_and_repeated_names() {
        let w = |s: &str| parse_watch(s).unwrap();
        assert_eq!(
            w("server=12"),
            Watch {
                name: "server".into(),
                pids: vec![12]
            }
        );
        assert_eq!(w("server=1, 2,3").pids, vec![1, 2, 3]);
        assert!(parse_watch("server").is_err());
        assert!(parse_watch("server=1,x").is_err());
        let grouped = group_watches(&[w("server=1,2"), w("redis=9"), w("server=3"), w("server=2")]);
        assert_eq!(
            grouped,
            vec![
                Watch {
                    name: "server".into(),
                    pids: vec![1, 2, 3]
                },
                Watch {
                    name: "redis".into(),
                    pids: vec![9]
                },
            ]
        );
    }
}

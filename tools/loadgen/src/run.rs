//! One measured run: connect everyone, publish, warm up, measure, report.

use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::{watch, Semaphore};

use crate::client::{self, ClientCtx, Protocol};
use crate::procstat;
use crate::publisher::Publisher;
use crate::report::{Latency, ProcessStats, Report, StalledClient};
use crate::stalled;
use crate::stats::Shared;
use crate::ws::Target;

/// How often watched processes' RSS is sampled during the window.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(500);
/// How long client tasks get to finish after the window before they are abandoned.
const STOP_GRACE: Duration = Duration::from_secs(5);

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
    /// Processes to sample for CPU and RSS, as `NAME=PID` (e.g. `server=1234`); repeatable.
    #[arg(long = "watch", value_parser = parse_watch)]
    pub watch: Vec<(String, u32)>,
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
}

fn parse_watch(s: &str) -> Result<(String, u32), String> {
    let (name, pid) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=PID, got {s:?}"))?;
    let pid = pid
        .parse()
        .map_err(|e| format!("pid {pid:?} in {s:?}: {e}"))?;
    Ok((name.to_owned(), pid))
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
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let target = Target::resolve(&cfg.url).await?;
    let shared = Arc::new(Shared::new()?);
    let symbols = symbol_names(&cfg.symbol_prefix, cfg.symbols);

    let mut watched: Vec<(String, u32)> = cfg.watch.clone();
    watched.push(("loadgen".to_owned(), std::process::id()));
    let before: Vec<Option<procstat::Sample>> = watched
        .iter()
        .map(|(_, pid)| procstat::sample(*pid))
        .collect();

    let publisher = match &cfg.redis_url {
        Some(url) => {
            let mut p = Publisher::connect(url, &symbols, cfg.rate)
                .await
                .with_context(|| format!("connecting to Redis at {url}"))?;
            p.seed_prices().await.context("seeding price:{SYMBOL}")?;
            Some(p)
        }
        None => None,
    };

    let ctx = Arc::new(ClientCtx {
        target,
        protocol: cfg.protocol,
        sources: (1..=cfg.source_ips)
            .map(|k| Ipv4Addr::new(127, 0, 0, k))
            .collect(),
        connecting: Semaphore::new(cfg.connect_concurrency.max(1)),
        subscribe_timeout: Duration::from_secs_f64(cfg.subscribe_timeout),
        recv_buffer: None,
        shared: shared.clone(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);

    // Stalled clients first, with their own tallies: nothing they do counts in the measured figures.
    let stalled_tasks = if cfg.stalled > 0 {
        let stalled_ctx = Arc::new(ClientCtx {
            target: ctx.target.clone(),
            protocol: cfg.protocol,
            sources: vec![Ipv4Addr::LOCALHOST],
            connecting: Semaphore::new(cfg.connect_concurrency.max(1)),
            subscribe_timeout: ctx.subscribe_timeout,
            recv_buffer: Some(cfg.stalled_recv_buffer),
            shared: Arc::new(Shared::new()?),
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
        let deadline = tokio::time::Instant::now() + ctx.subscribe_timeout;
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
    let mut tasks = Vec::with_capacity(cfg.clients);
    let mut subs_per_symbol = vec![0u64; symbols.len()];
    for i in 0..cfg.clients {
        let mine = client::symbols_for(i, cfg.per_client, &symbols);
        tasks.push(tokio::spawn(client::run(
            i,
            ctx.clone(),
            mine,
            stop_rx.clone(),
        )));
    }

    // Everyone connected (or failed) before the clock starts.
    let connect_started = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(cfg.connect_timeout);
    wait_settled(&shared, cfg.clients, deadline).await;
    eprintln!(
        "loadgen: {} clients subscribed, {} failed, in {:.1} s",
        shared.ready.load(Ordering::Relaxed),
        shared.connect_failures.load(Ordering::Relaxed),
        connect_started.elapsed().as_secs_f64()
    );

    let measuring = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pub_task = publisher.map(|p| tokio::spawn(p.run(stop_rx.clone(), measuring.clone())));
    tokio::time::sleep(Duration::from_secs_f64(cfg.warmup)).await;

    // The window: both flags flip together, so published and delivered cover the same span.
    let start_samples: Vec<Option<procstat::Sample>> = watched
        .iter()
        .map(|(_, pid)| procstat::sample(*pid))
        .collect();
    let mut rss_max: Vec<u64> = start_samples
        .iter()
        .map(|s| s.map_or(0, |s| s.rss_kib))
        .collect();
    let mut rss_samples: Vec<Vec<u64>> = vec![Vec::new(); watched.len()];
    let machine_start = procstat::sample_machine();
    let window_start = Instant::now();
    shared.measuring.store(true, Ordering::Relaxed);
    measuring.store(true, Ordering::Relaxed);
    let window_end = tokio::time::Instant::now() + Duration::from_secs_f64(cfg.duration);
    let mut rss_tick = tokio::time::interval(RSS_SAMPLE_EVERY);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(window_end) => break,
            _ = rss_tick.tick() => {
                for (i, (_, pid)) in watched.iter().enumerate() {
                    if let Some(s) = procstat::sample(*pid) {
                        rss_max[i] = rss_max[i].max(s.rss_kib);
                        rss_samples[i].push(s.rss_kib);
                    }
                }
            }
        }
    }
    measuring.store(false, Ordering::Relaxed);
    shared.measuring.store(false, Ordering::Relaxed);
    let window_secs = window_start.elapsed().as_secs_f64();
    let end_samples: Vec<Option<procstat::Sample>> = watched
        .iter()
        .map(|(_, pid)| procstat::sample(*pid))
        .collect();
    let machine_cpu_percent = match (machine_start, procstat::sample_machine()) {
        (Some(a), Some(b)) => procstat::machine_percent(&a, &b),
        _ => 0.0,
    };

    let _ = stop_tx.send(true);
    let published = match pub_task {
        Some(t) => t.await.ok(),
        None => None,
    };
    let mut connected = 0u64;
    let mut receiving = 0u64;
    let mut ready_symbols_of = Vec::new();
    let grace = tokio::time::Instant::now() + STOP_GRACE;
    for (i, t) in tasks.into_iter().enumerate() {
        if let Ok(Ok(outcome)) = tokio::time::timeout_at(grace, t).await {
            if outcome.ready {
                connected += 1;
                ready_symbols_of.push(i);
            }
            if outcome.window_ticks > 0 {
                receiving += 1;
            }
        }
    }
    // Stalled clients drain in parallel with the normal ones' closing; each bounds its own drain.
    let mut stalled_clients: Vec<StalledClient> = Vec::with_capacity(stalled_tasks.len());
    for t in stalled_tasks {
        stalled_clients.push(
            t.await.unwrap_or_else(|e| {
                StalledClient::failed(format!("stalled client task failed: {e}"))
            }),
        );
    }
    for i in ready_symbols_of {
        for j in 0..cfg.per_client {
            subs_per_symbol[(i * cfg.per_client + j) % symbols.len()] += 1;
        }
    }

    let (hist, delivered, delivered_total, bad) = shared.merged()?;
    let (published_window, expected, publish_errors) = match &published {
        Some(p) => (
            p.window.iter().sum::<u64>(),
            p.window
                .iter()
                .zip(&subs_per_symbol)
                .map(|(n, s)| n * s)
                .sum::<u64>(),
            p.errors,
        ),
        None => (0, 0, 0),
    };
    let ms = |us: u64| us as f64 / 1000.0;
    let latency = Latency {
        count: hist.len(),
        p50_ms: ms(hist.value_at_quantile(0.50)),
        p90_ms: ms(hist.value_at_quantile(0.90)),
        p99_ms: ms(hist.value_at_quantile(0.99)),
        p999_ms: ms(hist.value_at_quantile(0.999)),
        max_ms: ms(hist.max()),
        mean_ms: hist.mean() / 1000.0,
    };
    let processes: Vec<ProcessStats> = watched
        .iter()
        .enumerate()
        .map(|(i, (name, pid))| {
            let cpu = match (&start_samples[i], &end_samples[i]) {
                (Some(a), Some(b)) => procstat::cpu_percent(a, b),
                _ => 0.0,
            };
            let rss_before = before[i].map_or(0, |s| s.rss_kib);
            let rss_max = rss_max[i].max(end_samples[i].map_or(0, |s| s.rss_kib));
            ProcessStats {
                name: name.clone(),
                pid: *pid,
                cpu_percent: cpu,
                rss_before_kib: rss_before,
                rss_max_kib: rss_max,
                rss_per_connection_bytes: if connected > 0 {
                    rss_max.saturating_sub(rss_before) as f64 * 1024.0 / connected as f64
                } else {
                    0.0
                },
                rss_start_kib: start_samples[i].map_or(0, |s| s.rss_kib),
                rss_end_kib: end_samples[i].map_or(0, |s| s.rss_kib),
                rss_samples_kib: std::mem::take(&mut rss_samples[i]),
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
        connect_failures: shared.connect_failures.load(Ordering::Relaxed),
        errors: shared.errors.load(Ordering::Relaxed) + bad,
        disconnects: shared.disconnects.load(Ordering::Relaxed),
        clients_receiving: receiving,
        symbols: cfg.symbols as u64,
        symbols_per_client: cfg.per_client as u64,
        rate: if published.is_some() { cfg.rate } else { 0 },
        warmup_secs: cfg.warmup,
        window_secs,
        published: published_window,
        published_per_sec: published_window as f64 / window_secs,
        expected,
        delivered,
        delivered_per_sec: delivered as f64 / window_secs,
        delivered_ratio: if expected > 0 {
            delivered as f64 / expected as f64
        } else {
            0.0
        },
        latency,
        delivered_total,
        publish_errors,
        processes,
        stalled: stalled_clients,
    })
}

/// Waits until `n` clients reported ready or failed, or `deadline`; says so when it gives up.
async fn wait_settled(shared: &Shared, n: usize, deadline: tokio::time::Instant) {
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

//! analytics: candles, indicators, trading signals and the market mood,
//! computed from the ticks and trades on the tickstream Redis bus.
//!
//! It follows the ticks (`ticks:{SYMBOL}`) and trades (`trades:{SYMBOL}`) of
//! its universe (configured, or every symbol the ingestors announce in their
//! heartbeats) and publishes with [`Redis::publish_event`]:
//! `candles:{1m,5m,15m,1h,1d}:{SYMBOL}` (bars on UTC boundaries of the
//! exchange time, conflated updates while open, a closed bar at the boundary,
//! flat bars for empty intervals, late-trade corrections within a grace),
//! `signals:{SYMBOL}` (an EMA/RSI/VWAP/volume rule on closed bars) and
//! `sentiment` (breadth and a fear-and-greed index). Bars are stored in Redis
//! (`analytics:candles:{INTERVAL}:{SYMBOL}`) and survive restarts: on start a
//! symbol's newest stored bars are continued and its indicators replayed
//! from stored history.
//!
//! An operator can stop and start it like an ingestor (`POST /feeds/analytics/stop`
//! on a gateway; the desired state is kept in Redis, so it survives a restart):
//! stopped, it unsubscribes from its inputs and publishes nothing (no candles,
//! signals or sentiment, not even on its clock), and keeps serving `/health`
//! (`"status":"stopped"`, HTTP 200) and `/metrics`; started, it subscribes
//! again and carries on from its bars (intervals it missed close as flat bars).
//!
//! Losing Redis never stops the process: `/health` turns `degraded`, the
//! subscriber and writer reconnect with capped, jittered backoff, and inputs
//! or outputs that do not fit the bounded queues meanwhile are counted and
//! dropped.
//!
//! # Layout
//! - [`config`]: the config struct, its defaults and validation.
//! - [`candle`]: bars of one symbol and interval on explicit timestamps.
//! - [`indicators`]: incremental EMA, RSI, VWAP, volume ratio.
//! - [`signal`]: the trading-signal rule.
//! - [`sentiment`]: the market-mood formula.
//! - [`engine`]: every symbol's state; turns inputs and clock ticks into outputs.
//! - [`metrics`]: the Prometheus metrics.
//! - [`status`]: live state behind `/health` and the heartbeat.
//! - [`run`]: the tasks (subscriber, engine, writer, universe, heartbeat, operator
//!   control) until shutdown.

#![forbid(unsafe_code)]

pub mod candle;
pub mod config;
pub mod engine;
pub mod indicators;
pub mod metrics;
pub mod sentiment;
pub mod signal;
pub mod status;

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tickstream_bus::{
    Backoff, BusError, CandleRange, ChannelHandler, Desired, Redis, RedisOptions, StoredCandle,
    Subscriber,
};
use tickstream_ingest_shell::control::{self, DesiredWatch};
use tickstream_model::{Channel, Symbol};
use tickstream_runtime::config::ConfigError;
use tickstream_runtime::ops::{self, HealthFn};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

pub use config::Config;

use crate::candle::{Bar, Interval};
use crate::engine::{Engine, Output, Skipped};
use crate::metrics::Metrics;
use crate::status::Status;

/// Inputs waiting for the engine; beyond it inputs are counted and dropped (`queue_full`).
pub const INPUT_QUEUE: usize = 65_536;
/// Outputs waiting for the Redis writer; beyond it they are counted and dropped.
pub const OUTPUT_QUEUE: usize = 65_536;
/// Outputs written in one round of the writer.
const WRITE_BATCH: usize = 512;
/// First wait after a failed Redis write or load.
pub const RETRY_INITIAL: Duration = Duration::from_millis(100);
/// Longest wait between attempts while Redis is down.
pub const RETRY_MAX: Duration = Duration::from_secs(2);
/// Upper bound on one Redis command.
pub const OP_TIMEOUT: Duration = Duration::from_secs(2);
/// How long shutdown waits for the writer to flush queued outputs.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);
/// Heartbeat TTL in heartbeat periods: survives a few missed writes.
pub const HEARTBEAT_TTL_PERIODS: u32 = 5;

/// Why the service could not run; all are start-up failures (non-zero exit).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is invalid; the message names the key.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The ops port cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// `host:port` from the configuration.
        addr: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The Redis URL is unusable.
    #[error("invalid configuration value for `redis_url`: {0}")]
    Redis(#[from] BusError),
}

/// What the engine task takes, in order: a symbol is added before its messages can arrive.
#[derive(Debug)]
enum Command {
    /// One pub/sub message.
    Message(String, Vec<u8>),
    /// A new symbol with its newest stored bar per interval and its indicator history.
    Add(Symbol, Vec<Bar>, Vec<Bar>),
}

/// The subscriber's side: which channels we want, and where messages go.
struct Inbox {
    wanted: RwLock<HashSet<String>>,
    tx: mpsc::Sender<Command>,
    metrics: Metrics,
    status: Arc<Status>,
    /// While set (until the desired state is first read, and while an operator has the
    /// service stopped) nothing is subscribed and nothing is processed or published.
    paused: Arc<AtomicBool>,
}

impl Inbox {
    /// Whether inputs and outputs are held back now.
    fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }
}

impl ChannelHandler for Inbox {
    fn on_message(&self, channel: &str, payload: &[u8]) {
        if self.is_paused() {
            // Sent before the unsubscribe took effect: a stopped service processes nothing.
            return;
        }
        let kind = if channel.starts_with("trades:") {
            "trade"
        } else {
            "tick"
        };
        self.metrics.inputs.with_label_values(&[kind]).inc();
        self.status.input();
        if self
            .tx
            .try_send(Command::Message(channel.to_owned(), payload.to_vec()))
            .is_err()
        {
            self.metrics
                .skipped
                .with_label_values(&["queue_full"])
                .inc();
        }
    }

    fn wants(&self, channel: &str) -> bool {
        !self.is_paused()
            && self
                .wanted
                .read()
                .map(|w| w.contains(channel))
                .unwrap_or(false)
    }

    fn wanted(&self) -> Vec<String> {
        if self.is_paused() {
            return Vec::new();
        }
        self.wanted
            .read()
            .map(|w| w.iter().cloned().collect())
            .unwrap_or_default()
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Runs the service until `shutdown` resolves. Returns `Ok` after a clean stop.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    tokio::pin!(shutdown);
    if tickstream_runtime::shutdown::poll_once(&mut shutdown).await {
        return Ok(());
    }
    let a = &config.analytics;
    let configured = a.parsed_symbols()?;
    let engine_cfg = a.engine()?;
    // History streams are for ticks and trades, which this service never publishes.
    let redis = Redis::connect_lazy(RedisOptions {
        price_ttl: Duration::from_secs(a.cache_ttl_secs),
        op_timeout: OP_TIMEOUT,
        cluster_nodes: config.redis_cluster_nodes.clone(),
        ..RedisOptions::new(config.redis_url.clone())
    })?;
    let registry = tickstream_runtime::metrics::registry();
    let metrics = Metrics::register(&registry);

    let bind_err = |source| Error::Bind {
        addr: format!("{}:{}", config.host, config.port),
        source,
    };
    let (listener, addr) = ops::bind(&config.host, config.port).map_err(bind_err)?;
    let status = Arc::new(Status::new(addr.port(), redis.health().clone()));
    let health: HealthFn = {
        let status = status.clone();
        Arc::new(move || status.health())
    };
    let server = ops::serve(listener, registry, health).map_err(bind_err)?;
    let server_handle = server.handle();
    let server_task = tokio::spawn(server);

    let (cmd_tx, cmd_rx) = mpsc::channel(INPUT_QUEUE);
    let (out_tx, out_rx) = mpsc::channel(OUTPUT_QUEUE);
    // Paused until the desired state is read, so a stop stored before this start holds.
    let paused = Arc::new(AtomicBool::new(true));
    let desired = DesiredWatch::spawn(redis.clone(), status::NAME);
    let inbox = Arc::new(Inbox {
        wanted: RwLock::new(HashSet::new()),
        tx: cmd_tx.clone(),
        metrics: metrics.clone(),
        status: status.clone(),
        paused: paused.clone(),
    });
    let subscriber = Subscriber::spawn_for(&redis, inbox.clone());

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let engine_task = tokio::spawn(engine_loop(
        Engine::new(engine_cfg),
        config.analytics.clone(),
        cmd_rx,
        out_tx,
        metrics.clone(),
        stop_rx.clone(),
        paused.clone(),
    ));
    let writer_task = tokio::spawn(writer_loop(
        redis.clone(),
        out_rx,
        a.keep_bars,
        metrics.clone(),
        status.clone(),
        paused.clone(),
    ));
    let control_task = tokio::spawn(control_loop(
        desired.subscribe(),
        inbox.clone(),
        subscriber.clone(),
        status.clone(),
    ));
    let universe_task = tokio::spawn(universe_loop(
        redis.clone(),
        configured,
        config.analytics.clone(),
        engine_cfg.indicator_interval,
        cmd_tx,
        inbox,
        subscriber,
        status.clone(),
        metrics.clone(),
    ));
    let heartbeat_task = tokio::spawn(heartbeat_loop(
        redis.clone(),
        Duration::from_secs(a.heartbeat_secs),
        status.clone(),
        metrics.clone(),
    ));
    let feed_task = tokio::spawn({
        let status = status.clone();
        tickstream_bus::feeds::feed_status_loop(
            redis.clone(),
            Duration::from_secs(a.heartbeat_secs),
            move || status.feed_status(),
        )
    });
    tracing::info!("Computing candles, signals and the market mood.");

    shutdown.await;
    tracing::info!("Shutting down.");
    universe_task.abort();
    control_task.abort();
    drop(desired);
    heartbeat_task.abort();
    feed_task.abort();
    // The engine stops and drops its output sender; the writer then flushes what is queued.
    let _ = stop_tx.send(true);
    let _ = engine_task.await;
    if tokio::time::timeout(FLUSH_TIMEOUT, writer_task)
        .await
        .is_err()
    {
        tracing::warn!("Queued outputs not written within the flush timeout.");
    }
    let stopped = async {
        server_handle.stop(true).await;
        let _ = server_task.await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), stopped).await;
    Ok(())
}

/// A periodic timer that skips missed periods instead of bursting.
fn timer(ms: u64) -> tokio::time::Interval {
    let period = Duration::from_millis(ms.max(1));
    let mut t = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    t.set_missed_tick_behavior(MissedTickBehavior::Delay);
    t
}

/// Follows the operator's desired state: running → subscribe to the inputs and
/// compute; stopped → unsubscribe, compute and publish nothing, report `stopped`.
async fn control_loop(
    mut desired: control::DesiredRx,
    inbox: Arc<Inbox>,
    subscriber: Subscriber,
    status: Arc<Status>,
) {
    let mut state = control::known(&mut desired).await;
    loop {
        let stopping = state == Desired::Stopped;
        if stopping {
            // Paused first, then reported: once it says stopped, the engine and the
            // writer drop whatever is in flight, so nothing more is published.
            inbox.paused.store(true, Ordering::Release);
            status.set_stopped(true);
            tracing::info!(
                "Stopped by an operator; following no inputs and publishing nothing until started."
            );
        } else {
            inbox.paused.store(false, Ordering::Release);
            status.set_stopped(false);
        }
        // The subscriber reconciles each channel with `wants`, which follows `paused`.
        let channels: Vec<String> = inbox
            .wanted
            .read()
            .map(|w| w.iter().cloned().collect())
            .unwrap_or_default();
        for channel in channels {
            subscriber.sync(&channel).await;
        }
        if !stopping {
            tracing::info!("Running: following the inputs.");
        }
        let next = if stopping {
            Desired::Running
        } else {
            Desired::Stopped
        };
        control::until(&mut desired, next).await;
        state = next;
    }
}

/// The engine task: applies inputs and clock ticks, hands outputs to the writer;
/// while `paused` (stopped, or before the desired state is known) it drops inputs
/// and its clocks do not advance the engine.
async fn engine_loop(
    mut engine: Engine,
    cfg: config::AnalyticsConfig,
    mut rx: mpsc::Receiver<Command>,
    tx: mpsc::Sender<Output>,
    metrics: Metrics,
    mut stop: tokio::sync::watch::Receiver<bool>,
    paused: Arc<AtomicBool>,
) {
    let mut clock = timer(cfg.clock_ms);
    let mut refresh = timer(cfg.signal_refresh_ms);
    let mut mood = timer(cfg.sentiment_ms);
    let mut out: Vec<Output> = Vec::new();
    let mut seen = Skipped::default();
    let mut corrections = 0;
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            cmd = rx.recv() => match cmd {
                Some(Command::Message(_, _)) if paused.load(Ordering::Acquire) => {}
                Some(Command::Message(channel, payload)) => engine.on_message(&channel, &payload, now_ms(), &mut out),
                Some(Command::Add(symbol, last, history)) => {
                    engine.add_symbol(&symbol, &last, &history, now_ms());
                    metrics.symbols.set(engine.symbols().len() as i64);
                    // Restored bars whose time has passed close now, not at the next tick.
                    if !paused.load(Ordering::Acquire) {
                        engine.on_clock(now_ms(), &mut out);
                    }
                }
                None => break,
            },
            // Paused, the clocks leave the engine as it is: bars that end meanwhile are
            // closed (flat, like any silence) at the first tick after the start, and
            // published then, rather than closed now and dropped unpublished.
            _ = clock.tick() => if !paused.load(Ordering::Acquire) { engine.on_clock(now_ms(), &mut out) },
            _ = refresh.tick() => if !paused.load(Ordering::Acquire) { engine.refresh_signals(now_ms(), &mut out) },
            _ = mood.tick() => if !paused.load(Ordering::Acquire) { engine.sentiment(now_ms(), &mut out) },
        }
        if paused.load(Ordering::Acquire) {
            // Stopped (or not yet started): nothing computed now is published.
            out.clear();
        }
        for o in out.drain(..) {
            if tx.try_send(o).is_err() {
                metrics.dropped_outputs.inc();
            }
        }
        let now = engine.skipped();
        for (reason, n, was) in [
            ("invalid", now.invalid, seen.invalid),
            ("unknown_symbol", now.unknown_symbol, seen.unknown_symbol),
            ("late", now.late, seen.late),
            ("future", now.future, seen.future),
        ] {
            if n > was {
                metrics.skipped.with_label_values(&[reason]).inc_by(n - was);
            }
        }
        seen = now;
        if engine.corrections() > corrections {
            metrics
                .corrections
                .inc_by(engine.corrections() - corrections);
            corrections = engine.corrections();
        }
    }
}

/// The writer task: stores bars then publishes every output, in order, retrying with backoff.
async fn writer_loop(
    redis: Redis,
    mut rx: mpsc::Receiver<Output>,
    keep: usize,
    metrics: Metrics,
    status: Arc<Status>,
    paused: Arc<AtomicBool>,
) {
    let mut backoff = Backoff::new(RETRY_INITIAL, RETRY_MAX);
    let mut batch: Vec<Output> = Vec::with_capacity(WRITE_BATCH);
    loop {
        if batch.is_empty() {
            match rx.recv().await {
                Some(o) => batch.push(o),
                None => return,
            }
            while batch.len() < WRITE_BATCH {
                match rx.try_recv() {
                    Ok(o) => batch.push(o),
                    Err(_) => break,
                }
            }
        }
        if paused.load(Ordering::Acquire) {
            // Stopped by an operator: what was queued before the stop is not published.
            batch.clear();
            continue;
        }
        match write(&redis, &batch, keep, &metrics).await {
            Ok(n) => {
                status.published(n);
                batch.clear();
                backoff.reset();
            }
            Err(e) => {
                metrics.write_errors.inc();
                let delay = backoff.next_delay();
                if backoff.attempts() == 1 {
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "Writing to Redis failed; retrying.");
                }
                // Keep the newest state only: older queued outputs would be stale by now.
                while let Ok(o) = rx.try_recv() {
                    if batch.len() >= WRITE_BATCH {
                        batch.remove(0);
                        metrics.dropped_outputs.inc();
                    }
                    batch.push(o);
                }
                tokio::time::sleep(delay).await;
            }
        }
        metrics.redis_up.set(i64::from(redis.health().is_up()));
    }
}

/// Stores the batch's bars (one atomic round trip), then publishes each output; returns how many were published.
async fn write(
    redis: &Redis,
    batch: &[Output],
    keep: usize,
    metrics: &Metrics,
) -> Result<u64, BusError> {
    let bars: Vec<StoredCandle> = batch
        .iter()
        .filter_map(|o| match o {
            Output::Candle {
                channel,
                start_ms,
                json,
            } => Some(StoredCandle {
                channel,
                start_ms: *start_ms,
                json,
            }),
            Output::Event { .. } => None,
        })
        .collect();
    redis.store_candles(&bars, keep).await?;
    let mut n = 0;
    for o in batch {
        let (channel, json, kind) = match o {
            Output::Candle { channel, json, .. } => (channel, json, "candle"),
            Output::Event { channel, json } => {
                let kind = if channel.as_str() == "sentiment" {
                    "sentiment"
                } else {
                    "signal"
                };
                (channel, json, kind)
            }
        };
        redis.publish_event(channel, json).await?;
        metrics.published.with_label_values(&[kind]).inc();
        n += 1;
    }
    Ok(n)
}

/// The universe task: reads the symbols to follow, loads each new one's stored
/// bars, adds it to the engine, then subscribes to its ticks and trades.
#[allow(clippy::too_many_arguments)]
async fn universe_loop(
    redis: Redis,
    configured: Vec<Symbol>,
    cfg: config::AnalyticsConfig,
    indicator_interval: Interval,
    tx: mpsc::Sender<Command>,
    inbox: Arc<Inbox>,
    subscriber: Subscriber,
    status: Arc<Status>,
    metrics: Metrics,
) {
    let mut added: Vec<Symbol> = Vec::new();
    let mut backoff = Backoff::new(RETRY_INITIAL, RETRY_MAX);
    loop {
        let outcome = async {
            let wanted = if configured.is_empty() {
                discover(&redis).await?
            } else {
                configured.clone()
            };
            for symbol in wanted {
                if added.contains(&symbol) || added.len() >= config::MAX_SYMBOLS {
                    continue;
                }
                let (last, history) =
                    load_symbol(&redis, &symbol, indicator_interval, cfg.keep_bars).await?;
                tracing::info!(symbol = %symbol, stored_bars = history.len(), "Following symbol.");
                if tx
                    .send(Command::Add(symbol.clone(), last, history))
                    .await
                    .is_err()
                {
                    return Ok(());
                }
                let channels = [
                    Some(Channel::ticks(&symbol)),
                    Channel::for_symbol("trades", &symbol),
                ];
                for channel in channels.into_iter().flatten() {
                    if let Ok(mut w) = inbox.wanted.write() {
                        w.insert(channel.to_string());
                    }
                    subscriber.sync(channel.as_str()).await;
                }
                added.push(symbol);
            }
            Ok::<(), BusError>(())
        }
        .await;
        let wait = match outcome {
            Ok(()) => {
                status.set_ready();
                status.set_symbols(added.iter().map(ToString::to_string).collect());
                backoff.reset();
                Duration::from_millis(cfg.universe_refresh_ms)
            }
            Err(e) => {
                let delay = backoff.next_delay();
                if backoff.attempts() == 1 {
                    tracing::warn!(error = %e, "Cannot read the universe or stored bars from Redis; retrying.");
                }
                delay
            }
        };
        metrics.redis_up.set(i64::from(redis.health().is_up()));
        tokio::time::sleep(wait).await;
    }
}

/// Every symbol any live ingestor announces in its heartbeat.
async fn discover(redis: &Redis) -> Result<Vec<Symbol>, BusError> {
    let mut out: Vec<Symbol> = Vec::new();
    for hb in redis.heartbeats().await? {
        for raw in &hb.symbols {
            match Symbol::parse(raw) {
                Ok(s) if !out.contains(&s) => out.push(s),
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(ingestor = %hb.name, symbol = %raw, error = %e, "Skipping a bad symbol in a heartbeat.")
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A symbol's newest stored bar per interval and its stored indicator-interval history; garbage is skipped.
async fn load_symbol(
    redis: &Redis,
    symbol: &Symbol,
    indicator_interval: Interval,
    keep: usize,
) -> Result<(Vec<Bar>, Vec<Bar>), BusError> {
    let mut last = Vec::new();
    let mut history = Vec::new();
    for interval in Interval::ALL {
        let Ok(channel) = Channel::parse(&format!("candles:{}:{symbol}", interval.name())) else {
            continue;
        };
        let limit = if interval == indicator_interval {
            keep
        } else {
            1
        };
        let raw = redis
            .candles(
                &channel,
                CandleRange {
                    from_ms: None,
                    to_ms: None,
                    limit,
                },
            )
            .await?;
        let bars: Vec<Bar> = raw
            .iter()
            .filter_map(|r| match Bar::from_json(r) {
                Ok((s, b)) if s == symbol.as_str() && b.interval == interval => Some(b),
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(channel = %channel, error = %e, "Skipping an undecodable stored bar.");
                    None
                }
            })
            .collect();
        if let Some(newest) = bars.last() {
            last.push(*newest);
        }
        if interval == indicator_interval {
            history = bars;
        }
    }
    Ok((last, history))
}

/// Writes the heartbeat every `period` with a TTL of [`HEARTBEAT_TTL_PERIODS`] periods.
async fn heartbeat_loop(redis: Redis, period: Duration, status: Arc<Status>, metrics: Metrics) {
    let ttl = period * HEARTBEAT_TTL_PERIODS;
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(e) = redis
            .write_analytics_heartbeat(&status.heartbeat(), ttl)
            .await
        {
            tracing::debug!(error = %e, "Heartbeat write failed.");
        }
        metrics.redis_up.set(i64::from(redis.health().is_up()));
    }
}

//! The shared machinery of tickstream's real upstream ingestors, written once.
//!
//! A venue (Binance, Coinbase, Finnhub, Twelve Data) implements the small
//! [`Venue`] trait: its WebSocket URL(s), subscribe frames, a parse of one
//! frame into [`WsEvent`]s, and optionally its REST fallback. [`run`] does the
//! rest: the ops server (`/health`, `/metrics`), seq counters loaded from Redis
//! so `seq` continues across restarts, one task per connection that
//! reconnects with capped, jittered backoff and resubscribes every time,
//! answers pings, sends the venue's heartbeat, reconnects on a stall and
//! rotates before a server-side cut, the REST fallback poller, publishing via
//! the bus, and the heartbeat record the gateway reads. On SIGHUP,
//! [`run_with_reload`] re-reads the service's symbols and applies the
//! difference live on the open connections of a venue with
//! [`LiveSubscriptions`] (paced, id-matched control messages; more connections
//! past the per-connection limit); other venues log that a restart is needed.
//!
//! A venue's configuration is its own section (a [`VenueConfig`]) inside the
//! shared [`IngestorConfig`]; [`serve`] builds the venue from it and runs it.
//!
//! # Layout
//! - [`venue`]: the [`Venue`] trait, [`LiveSubscriptions`], [`Quote`] and parse helpers.
//! - [`config`]: [`IngestorConfig`], the common keys around a venue's [`VenueConfig`] section.
//! - [`live`]: symbol-set diffs, per-connection assignment, pacing, SIGHUP reload.
//! - [`settings`]: the shared `[upstream]` config section and its defaults.
//! - [`ws`]: one reconnecting WebSocket connection.
//! - [`rest`]: the REST fallback poller (429/418 and `Retry-After` aware).
//! - [`publish`]: seq bookkeeping and publishing to Redis.
//! - [`status`]: live state behind `/health` and the heartbeat.
//! - [`metrics`]: the Prometheus metrics.
//! - [`run`]: wires them together until shutdown.

#![forbid(unsafe_code)]

pub mod config;
pub mod live;
pub mod metrics;
pub mod publish;
pub mod rest;
pub mod settings;
pub mod status;
pub mod venue;
pub mod ws;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::IntGauge;
use tickstream_bus::{Backoff, BusError, Heartbeat, Redis, RedisOptions};
use tickstream_model::Symbol;
use tickstream_runtime::config::ConfigError;
use tickstream_runtime::ops::{self, HealthFn};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

pub use config::{IngestorConfig, VenueConfig};
pub use live::ReloadFn;
pub use metrics::Metrics;
pub use publish::Publisher;
pub use settings::UpstreamSettings;
pub use status::{CommonStatus, Problem, Status};
pub use venue::{
    LiveSubscriptions, ParseError, Quote, RestRequest, SubscriptionChange, Venue, WsConnection,
    WsEvent,
};

/// First wait after a failed Redis operation while loading seq counters.
pub const REDIS_RETRY_INITIAL: Duration = Duration::from_millis(100);
/// Longest wait between seq-loading attempts while Redis is down.
pub const REDIS_RETRY_MAX: Duration = Duration::from_secs(2);
/// Upper bound on one Redis command.
pub const REDIS_OP_TIMEOUT: Duration = Duration::from_secs(2);
/// Heartbeat TTL in heartbeat periods: survives a few missed writes.
pub const HEARTBEAT_TTL_PERIODS: u32 = 5;
/// How long shutdown waits for connection tasks to send their close frames.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the service listens and which Redis it uses (the common config keys).
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Bind address (`HOST`).
    pub host: String,
    /// Ops port (`PORT`; 0 picks a free one).
    pub port: u16,
    /// `REDIS_URL`.
    pub redis_url: String,
    /// The `[upstream]` section.
    pub settings: UpstreamSettings,
}

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

/// What every task of one running ingestor shares.
pub(crate) struct Context<V> {
    /// The venue.
    pub(crate) venue: V,
    /// Timings.
    pub(crate) settings: UpstreamSettings,
    /// `/health` state.
    pub(crate) status: Arc<Status>,
    /// Metric handles.
    pub(crate) metrics: Metrics,
    /// Seq + Redis.
    pub(crate) publisher: Publisher,
    /// The symbols served now (a reload changes them); read by the REST fallback.
    pub(crate) symbols: Mutex<Vec<Symbol>>,
    /// Last id given to a control message; ids are unique and increasing per process.
    pub(crate) control_ids: AtomicU64,
}

impl<V: Venue> Context<V> {
    /// The symbols served now.
    pub(crate) fn current_symbols(&self) -> Vec<Symbol> {
        match self.symbols.lock() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the served symbols everywhere they are reported (`/health`, heartbeat, metrics).
    pub(crate) fn set_symbols(&self, symbols: Vec<Symbol>) {
        self.metrics.symbols.set(symbols.len() as i64);
        self.status
            .set_symbols(symbols.iter().map(ToString::to_string).collect());
        match self.symbols.lock() {
            Ok(mut g) => *g = symbols,
            Err(poisoned) => *poisoned.into_inner() = symbols,
        }
    }

    /// A fresh control-message id.
    pub(crate) fn next_control_id(&self) -> u64 {
        self.control_ids.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// One REST fallback round for the symbols served now.
    pub(crate) fn rest_requests(&self) -> Vec<RestRequest> {
        match self.venue.live() {
            Some(live) => live.rest_requests_for(&self.current_symbols()),
            None => self.venue.rest_requests(),
        }
    }
}

/// Runs the ingestor `config` describes until `shutdown` resolves: builds its
/// venue from its section, then [`run`]s it. What a venue's binary calls.
pub async fn serve<S: VenueConfig>(
    config: IngestorConfig<S>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let venue = config.venue.build()?;
    run(venue, config.options(), shutdown).await
}

/// The whole `main` of a venue's binary whose symbols change only on restart:
/// [`tickstream_runtime::cli::main`] loading an [`IngestorConfig`] of `S`, then [`serve`].
pub async fn main<S: VenueConfig>(about: tickstream_runtime::cli::About) -> anyhow::Result<()> {
    tickstream_runtime::cli::main(about, |config: IngestorConfig<S>, _file, shutdown| {
        serve(config, shutdown)
    })
    .await
}

/// Runs the ingestor for `venue` until `shutdown` resolves; `Ok` after a clean stop.
///
/// A SIGHUP is logged and ignored: without a [`ReloadFn`] the symbols change only on restart.
pub async fn run<V: Venue>(
    venue: V,
    opts: ServiceOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    run_with_reload(venue, opts, None, shutdown).await
}

/// [`run`], and on every SIGHUP calls `reload` and applies the new symbol set
/// live (venues with [`Venue::live`]); a failed reload keeps the running set.
pub async fn run_with_reload<V: Venue>(
    venue: V,
    opts: ServiceOptions,
    reload: Option<ReloadFn>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    // Installed first: from here on a SIGHUP is a reload request, never the default kill.
    let mut hangups = live::Hangups::install(venue.name());
    tokio::pin!(shutdown);
    // Poll once so signal handlers are installed before `Listening.` is logged.
    if tickstream_runtime::shutdown::poll_once(&mut shutdown).await {
        return Ok(());
    }
    let source = venue.name();
    let symbols = venue.symbols();
    let redis = Redis::connect_lazy(RedisOptions {
        url: opts.redis_url.clone(),
        price_ttl: Duration::from_secs(opts.settings.price_ttl_secs),
        op_timeout: REDIS_OP_TIMEOUT,
    })?;
    let registry = tickstream_runtime::metrics::registry();
    let metrics = Metrics::register(&registry, source);
    metrics.symbols.set(symbols.len() as i64);

    let bind_err = |source| Error::Bind {
        addr: format!("{}:{}", opts.host, opts.port),
        source,
    };
    let (listener, addr) = ops::bind(&opts.host, opts.port).map_err(bind_err)?;
    let capacity = venue.live().map(|l| l.max_symbols_per_connection());
    let initial: Vec<Symbol>;
    let fixed: Vec<WsConnection>;
    let expected = match capacity {
        Some(cap) => {
            initial = live::dedup(symbols.clone());
            fixed = Vec::new();
            live::partition(&initial, cap).len()
        }
        None => {
            initial = symbols.clone();
            fixed = venue.connections();
            fixed.len()
        }
    };
    let blocked = venue.credentials_problem();
    let status = Arc::new(Status::new(
        source,
        addr.port(),
        symbols.iter().map(ToString::to_string).collect(),
        expected,
        redis.health().clone(),
    ));
    if let Some(why) = &blocked {
        tracing::error!(source, problem = %why, "Not connecting to the upstream until this is fixed.");
        status.set_problem(Some(Problem::Blocked(why.clone())));
    }
    let health: HealthFn = {
        let status = status.clone();
        Arc::new(move || status.health())
    };
    let server = ops::serve(listener, registry, health).map_err(bind_err)?;
    let server_handle = server.handle();
    let server_task = tokio::spawn(server);
    let heartbeat = tokio::spawn(heartbeat_loop(
        redis.clone(),
        opts.settings.heartbeat(),
        metrics.redis_up.clone(),
        {
            let status = status.clone();
            move || status.heartbeat()
        },
    ));

    let mut tasks = Vec::new();
    let mut fleet = live::Fleet::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let loaded = tokio::select! {
        _ = &mut shutdown => None,
        seqs = load_seqs_retrying(&redis, &symbols, &status, &metrics) => Some(seqs),
    };
    if let Some(seqs) = loaded {
        status.set_problem(blocked.clone().map(Problem::Blocked));
        let publisher = Publisher::new(redis.clone(), seqs, metrics.clone(), status.clone());
        let ctx = Arc::new(Context {
            venue,
            settings: opts.settings.clone(),
            status: status.clone(),
            metrics: metrics.clone(),
            publisher,
            symbols: Mutex::new(initial.clone()),
            control_ids: AtomicU64::new(0),
        });
        if blocked.is_none() {
            tracing::info!(
                source,
                symbols = initial.len(),
                connections = expected,
                live_changes = capacity.is_some(),
                "Connecting to the upstream."
            );
            match capacity {
                Some(cap) => {
                    for set in live::partition(&initial, cap) {
                        fleet.open(&ctx, set, &stop_rx);
                    }
                }
                None => {
                    for conn in fixed {
                        fleet.open_fixed(&ctx, conn, &stop_rx);
                    }
                }
            }
        }
        tasks.push(tokio::spawn(rest::run_fallback(
            ctx.clone(),
            stop_rx.clone(),
        )));
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = hangups.recv() => {}
            }
            if blocked.is_some() {
                tracing::warn!(
                    source,
                    "Received SIGHUP while not connecting to the upstream; ignoring it."
                );
                continue;
            }
            let stopped = tokio::select! {
                _ = &mut shutdown => true,
                _ = live::reload(&ctx, reload.as_ref(), &mut fleet, &stop_rx) => false,
            };
            if stopped {
                break;
            }
        }
    }
    tasks.append(&mut fleet.tasks);

    tracing::info!(
        source,
        ticks_published = status.ticks_published(),
        "Shutting down."
    );
    let _ = stop_tx.send(true);
    let joined = async {
        for t in tasks {
            let _ = t.await;
        }
    };
    if tokio::time::timeout(SHUTDOWN_TIMEOUT, joined)
        .await
        .is_err()
    {
        tracing::debug!("Connection tasks did not stop in time; exiting anyway.");
    }
    heartbeat.abort();
    let stopped = async {
        server_handle.stop(true).await;
        let _ = server_task.await;
    };
    let _ = tokio::time::timeout(SHUTDOWN_TIMEOUT, stopped).await;
    Ok(())
}

/// Resolves once the watched flag equals `want` (or its sender is gone);
/// returns nothing so no non-`Send` borrow is held across an await.
pub(crate) async fn wait_flag(rx: &mut watch::Receiver<bool>, want: bool) {
    let _ = rx.wait_for(|v| *v == want).await;
}

/// Loads the seq counters, retrying with backoff until Redis answers, so the
/// first published seq follows the last one ever published.
async fn load_seqs_retrying(
    redis: &Redis,
    symbols: &[tickstream_model::Symbol],
    status: &Status,
    metrics: &Metrics,
) -> std::collections::HashMap<tickstream_model::Symbol, u64> {
    let mut backoff = Backoff::new(REDIS_RETRY_INITIAL, REDIS_RETRY_MAX);
    loop {
        match publish::load_seqs(redis, symbols).await {
            Ok(seqs) => {
                metrics.redis_up.set(1);
                tracing::info!(
                    symbols = symbols.len(),
                    restored = seqs.len(),
                    "Seq counters loaded from Redis."
                );
                return seqs;
            }
            Err(e) => {
                metrics.redis_up.set(i64::from(redis.health().is_up()));
                if status.assess().0 != tickstream_runtime::health::HealthStatus::Unhealthy {
                    status.set_problem(Some(Problem::Loading(format!(
                        "waiting for Redis to load seq counters: {e}"
                    ))));
                }
                let delay = backoff.next_delay();
                if backoff.attempts() == 1 {
                    tracing::warn!(error = %e, retryable = e.is_retryable(), "Cannot load seq counters from Redis; nothing is published until it answers.");
                }
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Writes this ingestor's heartbeat record (`record()`) every `period` with a
/// TTL of [`HEARTBEAT_TTL_PERIODS`] periods, so the gateway sees it; `redis_up`
/// follows Redis after each write. Failures are logged at debug: the publish
/// path already reports Redis trouble. Runs until aborted.
pub async fn heartbeat_loop(
    redis: Redis,
    period: Duration,
    redis_up: IntGauge,
    record: impl Fn() -> Heartbeat,
) {
    let ttl = period * HEARTBEAT_TTL_PERIODS;
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(e) = redis.write_heartbeat(&record(), ttl).await {
            tracing::debug!(error = %e, "Heartbeat write failed.");
        }
        redis_up.set(i64::from(redis.health().is_up()));
    }
}

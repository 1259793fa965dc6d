//! The venue connector of tickstream's real upstream ingestors, written once.
//!
//! A venue (Binance, Coinbase, Finnhub, Twelve Data) implements the small
//! [`Venue`] trait: its WebSocket URL(s), subscribe frames, a parse of one
//! frame into [`WsEvent`]s, and optionally its REST fallback. [`run`] does the
//! rest: one task per connection that reconnects with capped, jittered
//! backoff and resubscribes every time, answers pings, sends the venue's
//! heartbeat, reconnects on a stall and rotates before a server-side cut, the
//! REST fallback poller, and stamping and publishing the quotes. A venue with
//! [`LiveSubscriptions`] (all four) changes an open connection's symbols with
//! paced control messages (matched to their replies by id where the venue
//! answers with one; more connections past the per-connection limit). That
//! serves two callers: on SIGHUP, [`run_with_reload`] re-reads the service's
//! symbols and applies the difference (ingest-binance passes a reload; the
//! others log that a restart is needed), and in on-demand mode the run loop
//! follows the gateways' interest leases ([`demand`]).
//!
//! The service lifecycle around it (ops server for `/health` and `/metrics`,
//! heartbeat record, seq restore, SIGHUP, shutdown) is the shell every
//! ingestor shares, the simulator included: the `tickstream-ingest-shell`
//! crate. This crate depends on it; the shell knows nothing of venues.
//!
//! A venue's configuration is its own section (a [`VenueConfig`]) inside the
//! shared [`IngestorConfig`]; [`serve`] builds the venue from it and runs it.
//!
//! # Layout
//! Modules depend one way, each only on those listed before it:
//! - [`venue`]: the [`Venue`] trait, [`LiveSubscriptions`], [`Quote`] and parse helpers.
//! - [`settings`]: the shared `[upstream]` config section and its defaults.
//! - [`config`]: [`IngestorConfig`], the common keys around a venue's [`VenueConfig`] section.
//! - [`metrics`]: the Prometheus metrics.
//! - [`status`]: [`Status`], the shell's status plus the connections' state.
//! - [`publish`]: seq stamping and publishing to Redis.
//! - `context`: what every task of one running ingestor shares.
//! - [`demand`]: on-demand symbols from the gateways' interest leases (pure).
//! - [`subscriptions`]: symbol-set diffs, per-connection assignment, control messages, pacing (pure).
//! - [`ws`]: one reconnecting WebSocket connection.
//! - [`providers`]: secondary REST fallbacks (CoinGecko) beside a venue's own.
//! - [`rest`]: the REST fallback poller (429/418 and `Retry-After` aware).
//! - [`live`]: the connections of a live venue and the SIGHUP reload that changes them.
//! - [`run`] (here): wires them together inside the shell until shutdown.

#![forbid(unsafe_code)]

pub mod config;
mod context;
pub mod demand;
pub mod live;
pub mod metrics;
pub mod providers;
pub mod publish;
pub mod rest;
pub mod settings;
pub mod status;
pub mod subscriptions;
pub mod venue;
pub mod ws;

use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tickstream_bus::Backoff;
use tickstream_bus::Desired;
use tickstream_ingest_shell::control::{self, DesiredRx, DesiredWatch};
use tickstream_ingest_shell::signal::Hangups;
use tickstream_ingest_shell::{seqs, Shell};
use tickstream_model::Symbol;
use tickstream_runtime::ops::HealthFn;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{IngestorConfig, ServiceOptions, VenueConfig, REDIS_OP_TIMEOUT};
pub use context::{REDIS_RETRY_INITIAL, REDIS_RETRY_MAX};
pub use live::ReloadFn;
pub use metrics::Metrics;
pub use publish::Publisher;
pub use settings::UpstreamSettings;
pub use status::Status;
/// The start-up failures, the heartbeat writer and the status every ingestor shares, from the shell.
pub use tickstream_ingest_shell::{
    heartbeat_loop, CommonStatus, Error, Problem, HEARTBEAT_TTL_PERIODS,
};
pub use venue::{
    LiveSubscriptions, ParseError, Quote, RestRequest, SubscriptionChange, TradePrint, Venue,
    WsConnection, WsEvent,
};

use crate::context::Context;

/// How long shutdown waits for connection tasks to send their close frames
/// (and, after them, for the ops server to stop).
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

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
    let mut hangups = Hangups::install(venue.name());
    tokio::pin!(shutdown);
    // Poll once so signal handlers are installed before `Listening.` is logged.
    if tickstream_runtime::shutdown::poll_once(&mut shutdown).await {
        return Ok(());
    }
    let source = venue.name();
    let symbols = venue.symbols();
    let shell = Shell::open(&opts.shell())?;
    let redis = shell.redis.clone();
    let metrics = Metrics::register(&shell.registry, source);
    metrics.symbols.set(symbols.len() as i64);

    let capacity = venue.live().map(|l| l.max_symbols_per_connection());
    if opts.settings.on_demand && capacity.is_none() {
        return Err(Error::Config(
            tickstream_runtime::config::ConfigError::invalid(
                "upstream.on_demand",
                &[],
                format!(
                    "ingest-{source} cannot change its streams live, so it has no on-demand mode"
                ),
            ),
        ));
    }
    // The symbols it may add on demand, read in the venue's notation.
    let mut allowed: Vec<Symbol> = Vec::new();
    if let (true, Some(live)) = (opts.settings.on_demand, venue.live()) {
        for raw in &opts.settings.on_demand_symbols {
            let symbol = live.on_demand_symbol(raw).map_err(|e| {
                Error::Config(tickstream_runtime::config::ConfigError::invalid(
                    "upstream.on_demand_symbols",
                    &[],
                    format!("{raw:?}: {e}"),
                ))
            })?;
            allowed.push(symbol);
        }
    }
    let initial: Vec<Symbol> = match capacity {
        Some(_) => subscriptions::dedup(symbols.clone()),
        None => symbols.clone(),
    };
    let expected = match capacity {
        Some(cap) => subscriptions::partition(&initial, cap).len(),
        None => venue.connections().len(),
    };
    let blocked = venue.credentials_problem();
    let status = Arc::new(Status::new(
        source,
        shell.port,
        symbols.iter().map(ToString::to_string).collect(),
        expected,
        redis.health().clone(),
    ));
    status
        .common()
        .set_on_demand(allowed.iter().map(ToString::to_string).collect());
    if let Some(why) = &blocked {
        tracing::error!(source, problem = %why, "Not connecting to the upstream until this is fixed.");
        status.set_problem(Some(Problem::Blocked(why.clone())));
    }
    let health: HealthFn = {
        let status = status.clone();
        Arc::new(move || status.health())
    };
    let running = shell.serve(
        health,
        opts.settings.heartbeat(),
        metrics.redis_up.clone(),
        {
            let status = status.clone();
            move || status.heartbeat()
        },
        {
            let status = status.clone();
            move || status.feed_status()
        },
    )?;
    // Followed from the start, so a stop stored before this start holds.
    let desired = DesiredWatch::spawn(redis.clone(), source);

    let loaded = tokio::select! {
        _ = &mut shutdown => None,
        loaded = load_seqs(&redis, &symbols, &status, &metrics) => Some(loaded),
    };
    if let Some((seqs, trade_seqs)) = loaded {
        status.set_problem(blocked.clone().map(Problem::Blocked));
        let publisher = Publisher::new(redis.clone(), seqs, metrics.clone(), status.clone())
            .with_trade_seqs(trade_seqs);
        let ctx = Arc::new(Context {
            venue,
            settings: opts.settings.clone(),
            status: status.clone(),
            metrics: metrics.clone(),
            publisher,
            symbols: Mutex::new(initial),
            control_ids: AtomicU64::new(0),
        });
        let mut desired = desired.subscribe();
        let mut demand = (opts.settings.on_demand && blocked.is_none()).then(|| {
            demand::OnDemand::new(
                ctx.current_symbols(),
                allowed,
                opts.settings.on_demand_grace(),
            )
        });
        loop {
            if !wait_while_stopped(&ctx, &mut desired, &mut hangups, &mut shutdown).await {
                break;
            }
            if !run_phase(
                &ctx,
                &redis,
                &mut demand,
                capacity,
                blocked.is_some(),
                reload.as_ref(),
                &mut desired,
                &mut hangups,
                &mut shutdown,
            )
            .await
            {
                break;
            }
        }
    }

    tracing::info!(
        source,
        ticks_published = status.common().ticks_published(),
        "Shutting down."
    );
    running.stop(SHUTDOWN_TIMEOUT).await;
    Ok(())
}

/// How often an on-demand ingestor reads the gateways' interest leases.
pub const INTEREST_POLL: Duration = Duration::from_millis(200);

/// What woke a running phase besides shutdown and stop.
enum PhaseEvent {
    /// SIGHUP: reload the configuration.
    Hangup,
    /// Time to read the interest leases (on-demand mode).
    Interest,
}

/// While an operator has the feed stopped: reports `stopped` and waits for a
/// start (a SIGHUP meanwhile is logged and ignored). False if shutdown came first.
async fn wait_while_stopped<V: Venue, S: Future<Output = ()> + Unpin>(
    ctx: &Arc<Context<V>>,
    desired: &mut DesiredRx,
    hangups: &mut Hangups,
    shutdown: &mut S,
) -> bool {
    let source = ctx.venue.name();
    let state = tokio::select! {
        _ = &mut *shutdown => return false,
        d = control::known(desired) => d,
    };
    if state == Desired::Running {
        return true;
    }
    ctx.status.common().set_stopped(true);
    tracing::info!(
        source,
        "Feed stopped by an operator; no upstream connection until it is started."
    );
    loop {
        tokio::select! {
            _ = &mut *shutdown => return false,
            _ = hangups.recv() => tracing::warn!(
                source,
                "Received SIGHUP while the feed is stopped; ignoring it (send it again after the start)."
            ),
            _ = control::until(desired, Desired::Running) => break,
        }
    }
    ctx.status.common().set_stopped(false);
    tracing::info!(
        source,
        "Feed started by an operator; connecting to the upstream."
    );
    true
}

/// One running phase: opens the venue's connections and its REST fallback,
/// applies SIGHUP reloads, and closes them all when the operator stops the
/// feed (returns true) or at shutdown (returns false).
#[allow(clippy::too_many_arguments)]
async fn run_phase<V: Venue, S: Future<Output = ()> + Unpin>(
    ctx: &Arc<Context<V>>,
    redis: &tickstream_bus::Redis,
    demand: &mut Option<demand::OnDemand>,
    capacity: Option<usize>,
    blocked: bool,
    reload: Option<&ReloadFn>,
    desired: &mut DesiredRx,
    hangups: &mut Hangups,
    shutdown: &mut S,
) -> bool {
    let source = ctx.venue.name();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut fleet = live::Fleet::new();
    if !blocked {
        match capacity {
            Some(cap) => {
                let sets = subscriptions::partition(&ctx.current_symbols(), cap);
                ctx.status.set_expected_connections(sets.len());
                for set in sets {
                    fleet.open(ctx, set, &stop_rx);
                }
            }
            None => {
                let conns = ctx.venue.connections();
                ctx.status.set_expected_connections(conns.len());
                for conn in conns {
                    fleet.open_fixed(ctx, conn, &stop_rx);
                }
            }
        }
        tracing::info!(
            source,
            symbols = ctx.current_symbols().len(),
            connections = ctx.status.expected_connections(),
            live_changes = capacity.is_some(),
            "Connecting to the upstream."
        );
    }
    let mut tasks = vec![tokio::spawn(rest::run_fallback(
        ctx.clone(),
        stop_rx.clone(),
    ))];
    let mut interest = tokio::time::interval(INTEREST_POLL);
    interest.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stopped = loop {
        let event = tokio::select! {
            _ = &mut *shutdown => break false,
            _ = control::until(desired, Desired::Stopped) => break true,
            _ = hangups.recv() => PhaseEvent::Hangup,
            _ = interest.tick(), if demand.is_some() => PhaseEvent::Interest,
        };
        if blocked {
            tracing::warn!(
                source,
                "Received SIGHUP while not connecting to the upstream; ignoring it."
            );
            continue;
        }
        let interrupted = match event {
            PhaseEvent::Hangup => tokio::select! {
                _ = &mut *shutdown => Some(false),
                _ = live::reload(ctx, reload, &mut fleet, &stop_rx) => None,
            },
            PhaseEvent::Interest => {
                let Some(demand) = demand.as_mut() else {
                    continue;
                };
                let wanted = match redis.interest().await {
                    Ok(raw) => demand.wanted(&raw, std::time::Instant::now()),
                    Err(e) => {
                        tracing::debug!(source, error = %e, "Cannot read the interest leases; keeping the streamed symbols.");
                        continue;
                    }
                };
                if demand::same_set(&wanted, &ctx.current_symbols()) {
                    continue;
                }
                tokio::select! {
                    _ = &mut *shutdown => Some(false),
                    _ = live::apply(ctx, wanted, &mut fleet, &stop_rx, "on-demand interest") => None,
                }
            }
        };
        if let (PhaseEvent::Hangup, Some(demand)) = (&event, demand.as_mut()) {
            // The reloaded configuration is the new pinned set; wanted extras come back at the next poll.
            demand.set_pinned(ctx.current_symbols());
        }
        if let Some(stopped) = interrupted {
            break stopped;
        }
    };
    tasks.append(&mut fleet.tasks);
    let _ = stop_tx.send(true);
    // Each task closes its socket (a close frame) and ends; one that does not
    // within the bound is aborted, so nothing is published after a stop.
    let aborts: Vec<_> = tasks.iter().map(JoinHandle::abort_handle).collect();
    let joined = async {
        for t in tasks {
            let _ = t.await;
        }
    };
    if tokio::time::timeout(SHUTDOWN_TIMEOUT, joined)
        .await
        .is_err()
    {
        tracing::debug!("Connection tasks did not stop in time; aborting them.");
        for a in aborts {
            a.abort();
        }
    }
    ctx.status.set_fallback(false);
    ctx.status.reset_connections();
    ctx.metrics.fallback_active.set(0);
    ctx.metrics.connected.set(0);
    if stopped {
        tracing::info!(source, "Upstream connections closed.");
    }
    stopped
}

/// The ticks' and the trades' last published seqs of `symbols`, each retried until Redis answers.
async fn load_seqs(
    redis: &tickstream_bus::Redis,
    symbols: &[Symbol],
    status: &Status,
    metrics: &Metrics,
) -> (
    std::collections::HashMap<Symbol, u64>,
    std::collections::HashMap<Symbol, u64>,
) {
    let backoff = || Backoff::new(REDIS_RETRY_INITIAL, REDIS_RETRY_MAX);
    let last = seqs::load_retrying(
        redis,
        symbols,
        status.common(),
        &metrics.redis_up,
        backoff(),
    )
    .await;
    let trades = seqs::load_trade_seqs_retrying(
        redis,
        symbols,
        status.common(),
        &metrics.redis_up,
        backoff(),
    )
    .await;
    (seqs::seq_map(symbols, last), trades)
}

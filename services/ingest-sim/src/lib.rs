//! ingest-sim: synthetic market ticks and trades for tickstream, published to Redis like any ingestor.
//!
//! It needs no network and no keys, so a fresh stack shows live prices at
//! once, and it doubles as the load generator (50,000+ ticks/s). Ticks follow
//! a geometric Brownian motion per symbol from realistic starting prices; each
//! batch is cached, published and seq-recorded in one pipelined round trip.
//! Each tick's trade (at its price, with the size its volume grew by and the
//! side that moved it) goes to `trades:{SYMBOL}` with its own per-symbol seq,
//! in one more round trip per batch.
//!
//! Guarantees: `seq` is strictly increasing per symbol across restarts (seqs
//! are loaded from Redis before the first publish; a failed publish still
//! consumes its seqs, so there are gaps but never repeats), and losing Redis
//! never stops the process: `/health` turns `degraded` and publishing resumes
//! with capped, jittered backoff.
//!
//! The service lifecycle around the generator (ops server, heartbeat, seq
//! restore, status, shutdown) is the shell every ingestor shares,
//! `tickstream-ingest-shell`; the simulator has no upstream and depends on no
//! venue code.
//!
//! # Layout
//! - [`config`]: the config struct, its defaults and validation.
//! - [`model`]: the pure GBM price model that turns time into [`Tick`]s.
//! - [`pacer`]: how many ticks are due now, so the rate is exact.
//! - [`metrics`]: the Prometheus metrics.
//! - [`run`]: the generator inside the shell until shutdown.

#![forbid(unsafe_code)]

pub mod config;
pub mod metrics;
pub mod model;
pub mod pacer;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SubsecRound, Utc};
use serde_json::json;
use tickstream_bus::{Backoff, BusError, Redis};
use tickstream_bus::{Desired, FeedMode};
use tickstream_ingest_shell::control::{self, DesiredRx, DesiredWatch};
use tickstream_ingest_shell::{seqs, CommonStatus, Shell, ShellOptions};
use tickstream_model::{Tick, Trade};
use tickstream_runtime::ops::HealthFn;
use tokio::time::MissedTickBehavior;

pub use config::Config;
/// Why the service could not run (a bad config value, the ops port, the Redis
/// URL): the same start-up failures as every ingestor's.
pub use tickstream_ingest_shell::Error;

use crate::metrics::Metrics;
use crate::model::{Market, SOURCE};
use crate::pacer::Pacer;

/// First wait after a failed Redis operation.
pub const RETRY_INITIAL: Duration = Duration::from_millis(100);
/// Longest wait between attempts while Redis is down: ticks resume within
/// about this long after Redis comes back.
pub const RETRY_MAX: Duration = Duration::from_secs(1);
/// Upper bound on one Redis command (a 20,000-tick pipeline included); also
/// bounds how long shutdown waits for an in-flight publish.
pub const OP_TIMEOUT: Duration = Duration::from_secs(2);
/// Time the ops server gets to finish in-flight requests at shutdown.
pub const OPS_STOP_TIMEOUT: Duration = Duration::from_secs(1);

/// Runs the simulator until `shutdown` resolves: ops server, seq loading,
/// generation and heartbeats. Returns `Ok` after a clean stop.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    tokio::pin!(shutdown);
    // Poll once so signal handlers are installed before `Listening.` is logged.
    if tickstream_runtime::shutdown::poll_once(&mut shutdown).await {
        return Ok(());
    }
    let symbols = config.sim.parsed_symbols()?;
    let rate = config.sim.effective_rate(symbols.len())?;
    let shell = Shell::open(&ShellOptions {
        host: config.host.clone(),
        port: config.port,
        redis_url: config.redis_url.clone(),
        redis_cluster_nodes: config.redis_cluster_nodes.clone(),
        price_ttl: Duration::from_secs(config.sim.price_ttl_secs),
        op_timeout: OP_TIMEOUT,
        history_len: config.sim.history_len,
    })?;
    let redis = shell.redis.clone();
    let metrics = Metrics::register(&shell.registry);
    metrics.symbols.set(symbols.len() as i64);

    let names: Vec<String> = symbols.iter().map(ToString::to_string).collect();
    // Starts as "loading seq counters"; healthy once they are loaded and Redis answers.
    let status = Arc::new(CommonStatus::new(
        SOURCE,
        shell.port,
        names,
        redis.health().clone(),
    ));
    let health: HealthFn = {
        let status = status.clone();
        Arc::new(move || status.health(status.assess(|| None), json!({ "rate": rate })))
    };
    let running = shell.serve(
        health,
        Duration::from_secs(config.sim.heartbeat_secs),
        metrics.redis_up.clone(),
        {
            let status = status.clone();
            move || status.heartbeat(status.assess(|| None))
        },
        {
            let status = status.clone();
            move || {
                // The generator is the simulator's stream: always "connected" while it runs.
                status.feed_status(
                    status.assess(|| None),
                    (FeedMode::Stream, true),
                    status.last_tick_age_ms(),
                    0,
                )
            }
        },
    )?;
    // Followed from the start, so a stop stored before this start holds.
    let desired = DesiredWatch::spawn(redis.clone(), SOURCE);

    let backoff = Backoff::new(RETRY_INITIAL, RETRY_MAX);
    let resumed = tokio::select! {
        _ = &mut shutdown => None,
        loaded = async {
            let last = seqs::load_retrying(&redis, &symbols, &status, &metrics.redis_up, backoff.clone()).await;
            let trades = seqs::load_trade_seqs_retrying(&redis, &symbols, &status, &metrics.redis_up, backoff).await;
            (last, trades)
        } => Some(loaded),
    };
    if let Some((last, trade_seqs)) = resumed {
        let mut market = Market::new(&symbols, rate, config.sim.seed);
        for (symbol, (seq, cached)) in symbols.iter().zip(&last) {
            market.resume(symbol, *seq, cached.as_ref());
        }
        for (symbol, seq) in &trade_seqs {
            market.resume_trades(symbol, *seq);
        }
        status.set_problem(None);
        tracing::info!(symbols = symbols.len(), rate, "Generating ticks.");
        let trades = config.sim.trades;
        let mut desired = desired.subscribe();
        generate(
            market,
            Output { rate, trades },
            &redis,
            &status,
            &metrics,
            &mut desired,
            &mut shutdown,
        )
        .await;
    }

    tracing::info!(ticks_published = status.ticks_published(), "Shutting down.");
    running.stop(OPS_STOP_TIMEOUT).await;
    Ok(())
}

/// Waits while an operator has the feed stopped (reported as `stopped`);
/// returns false if shutdown came first.
async fn wait_while_stopped<S: Future<Output = ()> + Unpin>(
    desired: &mut DesiredRx,
    status: &CommonStatus,
    shutdown: &mut S,
) -> bool {
    let state = tokio::select! {
        _ = &mut *shutdown => return false,
        d = control::known(desired) => d,
    };
    if state == Desired::Running {
        return true;
    }
    status.set_stopped(true);
    tracing::info!("Feed stopped by an operator; generating nothing until it is started.");
    let resumed = tokio::select! {
        _ = &mut *shutdown => false,
        _ = control::until(desired, Desired::Running) => true,
    };
    if resumed {
        status.set_stopped(false);
        tracing::info!("Feed started by an operator; generating ticks.");
    }
    resumed
}

/// What the generator produces: ticks per second in all, and whether a trade goes with each tick.
#[derive(Debug, Clone, Copy)]
struct Output {
    rate: f64,
    trades: bool,
}

/// The generator: every interval, make the ticks that are due and publish
/// them in one round trip; back off while Redis fails; generate nothing while
/// an operator has the feed stopped.
async fn generate<S: Future<Output = ()> + Unpin>(
    mut market: Market,
    Output { rate, trades }: Output,
    redis: &Redis,
    status: &CommonStatus,
    metrics: &Metrics,
    desired: &mut DesiredRx,
    shutdown: &mut S,
) {
    if !wait_while_stopped(desired, status, shutdown).await {
        return;
    }
    let mut pacer = Pacer::new(rate, Instant::now());
    let mut ticker = tokio::time::interval(pacer.interval());
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut backoff = Backoff::new(RETRY_INITIAL, RETRY_MAX);
    // Reused across batches: one allocation at the steady-state batch size.
    let mut batch = Batch {
        trades,
        ..Batch::default()
    };
    loop {
        tokio::select! {
            biased;
            _ = &mut *shutdown => break,
            Ok(()) = desired.changed() => {
                if *desired.borrow_and_update() == Some(Desired::Stopped) {
                    if !wait_while_stopped(desired, status, shutdown).await {
                        return;
                    }
                    // Ticks not made while stopped are not owed afterwards.
                    pacer.skip_to(Instant::now());
                }
                continue;
            }
            _ = ticker.tick() => {}
        }
        let due = pacer.due(Instant::now());
        if due == 0 {
            continue;
        }
        // Not raced against shutdown: a cancelled pipeline may still have
        // reached Redis, and re-sending it would repeat seqs.
        match publish_batch(&mut market, due, redis, status, metrics, &mut batch).await {
            Ok(()) => {
                if backoff.attempts() > 0 {
                    tracing::info!("Publishing to Redis recovered.");
                    backoff.reset();
                }
            }
            Err(e) => {
                let delay = backoff.next_delay();
                if backoff.attempts() == 1 {
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "Publishing to Redis failed; ticks are dropped until it recovers.");
                } else {
                    tracing::debug!(error = %e, retry_in_ms = delay.as_millis() as u64, "Publishing to Redis still fails.");
                }
                tokio::select! {
                    _ = &mut *shutdown => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                // Ticks not made during the outage are not owed afterwards.
                pacer.skip_to(Instant::now());
            }
        }
    }
    // Last flush: what accrued since the previous batch, unless Redis is failing.
    if !status.last_publish_failed() {
        let due = pacer.due(Instant::now());
        if due > 0 {
            if let Err(e) =
                publish_batch(&mut market, due, redis, status, metrics, &mut batch).await
            {
                tracing::debug!(error = %e, "Final publish failed.");
            }
        }
    }
}

/// One batch's ticks and the trades behind them, reused across batches.
#[derive(Debug, Default)]
struct Batch {
    /// The ticks, published first.
    ticks: Vec<Tick>,
    /// One trade per tick; empty when trades are off.
    trade_list: Vec<Trade>,
    /// Whether trades are made and published (`sim.trades`).
    trades: bool,
}

/// Makes `n` ticks and their trades, publishes the ticks in one pipeline and
/// the trades in another, and records the outcome.
///
/// On failure the ticks (and trades) are dropped but their seqs stay consumed.
async fn publish_batch(
    market: &mut Market,
    n: usize,
    redis: &Redis,
    status: &CommonStatus,
    metrics: &Metrics,
    batch: &mut Batch,
) -> Result<(), BusError> {
    batch.ticks.clear();
    batch.trade_list.clear();
    // Milliseconds, as the contract's examples and the exchanges give them.
    let now = Utc::now().trunc_subsecs(3);
    if batch.trades {
        market.fill_with_trades(n, now, &mut batch.ticks, &mut batch.trade_list);
    } else {
        market.fill(n, now, &mut batch.ticks);
    }
    let started = Instant::now();
    let result = match redis.publish(&batch.ticks).await {
        Ok(()) => {
            metrics.ticks_published.inc_by(batch.ticks.len() as u64);
            status.published(batch.ticks.len(), now);
            if batch.trade_list.is_empty() {
                Ok(())
            } else {
                redis.publish_trades(&batch.trade_list).await.map(|()| {
                    metrics
                        .trades_published
                        .inc_by(batch.trade_list.len() as u64);
                })
            }
        }
        Err(e) => Err(e),
    };
    metrics
        .publish_batch_seconds
        .observe(started.elapsed().as_secs_f64());
    metrics.redis_up.set(i64::from(redis.health().is_up()));
    match result {
        Ok(()) => Ok(()),
        Err(e) => {
            metrics.publish_errors.inc();
            status.publish_failed();
            Err(e)
        }
    }
}

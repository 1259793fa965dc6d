//! ingest-sim: synthetic market ticks for tickstream, published to Redis like any ingestor.
//!
//! It needs no network and no keys, so a fresh stack shows live prices at
//! once, and it doubles as the load generator (50,000+ ticks/s). Ticks follow
//! a geometric Brownian motion per symbol from realistic starting prices; each
//! batch is cached, published and seq-recorded in one pipelined round trip.
//!
//! Guarantees: `seq` is strictly increasing per symbol across restarts (seqs
//! are loaded from Redis before the first publish; a failed publish still
//! consumes its seqs, so there are gaps but never repeats), and losing Redis
//! never stops the process: `/health` turns `degraded` and publishing resumes
//! with capped, jittered backoff.
//!
//! # Layout
//! - [`config`]: the config struct, its defaults and validation.
//! - [`model`]: the pure GBM price model that turns time into [`Tick`]s.
//! - [`pacer`]: how many ticks are due now, so the rate is exact.
//! - [`metrics`]: the Prometheus metrics.
//! - [`status`]: live state behind `/health` and the heartbeat.
//! - [`run`]: wires them together until shutdown.

#![forbid(unsafe_code)]

pub mod config;
pub mod metrics;
pub mod model;
pub mod pacer;
pub mod status;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SubsecRound, Utc};
use tickstream_bus::{Backoff, BusError, Redis, RedisOptions};
use tickstream_model::{Symbol, Tick};
use tickstream_runtime::ops::{self, HealthFn};
use tokio::time::MissedTickBehavior;

pub use config::Config;
/// Why the service could not run (a bad config value, the ops port, the Redis
/// URL): the same start-up failures as every upstream ingestor's.
pub use tickstream_upstream::Error;

use crate::metrics::Metrics;
use crate::model::Market;
use crate::pacer::Pacer;
use crate::status::Status;

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
    let redis = Redis::connect_lazy(RedisOptions {
        url: config.redis_url.clone(),
        price_ttl: Duration::from_secs(config.sim.price_ttl_secs),
        op_timeout: OP_TIMEOUT,
    })?;

    let registry = tickstream_runtime::metrics::registry();
    let metrics = Metrics::register(&registry);
    metrics.symbols.set(symbols.len() as i64);

    let bind_err = |source| Error::Bind {
        addr: format!("{}:{}", config.host, config.port),
        source,
    };
    let (listener, addr) = ops::bind(&config.host, config.port).map_err(bind_err)?;
    let names: Vec<String> = symbols.iter().map(ToString::to_string).collect();
    let status = Arc::new(Status::new(
        addr.port(),
        names,
        rate,
        redis.health().clone(),
    ));
    let health: HealthFn = {
        let status = status.clone();
        Arc::new(move || status.health())
    };
    let server = ops::serve(listener, registry, health).map_err(bind_err)?;
    let server_handle = server.handle();
    let server_task = tokio::spawn(server);

    // The record lives `tickstream_upstream::HEARTBEAT_TTL_PERIODS` periods: a
    // dead simulator vanishes from the gateway's view within seconds.
    let heartbeat = tokio::spawn(tickstream_upstream::heartbeat_loop(
        redis.clone(),
        Duration::from_secs(config.sim.heartbeat_secs),
        metrics.redis_up.clone(),
        {
            let status = status.clone();
            move || status.heartbeat()
        },
    ));

    let resumed = resume(
        &redis,
        &symbols,
        rate,
        config.sim.seed,
        &status,
        &metrics,
        &mut shutdown,
    )
    .await;
    if let Some(market) = resumed {
        tracing::info!(symbols = symbols.len(), rate, "Generating ticks.");
        generate(market, rate, &redis, &status, &metrics, &mut shutdown).await;
    }

    tracing::info!(ticks_published = status.ticks_published(), "Shutting down.");
    heartbeat.abort();
    let stopped = async {
        server_handle.stop(true).await;
        let _ = server_task.await;
    };
    if tokio::time::timeout(OPS_STOP_TIMEOUT, stopped)
        .await
        .is_err()
    {
        tracing::debug!("Ops server did not stop in time; exiting anyway.");
    }
    Ok(())
}

/// Loads each symbol's last seq and cached tick, retrying until Redis answers,
/// so the first published seq follows the last one ever published. `None` if
/// shutdown came first.
async fn resume<S: Future<Output = ()> + Unpin>(
    redis: &Redis,
    symbols: &[Symbol],
    rate: f64,
    seed: Option<u64>,
    status: &Status,
    metrics: &Metrics,
    shutdown: &mut S,
) -> Option<Market> {
    let mut backoff = Backoff::new(RETRY_INITIAL, RETRY_MAX);
    loop {
        match load_resume_state(redis, symbols).await {
            Ok(state) => {
                let mut market = Market::new(symbols, rate, seed);
                let restored = state.iter().filter(|(_, t)| t.is_some()).count();
                for (symbol, (seq, cached)) in symbols.iter().zip(&state) {
                    market.resume(symbol, *seq, cached.as_ref());
                }
                metrics.redis_up.set(1);
                status.set_ready();
                tracing::info!(
                    symbols = symbols.len(),
                    restored_prices = restored,
                    "Seq counters loaded from Redis."
                );
                return Some(market);
            }
            Err(e) => {
                metrics.redis_up.set(i64::from(redis.health().is_up()));
                status.set_problem(Some(format!("waiting for Redis to load seq counters: {e}")));
                let delay = backoff.next_delay();
                let retry_in_ms = delay.as_millis() as u64;
                if !e.is_retryable() {
                    tracing::error!(error = %e, retry_in_ms, "Cannot load seq counters; fix the record in Redis. Retrying.");
                } else if backoff.attempts() == 1 {
                    tracing::warn!(error = %e, retry_in_ms, "Cannot load seq counters from Redis; nothing is published until it answers.");
                } else {
                    tracing::debug!(error = %e, retry_in_ms, "Still cannot load seq counters from Redis.");
                }
                tokio::select! {
                    _ = &mut *shutdown => return None,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// Per symbol: the last published seq (the larger of the seq hash and the
/// cached tick, which is written first) and the cached tick to continue from.
async fn load_resume_state(
    redis: &Redis,
    symbols: &[Symbol],
) -> Result<Vec<(u64, Option<Tick>)>, BusError> {
    let seqs = redis.load_seqs(symbols).await?;
    let names: Vec<&str> = symbols.iter().map(Symbol::as_str).collect();
    let cached = redis.latest_many(&names).await?;
    Ok(symbols
        .iter()
        .zip(cached)
        .map(|(symbol, raw)| {
            let tick = raw.and_then(|bytes| match Tick::from_json(&bytes) {
                Ok(t) if &t.symbol == symbol => Some(t),
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(symbol = %symbol, error = %e, "Ignoring an undecodable cached price.");
                    None
                }
            });
            let seq = seqs.get(symbol).copied().unwrap_or(0);
            let seq = tick.as_ref().map_or(seq, |t| seq.max(t.seq));
            (seq, tick)
        })
        .collect())
}

/// The generator: every interval, make the ticks that are due and publish
/// them in one round trip; back off while Redis fails.
async fn generate<S: Future<Output = ()> + Unpin>(
    mut market: Market,
    rate: f64,
    redis: &Redis,
    status: &Status,
    metrics: &Metrics,
    shutdown: &mut S,
) {
    let mut pacer = Pacer::new(rate, Instant::now());
    let mut ticker = tokio::time::interval(pacer.interval());
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut backoff = Backoff::new(RETRY_INITIAL, RETRY_MAX);
    // Reused across batches: one allocation at the steady-state batch size.
    let mut batch: Vec<Tick> = Vec::new();
    loop {
        tokio::select! {
            biased;
            _ = &mut *shutdown => break,
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

/// Makes `n` ticks, publishes them in one pipeline and records the outcome.
///
/// On failure the ticks are dropped but their seqs stay consumed.
async fn publish_batch(
    market: &mut Market,
    n: usize,
    redis: &Redis,
    status: &Status,
    metrics: &Metrics,
    batch: &mut Vec<Tick>,
) -> Result<(), BusError> {
    batch.clear();
    // Milliseconds, as the contract's examples and the exchanges give them.
    let now = Utc::now().trunc_subsecs(3);
    market.fill(n, now, batch);
    let started = Instant::now();
    let result = redis.publish(batch).await;
    metrics
        .publish_batch_seconds
        .observe(started.elapsed().as_secs_f64());
    metrics.redis_up.set(i64::from(redis.health().is_up()));
    match result {
        Ok(()) => {
            metrics.ticks_published.inc_by(batch.len() as u64);
            status.published(batch.len(), now);
            Ok(())
        }
        Err(e) => {
            metrics.publish_errors.inc();
            status.publish_failed();
            Err(e)
        }
    }
}

//! Where `seq` continues after a restart: per symbol, the last seq ever
//! published (the larger of the seq hash and the cached tick, which is written
//! first) and the cached tick itself, read before the first publish and
//! retried until Redis answers; likewise trades' own seq per symbol.

use std::collections::HashMap;

use prometheus::IntGauge;
use tickstream_bus::{Backoff, BusError, Redis};
use tickstream_model::{Symbol, Tick};

use crate::status::CommonStatus;

/// What Redis remembers of one symbol: its last published seq (0 if none) and its cached tick.
pub type Last = (u64, Option<Tick>);

/// Per symbol of `symbols`, in order: the last published seq and the cached tick to continue from.
pub async fn load_last(redis: &Redis, symbols: &[Symbol]) -> Result<Vec<Last>, BusError> {
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

/// The last published seq per symbol, for symbols Redis knows (a missing one starts at 0).
pub async fn load_seqs(
    redis: &Redis,
    symbols: &[Symbol],
) -> Result<HashMap<Symbol, u64>, BusError> {
    Ok(seq_map(symbols, load_last(redis, symbols).await?))
}

/// [`load_last`]'s answer as a map of the symbols that have a seq.
pub fn seq_map(symbols: &[Symbol], last: Vec<Last>) -> HashMap<Symbol, u64> {
    symbols
        .iter()
        .zip(last)
        .filter(|(_, (seq, _))| *seq > 0)
        .map(|(s, (seq, _))| (s.clone(), seq))
        .collect()
}

/// The last published trade seq per symbol (`tickstream:seq:trades`; a missing one starts
/// at 0), so trades continue their own seq across restarts as ticks do.
pub async fn load_trade_seqs(
    redis: &Redis,
    symbols: &[Symbol],
) -> Result<HashMap<Symbol, u64>, BusError> {
    redis.load_trade_seqs(symbols).await
}

/// [`load_last`], retried with `backoff` until Redis answers, so nothing is
/// published before the counters are known. Meanwhile `status` reports why it
/// waits (degraded) and `redis_up` follows Redis; on success `redis_up` is 1.
/// The caller clears the loading problem when it is ready to publish, and
/// races this against its shutdown.
pub async fn load_retrying(
    redis: &Redis,
    symbols: &[Symbol],
    status: &CommonStatus,
    redis_up: &IntGauge,
    backoff: Backoff,
) -> Vec<Last> {
    let last = retrying(redis, status, redis_up, backoff, "seq counters", || {
        load_last(redis, symbols)
    })
    .await;
    let restored = last.iter().filter(|(seq, _)| *seq > 0).count();
    tracing::info!(
        source = status.source(),
        symbols = symbols.len(),
        restored,
        "Seq counters loaded from Redis."
    );
    last
}

/// [`load_trade_seqs`], retried like [`load_retrying`], for ingestors that publish trades.
pub async fn load_trade_seqs_retrying(
    redis: &Redis,
    symbols: &[Symbol],
    status: &CommonStatus,
    redis_up: &IntGauge,
    backoff: Backoff,
) -> HashMap<Symbol, u64> {
    let seqs = retrying(
        redis,
        status,
        redis_up,
        backoff,
        "trade seq counters",
        || load_trade_seqs(redis, symbols),
    )
    .await;
    tracing::info!(
        source = status.source(),
        symbols = symbols.len(),
        restored = seqs.len(),
        "Trade seq counters loaded from Redis."
    );
    seqs
}

/// Runs `load` until it succeeds, reporting in `status` and `redis_up` while it waits.
async fn retrying<T, F, Fut>(
    redis: &Redis,
    status: &CommonStatus,
    redis_up: &IntGauge,
    mut backoff: Backoff,
    what: &'static str,
    mut load: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, BusError>>,
{
    loop {
        match load().await {
            Ok(value) => {
                redis_up.set(1);
                return value;
            }
            Err(e) => {
                redis_up.set(i64::from(redis.health().is_up()));
                status.set_loading(format!("waiting for Redis to load {what}: {e}"));
                let delay = backoff.next_delay();
                let retry_in_ms = delay.as_millis() as u64;
                if !e.is_retryable() {
                    tracing::error!(error = %e, retry_in_ms, what, "Cannot load counters; fix the record in Redis. Retrying.");
                } else if backoff.attempts() == 1 {
                    tracing::warn!(error = %e, retry_in_ms, what, "Cannot load counters from Redis; nothing is published until it answers.");
                } else {
                    tracing::debug!(error = %e, retry_in_ms, what, "Still cannot load counters from Redis.");
                }
                tokio::time::sleep(delay).await;
            }
        }
    }
}

//! The heartbeat record every ingestor writes, so the gateway knows it is
//! alive, what it serves and how it is doing (and, re-exported from the bus,
//! the feed status publisher).

use std::time::Duration;

use prometheus::IntGauge;
use tickstream_bus::{Heartbeat, Redis};

/// The feed status publisher, shared with producers outside the shell (analytics).
pub use tickstream_bus::feeds::feed_status_loop;
use tokio::time::MissedTickBehavior;

/// Heartbeat TTL in heartbeat periods: survives a few missed writes, and a
/// dead ingestor vanishes from the gateway's view within seconds.
pub const HEARTBEAT_TTL_PERIODS: u32 = 5;

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

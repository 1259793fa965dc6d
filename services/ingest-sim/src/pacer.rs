//! How many ticks are due now, so the long-run rate is exact whatever the timer does.
//!
//! The generator wakes every [`Pacer::interval`] and asks [`Pacer::due`] how
//! many ticks the time since start owes. Timer jitter and slow publishes
//! therefore change batch sizes, not the rate; a backlog beyond
//! [`MAX_BURST`] (a stall, Redis down) is skipped rather than replayed in one
//! giant burst.

use std::time::{Duration, Instant};

/// Shortest wake-up period: 100 batches/s keeps per-batch overhead (one
/// round trip) small even at 50,000 ticks/s (500 ticks per batch).
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// Longest wake-up period, for rates below 1 tick/s.
pub const MAX_INTERVAL: Duration = Duration::from_secs(1);
/// How much owed time a single batch may catch up on; older debt is dropped.
pub const MAX_BURST: Duration = Duration::from_millis(250);
/// Hard cap on one batch, bounding pipeline memory at the highest rates.
pub const MAX_BATCH: u64 = 20_000;

/// Token accounting for a constant rate since a start instant.
#[derive(Debug, Clone)]
pub struct Pacer {
    /// Ticks per second.
    rate: f64,
    /// When accounting started.
    start: Instant,
    /// Ticks accounted for (emitted or skipped) since `start`.
    accounted: u64,
    /// Largest batch `due` returns.
    max_batch: u64,
}

impl Pacer {
    /// Starts owing ticks at `rate` per second from `start`.
    pub fn new(rate: f64, start: Instant) -> Self {
        let burst = (rate * MAX_BURST.as_secs_f64()).ceil() as u64;
        Self {
            rate,
            start,
            accounted: 0,
            max_batch: burst.clamp(1, MAX_BATCH),
        }
    }

    /// The wake-up period: one tick's worth of time, within [`MIN_INTERVAL`, `MAX_INTERVAL`].
    pub fn interval(&self) -> Duration {
        Duration::try_from_secs_f64(1.0 / self.rate)
            .unwrap_or(MAX_INTERVAL)
            .clamp(MIN_INTERVAL, MAX_INTERVAL)
    }

    /// Ticks owed at `now`, and counts them as emitted; debt beyond one burst is forgiven.
    pub fn due(&mut self, now: Instant) -> usize {
        let owed = self.owed_total(now).saturating_sub(self.accounted);
        let batch = owed.min(self.max_batch);
        self.accounted += owed;
        batch as usize
    }

    /// Forgives everything owed at `now`, e.g. after waiting out a Redis outage.
    pub fn skip_to(&mut self, now: Instant) {
        self.accounted = self.accounted.max(self.owed_total(now));
    }

    fn owed_total(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.start).as_secs_f64();
        (elapsed * self.rate).floor() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn exact_long_run_rate_despite_jitter() {
        let start = Instant::now();
        let mut p = Pacer::new(50_000.0, start);
        let mut total = 0;
        let mut t = 0;
        for jitter in [10, 13, 9, 11, 30, 10, 7].iter().cycle().take(700) {
            t += jitter;
            total += p.due(start + ms(t));
        }
        assert_eq!(total as u64, t * 50);
    }

    #[test]
    fn slow_rates_tick_occasionally() {
        let start = Instant::now();
        let mut p = Pacer::new(0.5, start);
        assert_eq!(p.interval(), MAX_INTERVAL);
        assert_eq!(p.due(start + ms(1_000)), 0);
        assert_eq!(p.due(start + ms(2_000)), 1);
        assert_eq!(p.due(start + ms(3_000)), 0);
        assert_eq!(
            Pacer::new(36.0, start).interval(),
            Duration::from_secs_f64(1.0 / 36.0)
        );
        assert_eq!(Pacer::new(50_000.0, start).interval(), MIN_INTERVAL);
    }

    #[test]
    fn backlog_is_capped_then_skipped() {
        let start = Instant::now();
        let mut p = Pacer::new(1_000.0, start);
        // A 5 s stall owes 5000 ticks; one burst (250 ms) is caught up.
        assert_eq!(p.due(start + ms(5_000)), 250);
        assert_eq!(p.due(start + ms(5_010)), 10);
        p.skip_to(start + ms(9_000));
        assert_eq!(p.due(start + ms(9_000)), 0);
        assert_eq!(p.due(start + ms(9_020)), 20);
        let mut huge = Pacer::new(1_000_000.0, start);
        assert_eq!(huge.due(start + ms(1_000)) as u64, MAX_BATCH);
    }
}

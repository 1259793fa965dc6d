//! The analytics service's Prometheus metrics (`tickstream_analytics_` prefix,
//! `_total` counters, only bounded labels).

use prometheus::{IntCounter, IntCounterVec, IntGauge, Registry};
use tickstream_runtime::metrics::{counter_vec, gauge, register};

/// Reasons an input is skipped; the `reason` label's values.
pub const SKIP_REASONS: [&str; 5] = ["invalid", "unknown_symbol", "late", "future", "queue_full"];

/// The handles the tasks update; cheap atomics.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// `tickstream_analytics_inputs_total{kind}`: ticks and trades received.
    pub inputs: IntCounterVec,
    /// `tickstream_analytics_skipped_total{reason}`: inputs counted and skipped.
    pub skipped: IntCounterVec,
    /// `tickstream_analytics_published_total{kind}`: candles, signals and moods published.
    pub published: IntCounterVec,
    /// `tickstream_analytics_dropped_outputs_total`: outputs dropped because the writer queue was full.
    pub dropped_outputs: IntCounter,
    /// `tickstream_analytics_write_errors_total`: failed Redis writes (retried).
    pub write_errors: IntCounter,
    /// `tickstream_analytics_corrections_total`: closed bars corrected by a late trade.
    pub corrections: IntCounter,
    /// `tickstream_analytics_symbols`: symbols in the universe.
    pub symbols: IntGauge,
    /// `tickstream_redis_up`: 1 while the last Redis operation worked.
    pub redis_up: IntGauge,
}

impl Metrics {
    /// Creates and registers every metric; call once per registry.
    pub fn register(registry: &Registry) -> Self {
        let m = Self {
            inputs: register(
                registry,
                counter_vec(
                    "tickstream_analytics_inputs_total",
                    "Ticks and trades received.",
                    &["kind"],
                ),
            ),
            skipped: register(
                registry,
                counter_vec(
                    "tickstream_analytics_skipped_total",
                    "Inputs counted and skipped, by reason.",
                    &["reason"],
                ),
            ),
            published: register(
                registry,
                counter_vec(
                    "tickstream_analytics_published_total",
                    "Events published to Redis, by kind.",
                    &["kind"],
                ),
            ),
            dropped_outputs: register(
                registry,
                counter(
                    "tickstream_analytics_dropped_outputs_total",
                    "Outputs dropped because the Redis writer queue was full.",
                ),
            ),
            write_errors: register(
                registry,
                counter(
                    "tickstream_analytics_write_errors_total",
                    "Failed Redis writes; retried with backoff.",
                ),
            ),
            corrections: register(
                registry,
                counter(
                    "tickstream_analytics_corrections_total",
                    "Closed bars corrected by a late trade within the grace.",
                ),
            ),
            symbols: register(
                registry,
                gauge("tickstream_analytics_symbols", "Symbols in the universe."),
            ),
            redis_up: register(
                registry,
                gauge(
                    "tickstream_redis_up",
                    "Whether the last Redis operation succeeded (1) or not (0).",
                ),
            ),
        };
        for kind in ["tick", "trade"] {
            m.inputs.with_label_values(&[kind]);
        }
        for reason in SKIP_REASONS {
            m.skipped.with_label_values(&[reason]);
        }
        for kind in ["candle", "signal", "sentiment"] {
            m.published.with_label_values(&[kind]);
        }
        m
    }
}

/// A counter without labels (names are constants: a bad one fails the first test).
#[allow(clippy::expect_used)]
fn counter(name: &str, help: &str) -> IntCounter {
    IntCounter::new(name, help).expect("valid counter definition")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_and_exports() {
        let registry = tickstream_runtime::metrics::registry();
        let m = Metrics::register(&registry);
        m.skipped.with_label_values(&["late"]).inc();
        m.symbols.set(3);
        let text = tickstream_runtime::metrics::encode(&registry);
        for want in [
            r#"tickstream_analytics_skipped_total{reason="late"} 1"#,
            r#"tickstream_analytics_published_total{kind="candle"} 0"#,
            "tickstream_analytics_dropped_outputs_total 0",
            "tickstream_analytics_symbols 3",
            "tickstream_redis_up 0",
        ] {
            assert!(text.contains(want), "{want} missing from\n{text}");
        }
    }
}

//! ingest-sim's Prometheus metrics, named as every tickstream metric is
//! (`tickstream_` prefix, unit suffixes, `_total` counters, only the bounded
//! `source` label; the README lists them). The gauges every ingestor has are
//! the shell's [`CommonMetrics`].

use prometheus::{Histogram, IntCounter, IntGauge, Registry};
use tickstream_ingest_shell::CommonMetrics;
use tickstream_runtime::metrics::{counter_vec, histogram_vec, register};

use crate::model::SOURCE;

/// Batch publish latency buckets: a healthy local Redis answers a 500-tick
/// pipeline in about a millisecond; the top buckets catch the 2 s op timeout.
const BATCH_BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The handles the generator and heartbeat update; cheap atomics on the hot path.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// `tickstream_ingest_ticks_published_total{source="sim"}`: ticks Redis accepted.
    pub ticks_published: IntCounter,
    /// `tickstream_ingest_trades_published_total{source="sim"}`: trades Redis accepted.
    pub trades_published: IntCounter,
    /// `tickstream_ingest_publish_errors_total{source="sim"}`: failed batch publishes.
    pub publish_errors: IntCounter,
    /// `tickstream_ingest_publish_batch_seconds{source="sim"}`: one pipelined round trip.
    pub publish_batch_seconds: Histogram,
    /// `tickstream_redis_up`: 1 while the last Redis operation worked.
    pub redis_up: IntGauge,
    /// `tickstream_ingest_symbols{source="sim"}`: how many symbols are simulated.
    pub symbols: IntGauge,
}

impl Metrics {
    /// Creates and registers every metric; call once per registry.
    pub fn register(registry: &Registry) -> Self {
        let labels = &["source"];
        let ticks_published = register(
            registry,
            counter_vec(
                "tickstream_ingest_ticks_published_total",
                "Ticks published to Redis (cached, published and seq recorded).",
                labels,
            ),
        );
        let trades_published = register(
            registry,
            counter_vec(
                "tickstream_ingest_trades_published_total",
                "Trades published to Redis on trades:{SYMBOL} (one behind each tick).",
                labels,
            ),
        );
        let publish_errors = register(
            registry,
            counter_vec(
                "tickstream_ingest_publish_errors_total",
                "Batch publishes to Redis that failed; their ticks are dropped.",
                labels,
            ),
        );
        let publish_batch_seconds = register(
            registry,
            histogram_vec(
                "tickstream_ingest_publish_batch_seconds",
                "Duration of one pipelined batch publish to Redis.",
                labels,
                BATCH_BUCKETS,
            ),
        );
        let common = CommonMetrics::register(registry, SOURCE);
        Self {
            ticks_published: ticks_published.with_label_values(&[SOURCE]),
            trades_published: trades_published.with_label_values(&[SOURCE]),
            publish_errors: publish_errors.with_label_values(&[SOURCE]),
            publish_batch_seconds: publish_batch_seconds.with_label_values(&[SOURCE]),
            redis_up: common.redis_up,
            symbols: common.symbols,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_and_exports_contract_names() {
        let registry = tickstream_runtime::metrics::registry();
        let m = Metrics::register(&registry);
        m.ticks_published.inc_by(3);
        m.publish_batch_seconds.observe(0.001);
        m.redis_up.set(1);
        m.symbols.set(9);
        let text = tickstream_runtime::metrics::encode(&registry);
        for want in [
            r#"tickstream_ingest_ticks_published_total{source="sim"} 3"#,
            r#"tickstream_ingest_publish_errors_total{source="sim"} 0"#,
            r#"tickstream_ingest_trades_published_total{source="sim"} 0"#,
            r#"tickstream_ingest_publish_batch_seconds_count{source="sim"} 1"#,
            "tickstream_redis_up 1",
            r#"tickstream_ingest_symbols{source="sim"} 9"#,
        ] {
            assert!(text.contains(want), "{want} missing from\n{text}");
        }
    }
}

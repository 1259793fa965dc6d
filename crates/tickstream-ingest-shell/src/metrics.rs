//! The metrics every ingestor exports whatever feeds it, registered in one
//! place so their names, help and labels cannot drift between ingestors.

use prometheus::{IntGauge, Registry};
use tickstream_runtime::metrics::{gauge, gauge_vec, register};

/// The gauges the shell and every ingestor's publish path update.
#[derive(Debug, Clone)]
pub struct CommonMetrics {
    /// `tickstream_redis_up`: 1 while the last Redis operation worked.
    pub redis_up: IntGauge,
    /// `tickstream_ingest_symbols{source}`: symbols served now (follows reloads).
    pub symbols: IntGauge,
}

impl CommonMetrics {
    /// Creates and registers them for the ingestor `source`; call once per registry.
    pub fn register(registry: &Registry, source: &str) -> Self {
        let redis_up = register(
            registry,
            gauge(
                "tickstream_redis_up",
                "Whether the last Redis operation succeeded (1) or not (0).",
            ),
        );
        let symbols = register(
            registry,
            gauge_vec(
                "tickstream_ingest_symbols",
                "Symbols this ingestor serves.",
                &["source"],
            ),
        );
        Self {
            redis_up,
            symbols: symbols.with_label_values(&[source]),
        }
    }
}

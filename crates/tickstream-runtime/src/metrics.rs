//! Prometheus registry construction and exposition.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// A fresh registry with the process collector (CPU, RSS, fds), so every
/// service exports `process_*` alongside its `tickstream_*` metrics.
pub fn registry() -> Registry {
    let registry = Registry::new();
    #[cfg(target_os = "linux")]
    {
        let pc = prometheus::process_collector::ProcessCollector::for_self();
        // Registration only fails on duplicate names, impossible in a fresh registry.
        let _ = registry.register(Box::new(pc));
    }
    registry
}

/// Renders the registry in the Prometheus text format.
pub fn encode(registry: &Registry) -> String {
    let mut buf = Vec::with_capacity(8 * 1024);
    let encoder = TextEncoder::new();
    if let Err(e) = encoder.encode(&registry.gather(), &mut buf) {
        tracing::error!(error = %e, "Failed to encode metrics.");
    }
    String::from_utf8(buf).unwrap_or_default()
}

/// Registers a collector built in place, panicking only on programmer error (duplicate names).
///
/// Metric names are compile-time constants, so a duplicate is a bug caught by
/// the first test that builds the service's metrics.
#[allow(clippy::expect_used)]
pub fn register<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    registry
        .register(Box::new(c.clone()))
        .expect("metric registered twice: names are constants, fix the code");
    c
}

// The constructors below fail only on an invalid name or label set; every
// caller passes constants, exercised by the first test that builds its metrics.

/// A counter family with `labels`, for [`register`].
#[allow(clippy::expect_used)]
pub fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter definition")
}

/// A histogram family with `labels` and the service's own `buckets`, for [`register`].
#[allow(clippy::expect_used)]
pub fn histogram_vec(name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    HistogramVec::new(opts, labels).expect("valid histogram definition")
}

/// A gauge without labels, for [`register`].
#[allow(clippy::expect_used)]
pub fn gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::new(name, help).expect("valid gauge definition")
}

/// A gauge family with `labels`, for [`register`].
#[allow(clippy::expect_used)]
pub fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("valid gauge definition")
}

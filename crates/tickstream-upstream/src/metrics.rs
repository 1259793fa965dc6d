//! The upstream ingestors' Prometheus metrics, named as every tickstream metric
//! is (the README lists them): `tickstream_` prefix, unit suffixes, `_total`
//! counters, labels only from bounded sets (`source` is the venue name or
//! `<venue>-rest`; `outcome` is one of a few words). The gauges every ingestor
//! has (`tickstream_redis_up`, `tickstream_ingest_symbols`) are the shell's
//! [`CommonMetrics`].

use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, Registry};
use tickstream_ingest_shell::CommonMetrics;
use tickstream_runtime::metrics::{counter_vec, gauge_vec, histogram_vec, register};

/// Upstream event → publish latency buckets: a live feed lands within a few
/// ms of the exchange's clock; REST fallback quotes can be seconds to minutes old.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0,
];

/// Outcomes of one REST fallback request, the only values of the `outcome` label.
pub const REST_OUTCOMES: [&str; 3] = ["ok", "rate_limited", "error"];

/// Outcomes of one SIGHUP configuration reload, the only values of its `outcome` label.
pub const RELOAD_OUTCOMES: [&str; 2] = ["ok", "error"];

/// Every handle the connection, fallback and publish paths update.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// `tickstream_upstream_connected{source}`: 1 while every stream connection is up.
    pub connected: IntGauge,
    /// `tickstream_upstream_reconnects_total{source}`: connections re-established after a loss.
    pub reconnects: IntCounter,
    /// `tickstream_upstream_messages_total{source}`: text/binary frames received.
    pub messages: IntCounter,
    /// `tickstream_upstream_parse_errors_total{source}`: frames that did not parse (skipped).
    pub parse_errors: IntCounter,
    /// `tickstream_upstream_error_messages_total{source}`: error messages the upstream sent.
    pub error_messages: IntCounter,
    /// `tickstream_upstream_fallback_active{source}`: 1 while the REST fallback polls.
    pub fallback_active: IntGauge,
    /// `tickstream_upstream_rest_requests_total{source,outcome}`: fallback GETs by outcome.
    rest_requests: IntCounterVec,
    /// `tickstream_ingest_ticks_published_total{source}`: by tick source (`binance`, `binance-rest`).
    ticks_published: IntCounterVec,
    /// `tickstream_ingest_trades_published_total{source}`: trades published (stream only: no REST twin).
    pub trades_published: IntCounter,
    /// `tickstream_ingest_publish_errors_total{source}`: failed Redis publishes.
    pub publish_errors: IntCounter,
    /// `tickstream_ingest_latency_seconds{source}`: upstream event time → published, by tick source.
    latency: HistogramVec,
    /// `tickstream_redis_up`: 1 while the last Redis operation worked.
    pub redis_up: IntGauge,
    /// `tickstream_ingest_symbols{source}`: symbols served now (follows reloads).
    pub symbols: IntGauge,
    /// `tickstream_upstream_control_messages_total{source}`: live SUBSCRIBE/UNSUBSCRIBE frames sent.
    pub control_messages: IntCounter,
    /// `tickstream_upstream_config_reloads_total{source,outcome}`: SIGHUP reloads by outcome.
    reloads: IntCounterVec,
    /// The venue name, the default label value.
    source: &'static str,
}

impl Metrics {
    /// Creates and registers every metric for `source`; call once per registry.
    pub fn register(registry: &Registry, source: &'static str) -> Self {
        let l = &["source"];
        let gauge_vec = |name: &str, help: &str| register(registry, gauge_vec(name, help, l));
        let counter = |name: &str, help: &str| register(registry, counter_vec(name, help, l));
        let connected = gauge_vec(
            "tickstream_upstream_connected",
            "Whether every upstream WebSocket connection is up (1) or not (0).",
        );
        let reconnects = counter(
            "tickstream_upstream_reconnects_total",
            "Upstream connections re-established after a loss, a stall or a rotation.",
        );
        let messages = counter(
            "tickstream_upstream_messages_total",
            "Data frames received from the upstream.",
        );
        let parse_errors = counter(
            "tickstream_upstream_parse_errors_total",
            "Upstream frames that did not parse (garbage, truncated, schema drift); skipped.",
        );
        let error_messages = counter(
            "tickstream_upstream_error_messages_total",
            "Error messages sent by the upstream (e.g. a refused subscription).",
        );
        let fallback_active = gauge_vec(
            "tickstream_upstream_fallback_active",
            "Whether the REST fallback poller is active (1) or idle (0).",
        );
        let rest_requests = register(
            registry,
            counter_vec(
                "tickstream_upstream_rest_requests_total",
                "REST fallback requests by outcome (ok, rate_limited, error).",
                &["source", "outcome"],
            ),
        );
        let ticks_published = counter(
            "tickstream_ingest_ticks_published_total",
            "Ticks published to Redis, by tick source.",
        );
        let trades_published = counter(
            "tickstream_ingest_trades_published_total",
            "Trades published to Redis on trades:{SYMBOL}.",
        );
        let publish_errors = counter(
            "tickstream_ingest_publish_errors_total",
            "Publishes to Redis that failed; their ticks are dropped.",
        );
        let latency = register(
            registry,
            histogram_vec(
                "tickstream_ingest_latency_seconds",
                "Time from the upstream's event time to the publish to Redis, by tick source.",
                l,
                LATENCY_BUCKETS,
            ),
        );
        let common = CommonMetrics::register(registry, source);
        let control_messages = counter(
            "tickstream_upstream_control_messages_total",
            "Control messages sent to change an open connection's subscriptions.",
        );
        let reloads = register(
            registry,
            counter_vec(
                "tickstream_upstream_config_reloads_total",
                "Configuration reloads on SIGHUP by outcome (ok, error).",
                &["source", "outcome"],
            ),
        );
        for outcome in RELOAD_OUTCOMES {
            reloads.with_label_values(&[source, outcome]);
        }
        let rest = rest_source(source);
        for outcome in REST_OUTCOMES {
            rest_requests.with_label_values(&[source, outcome]);
        }
        ticks_published.with_label_values(&[&rest]);
        latency.with_label_values(&[&rest]);
        Self {
            connected: connected.with_label_values(&[source]),
            reconnects: reconnects.with_label_values(&[source]),
            messages: messages.with_label_values(&[source]),
            parse_errors: parse_errors.with_label_values(&[source]),
            error_messages: error_messages.with_label_values(&[source]),
            fallback_active: fallback_active.with_label_values(&[source]),
            rest_requests,
            ticks_published: {
                ticks_published.with_label_values(&[source]);
                ticks_published
            },
            trades_published: trades_published.with_label_values(&[source]),
            publish_errors: publish_errors.with_label_values(&[source]),
            latency: {
                latency.with_label_values(&[source]);
                latency
            },
            redis_up: common.redis_up,
            symbols: common.symbols,
            control_messages: control_messages.with_label_values(&[source]),
            reloads,
            source,
        }
    }

    /// Counts `n` published ticks of `tick_source` (the venue or its `-rest` twin).
    pub fn published(&self, tick_source: &str, n: u64) {
        self.ticks_published
            .with_label_values(&[tick_source])
            .inc_by(n);
    }

    /// The latency histogram of `tick_source`.
    pub fn latency(&self, tick_source: &str) -> Histogram {
        self.latency.with_label_values(&[tick_source])
    }

    /// Counts one SIGHUP reload with one of [`RELOAD_OUTCOMES`].
    pub fn reload(&self, outcome: &'static str) {
        self.reloads
            .with_label_values(&[self.source, outcome])
            .inc();
    }

    /// Counts one REST fallback request with one of [`REST_OUTCOMES`].
    pub fn rest_request(&self, outcome: &'static str) {
        self.rest_requests
            .with_label_values(&[self.source, outcome])
            .inc();
    }
}

/// The `source` of fallback ticks: `<venue>-rest`.
pub fn rest_source(venue: &str) -> String {
    format!("{venue}-rest")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_contract_names() {
        let registry = tickstream_runtime::metrics::registry();
        let m = Metrics::register(&registry, "binance");
        m.connected.set(1);
        m.published("binance", 2);
        m.published("binance-rest", 1);
        m.latency("binance").observe(0.01);
        m.rest_request("rate_limited");
        let text = tickstream_runtime::metrics::encode(&registry);
        for want in [
            r#"tickstream_upstream_connected{source="binance"} 1"#,
            r#"tickstream_upstream_reconnects_total{source="binance"} 0"#,
            r#"tickstream_upstream_messages_total{source="binance"} 0"#,
            r#"tickstream_upstream_parse_errors_total{source="binance"} 0"#,
            r#"tickstream_upstream_fallback_active{source="binance"} 0"#,
            r#"tickstream_ingest_ticks_published_total{source="binance"} 2"#,
            r#"tickstream_ingest_ticks_published_total{source="binance-rest"} 1"#,
            r#"tickstream_ingest_publish_errors_total{source="binance"} 0"#,
            r#"tickstream_ingest_trades_published_total{source="binance"} 0"#,
            r#"tickstream_ingest_latency_seconds_count{source="binance"} 1"#,
            r#"tickstream_upstream_rest_requests_total{outcome="rate_limited",source="binance"} 1"#,
            "tickstream_redis_up 0",
            r#"tickstream_upstream_control_messages_total{source="binance"} 0"#,
            r#"tickstream_upstream_config_reloads_total{outcome="error",source="binance"} 0"#,
        ] {
            assert!(text.contains(want), "{want} missing from\n{text}");
        }
    }
}

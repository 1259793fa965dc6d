//! What every handler shares.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tickstream_bus::{Redis, Subscriber};
use tickstream_model::Symbol;
use tokio::sync::watch;

use crate::config::Config;
use crate::fanout::Hub;
use crate::metrics::GatewayMetrics;

/// Shared by all workers and connections; cheap to clone behind `web::Data`.
pub struct AppState {
    /// Validated configuration.
    pub cfg: Config,
    /// The symbols feeds serve under their own names, so aliases never hide them.
    pub served: crate::compat::aliases::ServedSymbols,
    /// `gateway.default_symbols`, parsed.
    pub default_symbols: Vec<Symbol>,
    /// The port actually bound (differs from `cfg.port` when it was 0).
    pub port: u16,
    /// The subscription table and fan-out.
    pub hub: Arc<Hub>,
    /// Reconciles Redis subscriptions with the hub.
    pub subscriber: Subscriber,
    /// Commands: cache reads, heartbeats, pings.
    pub redis: Redis,
    /// Prometheus metrics.
    pub metrics: GatewayMetrics,
    /// For `uptime`.
    pub started: Instant,
    /// Flips to true once at shutdown; every connection watches it to close with 1001.
    pub shutdown: watch::Receiver<bool>,
    /// Throughput over the last second, written by the sampler task.
    pub rates: Rates,
    /// Live Socket.IO (Engine.IO) sessions by sid, so polling requests find their session task.
    pub socketio: crate::socketio::registry::Sessions,
    /// Admission: origin rules, JWT verifier (when `gateway.auth` is on) and connection limits.
    pub gate: crate::client::limits::Gate,
}

impl AppState {
    /// Open client connections over every protocol (`active_streams`, the shutdown drain).
    pub fn connections(&self) -> i64 {
        crate::vocabulary::Protocol::ALL
            .iter()
            .map(|p| {
                self.metrics
                    .connections
                    .with_label_values(&[p.label()])
                    .get()
            })
            .sum()
    }
}

/// Per-second rates for `/stats`, stored as f64 bits so readers never lock.
#[derive(Default)]
pub struct Rates {
    ticks_per_second: AtomicU64,
    messages_per_second: AtomicU64,
}

impl Rates {
    /// Stores the latest measurement, rounded to 0.1/s (more digits would be noise).
    pub fn set(&self, ticks: f64, messages: f64) {
        let (ticks, messages) = (
            (ticks * 10.0).round() / 10.0,
            (messages * 10.0).round() / 10.0,
        );
        self.ticks_per_second
            .store(ticks.to_bits(), Ordering::Relaxed);
        self.messages_per_second
            .store(messages.to_bits(), Ordering::Relaxed);
    }

    /// Ticks received from Redis per second.
    pub fn ticks(&self) -> f64 {
        f64::from_bits(self.ticks_per_second.load(Ordering::Relaxed))
    }

    /// Frames delivered to clients per second.
    pub fn messages(&self) -> f64 {
        f64::from_bits(self.messages_per_second.load(Ordering::Relaxed))
    }
}

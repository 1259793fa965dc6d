//! The edges every tickstream service shares, written once.
//!
//! A service's `main` parses its CLI, calls [`config::load`], then
//! [`telemetry::init`], builds a [`prometheus::Registry`] with
//! [`metrics::registry`], binds with [`ops::bind`] and serves `/health` and
//! `/metrics` with [`ops::serve`] (ingestors) or its own app (the gateway),
//! and stops on [`shutdown::signal`]. [`cli::main`] is that `main` for any
//! [`config::ServiceConfig`].
//!
//! # Layout
//! - [`cli`]: `--config` / `--print-env` and the shared `main` ([`about!`] names the binary).
//! - [`config`]: defaults < TOML file < environment, with errors that name the key.
//! - [`secret`]: [`secret::Secret`], a configured key that never shows in `Debug` or logs.
//! - [`telemetry`]: `LOG_LEVEL` / `LOG_FORMAT=pretty|json` on tracing-subscriber.
//! - [`metrics`]: registry construction and text encoding.
//! - [`health`]: the three-state status and its HTTP code.
//! - [`ops`]: binding (with the `Listening.` line tests wait for) and the ops HTTP server.
//! - [`shutdown`]: SIGINT/SIGTERM as one future.

#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod health;
pub mod metrics;
pub mod ops;
pub mod secret;
pub mod shutdown;
pub mod telemetry;

/// Formats a duration as `/health` and `/stats` show uptime (`2h 15m 30s`), the form existing dashboards parse.
pub fn human_duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    let (days, h, m, s) = (s / 86_400, (s / 3600) % 24, (s / 60) % 60, s % 60);
    if days > 0 {
        format!("{days}d {h}h {m}m {s}s")
    } else {
        format!("{h}h {m}m {s}s")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn uptime_like_seed() {
        assert_eq!(
            super::human_duration(Duration::from_secs(8130)),
            "2h 15m 30s"
        );
        assert_eq!(
            super::human_duration(Duration::from_secs(90_061)),
            "1d 1h 1m 1s"
        );
    }
}

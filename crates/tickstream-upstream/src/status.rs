//! What a venue ingestor knows about itself: [`Status`], the shell's
//! [`CommonStatus`] plus the state of its stream connections and REST
//! fallback, shared by the connection tasks and the fallback poller
//! (writers), `/health` and the heartbeat (readers).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::Utc;
use serde_json::json;
use tickstream_bus::{FeedMode, FeedStatus, Heartbeat, RedisHealth};
use tickstream_ingest_shell::status::{Assessment, CommonStatus, Moment, Problem};
use tickstream_runtime::health::HealthStatus;
use tokio::sync::watch;

/// Live state of one running upstream ingestor; atomics on the hot path.
#[derive(Debug)]
pub struct Status {
    /// Uptime, port, Redis, the startup problem and what was published.
    common: CommonStatus,
    /// Number of stream connections the venue wants open (changes when a reload
    /// crosses a per-connection limit).
    expected_connections: AtomicUsize,
    /// Stream connections currently up.
    connected: AtomicUsize,
    /// Tells the fallback poller whether the whole stream is up; `send_replace` never blocks.
    stream_up: watch::Sender<bool>,
    /// Connections re-established after a loss.
    reconnects: AtomicU64,
    /// The last frame of any kind from the upstream.
    last_message: Moment,
    /// Whether the REST fallback is polling.
    fallback_active: AtomicBool,
}

impl Status {
    /// A fresh status: loading, disconnected, nothing published.
    pub fn new(
        source: &'static str,
        port: u16,
        symbols: Vec<String>,
        expected_connections: usize,
        redis: Arc<RedisHealth>,
    ) -> Self {
        Self {
            common: CommonStatus::new(source, port, symbols, redis),
            expected_connections: AtomicUsize::new(expected_connections.max(1)),
            connected: AtomicUsize::new(0),
            stream_up: watch::channel(false).0,
            reconnects: AtomicU64::new(0),
            last_message: Moment::never(),
            fallback_active: AtomicBool::new(false),
        }
    }

    /// What every ingestor reports (problem, symbols, publishing), written by the publisher.
    pub fn common(&self) -> &CommonStatus {
        &self.common
    }

    /// Sets or clears the startup/configuration problem.
    pub fn set_problem(&self, problem: Option<Problem>) {
        self.common.set_problem(problem);
    }

    /// A stream connection came up; returns whether the whole stream is now up.
    pub fn connection_up(&self) -> bool {
        self.connected.fetch_add(1, Ordering::AcqRel);
        self.recompute_stream_up()
    }

    /// A stream connection went down (lost, or closed because a reload left it no streams).
    pub fn connection_down(&self) {
        let _ = self
            .connected
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        self.recompute_stream_up();
    }

    /// A reload changed how many connections the venue keeps open.
    pub fn set_expected_connections(&self, n: usize) {
        self.expected_connections.store(n.max(1), Ordering::Release);
        self.recompute_stream_up();
    }

    /// How many connections the venue wants open now.
    pub fn expected_connections(&self) -> usize {
        self.expected_connections.load(Ordering::Acquire)
    }

    /// Every connection has been closed (an operator's stop): none is up.
    pub fn reset_connections(&self) {
        self.connected.store(0, Ordering::Release);
        self.recompute_stream_up();
    }

    /// The stream is up while every expected connection is.
    fn recompute_stream_up(&self) -> bool {
        let up = self.connected.load(Ordering::Acquire)
            >= self.expected_connections.load(Ordering::Acquire);
        self.stream_up.send_if_modified(|v| {
            let changed = *v != up;
            *v = up;
            changed
        });
        up
    }

    /// Whether every stream connection is up.
    pub fn stream_up(&self) -> bool {
        *self.stream_up.borrow()
    }

    /// A receiver that sees every change of [`Self::stream_up`], for the fallback poller.
    pub fn watch_stream(&self) -> watch::Receiver<bool> {
        self.stream_up.subscribe()
    }

    /// Counts a re-established connection.
    pub fn reconnected(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// Records that a frame arrived now.
    pub fn message_received(&self) {
        self.last_message.set(Utc::now());
    }

    /// Records whether the REST fallback polls.
    pub fn set_fallback(&self, active: bool) {
        self.fallback_active.store(active, Ordering::Relaxed);
    }

    /// The status word and why: blocked → unhealthy; loading, Redis down, stream down → degraded.
    pub fn assess(&self) -> Assessment {
        self.common.assess(|| {
            let why = if self.fallback_active.load(Ordering::Relaxed) {
                "upstream stream disconnected; serving from the REST fallback"
            } else {
                "upstream stream disconnected"
            };
            (!self.stream_up()).then(|| why.to_owned())
        })
    }

    /// The `/health` body and status.
    pub fn health(&self) -> (HealthStatus, serde_json::Value) {
        let upstream = json!({
            "upstream": {
                "connected": self.stream_up(),
                "connections": self.connected.load(Ordering::Relaxed),
                "expected_connections": self.expected_connections.load(Ordering::Relaxed),
                "last_message_age_seconds": self.last_message.age_seconds(),
                "reconnects": self.reconnects.load(Ordering::Relaxed),
                "fallback_active": self.fallback_active.load(Ordering::Relaxed),
            },
        });
        self.common.health(self.assess(), upstream)
    }

    /// The feed status published on `feeds`: `rest` while the fallback polls, else `stream`.
    pub fn feed_status(&self) -> FeedStatus {
        let mode = if self.fallback_active.load(Ordering::Relaxed) {
            FeedMode::Rest
        } else {
            FeedMode::Stream
        };
        let age_ms = self
            .last_message
            .age_seconds()
            .map(|s| (s * 1000.0).round() as u64);
        self.common.feed_status(
            self.assess(),
            (mode, self.stream_up()),
            age_ms,
            self.reconnects.load(Ordering::Relaxed),
        )
    }

    /// The heartbeat record the gateway reads for its `/health` and `/symbols`.
    pub fn heartbeat(&self) -> Heartbeat {
        self.common.heartbeat(self.assess())
    }
}

#[cfg(test)]
mod tests {
    use tickstream_bus::IngestorStatus;

    use super::*;

    #[test]
    fn health_walks_through_the_states() {
        let redis = Arc::new(RedisHealth::default());
        let s = Status::new("binance", 9101, vec!["BTCUSDT".into()], 1, redis.clone());
        assert_eq!(s.assess().0, HealthStatus::Degraded);
        s.set_problem(Some(Problem::Blocked("FINNHUB_API_KEY is not set".into())));
        let (st, body) = s.health();
        assert_eq!(st, HealthStatus::Unhealthy);
        assert_eq!(body["message"], "FINNHUB_API_KEY is not set");
        assert_eq!(s.heartbeat().status, IngestorStatus::Unhealthy);

        s.set_problem(None);
        redis.mark_up();
        assert_eq!(s.assess().0, HealthStatus::Degraded, "stream still down");
        assert!(s.connection_up());
        s.message_received();
        s.common().published(1, Utc::now());
        let (st, body) = s.health();
        assert_eq!(st, HealthStatus::Healthy, "{body}");
        assert_eq!(body["upstream"]["connected"], true);
        assert_eq!(body["service"], "ingest-binance");
        assert!(
            body["upstream"]["last_message_age_seconds"]
                .as_f64()
                .unwrap()
                < 5.0
        );

        s.connection_down();
        s.set_fallback(true);
        let (st, body) = s.health();
        assert_eq!(st, HealthStatus::Degraded);
        assert!(body["message"].as_str().unwrap().contains("REST fallback"));
    }

    #[test]
    fn stream_is_up_only_when_every_connection_is() {
        let s = Status::new("binance", 0, vec![], 2, Arc::new(RedisHealth::default()));
        assert!(!s.connection_up());
        assert!(s.connection_up());
        s.connection_down();
        assert!(!s.stream_up());
    }

    #[test]
    fn a_reload_changes_symbols_and_connection_count() {
        let s = Status::new(
            "binance",
            0,
            vec!["A".into()],
            1,
            Arc::new(RedisHealth::default()),
        );
        assert!(s.connection_up());
        // A second connection is opened: down until it is up.
        s.set_expected_connections(2);
        assert!(!s.stream_up());
        assert!(s.connection_up());
        // One is closed because it has no streams left: the rest is still whole.
        s.set_expected_connections(1);
        s.connection_down();
        assert!(s.stream_up());
        s.common().set_symbols(vec!["B".into(), "C".into()]);
        assert_eq!(s.health().1["symbols"], serde_json::json!(["B", "C"]));
        assert_eq!(s.heartbeat().symbols, vec!["B", "C"]);
    }
}

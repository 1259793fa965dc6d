//! What an ingestor knows about itself: [`CommonStatus`], the part every
//! ingestor shares (the simulator too), and [`Status`], an upstream
//! ingestor's, shared by the connection tasks and the fallback poller
//! (writers), `/health` and the heartbeat (readers).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::json;
use tickstream_bus::{Heartbeat, IngestorStatus, RedisHealth};
use tickstream_runtime::health::HealthStatus;
use tokio::sync::watch;

/// Epoch-ms sentinel for "never".
const NEVER: i64 = i64::MIN;

/// Why the service cannot do its job, when the reason is ours rather than Redis's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Starting: seq counters not loaded from Redis yet (degraded).
    Loading(String),
    /// Someone must act, e.g. a missing API key (unhealthy).
    Blocked(String),
}

/// The status word and, unless healthy, why.
pub type Assessment = (HealthStatus, Option<String>);

/// What every ingestor knows about itself, whatever feeds it: uptime, its
/// port, Redis, a startup problem, and what it has published. Atomics on the
/// publish path.
#[derive(Debug)]
pub struct CommonStatus {
    /// The ingestor's name: `source` of its ticks, its heartbeat name, `ingest-<source>` in `/health`.
    source: &'static str,
    /// For `uptime`.
    started: Instant,
    /// Ops port actually bound (differs from the config when that is 0).
    port: u16,
    /// Redis reachability as seen by every command on the shared handle.
    redis: Arc<RedisHealth>,
    /// Whether the most recent publish failed (false before the first).
    last_publish_failed: AtomicBool,
    /// Ticks Redis accepted since start.
    ticks_published: AtomicU64,
    /// Time of the newest published tick, epoch ms, or [`NEVER`].
    last_tick_ms: AtomicI64,
    /// Startup or configuration problem, if any; starts as loading the seq counters.
    problem: Mutex<Option<Problem>>,
}

impl CommonStatus {
    /// A fresh status: loading seq counters, nothing published yet.
    pub fn new(source: &'static str, port: u16, redis: Arc<RedisHealth>) -> Self {
        Self {
            source,
            started: Instant::now(),
            port,
            redis,
            last_publish_failed: AtomicBool::new(false),
            ticks_published: AtomicU64::new(0),
            last_tick_ms: AtomicI64::new(NEVER),
            problem: Mutex::new(Some(Problem::Loading(
                "loading seq counters from Redis".to_owned(),
            ))),
        }
    }

    /// Sets or clears the startup/configuration problem.
    pub fn set_problem(&self, problem: Option<Problem>) {
        if let Ok(mut p) = self.problem.lock() {
            *p = problem;
        }
    }

    /// Records a successful publish of `count` ticks whose newest time is `at`.
    pub fn published(&self, count: usize, at: DateTime<Utc>) {
        self.last_publish_failed.store(false, Ordering::Release);
        self.ticks_published
            .fetch_add(count as u64, Ordering::Relaxed);
        self.last_tick_ms
            .fetch_max(at.timestamp_millis(), Ordering::Relaxed);
    }

    /// Records a failed publish.
    pub fn publish_failed(&self) {
        self.last_publish_failed.store(true, Ordering::Release);
    }

    /// Whether the last publish failed.
    pub fn last_publish_failed(&self) -> bool {
        self.last_publish_failed.load(Ordering::Acquire)
    }

    /// Ticks published since start.
    pub fn ticks_published(&self) -> u64 {
        self.ticks_published.load(Ordering::Relaxed)
    }

    /// Time of the newest published tick, if any.
    pub fn last_tick(&self) -> Option<DateTime<Utc>> {
        at(&self.last_tick_ms)
    }

    /// The status word and why, in order: our problem (blocked → unhealthy,
    /// loading → degraded), Redis down, then `own` (a reason of the caller's,
    /// e.g. the stream is down), then a failed last publish, all degraded.
    pub fn assess(&self, own: impl FnOnce() -> Option<String>) -> Assessment {
        match self.problem.lock().ok().and_then(|p| p.clone()) {
            Some(Problem::Blocked(why)) => return (HealthStatus::Unhealthy, Some(why)),
            Some(Problem::Loading(why)) => return (HealthStatus::Degraded, Some(why)),
            None => {}
        }
        if !self.redis.is_up() {
            let why = self
                .redis
                .last_error()
                .unwrap_or_else(|| "not connected".to_owned());
            return (
                HealthStatus::Degraded,
                Some(format!("Redis unreachable: {why}")),
            );
        }
        if let Some(why) = own() {
            return (HealthStatus::Degraded, Some(why));
        }
        if self.last_publish_failed() {
            return (
                HealthStatus::Degraded,
                Some("last publish to Redis failed".to_owned()),
            );
        }
        (HealthStatus::Healthy, None)
    }

    /// The `/health` status and body: the fields every ingestor reports, the
    /// `symbols` it serves, and the fields of `own` (an object: `upstream`, `rate`).
    pub fn health(
        &self,
        (status, message): Assessment,
        symbols: Vec<String>,
        own: serde_json::Value,
    ) -> (HealthStatus, serde_json::Value) {
        let redis_up = self.redis.is_up();
        let mut body = json!({
            "service": format!("ingest-{}", self.source),
            "status": status.as_str(),
            "port": self.port,
            "timestamp": tickstream_model::time::format(&tickstream_model::time::now_millis()),
            "uptime": tickstream_runtime::human_duration(self.started.elapsed()),
            "uptime_seconds": self.started.elapsed().as_secs(),
            "dependencies": {
                "redis": {
                    "status": if redis_up { "healthy" } else { "unhealthy" },
                    "message": if redis_up { "connected".to_owned() } else {
                        self.redis.last_error().unwrap_or_else(|| "not connected".to_owned())
                    },
                }
            },
            "source": self.source,
            "symbols": symbols,
            "ticks_published": self.ticks_published(),
            "last_tick_age_seconds": age_seconds(self.last_tick()),
        });
        if let Some(obj) = body.as_object_mut() {
            if let serde_json::Value::Object(own) = own {
                obj.extend(own);
            }
            if let Some(message) = message {
                obj.insert("message".to_owned(), message.into());
            }
        }
        (status, body)
    }

    /// The heartbeat record the gateway reads for its `/health` and `/symbols`.
    pub fn heartbeat(&self, (status, message): Assessment, symbols: Vec<String>) -> Heartbeat {
        Heartbeat {
            name: self.source.to_owned(),
            status: match status {
                HealthStatus::Healthy => IngestorStatus::Healthy,
                HealthStatus::Degraded => IngestorStatus::Degraded,
                HealthStatus::Unhealthy => IngestorStatus::Unhealthy,
            },
            message,
            symbols,
            last_tick: self.last_tick().map(|t| tickstream_model::time::format(&t)),
            ticks_published: self.ticks_published(),
            updated_at: tickstream_model::time::format(&tickstream_model::time::now_millis()),
        }
    }
}

/// The time in an epoch-ms cell, or `None` for [`NEVER`].
fn at(ms: &AtomicI64) -> Option<DateTime<Utc>> {
    match ms.load(Ordering::Relaxed) {
        NEVER => None,
        v => tickstream_model::time::from_millis(v),
    }
}

/// Seconds since `t`, never negative, ms precision.
fn age_seconds(t: Option<DateTime<Utc>>) -> Option<f64> {
    t.map(|t| (Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0)
}

/// Live state of one running upstream ingestor; atomics on the hot path.
#[derive(Debug)]
pub struct Status {
    /// Uptime, port, Redis, the startup problem and what was published.
    common: CommonStatus,
    /// Normalized symbols served now (a SIGHUP reload replaces them).
    symbols: Mutex<Vec<String>>,
    /// Number of stream connections the venue wants open (changes when a reload
    /// crosses a per-connection limit).
    expected_connections: AtomicUsize,
    /// Stream connections currently up.
    connected: AtomicUsize,
    /// Tells the fallback poller whether the whole stream is up; `send_replace` never blocks.
    stream_up: watch::Sender<bool>,
    /// Connections re-established after a loss.
    reconnects: AtomicU64,
    /// Epoch ms of the last frame of any kind from the upstream.
    last_message_ms: AtomicI64,
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
            common: CommonStatus::new(source, port, redis),
            symbols: Mutex::new(symbols),
            expected_connections: AtomicUsize::new(expected_connections.max(1)),
            connected: AtomicUsize::new(0),
            stream_up: watch::channel(false).0,
            reconnects: AtomicU64::new(0),
            last_message_ms: AtomicI64::new(NEVER),
            fallback_active: AtomicBool::new(false),
        }
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

    /// Replaces the symbols reported by `/health` and the heartbeat after a reload.
    pub fn set_symbols(&self, symbols: Vec<String>) {
        match self.symbols.lock() {
            Ok(mut g) => *g = symbols,
            Err(poisoned) => *poisoned.into_inner() = symbols,
        }
    }

    /// The symbols served now.
    pub fn symbols(&self) -> Vec<String> {
        match self.symbols.lock() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
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
        self.last_message_ms
            .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    /// Records whether the REST fallback polls.
    pub fn set_fallback(&self, active: bool) {
        self.fallback_active.store(active, Ordering::Relaxed);
    }

    /// Records a successful publish of `count` ticks whose newest event time is `at`.
    pub fn published(&self, count: usize, at: DateTime<Utc>) {
        self.common.published(count, at);
    }

    /// Records a failed publish.
    pub fn publish_failed(&self) {
        self.common.publish_failed();
    }

    /// Ticks published since start.
    pub fn ticks_published(&self) -> u64 {
        self.common.ticks_published()
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
                "last_message_age_seconds": age_seconds(at(&self.last_message_ms)),
                "reconnects": self.reconnects.load(Ordering::Relaxed),
                "fallback_active": self.fallback_active.load(Ordering::Relaxed),
            },
        });
        self.common.health(self.assess(), self.symbols(), upstream)
    }

    /// The heartbeat record the gateway reads for its `/health` and `/symbols`.
    pub fn heartbeat(&self) -> Heartbeat {
        self.common.heartbeat(self.assess(), self.symbols())
    }
}

#[cfg(test)]
mod tests {
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
        s.published(1, Utc::now());
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
        s.set_symbols(vec!["B".into(), "C".into()]);
        assert_eq!(s.health().1["symbols"], serde_json::json!(["B", "C"]));
        assert_eq!(s.heartbeat().symbols, vec!["B", "C"]);
    }
}

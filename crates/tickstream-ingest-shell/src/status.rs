//! What every ingestor knows about itself, whatever feeds it: [`CommonStatus`]
//! (uptime, port, Redis, a startup problem, the symbols served and what was
//! published), written by the publish path and read by `/health` and the
//! heartbeat. A venue ingestor wraps it with its connection state
//! (`tickstream_upstream::Status`); the simulator uses it as it is.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::json;
use tickstream_bus::{FeedMode, FeedStatus, Heartbeat, IngestorStatus, RedisHealth};
use tickstream_runtime::health::HealthStatus;

/// Epoch-ms sentinel for "never".
const NEVER: i64 = i64::MIN;
/// The reason `/health` and the heartbeat give while an operator has stopped the feed.
pub const STOPPED_MESSAGE: &str = "stopped by an operator (POST /feeds/{name}/start resumes it)";

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

/// A point in time shared between tasks without a lock (the newest tick, the
/// last upstream frame), so the hot path never waits for a reader.
#[derive(Debug)]
pub struct Moment(AtomicI64);

impl Moment {
    /// A moment that has not happened yet.
    pub fn never() -> Self {
        Self(AtomicI64::new(NEVER))
    }

    /// Records `at`, replacing what was there.
    pub fn set(&self, at: DateTime<Utc>) {
        self.0.store(at.timestamp_millis(), Ordering::Relaxed);
    }

    /// Records `at` unless a later time is already there (batches may finish out of order).
    pub fn raise(&self, at: DateTime<Utc>) {
        self.0.fetch_max(at.timestamp_millis(), Ordering::Relaxed);
    }

    /// The recorded time, or `None` if it never happened.
    pub fn get(&self) -> Option<DateTime<Utc>> {
        match self.0.load(Ordering::Relaxed) {
            NEVER => None,
            v => tickstream_model::time::from_millis(v),
        }
    }

    /// Seconds since the recorded time (never negative, ms precision), as `/health` reports ages.
    pub fn age_seconds(&self) -> Option<f64> {
        self.get()
            .map(|t| (Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0)
    }
}

/// What every ingestor knows about itself, whatever feeds it: uptime, its
/// port, Redis, a startup problem, the symbols it serves, and what it has
/// published. Atomics on the publish path.
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
    /// Normalized symbols served now (a SIGHUP reload may replace them).
    symbols: Mutex<Vec<String>>,
    /// Whether the most recent publish failed (false before the first).
    last_publish_failed: AtomicBool,
    /// Ticks Redis accepted since start.
    ticks_published: AtomicU64,
    /// Time of the newest published tick.
    last_tick: Moment,
    /// Startup or configuration problem, if any; starts as loading the seq counters.
    problem: Mutex<Option<Problem>>,
    /// Whether an operator has stopped the feed (and it has let go of its upstream).
    stopped: AtomicBool,
    /// Symbols it adds while some client wants them (on-demand mode; empty otherwise),
    /// reported in its feed status beside the ones it serves now.
    on_demand: Mutex<Vec<String>>,
}

impl CommonStatus {
    /// A fresh status serving `symbols`: loading seq counters, nothing published yet.
    pub fn new(
        source: &'static str,
        port: u16,
        symbols: Vec<String>,
        redis: Arc<RedisHealth>,
    ) -> Self {
        Self {
            source,
            started: Instant::now(),
            port,
            redis,
            symbols: Mutex::new(symbols),
            on_demand: Mutex::new(Vec::new()),
            last_publish_failed: AtomicBool::new(false),
            ticks_published: AtomicU64::new(0),
            last_tick: Moment::never(),
            problem: Mutex::new(Some(Problem::Loading(
                "loading seq counters from Redis".to_owned(),
            ))),
            stopped: AtomicBool::new(false),
        }
    }

    /// Records that the feed has stopped (upstream closed, nothing published) or runs again.
    pub fn set_stopped(&self, stopped: bool) {
        self.stopped.store(stopped, Ordering::Release);
    }

    /// Whether an operator has stopped the feed.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// The feed status published on `feeds`: `mode` and `connected` are the
    /// caller's while running; a stopped feed reports status and mode
    /// `stopped`, not connected.
    pub fn feed_status(
        &self,
        (status, _): Assessment,
        running: (FeedMode, bool),
        last_message_age_ms: Option<u64>,
        reconnects: u64,
    ) -> FeedStatus {
        let stopped = self.is_stopped();
        let (mode, connected) = if stopped {
            (FeedMode::Stopped, false)
        } else {
            running
        };
        FeedStatus {
            name: self.source.to_owned(),
            status: if stopped { "stopped" } else { status.as_str() }.to_owned(),
            mode,
            connected,
            symbols: self.symbols(),
            can_serve: self.can_serve(),
            on_demand: self.is_on_demand(),
            last_message_age_ms,
            reconnects,
            timestamp: tickstream_model::time::format(&tickstream_model::time::now_millis()),
        }
    }

    /// Milliseconds since the newest published tick, if any.
    pub fn last_tick_age_ms(&self) -> Option<u64> {
        self.last_tick
            .age_seconds()
            .map(|s| (s * 1000.0).round() as u64)
    }

    /// The ingestor's name, as its ticks' `source` and its heartbeat's name.
    pub fn source(&self) -> &'static str {
        self.source
    }

    /// Sets or clears the startup/configuration problem.
    pub fn set_problem(&self, problem: Option<Problem>) {
        if let Ok(mut p) = self.problem.lock() {
            *p = problem;
        }
    }

    /// Records why the ingestor waits (degraded), unless it is already blocked
    /// on something only an operator can fix, which stays the reported reason.
    pub fn set_loading(&self, why: String) {
        if let Ok(mut p) = self.problem.lock() {
            if !matches!(*p, Some(Problem::Blocked(_))) {
                *p = Some(Problem::Loading(why));
            }
        }
    }

    /// Replaces the symbols reported by `/health` and the heartbeat (after a reload).
    pub fn set_symbols(&self, symbols: Vec<String>) {
        match self.symbols.lock() {
            Ok(mut g) => *g = symbols,
            Err(poisoned) => *poisoned.into_inner() = symbols,
        }
    }

    /// Records the symbols it may add on demand (on-demand mode), for its feed status.
    pub fn set_on_demand(&self, symbols: Vec<String>) {
        match self.on_demand.lock() {
            Ok(mut g) => *g = symbols,
            Err(poisoned) => *poisoned.into_inner() = symbols,
        }
    }

    /// Every symbol it can serve: those served now, then the on-demand ones not among them.
    pub fn can_serve(&self) -> Vec<String> {
        let mut out = self.symbols();
        let extra = match self.on_demand.lock() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        for s in extra {
            if !out.contains(&s) {
                out.push(s);
            }
        }
        out
    }

    /// Whether it runs in on-demand mode.
    fn is_on_demand(&self) -> bool {
        match self.on_demand.lock() {
            Ok(g) => !g.is_empty(),
            Err(poisoned) => !poisoned.into_inner().is_empty(),
        }
    }

    /// The symbols served now.
    pub fn symbols(&self) -> Vec<String> {
        match self.symbols.lock() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Records a successful publish of `count` ticks whose newest time is `at`.
    pub fn published(&self, count: usize, at: DateTime<Utc>) {
        self.last_publish_failed.store(false, Ordering::Release);
        self.ticks_published
            .fetch_add(count as u64, Ordering::Relaxed);
        self.last_tick.raise(at);
    }

    /// Records a failed publish.
    pub fn publish_failed(&self) {
        self.last_publish_failed.store(true, Ordering::Release);
    }

    /// Whether the last publish failed (a shutdown flush is skipped then).
    pub fn last_publish_failed(&self) -> bool {
        self.last_publish_failed.load(Ordering::Acquire)
    }

    /// Ticks published since start.
    pub fn ticks_published(&self) -> u64 {
        self.ticks_published.load(Ordering::Relaxed)
    }

    /// Time of the newest published tick, if any.
    pub fn last_tick(&self) -> Option<DateTime<Utc>> {
        self.last_tick.get()
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
        if self.is_stopped() {
            // Stopped on purpose: nothing is wrong, and nothing else applies.
            return (HealthStatus::Healthy, Some(STOPPED_MESSAGE.to_owned()));
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

    /// The `/health` status and body: the fields every ingestor reports, and
    /// the fields of `own` (an object: `upstream`, `rate`).
    pub fn health(
        &self,
        (status, message): Assessment,
        own: serde_json::Value,
    ) -> (HealthStatus, serde_json::Value) {
        let redis_up = self.redis.is_up();
        let word = if self.is_stopped() && status == HealthStatus::Healthy {
            "stopped"
        } else {
            status.as_str()
        };
        let mut body = json!({
            "service": format!("ingest-{}", self.source),
            "status": word,
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
            "symbols": self.symbols(),
            "ticks_published": self.ticks_published(),
            "last_tick_age_seconds": self.last_tick.age_seconds(),
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
    pub fn heartbeat(&self, (status, message): Assessment) -> Heartbeat {
        Heartbeat {
            name: self.source.to_owned(),
            status: match status {
                HealthStatus::Healthy => IngestorStatus::Healthy,
                HealthStatus::Degraded => IngestorStatus::Degraded,
                HealthStatus::Unhealthy => IngestorStatus::Unhealthy,
            },
            message,
            symbols: self.symbols(),
            last_tick: self.last_tick().map(|t| tickstream_model::time::format(&t)),
            ticks_published: self.ticks_published(),
            updated_at: tickstream_model::time::format(&tickstream_model::time::now_millis()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> (CommonStatus, Arc<RedisHealth>) {
        let redis = Arc::new(RedisHealth::default());
        let s = CommonStatus::new(
            "sim",
            9100,
            vec!["BTCUSDT".into(), "EUR/USD".into()],
            redis.clone(),
        );
        (s, redis)
    }

    #[test]
    fn degraded_until_ready_and_redis_up() {
        let (s, redis) = status();
        let (st, body) = s.health(s.assess(|| None), json!({ "rate": 8.0 }));
        assert_eq!(st, HealthStatus::Degraded);
        assert_eq!(body["status"], "degraded");
        assert!(body["message"].as_str().unwrap().contains("seq"), "{body}");
        assert!(body["last_tick_age_seconds"].is_null());
        assert_eq!(body["dependencies"]["redis"]["status"], "unhealthy");

        redis.mark_up();
        s.set_problem(None);
        s.published(5, Utc::now());
        let (st, body) = s.health(s.assess(|| None), json!({ "rate": 8.0 }));
        assert_eq!(st, HealthStatus::Healthy, "{body}");
        assert_eq!(body["service"], "ingest-sim");
        assert_eq!(body["port"], 9100);
        assert_eq!(body["rate"], 8.0);
        assert_eq!(body["symbols"], json!(["BTCUSDT", "EUR/USD"]));
        assert_eq!(body["ticks_published"], 5);
        assert!(body["last_tick_age_seconds"].as_f64().unwrap() < 5.0);
        assert!(body.get("message").is_none());
        assert_eq!(body["dependencies"]["redis"]["status"], "healthy");

        redis.mark_down("connection refused");
        s.publish_failed();
        let (st, body) = s.health(s.assess(|| None), json!({}));
        assert_eq!(st, HealthStatus::Degraded);
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("connection refused"),
            "{body}"
        );
        assert_eq!(
            body["dependencies"]["redis"]["message"],
            "connection refused"
        );
    }

    #[test]
    fn heartbeat_mirrors_status() {
        let (s, redis) = status();
        assert_eq!(
            s.heartbeat(s.assess(|| None)).status,
            IngestorStatus::Degraded
        );
        redis.mark_up();
        s.set_problem(None);
        let t = tickstream_model::time::parse("2025-11-01T10:30:00.123Z").unwrap();
        s.published(2, t);
        let hb = s.heartbeat(s.assess(|| None));
        assert_eq!(hb.name, "sim");
        assert_eq!(hb.status, IngestorStatus::Healthy);
        assert_eq!(hb.message, None);
        assert_eq!(hb.last_tick.as_deref(), Some("2025-11-01T10:30:00.123Z"));
        assert_eq!(hb.ticks_published, 2);
        assert_eq!(hb.symbols, ["BTCUSDT", "EUR/USD"]);
    }

    #[test]
    fn stopped_is_healthy_with_a_reason() {
        let (s, redis) = status();
        redis.mark_up();
        s.set_problem(None);
        s.set_stopped(true);
        let (st, body) = s.health(s.assess(|| Some("stream down".into())), json!({}));
        assert_eq!(st, HealthStatus::Healthy, "{body}");
        assert_eq!(body["status"], "stopped");
        assert_eq!(body["message"], STOPPED_MESSAGE);
        let hb = s.heartbeat(s.assess(|| None));
        assert_eq!(hb.status, IngestorStatus::Healthy);
        let f = s.feed_status(s.assess(|| None), (FeedMode::Stream, true), None, 0);
        assert_eq!(
            (f.status.as_str(), f.mode, f.connected),
            ("stopped", FeedMode::Stopped, false)
        );
        s.set_stopped(false);
        let f = s.feed_status(s.assess(|| None), (FeedMode::Rest, false), Some(5), 2);
        assert_eq!(
            (f.status.as_str(), f.mode, f.reconnects),
            ("healthy", FeedMode::Rest, 2)
        );
        assert_eq!(
            s.health(s.assess(|| None), json!({})).1["status"],
            "healthy"
        );
    }

    #[test]
    fn loading_never_hides_a_blocking_problem() {
        let (s, _) = status();
        s.set_problem(Some(Problem::Blocked("FINNHUB_API_KEY is not set".into())));
        s.set_loading("waiting for Redis".into());
        assert_eq!(
            s.assess(|| None),
            (
                HealthStatus::Unhealthy,
                Some("FINNHUB_API_KEY is not set".into())
            )
        );
        s.set_problem(None);
        s.set_loading("waiting for Redis".into());
        assert_eq!(s.assess(|| None).0, HealthStatus::Degraded);
    }
}

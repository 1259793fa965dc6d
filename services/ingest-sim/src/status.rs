//! What the simulator knows about itself, shared by the generator (writer),
//! `/health` and the heartbeat (readers).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::json;
use tickstream_bus::{Heartbeat, IngestorStatus, RedisHealth};
use tickstream_runtime::health::HealthStatus;

use crate::model::SOURCE;

/// The service name in `/health`.
pub const SERVICE: &str = "ingest-sim";

/// `last_tick_ms` before the first published tick.
const NO_TICK: i64 = i64::MIN;

/// Live state of one running simulator; lock-free on the generator's path.
#[derive(Debug)]
pub struct Status {
    /// For `uptime`.
    started: Instant,
    /// Ops port actually bound (differs from config when it is 0).
    port: u16,
    /// Normalized symbols, as heartbeats and `/health` list them.
    symbols: Vec<String>,
    /// Configured total ticks per second.
    rate: f64,
    /// Redis reachability as seen by every command on the shared handle.
    redis: Arc<RedisHealth>,
    /// Whether the most recent batch publish failed (false before the first).
    last_publish_failed: AtomicBool,
    /// Ticks Redis accepted since start.
    ticks_published: AtomicU64,
    /// Generation time of the newest published tick, epoch ms, or [`NO_TICK`].
    last_tick_ms: AtomicI64,
    /// Why the service is not healthy, when the reason is ours rather than
    /// Redis's; starts as "loading seq counters" until [`Status::set_ready`].
    problem: Mutex<Option<String>>,
}

impl Status {
    /// A fresh status: not ready, nothing published yet.
    pub fn new(port: u16, symbols: Vec<String>, rate: f64, redis: Arc<RedisHealth>) -> Self {
        Self {
            started: Instant::now(),
            port,
            symbols,
            rate,
            redis,
            last_publish_failed: AtomicBool::new(false),
            ticks_published: AtomicU64::new(0),
            last_tick_ms: AtomicI64::new(NO_TICK),
            problem: Mutex::new(Some("loading seq counters from Redis".to_owned())),
        }
    }

    /// Seq counters are known: publishing may start, so the startup problem is over.
    pub fn set_ready(&self) {
        self.set_problem(None);
    }

    /// Records why we are not publishing (startup trouble) or clears it.
    pub fn set_problem(&self, problem: Option<String>) {
        if let Ok(mut p) = self.problem.lock() {
            *p = problem;
        }
    }

    /// Records a successful batch of `count` ticks generated at `at`.
    pub fn published(&self, count: usize, at: DateTime<Utc>) {
        self.last_publish_failed.store(false, Ordering::Release);
        self.ticks_published
            .fetch_add(count as u64, Ordering::Relaxed);
        self.last_tick_ms
            .fetch_max(at.timestamp_millis(), Ordering::Relaxed);
    }

    /// Records a failed batch publish.
    pub fn publish_failed(&self) {
        self.last_publish_failed.store(true, Ordering::Release);
    }

    /// Whether the last publish failed; the shutdown flush is skipped then.
    pub fn last_publish_failed(&self) -> bool {
        self.last_publish_failed.load(Ordering::Acquire)
    }

    /// Ticks published since start.
    pub fn ticks_published(&self) -> u64 {
        self.ticks_published.load(Ordering::Relaxed)
    }

    fn last_tick(&self) -> Option<DateTime<Utc>> {
        match self.last_tick_ms.load(Ordering::Relaxed) {
            NO_TICK => None,
            ms => tickstream_model::time::from_millis(ms),
        }
    }

    /// Healthy when seqs are loaded, Redis answers and the last publish worked; degraded otherwise, with the reason.
    pub fn assess(&self) -> (HealthStatus, Option<String>) {
        if let Some(problem) = self.problem.lock().ok().and_then(|p| p.clone()) {
            return (HealthStatus::Degraded, Some(problem));
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
        if self.last_publish_failed() {
            return (
                HealthStatus::Degraded,
                Some("last publish to Redis failed".to_owned()),
            );
        }
        (HealthStatus::Healthy, None)
    }

    /// The `/health` body and status.
    pub fn health(&self) -> (HealthStatus, serde_json::Value) {
        let (status, message) = self.assess();
        let now = Utc::now();
        let redis_up = self.redis.is_up();
        let redis_message = if redis_up {
            "connected".to_owned()
        } else {
            self.redis
                .last_error()
                .unwrap_or_else(|| "not connected".to_owned())
        };
        let last_tick_age = self
            .last_tick()
            .map(|t| (now - t).num_milliseconds().max(0) as f64 / 1000.0);
        let mut body = json!({
            "service": SERVICE,
            "status": status.as_str(),
            "port": self.port,
            "timestamp": tickstream_model::time::format(&tickstream_model::time::now_millis()),
            "uptime": tickstream_runtime::human_duration(self.started.elapsed()),
            "uptime_seconds": self.started.elapsed().as_secs(),
            "dependencies": {
                "redis": {
                    "status": if redis_up { "healthy" } else { "unhealthy" },
                    "message": redis_message,
                }
            },
            "source": SOURCE,
            "symbols": self.symbols,
            "rate": self.rate,
            "ticks_published": self.ticks_published(),
            "last_tick_age_seconds": last_tick_age,
        });
        if let (Some(message), Some(obj)) = (message, body.as_object_mut()) {
            obj.insert("message".to_owned(), message.into());
        }
        (status, body)
    }

    /// The heartbeat record the gateway reads for its `/health` and `/symbols`.
    pub fn heartbeat(&self) -> Heartbeat {
        let (status, message) = self.assess();
        Heartbeat {
            name: SOURCE.to_owned(),
            status: match status {
                HealthStatus::Healthy => IngestorStatus::Healthy,
                HealthStatus::Degraded => IngestorStatus::Degraded,
                HealthStatus::Unhealthy => IngestorStatus::Unhealthy,
            },
            message,
            symbols: self.symbols.clone(),
            last_tick: self.last_tick().map(|t| tickstream_model::time::format(&t)),
            ticks_published: self.ticks_published(),
            updated_at: tickstream_model::time::format(&tickstream_model::time::now_millis()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> (Status, Arc<RedisHealth>) {
        let redis = Arc::new(RedisHealth::default());
        let s = Status::new(
            9100,
            vec!["BTCUSDT".into(), "EUR/USD".into()],
            8.0,
            redis.clone(),
        );
        (s, redis)
    }

    #[test]
    fn degraded_until_ready_and_redis_up() {
        let (s, redis) = status();
        let (st, body) = s.health();
        assert_eq!(st, HealthStatus::Degraded);
        assert_eq!(body["status"], "degraded");
        assert!(body["message"].as_str().unwrap().contains("seq"), "{body}");
        assert!(body["last_tick_age_seconds"].is_null());
        assert_eq!(body["dependencies"]["redis"]["status"], "unhealthy");

        redis.mark_up();
        s.set_ready();
        s.published(5, Utc::now());
        let (st, body) = s.health();
        assert_eq!(st, HealthStatus::Healthy, "{body}");
        assert_eq!(body["service"], "ingest-sim");
        assert_eq!(body["port"], 9100);
        assert_eq!(body["symbols"], json!(["BTCUSDT", "EUR/USD"]));
        assert_eq!(body["ticks_published"], 5);
        assert!(body["last_tick_age_seconds"].as_f64().unwrap() < 5.0);
        assert!(body.get("message").is_none());
        assert_eq!(body["dependencies"]["redis"]["status"], "healthy");

        redis.mark_down("connection refused");
        s.publish_failed();
        let (st, body) = s.health();
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
        assert_eq!(s.heartbeat().status, IngestorStatus::Degraded);
        redis.mark_up();
        s.set_ready();
        let t = tickstream_model::time::parse("2025-11-01T10:30:00.123Z").unwrap();
        s.published(2, t);
        let hb = s.heartbeat();
        assert_eq!(hb.name, "sim");
        assert_eq!(hb.status, IngestorStatus::Healthy);
        assert_eq!(hb.message, None);
        assert_eq!(hb.last_tick.as_deref(), Some("2025-11-01T10:30:00.123Z"));
        assert_eq!(hb.ticks_published, 2);
        assert_eq!(hb.symbols, ["BTCUSDT", "EUR/USD"]);
    }
}

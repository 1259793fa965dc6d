//! What the service knows about itself, behind `/health` and the heartbeat.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::json;
use tickstream_bus::{FeedMode, FeedStatus, Heartbeat, IngestorStatus, RedisHealth};
use tickstream_runtime::health::HealthStatus;

/// The service's name in `/health` and its heartbeat key.
pub const NAME: &str = "analytics";

/// The reason `/health` and the heartbeat give while an operator has it stopped.
pub const STOPPED_MESSAGE: &str = "stopped by an operator (POST /feeds/analytics/start resumes it)";

/// Live state shared by the tasks (writers) and `/health` (reader).
#[derive(Debug)]
pub struct Status {
    started: Instant,
    port: u16,
    redis: Arc<RedisHealth>,
    /// The universe has been read (and its stored bars loaded) once.
    ready: AtomicBool,
    /// The symbols followed.
    symbols: Mutex<Vec<String>>,
    /// Ticks and trades received.
    inputs: AtomicU64,
    /// Events published.
    published: AtomicU64,
    /// Epoch ms of the last tick or trade received (`i64::MIN`: none yet).
    last_input_ms: AtomicI64,
    /// An operator has stopped the service: it follows no inputs and publishes nothing.
    stopped: AtomicBool,
}

impl Status {
    /// A fresh status: not ready until the universe is loaded.
    pub fn new(port: u16, redis: Arc<RedisHealth>) -> Self {
        Self {
            started: Instant::now(),
            port,
            redis,
            ready: AtomicBool::new(false),
            symbols: Mutex::new(Vec::new()),
            inputs: AtomicU64::new(0),
            published: AtomicU64::new(0),
            last_input_ms: AtomicI64::new(i64::MIN),
            stopped: AtomicBool::new(false),
        }
    }

    /// Records that an operator stopped the service (or started it again).
    pub fn set_stopped(&self, stopped: bool) {
        self.stopped.store(stopped, Ordering::Release);
    }

    /// Whether an operator has the service stopped.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// The universe was read once: the service is doing its job.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    /// Replaces the symbol list shown in `/health` and the heartbeat.
    pub fn set_symbols(&self, symbols: Vec<String>) {
        match self.symbols.lock() {
            Ok(mut g) => *g = symbols,
            Err(p) => *p.into_inner() = symbols,
        }
    }

    fn symbols(&self) -> Vec<String> {
        match self.symbols.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Counts one received tick or trade.
    pub fn input(&self) {
        self.inputs.fetch_add(1, Ordering::Relaxed);
        self.last_input_ms
            .store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    /// The feed status published on `feeds`: analytics is fed by its Redis
    /// subscription (`stream`, connected while Redis answers), or `stopped` by an operator.
    pub fn feed_status(&self) -> FeedStatus {
        let (status, _) = self.assess();
        let stopped = self.is_stopped();
        let last = self.last_input_ms.load(Ordering::Relaxed);
        let age = (last != i64::MIN)
            .then(|| u64::try_from(chrono::Utc::now().timestamp_millis() - last).unwrap_or(0));
        FeedStatus {
            name: NAME.to_owned(),
            status: if stopped { "stopped" } else { status.as_str() }.to_owned(),
            mode: if stopped {
                FeedMode::Stopped
            } else {
                FeedMode::Stream
            },
            connected: !stopped && self.redis.is_up(),
            can_serve: self.symbols(),
            on_demand: false,
            symbols: self.symbols(),
            last_message_age_ms: age,
            reconnects: self.redis.reconnects(),
            timestamp: tickstream_model::time::format(&tickstream_model::time::now_millis()),
        }
    }

    /// Counts published events.
    pub fn published(&self, n: u64) {
        self.published.fetch_add(n, Ordering::Relaxed);
    }

    /// Healthy when Redis answers and the universe is loaded; degraded otherwise, with why.
    pub fn assess(&self) -> (HealthStatus, Option<String>) {
        if self.is_stopped() {
            // Stopped on purpose: nothing is wrong.
            return (HealthStatus::Healthy, Some(STOPPED_MESSAGE.to_owned()));
        }
        if !self.redis.is_up() {
            let why = self
                .redis
                .last_error()
                .unwrap_or_else(|| "not connected yet".to_owned());
            return (HealthStatus::Degraded, Some(format!("Redis: {why}")));
        }
        if !self.ready.load(Ordering::Relaxed) {
            return (
                HealthStatus::Degraded,
                Some("loading stored bars".to_owned()),
            );
        }
        (HealthStatus::Healthy, None)
    }

    /// The `/health` status and body.
    pub fn health(&self) -> (HealthStatus, serde_json::Value) {
        let (status, message) = self.assess();
        let redis_up = self.redis.is_up();
        let word = if self.is_stopped() {
            "stopped"
        } else {
            status.as_str()
        };
        let mut body = json!({
            "status": word,
            "service": NAME,
            "port": self.port,
            "uptime": tickstream_runtime::human_duration(self.started.elapsed()),
            "timestamp": tickstream_model::time::format(&tickstream_model::time::now_millis()),
            "symbols": self.symbols(),
            "inputs_received": self.inputs.load(Ordering::Relaxed),
            "events_published": self.published.load(Ordering::Relaxed),
            "dependencies": {"redis": {
                "status": if redis_up { "healthy" } else { "unhealthy" },
                "message": if redis_up { "connected".to_owned() } else {
                    self.redis.last_error().unwrap_or_else(|| "not connected yet".to_owned())
                },
            }},
        });
        if let (Some(m), Some(obj)) = (message, body.as_object_mut()) {
            obj.insert("message".to_owned(), json!(m));
        }
        (status, body)
    }

    /// The heartbeat record (`tickstream:analytics:analytics`).
    pub fn heartbeat(&self) -> Heartbeat {
        let (status, message) = self.assess();
        Heartbeat {
            name: NAME.to_owned(),
            status: match status {
                HealthStatus::Healthy => IngestorStatus::Healthy,
                HealthStatus::Degraded => IngestorStatus::Degraded,
                HealthStatus::Unhealthy => IngestorStatus::Unhealthy,
            },
            message,
            symbols: self.symbols(),
            last_tick: None,
            ticks_published: self.published.load(Ordering::Relaxed),
            updated_at: tickstream_model::time::format(&tickstream_model::time::now_millis()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degraded_until_redis_and_ready() {
        let redis = Arc::new(RedisHealth::default());
        let s = Status::new(9105, redis.clone());
        assert_eq!(s.health().0, HealthStatus::Degraded);
        redis.mark_up();
        assert_eq!(s.assess().1.as_deref(), Some("loading stored bars"));
        s.set_ready();
        s.set_symbols(vec!["BTCUSDT".into()]);
        let (st, body) = s.health();
        assert_eq!(st, HealthStatus::Healthy);
        assert_eq!(body["service"], "analytics");
        assert_eq!(body["symbols"], json!(["BTCUSDT"]));
        assert_eq!(s.heartbeat().status, IngestorStatus::Healthy);
        s.set_stopped(true);
        let (st, body) = s.health();
        assert_eq!(
            (st, &body["status"]),
            (HealthStatus::Healthy, &json!("stopped"))
        );
        assert_eq!(body["message"], STOPPED_MESSAGE);
        let f = s.feed_status();
        assert_eq!(
            (f.status.as_str(), f.mode, f.connected),
            ("stopped", FeedMode::Stopped, false)
        );
        s.set_stopped(false);
        assert_eq!(s.feed_status().mode, FeedMode::Stream);
    }
}

//! What the simulator knows about itself, shared by the generator (writer),
//! `/health` and the heartbeat (readers). The part every ingestor has
//! (uptime, Redis, what was published) is [`CommonStatus`]; the simulator
//! adds its symbols and rate.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;
use tickstream_bus::{Heartbeat, RedisHealth};
use tickstream_runtime::health::HealthStatus;
use tickstream_upstream::status::{Assessment, CommonStatus, Problem};

use crate::model::SOURCE;

/// Live state of one running simulator; lock-free on the generator's path.
#[derive(Debug)]
pub struct Status {
    /// Uptime, port, Redis, the startup problem and what was published; starts
    /// as "loading seq counters" until [`Status::set_ready`].
    common: CommonStatus,
    /// Normalized symbols, as heartbeats and `/health` list them.
    symbols: Vec<String>,
    /// Configured total ticks per second.
    rate: f64,
}

impl Status {
    /// A fresh status: not ready, nothing published yet.
    pub fn new(port: u16, symbols: Vec<String>, rate: f64, redis: Arc<RedisHealth>) -> Self {
        Self {
            common: CommonStatus::new(SOURCE, port, redis),
            symbols,
            rate,
        }
    }

    /// Seq counters are known: publishing may start, so the startup problem is over.
    pub fn set_ready(&self) {
        self.common.set_problem(None);
    }

    /// Records why we are not publishing (startup trouble, degraded) or clears it.
    pub fn set_problem(&self, problem: Option<String>) {
        self.common.set_problem(problem.map(Problem::Loading));
    }

    /// Records a successful batch of `count` ticks generated at `at`.
    pub fn published(&self, count: usize, at: DateTime<Utc>) {
        self.common.published(count, at);
    }

    /// Records a failed batch publish.
    pub fn publish_failed(&self) {
        self.common.publish_failed();
    }

    /// Whether the last publish failed; the shutdown flush is skipped then.
    pub fn last_publish_failed(&self) -> bool {
        self.common.last_publish_failed()
    }

    /// Ticks published since start.
    pub fn ticks_published(&self) -> u64 {
        self.common.ticks_published()
    }

    /// Healthy when seqs are loaded, Redis answers and the last publish worked; degraded otherwise, with the reason.
    pub fn assess(&self) -> Assessment {
        self.common.assess(|| None)
    }

    /// The `/health` body and status.
    pub fn health(&self) -> (HealthStatus, serde_json::Value) {
        let own = json!({ "rate": self.rate });
        self.common.health(self.assess(), self.symbols.clone(), own)
    }

    /// The heartbeat record the gateway reads for its `/health` and `/symbols`.
    pub fn heartbeat(&self) -> Heartbeat {
        self.common.heartbeat(self.assess(), self.symbols.clone())
    }
}

#[cfg(test)]
mod tests {
    use tickstream_bus::IngestorStatus;

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

//! Feeds: each producer's status on the `feeds` channel (and under a key the
//! gateway's `GET /feeds` reads), and the operator's desired state of a feed
//! (`running` or `stopped`), which a gateway writes and the feed obeys.
//!
//! Keys (documented in `docs/redis.md`):
//! - `tickstream:feed:{name}:status`: the feed's latest status JSON, with a short TTL.
//! - `tickstream:feed:{name}:desired`: `running` or `stopped`, no TTL, so it survives restarts.
//! - `tickstream:feed:{name}:control`: pub/sub channel announcing a change of the desired state.
//! - `tickstream:interest`: sorted set, symbol → lease expiry (epoch ms): what gateways' clients
//!   want, renewed by each gateway while wanted, read by on-demand ingestors.

use std::time::{Duration, Instant};

use tokio::time::MissedTickBehavior;

use serde::{Deserialize, Serialize};

use crate::keys::LAST_KEY_PREFIX;
use crate::store::{BusError, Redis};

/// The pub/sub channel every feed status is published on.
pub const FEEDS_CHANNEL: &str = "feeds";
/// Prefix of every per-feed key (`tickstream:feed:{name}:...`).
pub const FEED_KEY_PREFIX: &str = "tickstream:feed:";
/// A feed's status key lives this many publish periods, so a dead feed leaves `GET /feeds` within seconds.
pub const STATUS_TTL_PERIODS: u32 = 5;
/// Most feed statuses one `GET /feeds` reads, so a polluted keyspace cannot make it unbounded.
pub const MAX_FEEDS: usize = 1_000;

/// Sorted set of symbols some gateway's clients want, scored by the lease's expiry (epoch ms).
pub const INTEREST_KEY: &str = "tickstream:interest";
/// Expired interest entries older than this are pruned by the renewing gateway.
const INTEREST_PRUNE_AFTER_MS: i64 = 60_000;

/// Key of a feed's latest status, read by `GET /feeds` and the control endpoints.
pub fn feed_status_key(name: &str) -> String {
    format!("{FEED_KEY_PREFIX}{name}:status")
}

/// Key of a feed's desired state, written by a gateway and read by the feed (survives restarts).
pub fn feed_desired_key(name: &str) -> String {
    format!("{FEED_KEY_PREFIX}{name}:desired")
}

/// Channel on which a change of a feed's desired state is announced, so it acts at once.
pub fn feed_control_channel(name: &str) -> String {
    format!("{FEED_KEY_PREFIX}{name}:control")
}

/// Whether a feed name is one a producer could have (`[a-z0-9_-]{1,32}`, like a tick `source`).
pub fn valid_feed_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// How a feed is fed right now; `stopped` when an operator stopped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedMode {
    /// From its live stream (an upstream WebSocket, the simulator's generator, Redis for analytics).
    Stream,
    /// From its REST fallback while the stream is down.
    Rest,
    /// Stopped by an operator: no upstream connection, nothing published.
    Stopped,
}

/// What an operator wants of a feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Desired {
    /// Connect and publish (the default when nothing is stored).
    Running,
    /// Close the upstream and publish nothing until started again.
    Stopped,
}

impl Desired {
    /// The word stored in Redis.
    pub fn as_str(self) -> &'static str {
        match self {
            Desired::Running => "running",
            Desired::Stopped => "stopped",
        }
    }

    /// Parses the stored word; `None` for anything else.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim() {
            "running" => Some(Desired::Running),
            "stopped" => Some(Desired::Stopped),
            _ => None,
        }
    }
}

/// One feed's status: the `feed_status` payload and the `GET /feeds` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedStatus {
    /// The feed's name (an ingestor's `source`, or `analytics`).
    pub name: String,
    /// `healthy`, `degraded`, `unhealthy`, or `stopped` when an operator stopped it.
    pub status: String,
    /// How it is fed now.
    pub mode: FeedMode,
    /// Whether its stream is up (false while stopped).
    pub connected: bool,
    /// The symbols it serves (streams) now.
    pub symbols: Vec<String>,
    /// Every symbol it can serve: its configured ones plus, in on-demand mode, those it
    /// adds while some client wants them, so `/symbols` tells clients what may be asked
    /// for. Empty from a feed older than this field (read it as `symbols` then).
    #[serde(default)]
    pub can_serve: Vec<String>,
    /// Whether it streams some symbols only while a client wants them (on-demand mode).
    #[serde(default)]
    pub on_demand: bool,
    /// Age of the last message from its upstream; `None` before the first.
    pub last_message_age_ms: Option<u64>,
    /// Stream connections re-established since it started.
    pub reconnects: u64,
    /// When this status was taken (RFC 3339).
    pub timestamp: String,
}

impl FeedStatus {
    /// Whether `other` reports the same state (ages and times aside): a change worth publishing at once.
    pub fn same_state(&self, other: &FeedStatus) -> bool {
        self.status == other.status
            && self.mode == other.mode
            && self.connected == other.connected
            && self.symbols == other.symbols
            && self.can_serve == other.can_serve
            && self.on_demand == other.on_demand
            && self.reconnects == other.reconnects
    }
}

impl Redis {
    /// Stores `status` under its key (TTL `ttl`, so a dead feed vanishes) and publishes it on
    /// `feeds` (cached under `last:feeds`), in one `MULTI` (on a cluster: in that order, one
    /// command each, since the status key and the channel live in different slots).
    pub async fn publish_feed_status(
        &self,
        status: &FeedStatus,
        ttl: Duration,
    ) -> Result<(), BusError> {
        let json = serde_json::to_string(status).map_err(|e| BusError::Corrupt {
            key: feed_status_key(&status.name),
            reason: e.to_string(),
        })?;
        let cache_ttl = self.options().price_ttl.as_secs().max(1);
        let naming = self.naming();
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(feed_status_key(&status.name))
            .arg(&json)
            .arg("EX")
            .arg(ttl.as_secs().max(1))
            .ignore()
            .cmd("SET")
            .arg(naming.name(&format!("{LAST_KEY_PREFIX}{FEEDS_CHANNEL}")))
            .arg(&json)
            .arg("EX")
            .arg(cache_ttl)
            .ignore()
            .cmd(self.publish_cmd())
            .arg(naming.name(FEEDS_CHANNEL))
            .arg(&json)
            .ignore();
        self.run_steps(pipe).await
    }

    /// The latest status of one feed, `None` if it has not reported within its TTL.
    pub async fn feed_status(&self, name: &str) -> Result<Option<FeedStatus>, BusError> {
        let key = feed_status_key(name);
        let mut c = self.conn();
        let k = key.clone();
        let raw: Option<Vec<u8>> = self
            .run_op(async move { redis::cmd("GET").arg(k).query_async(&mut c).await })
            .await?;
        raw.map(|bytes| {
            serde_json::from_slice(&bytes).map_err(|e| BusError::Corrupt {
                key,
                reason: e.to_string(),
            })
        })
        .transpose()
    }

    /// Every live feed's status, sorted by name; records that do not decode are skipped and logged.
    pub async fn feed_statuses(&self) -> Result<Vec<FeedStatus>, BusError> {
        let pattern = format!("{FEED_KEY_PREFIX}*:status");
        let mut out: Vec<FeedStatus> = self.scan_json(pattern, MAX_FEEDS, "feed status").await?;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The stored desired state of a feed; `None` when none is stored (the feed runs).
    ///
    /// A value other than `running`/`stopped` is an error naming the key.
    pub async fn desired_state(&self, name: &str) -> Result<Option<Desired>, BusError> {
        let key = feed_desired_key(name);
        let mut c = self.conn();
        let k = key.clone();
        let raw: Option<String> = self
            .run_op(async move { redis::cmd("GET").arg(k).query_async(&mut c).await })
            .await?;
        match raw {
            None => Ok(None),
            Some(s) => Desired::parse(&s).map(Some).ok_or(BusError::Corrupt {
                key,
                reason: format!("{s:?} is neither running nor stopped"),
            }),
        }
    }

    /// Renews the interest lease of every symbol in `symbols` until `lease` from now
    /// (`ZADD GT`: a longer lease of another gateway is kept), and prunes long-expired entries.
    pub async fn renew_interest(
        &self,
        symbols: &[String],
        lease: Duration,
    ) -> Result<(), BusError> {
        let now = chrono::Utc::now().timestamp_millis();
        let until = now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        let mut pipe = redis::pipe();
        if !symbols.is_empty() {
            let add = pipe.cmd("ZADD").arg(INTEREST_KEY).arg("GT");
            for symbol in symbols {
                add.arg(until).arg(symbol);
            }
            add.ignore();
        }
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(INTEREST_KEY)
            .arg("-inf")
            .arg(now - INTEREST_PRUNE_AFTER_MS)
            .ignore();
        let mut c = self.conn();
        self.run_op(async move { pipe.query_async::<()>(&mut c).await })
            .await
    }

    /// The symbols whose interest lease has not expired, in no particular order.
    pub async fn interest(&self) -> Result<Vec<String>, BusError> {
        let now = chrono::Utc::now().timestamp_millis();
        let mut c = self.conn();
        self.run_op(async move {
            redis::cmd("ZRANGEBYSCORE")
                .arg(INTEREST_KEY)
                .arg(now)
                .arg("+inf")
                .query_async(&mut c)
                .await
        })
        .await
    }

    /// Stores the desired state of a feed (no TTL) and announces it on its control channel, in one `MULTI`.
    ///
    /// On a cluster: the `SET`, then a classic `PUBLISH`, which Redis Cluster
    /// broadcasts to every node, so the feed hears it on whichever node it listens.
    pub async fn set_desired_state(&self, name: &str, desired: Desired) -> Result<(), BusError> {
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(feed_desired_key(name))
            .arg(desired.as_str())
            .ignore()
            .cmd("PUBLISH")
            .arg(feed_control_channel(name))
            .arg(desired.as_str())
            .ignore();
        self.run_steps(pipe).await
    }
}

/// How often the feed status is sampled for a change worth publishing at once.
pub const FEED_STATUS_SAMPLE: Duration = Duration::from_millis(100);

/// Publishes `status()` on the `feeds` channel (and under the feed's status
/// key, TTL [`STATUS_TTL_PERIODS`] periods) whenever its state changes
/// (sampled every [`FEED_STATUS_SAMPLE`]) and at least every `period`.
/// Failures are logged at debug and retried at the next sample. Runs until aborted.
pub async fn feed_status_loop(redis: Redis, period: Duration, status: impl Fn() -> FeedStatus) {
    let ttl = period * STATUS_TTL_PERIODS;
    let mut sample = tokio::time::interval(FEED_STATUS_SAMPLE);
    sample.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last: Option<(FeedStatus, Instant)> = None;
    loop {
        sample.tick().await;
        let now = status();
        let due = match &last {
            None => true,
            Some((prev, at)) => !prev.same_state(&now) || at.elapsed() >= period,
        };
        if !due {
            continue;
        }
        match redis.publish_feed_status(&now, ttl).await {
            Ok(()) => last = Some((now, Instant::now())),
            Err(e) => tracing::debug!(error = %e, "Feed status publish failed."),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keys_and_words() {
        assert_eq!(feed_desired_key("sim"), "tickstream:feed:sim:desired");
        assert_eq!(feed_status_key("sim"), "tickstream:feed:sim:status");
        assert_eq!(feed_control_channel("sim"), "tickstream:feed:sim:control");
        assert!(valid_feed_name("binance"));
        assert!(valid_feed_name("acme-feed_2"));
        assert!(!valid_feed_name(""));
        assert!(!valid_feed_name("Binance"));
        assert!(!valid_feed_name("a:b"));
        assert_eq!(Desired::parse(" stopped\n"), Some(Desired::Stopped));
        assert_eq!(Desired::parse("paused"), None);
        assert_eq!(Desired::Running.as_str(), "running");
    }

    #[test]
    fn status_json_shape() {
        let s = FeedStatus {
            name: "binance".into(),
            status: "healthy".into(),
            mode: FeedMode::Stream,
            connected: true,
            symbols: vec!["BTCUSDT".into()],
            can_serve: vec!["BTCUSDT".into(), "ETHUSDT".into()],
            on_demand: true,
            last_message_age_ms: Some(120),
            reconnects: 0,
            timestamp: "2026-12-05T15:00:00.000Z".into(),
        };
        let v: serde_json::Value = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"name":"binance","status":"healthy","mode":"stream","connected":true,
                "symbols":["BTCUSDT"],"can_serve":["BTCUSDT","ETHUSDT"],"on_demand":true,
                "last_message_age_ms":120,"reconnects":0,"timestamp":"2026-12-05T15:00:00.000Z"})
        );
        // A status from a feed older than `can_serve`/`on_demand` still reads.
        let old: FeedStatus = serde_json::from_value(serde_json::json!({"name":"sim",
            "status":"healthy","mode":"stream","connected":true,"symbols":["A"],
            "last_message_age_ms":null,"reconnects":0,"timestamp":"2026-12-05T15:00:00.000Z"}))
        .unwrap();
        assert!(old.can_serve.is_empty() && !old.on_demand);
        let mut t = s.clone();
        t.last_message_age_ms = Some(5);
        assert!(s.same_state(&t));
        t.mode = FeedMode::Stopped;
        assert!(!s.same_state(&t));
    }
}

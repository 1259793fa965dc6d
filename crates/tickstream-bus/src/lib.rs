//! The Redis bus that joins ingestors to gateways.
//!
//! Ingestors publish each tick to `ticks:{SYMBOL}` and store it under
//! `price:{SYMBOL}` in one atomic round trip; other producers publish any
//! channel with [`Redis::publish_event`] (cached under `last:{channel}`);
//! gateways subscribe per channel on one long-lived pub/sub connection and
//! read the caches for snapshots.
//! On Redis Cluster (`REDIS_CLUSTER_NODES`) the same API routes every command
//! to its slot's master, hash-tags each symbol's names so its publish stays one
//! atomic step, and uses sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`).
//! Losing Redis never stops a service: every operation reports into
//! [`RedisHealth`] and the connections come back by themselves with capped,
//! jittered backoff, restoring every subscription.
//!
//! # Layout
//! - [`analytics`]: stored candles and the read side of candles, signals and sentiment.
//! - [`keys`]: the Redis key and channel names of the contract.
//! - [`feeds`]: feed statuses (`feeds` channel, `GET /feeds`) and the desired state an operator sets.
//! - [`backoff`]: capped exponential backoff with jitter, shared by every reconnect loop.
//! - [`health`]: [`RedisHealth`], what `/health` reports about Redis.
//! - [`history`]: [`HistoryPage`], range reads of a channel's history stream, and the epoch.
//! - [`store`]: [`Redis`], commands: publish, cache reads, heartbeats, seq counters.
//! - [`subscriber`]: [`Subscriber`], the per-channel pub/sub reader.
//! - [`sharded`]: the same reader on Redis Cluster (sharded pub/sub, slot moves, failover).

#![forbid(unsafe_code)]

pub mod analytics;
pub mod backoff;
pub mod feeds;
pub mod health;
pub mod history;
pub mod keys;
pub mod sharded;
pub mod store;
pub mod subscriber;

pub use analytics::{CandleRange, StoredCandle};
pub use backoff::Backoff;
pub use feeds::{Desired, FeedMode, FeedStatus};
pub use health::RedisHealth;
pub use history::HistoryPage;
pub use store::{BusError, Heartbeat, IngestorStatus, Redis, RedisOptions};
pub use subscriber::{ChannelHandler, Subscriber};

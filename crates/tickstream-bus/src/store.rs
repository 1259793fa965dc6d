//! Commands on the shared Redis connection: publish, cache, heartbeats, seq.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use serde::{Deserialize, Serialize};
use tickstream_model::{Channel, Symbol, Tick, Trade};

use crate::health::RedisHealth;
use crate::keys::{self, Naming};

/// Failures of a bus operation; all of them leave the service running.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The URL in `REDIS_URL` does not parse; a configuration error, not retryable.
    #[error("invalid Redis URL: {0}")]
    BadUrl(#[source] redis::RedisError),
    /// A seed in `redis_cluster_nodes` does not parse; a configuration error, not retryable.
    #[error("invalid Redis Cluster node list: {0}")]
    BadClusterNodes(String),
    /// Redis answered with an error or the connection broke.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Part of a Redis Cluster is unreachable (a lost master not yet replaced); retryable.
    #[error("redis cluster degraded: {0}")]
    Partial(String),
    /// Redis did not answer within the operation timeout.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// A stored record was not what we wrote (someone else's data under our key).
    #[error("corrupt record under {key}: {reason}")]
    Corrupt {
        /// The offending key.
        key: String,
        /// Why it did not decode.
        reason: String,
    },
}

impl BusError {
    /// Whether trying again later can succeed (connection trouble) or not (bad config/data).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            BusError::Redis(_) | BusError::Timeout(_) | BusError::Partial(_)
        )
    }
}

/// Connection settings shared by every service.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// `redis://host:port[/db]`, from `REDIS_URL`.
    pub url: String,
    /// Lifetime of `price:{SYMBOL}`, so a dead source's prices eventually vanish.
    pub price_ttl: Duration,
    /// Upper bound on any one command, so a stalled Redis cannot stall a caller.
    pub op_timeout: Duration,
    /// Entries kept per `history:` stream (approximately: Redis trims whole nodes); 0 keeps no history.
    pub history_len: usize,
    /// Redis Cluster seed nodes (`host:port` or `redis://host:port`), from `REDIS_CLUSTER_NODES`;
    /// empty (the default) means one Redis at [`RedisOptions::url`].
    pub cluster_nodes: Vec<String>,
}

/// Default [`RedisOptions::history_len`]: ten minutes of a symbol at 16 ticks/s, the busiest simulator rate.
pub const DEFAULT_HISTORY_LEN: usize = 10_000;

impl RedisOptions {
    /// Defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            price_ttl: Duration::from_secs(24 * 3600),
            op_timeout: Duration::from_secs(2),
            history_len: DEFAULT_HISTORY_LEN,
            cluster_nodes: Vec::new(),
        }
    }

    /// Whether these options select Redis Cluster (sharded pub/sub, hash-tagged names).
    pub fn is_cluster(&self) -> bool {
        !self.cluster_nodes.is_empty()
    }

    /// The seeds as connection URLs (`host:port` gains `redis://`); an empty or malformed entry is an error naming it.
    pub fn cluster_urls(&self) -> Result<Vec<String>, BusError> {
        self.cluster_nodes
            .iter()
            .map(|n| {
                let n = n.trim();
                let url = if n.contains("://") {
                    n.to_owned()
                } else {
                    format!("redis://{n}")
                };
                redis::parse_redis_url(&url)
                    .filter(|u| u.host_str().is_some_and(|h| !h.is_empty()) && u.port().is_some())
                    .map(|_| url)
                    .ok_or_else(|| BusError::BadClusterNodes(format!("{n:?} is not host:port")))
            })
            .collect()
    }
}

/// The command connection: a self-healing connection to one Redis, or the
/// cluster client's connection that routes each command to its slot's master
/// (following `MOVED`/`ASK` and refreshing the slot map by itself).
#[derive(Clone)]
pub(crate) enum Conn {
    /// One Redis.
    Single(ConnectionManager),
    /// Redis Cluster.
    Cluster(ClusterConnection),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// Shortest time between two rebuilds of a cluster connection.
pub(crate) const CLUSTER_REBUILD_MIN_INTERVAL: Duration = Duration::from_secs(1);

/// How long one rebuild keeps trying until every master answers: a failover takes a few
/// node timeouts (`cluster-node-timeout`, 15 s by default, 2 s in the tests).
pub(crate) const CLUSTER_REBUILD_PERSIST: Duration = Duration::from_secs(60);
/// Pause between two attempts of one rebuild, so a promoted replica is found within it.
pub(crate) const CLUSTER_REBUILD_RETRY: Duration = Duration::from_millis(500);
/// How long every master gets to answer the rebuilt connection's `PING`.
pub(crate) const CLUSTER_REBUILD_PROBE: Duration = Duration::from_millis(500);

/// The command connection to a cluster, rebuilt from the seeds when it stops answering.
///
/// Why: the `redis` crate's cluster connection refreshes its slot map on
/// `MOVED`, but a connection *refused* by a dead master only makes it retry
/// that master, so it would keep routing the dead master's slots to it after
/// its replica was promoted. A fresh connection reads the current slot map
/// from a live seed; a rebuild retries every [`CLUSTER_REBUILD_RETRY`] until
/// every master answers, which bounds the time to follow a failover.
pub(crate) struct ClusterHandle {
    /// Builds connections (seeds, timeouts).
    client: ClusterClient,
    /// Timeouts of every connection built here.
    config: ClusterConfig,
    /// The connection commands use now.
    current: std::sync::RwLock<ClusterConnection>,
    /// Set while a rebuild runs, so failures during it do not start more.
    rebuilding: std::sync::atomic::AtomicBool,
    /// When the last rebuild started.
    last_rebuild: std::sync::Mutex<Option<std::time::Instant>>,
}

impl ClusterHandle {
    /// A handle whose first connection dials lazily.
    fn new(client: ClusterClient, config: ClusterConfig) -> Self {
        let conn = client.get_pending_async_connection_with_config(config.clone());
        Self {
            client,
            config,
            current: std::sync::RwLock::new(conn),
            rebuilding: std::sync::atomic::AtomicBool::new(false),
            last_rebuild: std::sync::Mutex::new(None),
        }
    }

    /// The connection to use now.
    fn conn(&self) -> ClusterConnection {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// A fresh connection (slot map read now), or `None` if none could be made in time.
    async fn build(&self) -> Option<ClusterConnection> {
        let built = tokio::time::timeout(
            CLUSTER_REBUILD_MIN_INTERVAL * 3,
            self.client
                .get_async_connection_with_config(self.config.clone()),
        )
        .await;
        built.ok().and_then(Result::ok)
    }

    /// Starts a rebuild in the background unless one runs or ran within the minimum interval.
    fn request_rebuild(self: &Arc<Self>) {
        {
            let Ok(mut last) = self.last_rebuild.lock() else {
                return;
            };
            if last.is_some_and(|t| t.elapsed() < CLUSTER_REBUILD_MIN_INTERVAL) {
                return;
            }
            if self.rebuilding.swap(true, Ordering::AcqRel) {
                return;
            }
            *last = Some(std::time::Instant::now());
        }
        let this = self.clone();
        tokio::spawn(async move {
            // Until every master answers (a failed master is replaced) or we give up:
            // each fresh connection reads the slot map anew from a live seed.
            let deadline = tokio::time::Instant::now() + CLUSTER_REBUILD_PERSIST;
            loop {
                let built = tokio::time::timeout(
                    CLUSTER_REBUILD_MIN_INTERVAL * 3,
                    this.client
                        .get_async_connection_with_config(this.config.clone()),
                )
                .await;
                let healthy = match built {
                    Ok(Ok(mut conn)) => {
                        let healthy = all_masters_answer(&mut conn, CLUSTER_REBUILD_PROBE).await;
                        // The slot map was read before the probe and may predate a promotion
                        // the probe already saw: once every master answers, read it once more.
                        let conn = match healthy {
                            true => this.build().await.unwrap_or(conn),
                            false => conn,
                        };
                        // Even a connection that still sees a dead master is no worse than the old one.
                        if let Ok(mut current) = this.current.write() {
                            *current = conn;
                        }
                        healthy
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "Redis Cluster connection rebuild failed.");
                        false
                    }
                    Err(_) => {
                        tracing::debug!("Redis Cluster connection rebuild timed out.");
                        false
                    }
                };
                if healthy {
                    tracing::info!("Redis Cluster command connection rebuilt from the seeds.");
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    tracing::warn!("Redis Cluster still has an unreachable master; rebuilding again on the next failure.");
                    break;
                }
                tokio::time::sleep(CLUSTER_REBUILD_RETRY).await;
            }
            if let Ok(mut last) = this.last_rebuild.lock() {
                *last = Some(std::time::Instant::now());
            }
            this.rebuilding.store(false, Ordering::Release);
        });
    }
}

/// Where a [`Redis`] handle gets its command connection.
#[derive(Clone)]
enum ConnSource {
    /// Multiplexed connection that re-dials after failures (one Redis).
    Single(ConnectionManager),
    /// The cluster connection, rebuilt when it stops answering.
    Cluster(Arc<ClusterHandle>),
}

/// Retries the cluster client makes itself (redirects, reconnects) before a
/// command fails. The crate's default (16, with waits growing to seconds) would
/// keep a command to a dead master waiting until our own timeout; failing
/// fast lets [`ClusterHandle`] rebuild the connection sooner after a failover,
/// while `MOVED`/`ASK` during a reshard still get their retry.
pub(crate) const CLUSTER_RETRIES: u32 = 3;
/// Shortest wait between two of the cluster client's retries (ms).
pub(crate) const CLUSTER_RETRY_MIN_WAIT_MS: u64 = 10;
/// Longest wait between two of the cluster client's retries (ms).
pub(crate) const CLUSTER_RETRY_MAX_WAIT_MS: u64 = 200;

/// A cluster client builder on `opts`' seeds with the bus's timeouts and retry policy.
pub(crate) fn cluster_builder(opts: &RedisOptions) -> Result<ClusterClientBuilder, BusError> {
    Ok(ClusterClientBuilder::new(opts.cluster_urls()?)
        .connection_timeout(opts.op_timeout)
        .response_timeout(opts.op_timeout)
        .retries(CLUSTER_RETRIES)
        .min_retry_wait(CLUSTER_RETRY_MIN_WAIT_MS)
        .max_retry_wait(CLUSTER_RETRY_MAX_WAIT_MS))
}

/// A cluster client on `opts`' seeds with the bus's timeouts.
pub(crate) fn cluster_client(opts: &RedisOptions) -> Result<ClusterClient, BusError> {
    cluster_builder(opts)?.build().map_err(BusError::BadUrl)
}

/// The cluster config matching [`cluster_client`]'s timeouts (a config replaces the builder's).
pub(crate) fn cluster_config(opts: &RedisOptions) -> ClusterConfig {
    ClusterConfig::new()
        .set_connection_timeout(opts.op_timeout)
        .set_response_timeout(opts.op_timeout)
}

/// How an ingestor sees itself; also drives the gateway's aggregate health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IngestorStatus {
    /// Streaming normally.
    Healthy,
    /// Running but impaired (upstream down, on REST fallback, Redis trouble).
    Degraded,
    /// Cannot do its job until someone acts (e.g. missing API key).
    Unhealthy,
}

/// An ingestor's periodic record of itself, stored with a short TTL so dead ones vanish.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Ingestor name, also its `source` (`sim`, `binance`, ...).
    pub name: String,
    /// Self-assessed status.
    pub status: IngestorStatus,
    /// Why it is not healthy, if it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Symbols it serves, normalized.
    pub symbols: Vec<String>,
    /// Time of its last published tick (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tick: Option<String>,
    /// Ticks published since it started.
    pub ticks_published: u64,
    /// When this record was written (RFC 3339).
    pub updated_at: String,
}

/// A cloneable handle for Redis commands, connecting lazily and reconnecting by itself.
#[derive(Clone)]
pub struct Redis {
    /// Where command connections come from.
    source: ConnSource,
    /// Kept to open the dedicated pub/sub connection (on a cluster: a client of the first seed,
    /// for classic, cluster-wide `SUBSCRIBE`s such as a feed's control channel).
    client: redis::Client,
    /// Plain names on one Redis, hash-tagged names on a cluster.
    naming: Naming,
    /// When the epoch was last ensured on a cluster (ms since the handle's start + 1; 0 = never),
    /// where it cannot share the publish script's slot.
    epoch_checked_ms: Arc<AtomicU64>,
    /// The handle's creation, the origin of `epoch_checked_ms`.
    born: std::time::Instant,
    /// Updated by every command's outcome.
    health: Arc<RedisHealth>,
    /// TTL and timeouts.
    opts: RedisOptions,
    /// Ticks refused by [`Redis::publish`] as not newer than the recorded seq.
    stale_skipped: Arc<AtomicU64>,
}

/// Accept-if-newer publish of seq-numbered items (ticks, trades).
///
/// ARGV = ttl, history length, epoch candidate, seq hash, cache key prefix,
/// channel prefix, then (symbol, seq, json) per item. Runs atomically in
/// Redis, so two publishers of one symbol cannot interleave between the seq
/// check and the writes. Per accepted item, in this order: the history
/// append (`XADD history:{channel} MAXLEN ~ N {seq}-0 d json`; `pcall`, so a
/// stream someone else wrote ahead of our seq can only cost that entry, never
/// the publish), the cache `SET` (before the `PUBLISH`, so a subscriber that
/// receives item N and then reads the cache never sees an older one), the
/// `PUBLISH`, and the seq. The epoch is created if missing. Key names are
/// built in the script because they follow from the symbol (single Redis;
/// on Redis Cluster [`CLUSTER_PUBLISH_SCRIPT`] runs instead).
static PUBLISH_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| {
    let code = format!(
        r#"
local ttl, cap = ARGV[1], tonumber(ARGV[2])
redis.call('SET', '{epoch}', ARGV[3], 'NX')
local seqhash, cache, chan = ARGV[4], ARGV[5], ARGV[6]
local accepted = 0
for i = 7, #ARGV, 3 do
  local sym, seq, json = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  local last = tonumber(redis.call('HGET', seqhash, sym) or '-1')
  if seq > last then
    local channel = chan .. sym
    if cap > 0 then
      redis.pcall('XADD', '{history}' .. channel, 'MAXLEN', '~', cap, ARGV[i + 1] .. '-0', 'd', json)
    end
    redis.call('SET', cache .. sym, json, 'EX', ttl)
    redis.call('PUBLISH', channel, json)
    redis.call('HSET', seqhash, sym, ARGV[i + 1])
    accepted = accepted + 1
  end
end
return accepted
"#,
        epoch = keys::EPOCH_KEY,
        history = keys::HISTORY_KEY_PREFIX,
    );
    redis::Script::new(&code)
});

/// [`PUBLISH_SCRIPT`] for Redis Cluster: one symbol per call, every name hash-tagged by it.
///
/// KEYS = seq key, cache key, history stream, channel (all in the symbol's
/// slot, so the call is one atomic single-slot step); ARGV = ttl, history
/// length, then (seq, json) per item. Same order of writes as the single-node
/// script, with `SPUBLISH` (sharded pub/sub: only the slot's shard carries the
/// message) and the seq in its own string key instead of a field of a global
/// hash. The epoch is ensured apart (another slot).
static CLUSTER_PUBLISH_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local ttl, cap = ARGV[1], tonumber(ARGV[2])
local accepted = 0
for i = 3, #ARGV, 2 do
  local seq, json = tonumber(ARGV[i]), ARGV[i + 1]
  local last = tonumber(redis.call('GET', KEYS[1]) or '-1')
  if seq > last then
    if cap > 0 then
      redis.pcall('XADD', KEYS[3], 'MAXLEN', '~', cap, ARGV[i] .. '-0', 'd', json)
    end
    redis.call('SET', KEYS[2], json, 'EX', ttl)
    redis.call('SPUBLISH', KEYS[4], json)
    redis.call('SET', KEYS[1], ARGV[i])
    accepted = accepted + 1
  end
end
return accepted
"#,
    )
});

/// How often, at most, a cluster publisher re-creates a missing epoch (it cannot ride in the script).
const CLUSTER_EPOCH_CHECK: Duration = Duration::from_secs(1);

/// What one kind of seq-numbered item needs from [`PUBLISH_SCRIPT`].
struct SeqKind {
    /// Hash of the last seq per symbol.
    seq_hash: &'static str,
    /// Prefix of the latest-value key.
    cache_prefix: &'static str,
    /// Prefix of the pub/sub channel (and, after `history:`, of the stream).
    channel_prefix: &'static str,
}

/// Ticks: `tickstream:seq`, `price:`, `ticks:`.
const TICKS: SeqKind = SeqKind {
    seq_hash: keys::SEQ_HASH_KEY,
    cache_prefix: keys::PRICE_KEY_PREFIX,
    channel_prefix: keys::TICK_CHANNEL_PREFIX,
};

/// Trades: `tickstream:seq:trades`, `last:trades:`, `trades:`.
const TRADES: SeqKind = SeqKind {
    seq_hash: keys::TRADE_SEQ_HASH_KEY,
    cache_prefix: "last:trades:",
    channel_prefix: keys::TRADE_CHANNEL_PREFIX,
};

/// A fresh epoch value: random, so a Redis that lost its data gets one no client has seen.
pub(crate) fn new_epoch() -> String {
    format!("{:016x}", rand::random::<u64>())
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").field("opts", &self.opts).finish()
    }
}

impl Redis {
    /// Builds the handle without touching the network, so services start while Redis is down.
    ///
    /// Must be called inside a Tokio runtime (the manager spawns its driver there).
    /// With [`RedisOptions::cluster_nodes`] set it talks to Redis Cluster
    /// instead: commands are routed by slot, names are hash-tagged
    /// ([`Naming::Tagged`]) and pub/sub is sharded.
    pub fn connect_lazy(opts: RedisOptions) -> Result<Self, BusError> {
        let (source, client, naming) = if opts.is_cluster() {
            let seeds = opts.cluster_urls()?;
            let first = seeds.first().cloned().unwrap_or_default();
            let client = redis::Client::open(first.as_str()).map_err(BusError::BadUrl)?;
            let handle = ClusterHandle::new(cluster_client(&opts)?, cluster_config(&opts));
            (
                ConnSource::Cluster(Arc::new(handle)),
                client,
                Naming::Tagged,
            )
        } else {
            let client = redis::Client::open(opts.url.as_str()).map_err(BusError::BadUrl)?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(opts.op_timeout))
                .set_response_timeout(Some(opts.op_timeout))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_millis(500));
            let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
                .map_err(BusError::BadUrl)?;
            (ConnSource::Single(conn), client, Naming::Plain)
        };
        Ok(Self {
            source,
            client,
            naming,
            epoch_checked_ms: Arc::new(AtomicU64::new(0)),
            born: std::time::Instant::now(),
            health: Arc::new(RedisHealth::default()),
            opts,
            stale_skipped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The health record this handle updates; share it with `/health`.
    pub fn health(&self) -> &Arc<RedisHealth> {
        &self.health
    }

    /// The client, for opening a dedicated pub/sub connection (on a cluster: to the first seed,
    /// for classic cluster-wide `SUBSCRIBE`s such as a feed's control channel).
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// Options this handle was built with.
    pub fn options(&self) -> &RedisOptions {
        &self.opts
    }

    /// A clone of the shared connection, for commands defined in sibling modules.
    pub(crate) fn conn(&self) -> Conn {
        match &self.source {
            ConnSource::Single(c) => Conn::Single(c.clone()),
            ConnSource::Cluster(h) => Conn::Cluster(h.conn()),
        }
    }

    /// On a cluster, a command failed for want of a connection: rebuild it (rate-limited).
    fn cluster_trouble(&self) {
        if let ConnSource::Cluster(h) = &self.source {
            h.request_rebuild();
        }
    }

    /// How this handle spells Redis names (plain on one Redis, hash-tagged on a cluster).
    pub fn naming(&self) -> Naming {
        self.naming
    }

    /// Whether this handle talks to Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.naming == Naming::Tagged
    }

    /// The Redis key of a channel's latest value under this handle's naming.
    pub(crate) fn cache_key(&self, channel: &Channel) -> String {
        self.naming.name(&channel.cache_key())
    }

    /// The pub/sub command for data channels: `PUBLISH` on one Redis, `SPUBLISH` (sharded) on a cluster.
    pub(crate) fn publish_cmd(&self) -> &'static str {
        if self.is_cluster() {
            "SPUBLISH"
        } else {
            "PUBLISH"
        }
    }

    /// Runs the commands of `pipe`: as one `MULTI` on one Redis; on a cluster,
    /// where its keys may live on different shards, one after another in order
    /// (each still single-slot), so a cache write still precedes its publish.
    pub(crate) async fn run_steps(&self, mut pipe: redis::Pipeline) -> Result<(), BusError> {
        let mut c = self.conn();
        if !self.is_cluster() {
            pipe.atomic();
            return self
                .run(async move { pipe.query_async::<()>(&mut c).await })
                .await;
        }
        self.run(async move {
            for cmd in pipe.cmd_iter() {
                cmd.query_async::<redis::Value>(&mut c).await?;
            }
            Ok(())
        })
        .await
    }

    /// On a cluster, creates the epoch if it is missing, at most every [`CLUSTER_EPOCH_CHECK`].
    async fn ensure_cluster_epoch(&self) -> Result<(), BusError> {
        let now = self.born.elapsed().as_millis() as u64 + 1;
        let last = self.epoch_checked_ms.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < CLUSTER_EPOCH_CHECK.as_millis() as u64 {
            return Ok(());
        }
        let mut c = self.conn();
        self.run(async move {
            redis::cmd("SET")
                .arg(keys::EPOCH_KEY)
                .arg(new_epoch())
                .arg("NX")
                .query_async::<redis::Value>(&mut c)
                .await
        })
        .await?;
        self.epoch_checked_ms.store(now, Ordering::Relaxed);
        Ok(())
    }

    /// [`Redis::run`] for sibling modules: one command under the timeout, outcome recorded in health.
    pub(crate) async fn run_op<T, F>(&self, fut: F) -> Result<T, BusError>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        self.run(fut).await
    }

    /// Runs one command under the timeout and records the outcome in health.
    async fn run<T, F>(&self, fut: F) -> Result<T, BusError>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        match tokio::time::timeout(self.opts.op_timeout, fut).await {
            Ok(Ok(v)) => {
                self.health.mark_up();
                Ok(v)
            }
            Ok(Err(e)) => {
                // A server-side error reply means Redis is up and talking.
                if e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_timeout()
                    || e.is_connection_refusal()
                    || e.kind() == redis::ErrorKind::ClusterConnectionNotFound
                {
                    self.health.mark_down(&e);
                    self.cluster_trouble();
                } else {
                    self.health.mark_up();
                }
                Err(BusError::Redis(e))
            }
            Err(_) => {
                let e = BusError::Timeout(self.opts.op_timeout);
                self.health.mark_down(&e);
                self.cluster_trouble();
                Err(e)
            }
        }
    }

    /// Round trip to prove Redis answers; what `/health` calls.
    ///
    /// On a cluster every master must answer, and the subscriber must have
    /// every wanted channel subscribed ([`RedisHealth::partial`]).
    pub async fn ping(&self) -> Result<(), BusError> {
        let mut c = self.conn();
        self.run(async move { redis::cmd("PING").query_async::<redis::Value>(&mut c).await })
            .await?;
        match self.health.partial() {
            Some(reason) => Err(BusError::Partial(reason)),
            None => Ok(()),
        }
    }

    /// Caches, appends to history, publishes and records the seq of every tick in one round trip, atomically per tick.
    ///
    /// A tick is accepted only if its `seq` is above the last one recorded for
    /// its symbol, so the price cache is never rolled back to an older tick
    /// (a second instance of an ingestor, a late retry) and clients never see
    /// a seq go backwards. Per accepted tick: `SET price:` before `PUBLISH
    /// ticks:`, so a subscriber that receives tick N and then reads the cache
    /// never sees a tick older than N. Rejected ticks are counted in
    /// [`Redis::stale_ticks_skipped`].
    pub async fn publish(&self, ticks: &[Tick]) -> Result<(), BusError> {
        let items = ticks
            .iter()
            .map(|t| (t.symbol.as_str(), t.seq, t.to_json()));
        self.publish_seq(&TICKS, ticks.len(), items).await
    }

    /// Caches, appends to history, publishes and records the seq of every trade, atomically per trade.
    ///
    /// The same rules as [`Redis::publish`], with the trades' own seq per
    /// symbol (`tickstream:seq:trades`), cache `last:trades:{SYMBOL}`,
    /// channel `trades:{SYMBOL}` and stream `history:trades:{SYMBOL}`.
    pub async fn publish_trades(&self, trades: &[Trade]) -> Result<(), BusError> {
        let items = trades
            .iter()
            .map(|t| (t.symbol.as_str(), t.seq, t.to_json()));
        self.publish_seq(&TRADES, trades.len(), items).await
    }

    /// Runs [`PUBLISH_SCRIPT`] for one kind; counts what it refused as stale.
    async fn publish_seq<'a>(
        &self,
        kind: &SeqKind,
        count: usize,
        items: impl Iterator<Item = (&'a str, u64, String)>,
    ) -> Result<(), BusError> {
        if count == 0 {
            return Ok(());
        }
        if self.is_cluster() {
            return self.publish_seq_cluster(kind, count, items).await;
        }
        let ttl = self.opts.price_ttl.as_secs().max(1);
        let mut invocation = PUBLISH_SCRIPT.prepare_invoke();
        invocation
            .arg(ttl)
            .arg(self.opts.history_len)
            .arg(new_epoch())
            .arg(kind.seq_hash)
            .arg(kind.cache_prefix)
            .arg(kind.channel_prefix);
        for (symbol, seq, json) in items {
            invocation.arg(symbol).arg(seq).arg(json);
        }
        let mut c = self.conn();
        let accepted: u64 = self
            .run(async move { invocation.invoke_async(&mut c).await })
            .await?;
        let skipped = (count as u64).saturating_sub(accepted);
        if skipped > 0 {
            self.stale_skipped.fetch_add(skipped, Ordering::Relaxed);
            tracing::debug!(skipped, "Skipped items not newer than the recorded seq.");
        }
        Ok(())
    }

    /// [`Redis::publish_seq`] on a cluster: one [`CLUSTER_PUBLISH_SCRIPT`] call per symbol
    /// (its items in order), the symbols' calls concurrently, each on its slot's master.
    async fn publish_seq_cluster<'a>(
        &self,
        kind: &SeqKind,
        count: usize,
        items: impl Iterator<Item = (&'a str, u64, String)>,
    ) -> Result<(), BusError> {
        self.ensure_cluster_epoch().await?;
        let ttl = self.opts.price_ttl.as_secs().max(1);
        let mut by_symbol: Vec<(&'a str, Vec<(u64, String)>)> = Vec::new();
        for (symbol, seq, json) in items {
            match by_symbol.iter_mut().find(|(s, _)| *s == symbol) {
                Some((_, list)) => list.push((seq, json)),
                None => by_symbol.push((symbol, vec![(seq, json)])),
            }
        }
        let naming = self.naming;
        let calls = by_symbol.into_iter().map(|(symbol, list)| {
            let channel = format!("{}{symbol}", kind.channel_prefix);
            let mut invocation = CLUSTER_PUBLISH_SCRIPT.prepare_invoke();
            invocation
                .key(naming.name(&format!("{}:{symbol}", kind.seq_hash)))
                .key(naming.name(&format!("{}{symbol}", kind.cache_prefix)))
                .key(naming.name(&keys::history_key(&channel)))
                .key(naming.name(&channel))
                .arg(ttl)
                .arg(self.opts.history_len);
            for (seq, json) in list {
                invocation.arg(seq).arg(json);
            }
            let mut c = self.conn();
            async move { invocation.invoke_async::<u64>(&mut c).await }
        });
        let results = self
            .run(async move { Ok(futures_util::future::join_all(calls).await) })
            .await?;
        let mut accepted = 0u64;
        let mut first_error = None;
        for r in results {
            match r {
                Ok(n) => accepted += n,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            // Same health rule as `run`: a broken link marks Redis down.
            return self.run(async move { Err::<(), _>(e) }).await;
        }
        let skipped = (count as u64).saturating_sub(accepted);
        if skipped > 0 {
            self.stale_skipped.fetch_add(skipped, Ordering::Relaxed);
            tracing::debug!(skipped, "Skipped items not newer than the recorded seq.");
        }
        Ok(())
    }

    /// Publishes one event of any channel and caches it as the channel's latest value, atomically.
    ///
    /// The producer API for every kind but ticks (which go through
    /// [`Redis::publish`] for its seq check): `SET` of the channel's cache key
    /// (`last:{channel}`, with the price TTL) then `PUBLISH` on the channel
    /// itself, in one `MULTI`, so a subscriber that receives the event and then
    /// reads the cache never sees an older value. `json` must be one JSON
    /// object; the gateway skips (and counts) anything else.
    pub async fn publish_event(&self, channel: &Channel, json: &str) -> Result<(), BusError> {
        let ttl = self.opts.price_ttl.as_secs().max(1);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(self.cache_key(channel))
            .arg(json)
            .arg("EX")
            .arg(ttl)
            .ignore()
            .cmd(self.publish_cmd())
            .arg(self.naming.name(channel.as_str()))
            .arg(json)
            .ignore();
        // Cache key and channel share the channel's hash tag: one slot, so one `MULTI` on a cluster too.
        let mut c = self.conn();
        self.run(async move { pipe.query_async::<()>(&mut c).await })
            .await
    }

    /// The cached latest value of each channel (`price:` for ticks, `last:` otherwise) in one round trip, in input order.
    ///
    /// `None` means no producer has published on the channel within the
    /// cache's TTL: the gateway reports such channels as `pending`.
    pub async fn latest_channels(
        &self,
        channels: &[Channel],
    ) -> Result<Vec<Option<Vec<u8>>>, BusError> {
        self.latest_channels_and_epoch(channels)
            .await
            .map(|(values, _)| values)
    }

    /// [`Redis::latest_channels`] plus the data set's epoch (`None` until a producer created it), in the same round trip.
    pub async fn latest_channels_and_epoch(
        &self,
        channels: &[Channel],
    ) -> Result<(Vec<Option<Vec<u8>>>, Option<String>), BusError> {
        // On a cluster the MGET spans slots: the client splits it per shard and reassembles the order.
        let mut keys: Vec<String> = channels.iter().map(|c| self.cache_key(c)).collect();
        keys.push(keys::EPOCH_KEY.to_owned());
        let mut c = self.conn();
        let mut values: Vec<Option<Vec<u8>>> = self
            .run(async move {
                redis::cmd("MGET")
                    .arg(keys)
                    .query_async::<Vec<Option<Vec<u8>>>>(&mut c)
                    .await
            })
            .await?;
        let epoch = values
            .pop()
            .flatten()
            .map(|e| String::from_utf8_lossy(&e).into_owned());
        Ok((values, epoch))
    }

    /// Ticks [`Redis::publish`] refused because their seq was not newer; exported as a metric by services.
    pub fn stale_ticks_skipped(&self) -> u64 {
        self.stale_skipped.load(Ordering::Relaxed)
    }

    /// The cached latest tick of a symbol, as the stored JSON bytes.
    pub async fn latest(&self, symbol: &str) -> Result<Option<Vec<u8>>, BusError> {
        let mut c = self.conn();
        let key = self.naming.name(&keys::price_key(symbol));
        self.run(async move {
            redis::cmd("GET")
                .arg(key)
                .query_async::<Option<Vec<u8>>>(&mut c)
                .await
        })
        .await
    }

    /// The cached latest ticks of several symbols in one round trip, in input order.
    pub async fn latest_many(&self, symbols: &[&str]) -> Result<Vec<Option<Vec<u8>>>, BusError> {
        if symbols.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = symbols
            .iter()
            .map(|s| self.naming.name(&keys::price_key(s)))
            .collect();
        let mut c = self.conn();
        self.run(async move {
            redis::cmd("MGET")
                .arg(keys)
                .query_async::<Vec<Option<Vec<u8>>>>(&mut c)
                .await
        })
        .await
    }

    /// Stores an ingestor's heartbeat with a TTL, so a dead ingestor disappears by itself.
    pub async fn write_heartbeat(&self, hb: &Heartbeat, ttl: Duration) -> Result<(), BusError> {
        self.set_json(keys::heartbeat_key(&hb.name), hb, ttl).await
    }

    /// Every live ingestor heartbeat; records that do not decode are skipped and logged.
    pub async fn heartbeats(&self) -> Result<Vec<Heartbeat>, BusError> {
        let pattern = format!("{}*", keys::HEARTBEAT_KEY_PREFIX);
        let mut out: Vec<Heartbeat> = self.scan_json(pattern, 10_000, "heartbeat").await?;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Every JSON record under keys matching `pattern` (at most `max` keys, SCAN then one MGET);
    /// records that do not decode as `T` are skipped and logged as `what`.
    pub(crate) async fn scan_json<T: serde::de::DeserializeOwned>(
        &self,
        pattern: String,
        max: usize,
        what: &'static str,
    ) -> Result<Vec<T>, BusError> {
        let c = self.conn();
        let found: Vec<String> = self
            .run(async move {
                let mut out = Vec::new();
                match c {
                    Conn::Single(mut c) => scan_into(&mut c, &pattern, max, &mut out).await?,
                    Conn::Cluster(mut c) => {
                        // A SCAN cursor belongs to one node: walk every master's keyspace in turn.
                        for (host, port) in cluster_masters(&mut c).await? {
                            let mut node = NodeConn {
                                conn: c.clone(),
                                host,
                                port,
                            };
                            scan_into(&mut node, &pattern, max, &mut out).await?;
                            if out.len() >= max {
                                break;
                            }
                        }
                    }
                }
                out.truncate(max);
                Ok(out)
            })
            .await?;
        if found.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.conn();
        let keys_for_get = found.clone();
        let values: Vec<Option<Vec<u8>>> = self
            .run(async move {
                redis::cmd("MGET")
                    .arg(keys_for_get)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let mut out = Vec::with_capacity(values.len());
        for (key, value) in found.iter().zip(values) {
            let Some(raw) = value else { continue };
            match serde_json::from_slice::<T>(&raw) {
                Ok(v) => out.push(v),
                Err(e) => {
                    tracing::warn!(key = %key, error = %e, what, "Skipping an undecodable record.")
                }
            }
        }
        Ok(out)
    }

    /// Stores `value` as JSON under `key` with a TTL (heartbeats and other self-expiring records).
    pub(crate) async fn set_json(
        &self,
        key: String,
        value: &impl Serialize,
        ttl: Duration,
    ) -> Result<(), BusError> {
        let json = serde_json::to_string(value).map_err(|e| BusError::Corrupt {
            key: key.clone(),
            reason: e.to_string(),
        })?;
        let mut c = self.conn();
        let ttl = ttl.as_secs().max(1);
        self.run(async move {
            redis::cmd("SET")
                .arg(key)
                .arg(json)
                .arg("EX")
                .arg(ttl)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    /// The last published `seq` of each symbol, so an ingestor restart continues it.
    pub async fn load_seqs(&self, symbols: &[Symbol]) -> Result<HashMap<Symbol, u64>, BusError> {
        self.load_seq_hash(keys::SEQ_HASH_KEY, symbols).await
    }

    /// The last published trade `seq` of each symbol (`tickstream:seq:trades`), so an
    /// ingestor restart continues its trades' seq as it does its ticks'.
    pub async fn load_trade_seqs(
        &self,
        symbols: &[Symbol],
    ) -> Result<HashMap<Symbol, u64>, BusError> {
        self.load_seq_hash(keys::TRADE_SEQ_HASH_KEY, symbols).await
    }

    /// `HMGET` of `symbols` in the seq hash `hash` (on a cluster: `MGET` of the
    /// per-symbol keys `{hash}:{SYMBOL}`); a symbol without a seq is left out.
    async fn load_seq_hash(
        &self,
        hash: &'static str,
        symbols: &[Symbol],
    ) -> Result<HashMap<Symbol, u64>, BusError> {
        if symbols.is_empty() {
            return Ok(HashMap::new());
        }
        let cmd = if self.is_cluster() {
            let mut cmd = redis::cmd("MGET");
            for sym in symbols {
                cmd.arg(self.naming.name(&format!("{hash}:{sym}")));
            }
            cmd
        } else {
            let mut cmd = redis::cmd("HMGET");
            cmd.arg(hash);
            for sym in symbols {
                cmd.arg(sym.as_str());
            }
            cmd
        };
        let mut c = self.conn();
        let values: Vec<Option<String>> = self
            .run(async move { cmd.query_async(&mut c).await })
            .await?;
        let mut out = HashMap::new();
        for (sym, v) in symbols.iter().zip(values) {
            if let Some(raw) = v {
                let seq = raw.parse::<u64>().map_err(|e| BusError::Corrupt {
                    key: format!("{hash} {sym}"),
                    reason: e.to_string(),
                })?;
                out.insert(sym.clone(), seq);
            }
        }
        Ok(out)
    }
}

/// `SCAN MATCH pattern` over one connection's whole keyspace into `out`, stopping once `out` holds `max`.
async fn scan_into(
    c: &mut impl redis::aio::ConnectionLike,
    pattern: &str,
    max: usize,
    out: &mut Vec<String>,
) -> redis::RedisResult<()> {
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(200)
            .query_async(c)
            .await?;
        out.extend(batch);
        if next == 0 || out.len() >= max {
            return Ok(());
        }
        cursor = next;
    }
}

/// Whether every master the cluster currently lists (`CLUSTER SLOTS`) answers `PING`, each within `timeout`.
///
/// Why not one `PING` routed to all masters: the `redis` crate's fan-out skips
/// nodes it holds no connection to, so a dead master would go unnoticed.
pub(crate) async fn all_masters_answer(c: &mut ClusterConnection, timeout: Duration) -> bool {
    let Ok(Ok(masters)) = tokio::time::timeout(timeout, cluster_masters(c)).await else {
        return false;
    };
    if masters.is_empty() {
        return false;
    }
    for (host, port) in masters {
        let mut node = NodeConn {
            conn: c.clone(),
            host,
            port,
        };
        let cmd = redis::cmd("PING");
        let ping = cmd.query_async::<redis::Value>(&mut node);
        if !matches!(tokio::time::timeout(timeout, ping).await, Ok(Ok(_))) {
            return false;
        }
    }
    true
}

/// Every master's `(host, port)`, from `CLUSTER SLOTS` (each slot range's first node is its master).
pub(crate) async fn cluster_masters(
    c: &mut ClusterConnection,
) -> redis::RedisResult<Vec<(String, u16)>> {
    let reply: redis::Value = redis::cmd("CLUSTER").arg("SLOTS").query_async(c).await?;
    let mut out: Vec<(String, u16)> = Vec::new();
    let redis::Value::Array(ranges) = reply else {
        return Ok(out);
    };
    for range in ranges {
        let redis::Value::Array(parts) = range else {
            continue;
        };
        let Some(redis::Value::Array(master)) = parts.get(2) else {
            continue;
        };
        let host = match master.first() {
            Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            Some(redis::Value::SimpleString(s)) => s.clone(),
            _ => continue,
        };
        let Some(redis::Value::Int(port)) = master.get(1) else {
            continue;
        };
        let Ok(port) = u16::try_from(*port) else {
            continue;
        };
        if !out.iter().any(|(h, p)| *h == host && *p == port) {
            out.push((host, port));
        }
    }
    Ok(out)
}

/// A cluster connection pinned to one node: every command goes to `host:port`
/// (for per-node commands such as `SCAN`, whose cursor belongs to one node).
struct NodeConn {
    /// The cluster connection that owns the node's link.
    conn: ClusterConnection,
    /// The node's host as the cluster announces it.
    host: String,
    /// The node's port.
    port: u16,
}

impl redis::aio::ConnectionLike for NodeConn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        let routing = redis::cluster_routing::RoutingInfo::SingleNode(
            redis::cluster_routing::SingleNodeRoutingInfo::ByAddress {
                host: self.host.clone(),
                port: self.port,
            },
        );
        Box::pin(self.conn.route_command(cmd.clone(), routing))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        self.conn.req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        0
    }
}

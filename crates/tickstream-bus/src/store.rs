//! Commands on the shared Redis connection: publish, cache, heartbeats, seq.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use tickstream_model::{Channel, Symbol, Tick, Trade};

use crate::health::RedisHealth;
use crate::keys;

/// Failures of a bus operation; all of them leave the service running.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The URL in `REDIS_URL` does not parse; a configuration error, not retryable.
    #[error("invalid Redis URL: {0}")]
    BadUrl(#[source] redis::RedisError),
    /// Redis answered with an error or the connection broke.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
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
        matches!(self, BusError::Redis(_) | BusError::Timeout(_))
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
        }
    }
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
    /// Multiplexed connection that re-dials after failures.
    conn: ConnectionManager,
    /// Kept to open the dedicated pub/sub connection.
    client: redis::Client,
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
/// for Redis Cluster they would be passed as KEYS and hash-tagged per symbol).
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
    pub fn connect_lazy(opts: RedisOptions) -> Result<Self, BusError> {
        let client = redis::Client::open(opts.url.as_str()).map_err(BusError::BadUrl)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(opts.op_timeout))
            .set_response_timeout(Some(opts.op_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(BusError::BadUrl)?;
        Ok(Self {
            conn,
            client,
            health: Arc::new(RedisHealth::default()),
            opts,
            stale_skipped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The health record this handle updates; share it with `/health`.
    pub fn health(&self) -> &Arc<RedisHealth> {
        &self.health
    }

    /// The client, for opening a dedicated pub/sub connection.
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// Options this handle was built with.
    pub fn options(&self) -> &RedisOptions {
        &self.opts
    }

    /// A clone of the shared connection, for commands defined in sibling modules.
    pub(crate) fn conn(&self) -> ConnectionManager {
        self.conn.clone()
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
                {
                    self.health.mark_down(&e);
                } else {
                    self.health.mark_up();
                }
                Err(BusError::Redis(e))
            }
            Err(_) => {
                let e = BusError::Timeout(self.opts.op_timeout);
                self.health.mark_down(&e);
                Err(e)
            }
        }
    }

    /// Round trip to prove Redis answers; what `/health` calls.
    pub async fn ping(&self) -> Result<(), BusError> {
        let mut c = self.conn.clone();
        self.run(async move { redis::cmd("PING").query_async::<String>(&mut c).await })
            .await
            .map(|_| ())
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
        let mut c = self.conn.clone();
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
            .arg(channel.cache_key())
            .arg(json)
            .arg("EX")
            .arg(ttl)
            .ignore()
            .cmd("PUBLISH")
            .arg(channel.as_str())
            .arg(json)
            .ignore();
        let mut c = self.conn.clone();
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
        let mut keys: Vec<String> = channels.iter().map(Channel::cache_key).collect();
        keys.push(keys::EPOCH_KEY.to_owned());
        let mut c = self.conn.clone();
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
        let mut c = self.conn.clone();
        let key = keys::price_key(symbol);
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
        let keys: Vec<String> = symbols.iter().map(|s| keys::price_key(s)).collect();
        let mut c = self.conn.clone();
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
        let mut c = self.conn.clone();
        let found: Vec<String> = self
            .run(async move {
                let mut out = Vec::new();
                let mut cursor: u64 = 0;
                loop {
                    let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(200)
                        .query_async(&mut c)
                        .await?;
                    out.extend(batch);
                    if next == 0 || out.len() >= max {
                        out.truncate(max);
                        return Ok(out);
                    }
                    cursor = next;
                }
            })
            .await?;
        if found.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.conn.clone();
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
        let mut c = self.conn.clone();
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

    /// `HMGET` of `symbols` in the seq hash `hash`; a symbol the hash lacks is left out.
    async fn load_seq_hash(
        &self,
        hash: &'static str,
        symbols: &[Symbol],
    ) -> Result<HashMap<Symbol, u64>, BusError> {
        if symbols.is_empty() {
            return Ok(HashMap::new());
        }
        let fields: Vec<&str> = symbols.iter().map(Symbol::as_str).collect();
        let mut c = self.conn.clone();
        let values: Vec<Option<String>> = self
            .run(async move {
                redis::cmd("HMGET")
                    .arg(hash)
                    .arg(fields)
                    .query_async(&mut c)
                    .await
            })
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

//! The analytics service's Redis records: stored candles, and the read side
//! the gateway's `/candles`, `/signals` and `/sentiment` call.
//!
//! Keys (one sorted set per symbol and interval, scored by the bar's start):
//! - `analytics:candles:{INTERVAL}:{SYMBOL}`: ZSET, score = bar start in epoch
//!   ms, member = the candle JSON as published on `candles:{INTERVAL}:{SYMBOL}`.
//!   One member per start (a rewrite replaces it); the newest member may be the
//!   bar still open (`"closed":false`). Trimmed to the newest `keep` members.
//! - `last:signals:{SYMBOL}` and `last:sentiment`: the latest published value,
//!   written by [`Redis::publish_event`].
//! - `tickstream:analytics:{name}`: the analytics service's heartbeat, kept
//!   apart from `tickstream:ingestor:*` so it is never mistaken for an ingestor.

use std::time::Duration;

use tickstream_model::{Channel, Symbol};

use crate::store::{BusError, Heartbeat, Redis};

/// Prefix of the stored-candle sorted sets (`analytics:candles:1m:BTCUSDT`).
pub const CANDLE_STORE_PREFIX: &str = "analytics:";
/// Prefix of the analytics heartbeat key, apart from the ingestors' so discovery never counts it.
pub const ANALYTICS_HEARTBEAT_PREFIX: &str = "tickstream:analytics:";
/// Most bars one [`Redis::candles`] call returns, so a request cannot pull a whole set at once.
pub const MAX_CANDLES_PER_READ: usize = 5_000;

/// The sorted set holding the bars published on a `candles:` channel.
pub fn candle_store_key(channel: &Channel) -> String {
    format!("{CANDLE_STORE_PREFIX}{channel}")
}

/// The key of the analytics service's heartbeat.
pub fn analytics_heartbeat_key(name: &str) -> String {
    format!("{ANALYTICS_HEARTBEAT_PREFIX}{name}")
}

/// One bar to store: its `candles:` channel, start (epoch ms, the score) and JSON.
#[derive(Debug, Clone, Copy)]
pub struct StoredCandle<'a> {
    /// The `candles:{INTERVAL}:{SYMBOL}` channel the bar belongs to.
    pub channel: &'a Channel,
    /// Bar start in epoch milliseconds; a bar with the same start is replaced.
    pub start_ms: i64,
    /// The candle JSON, as published.
    pub json: &'a str,
}

/// Which stored bars [`Redis::candles`] returns: starts in `[from_ms, to_ms]`, the newest `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CandleRange {
    /// Earliest bar start included (epoch ms); `None` = no lower bound.
    pub from_ms: Option<i64>,
    /// Latest bar start included (epoch ms); `None` = no upper bound.
    pub to_ms: Option<i64>,
    /// At most this many bars (capped at [`MAX_CANDLES_PER_READ`]), the newest ones.
    pub limit: usize,
}

impl Redis {
    /// Stores bars (replacing any with the same start) and trims each set to its newest `keep`, atomically.
    ///
    /// One `MULTI` for the whole batch: per bar `ZREMRANGEBYSCORE` of its
    /// start then `ZADD`, then `ZREMRANGEBYRANK` per touched set.
    pub async fn store_candles(
        &self,
        bars: &[StoredCandle<'_>],
        keep: usize,
    ) -> Result<(), BusError> {
        if bars.is_empty() {
            return Ok(());
        }
        if self.is_cluster() {
            // One `MULTI` per set: each set is one slot, the batch spans several.
            let mut by_channel: Vec<Vec<StoredCandle<'_>>> = Vec::new();
            for bar in bars {
                match by_channel.iter_mut().find(|b| b[0].channel == bar.channel) {
                    Some(list) => list.push(*bar),
                    None => by_channel.push(vec![*bar]),
                }
            }
            for list in by_channel {
                self.store_candles_one_slot(&list, keep).await?;
            }
            return Ok(());
        }
        self.store_candles_one_slot(bars, keep).await
    }

    /// [`Redis::store_candles`] for bars whose sets share one slot (or any bars on one Redis).
    async fn store_candles_one_slot(
        &self,
        bars: &[StoredCandle<'_>],
        keep: usize,
    ) -> Result<(), BusError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut touched: Vec<String> = Vec::new();
        for bar in bars {
            let key = self.naming().name(&candle_store_key(bar.channel));
            pipe.cmd("ZREMRANGEBYSCORE")
                .arg(&key)
                .arg(bar.start_ms)
                .arg(bar.start_ms)
                .ignore()
                .cmd("ZADD")
                .arg(&key)
                .arg(bar.start_ms)
                .arg(bar.json)
                .ignore();
            if !touched.contains(&key) {
                touched.push(key);
            }
        }
        let keep = i64::try_from(keep.max(1)).unwrap_or(i64::MAX);
        for key in touched {
            pipe.cmd("ZREMRANGEBYRANK")
                .arg(key)
                .arg(0)
                .arg(-keep - 1)
                .ignore();
        }
        let mut c = self.conn();
        self.run_op(async move { pipe.query_async::<()>(&mut c).await })
            .await
    }

    /// Stored bars of a `candles:` channel in `range`, oldest first, as the stored JSON bytes.
    ///
    /// Any other kind of channel holds no bars and yields an empty list.
    pub async fn candles(
        &self,
        channel: &Channel,
        range: CandleRange,
    ) -> Result<Vec<Vec<u8>>, BusError> {
        if channel.spec().name != "candles" || range.limit == 0 {
            return Ok(Vec::new());
        }
        let key = self.naming().name(&candle_store_key(channel));
        let max = range.to_ms.map_or("+inf".to_owned(), |t| t.to_string());
        let min = range.from_ms.map_or("-inf".to_owned(), |f| f.to_string());
        let limit = range.limit.min(MAX_CANDLES_PER_READ);
        let mut c = self.conn();
        let mut newest_first: Vec<Vec<u8>> = self
            .run_op(async move {
                redis::cmd("ZREVRANGEBYSCORE")
                    .arg(key)
                    .arg(max)
                    .arg(min)
                    .arg("LIMIT")
                    .arg(0)
                    .arg(limit)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        newest_first.reverse();
        Ok(newest_first)
    }

    /// The latest published signal of a symbol (`last:signals:{SYMBOL}`), if any within the cache TTL.
    pub async fn latest_signal(&self, symbol: &Symbol) -> Result<Option<Vec<u8>>, BusError> {
        let Some(channel) = Channel::for_symbol("signals", symbol) else {
            return Ok(None);
        };
        Ok(self.latest_channels(&[channel]).await?.pop().flatten())
    }

    /// The latest published market mood (`last:sentiment`), if any within the cache TTL.
    pub async fn latest_sentiment(&self) -> Result<Option<Vec<u8>>, BusError> {
        let channel = Channel::parse("sentiment").map_err(|e| BusError::Corrupt {
            key: "sentiment".to_owned(),
            reason: e.to_string(),
        })?;
        Ok(self.latest_channels(&[channel]).await?.pop().flatten())
    }

    /// Stores the analytics service's heartbeat under `tickstream:analytics:{name}` with a TTL.
    pub async fn write_analytics_heartbeat(
        &self,
        hb: &Heartbeat,
        ttl: Duration,
    ) -> Result<(), BusError> {
        self.set_json(analytics_heartbeat_key(&hb.name), hb, ttl)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names() {
        let c = Channel::parse("candles:1m:btcusdt").unwrap();
        assert_eq!(candle_store_key(&c), "analytics:candles:1m:BTCUSDT");
        assert_eq!(
            analytics_heartbeat_key("analytics"),
            "tickstream:analytics:analytics"
        );
    }
}

//! Seq bookkeeping and publishing: quotes from the stream or the fallback get
//! their per-symbol `seq` and go to Redis in one pipelined round trip.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use tickstream_bus::{BusError, Redis};
use tickstream_model::{Symbol, Tick, Trade};

use crate::metrics::Metrics;
use crate::status::Status;
use crate::venue::{Quote, TradePrint};

/// Stamps and publishes ticks; shared by every connection task and the fallback poller.
#[derive(Debug, Clone)]
pub struct Publisher {
    /// The bus.
    redis: Redis,
    /// Last seq handed out per symbol. Loaded from Redis before the first
    /// publish; a failed publish still consumes its seqs (gaps, never repeats).
    seqs: Arc<Mutex<HashMap<Symbol, u64>>>,
    /// Last trade seq handed out per symbol: trades count apart from ticks, with the same rules.
    trade_seqs: Arc<Mutex<HashMap<Symbol, u64>>>,
    /// Counters and the latency histogram.
    metrics: Metrics,
    /// `/health` state.
    status: Arc<Status>,
}

impl Publisher {
    /// A publisher continuing from `seqs` (as loaded from Redis).
    pub fn new(
        redis: Redis,
        seqs: HashMap<Symbol, u64>,
        metrics: Metrics,
        status: Arc<Status>,
    ) -> Self {
        Self {
            redis,
            seqs: Arc::new(Mutex::new(seqs)),
            trade_seqs: Arc::default(),
            metrics,
            status,
        }
    }

    /// The same publisher continuing trades from `trade_seqs` (as loaded from Redis).
    pub fn with_trade_seqs(self, trade_seqs: HashMap<Symbol, u64>) -> Self {
        merge(&self.trade_seqs, trade_seqs);
        self
    }

    /// Adds seqs loaded later (symbols a reload added), never moving a counter back.
    pub fn merge_seqs(&self, loaded: HashMap<Symbol, u64>) {
        merge(&self.seqs, loaded);
    }

    /// Loads `symbols`' last published tick and trade seqs from Redis and merges them, so a
    /// symbol added at run time continues its seqs like one known at start; returns how many
    /// symbols Redis had a tick seq for.
    pub async fn load_more_seqs(&self, symbols: &[Symbol]) -> Result<usize, BusError> {
        let loaded = tickstream_ingest_shell::seqs::load_seqs(&self.redis, symbols).await?;
        let trades = tickstream_ingest_shell::seqs::load_trade_seqs(&self.redis, symbols).await?;
        let restored = loaded.len();
        self.merge_seqs(loaded);
        merge(&self.trade_seqs, trades);
        Ok(restored)
    }

    /// Assigns the next trade seq of each print's symbol and stamps `source`.
    pub fn stamp_trades(&self, prints: Vec<TradePrint>, source: &str) -> Vec<Trade> {
        let mut seqs = lock(&self.trade_seqs);
        prints
            .into_iter()
            .map(|p| {
                let seq = seqs.entry(p.symbol.clone()).or_insert(0);
                *seq += 1;
                p.into_trade(source, *seq)
            })
            .collect()
    }

    /// Publishes `prints` as trades of `source` on `trades:{SYMBOL}`; failures are counted and
    /// logged, never fatal. A print breaking the trade contract is skipped before it takes a seq.
    pub async fn publish_trades(
        &self,
        prints: Vec<TradePrint>,
        source: &str,
    ) -> Result<(), BusError> {
        let prints: Vec<TradePrint> = prints
            .into_iter()
            .filter_map(|p| match p.validated() {
                Ok(p) => Some(p),
                Err(e) => {
                    self.metrics.parse_errors.inc();
                    tracing::warn!(source, error = %e, "Skipping a trade that breaks the trade contract.");
                    None
                }
            })
            .collect();
        if prints.is_empty() {
            return Ok(());
        }
        let trades = self.stamp_trades(prints, source);
        let result = self.redis.publish_trades(&trades).await;
        self.metrics
            .redis_up
            .set(i64::from(self.redis.health().is_up()));
        match result {
            Ok(()) => {
                self.metrics.trades_published.inc_by(trades.len() as u64);
                Ok(())
            }
            Err(e) => {
                self.metrics.publish_errors.inc();
                self.status.common().publish_failed();
                tracing::warn!(error = %e, trades = trades.len(), "Publishing trades to Redis failed; trades dropped.");
                Err(e)
            }
        }
    }

    /// Assigns the next seq of each quote's symbol and stamps `source`.
    pub fn stamp(&self, quotes: Vec<Quote>, source: &str) -> Vec<Tick> {
        let mut seqs = lock(&self.seqs);
        quotes
            .into_iter()
            .map(|q| {
                let seq = seqs.entry(q.symbol.clone()).or_insert(0);
                *seq += 1;
                q.into_tick(source, *seq)
            })
            .collect()
    }

    /// Publishes `quotes` as ticks of `source`; failures are counted and logged, never fatal.
    pub async fn publish(&self, quotes: Vec<Quote>, source: &str) -> Result<(), BusError> {
        // A quote breaking the tick contract (a negative volume, an overflowed
        // running sum) is skipped like an unparsable frame, before it takes a seq.
        let quotes: Vec<Quote> = quotes
            .into_iter()
            .filter_map(|q| match q.validated() {
                Ok(q) => Some(q),
                Err(e) => {
                    self.metrics.parse_errors.inc();
                    tracing::warn!(source, error = %e, "Skipping a quote that breaks the tick contract.");
                    None
                }
            })
            .collect();
        if quotes.is_empty() {
            return Ok(());
        }
        let ticks = self.stamp(quotes, source);
        let result = self.redis.publish(&ticks).await;
        self.metrics
            .redis_up
            .set(i64::from(self.redis.health().is_up()));
        match result {
            Ok(()) => {
                let now = Utc::now();
                let latency = self.metrics.latency(source);
                let mut newest = ticks[0].timestamp;
                for t in &ticks {
                    let age = (now - t.timestamp).num_microseconds().unwrap_or(0).max(0);
                    latency.observe(age as f64 / 1e6);
                    newest = newest.max(t.timestamp);
                }
                self.metrics.published(source, ticks.len() as u64);
                self.status.common().published(ticks.len(), newest);
                Ok(())
            }
            Err(e) => {
                self.metrics.publish_errors.inc();
                self.status.common().publish_failed();
                tracing::warn!(error = %e, ticks = ticks.len(), "Publishing to Redis failed; ticks dropped.");
                Err(e)
            }
        }
    }
}

/// The counters, even if a thread panicked while holding them (they stay consistent).
fn lock(seqs: &Mutex<HashMap<Symbol, u64>>) -> std::sync::MutexGuard<'_, HashMap<Symbol, u64>> {
    match seqs.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Raises each counter of `loaded` in `seqs`, never moving one back.
fn merge(seqs: &Mutex<HashMap<Symbol, u64>>, loaded: HashMap<Symbol, u64>) {
    let mut seqs = lock(seqs);
    for (symbol, seq) in loaded {
        let entry = seqs.entry(symbol).or_insert(0);
        *entry = (*entry).max(seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickstream_bus::{RedisHealth, RedisOptions};

    #[tokio::test]
    async fn seqs_continue_per_symbol_from_what_redis_had() {
        // A lazy handle never touches the network; stamping is pure bookkeeping.
        let redis = Redis::connect_lazy(RedisOptions::new("redis://127.0.0.1:1")).unwrap();
        let registry = tickstream_runtime::metrics::registry();
        let metrics = Metrics::register(&registry, "binance");
        let status = Arc::new(Status::new(
            "binance",
            0,
            vec![],
            1,
            Arc::new(RedisHealth::default()),
        ));
        let btc = Symbol::parse("BTCUSDT").unwrap();
        let eth = Symbol::parse("ETHUSDT").unwrap();
        let p = Publisher::new(redis, HashMap::from([(btc.clone(), 41)]), metrics, status);
        let at = tickstream_model::time::from_millis(1_700_000_000_000).unwrap();
        let q = |s: &Symbol| Quote::new(s.clone(), 1.0, at);
        let ticks = p.stamp(vec![q(&btc), q(&eth), q(&btc)], "binance-rest");
        let seqs: Vec<(String, u64)> = ticks
            .iter()
            .map(|t| (t.symbol.to_string(), t.seq))
            .collect();
        assert_eq!(
            seqs,
            [
                ("BTCUSDT".to_owned(), 42),
                ("ETHUSDT".to_owned(), 1),
                ("BTCUSDT".to_owned(), 43)
            ]
        );
        assert!(ticks.iter().all(|t| t.source == "binance-rest"));

        // A symbol added by a reload: Redis knew it at 9; ETH's live counter (2) never goes back.
        let xrp = Symbol::parse("XRPBTC").unwrap();
        p.merge_seqs(HashMap::from([(xrp.clone(), 9), (eth.clone(), 1)]));
        let ticks = p.stamp(vec![q(&xrp), q(&eth)], "binance");
        assert_eq!((ticks[0].seq, ticks[1].seq), (10, 2));

        // Trades count on their own: BTC's trades continue from 7 whatever its ticks did.
        let p = p.with_trade_seqs(HashMap::from([(btc.clone(), 7)]));
        let print = |s: &Symbol| TradePrint {
            symbol: s.clone(),
            price: 1.0,
            size: 0.5,
            side: None,
            trade_id: None,
            timestamp: at,
        };
        let trades = p.stamp_trades(vec![print(&btc), print(&eth), print(&btc)], "binance");
        let seqs: Vec<u64> = trades.iter().map(|t| t.seq).collect();
        assert_eq!(seqs, [8, 1, 9]);
        assert_eq!(
            p.stamp(vec![q(&btc)], "binance")[0].seq,
            44,
            "ticks unaffected"
        );
    }
}

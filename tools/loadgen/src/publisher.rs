//! Publishes synthetic ticks into Redis at a fixed total rate, like an ingestor would.
//!
//! Each tick's `timestamp` is the moment its batch was built (µs precision),
//! so a client's receive time minus `timestamp` is the whole Redis → server →
//! client latency. Batches go out every [`BATCH_INTERVAL`] as one pipelined
//! round trip of `PUBLISH` commands; a batch that falls behind schedule is
//! made up by the next one (bounded by [`MAX_CATCH_UP`]), so the achieved rate
//! is the asked rate unless Redis itself cannot keep up (the report says
//! what was actually published).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tickstream_model::{Symbol, Tick};
use tokio::sync::watch;

/// How often a batch goes out: 1 ms keeps batches small (and latency honest) at 20k ticks/s.
pub const BATCH_INTERVAL: Duration = Duration::from_millis(1);
/// At most this much backlog (as a share of one second's rate) goes out in one batch.
const MAX_CATCH_UP: f64 = 0.1;
/// The `source` of every tick; a valid ingestor name, so servers accept it.
pub const SOURCE: &str = "loadgen";

/// Ticks published, in total and per symbol inside the measured window.
#[derive(Debug, Clone, Default)]
pub struct Published {
    /// All ticks sent (warm-up included).
    pub total: u64,
    /// Per symbol (same order as the publisher's symbols), ticks sent while measuring.
    pub window: Vec<u64>,
    /// Failed pipelines.
    pub errors: u64,
    /// Per symbol, the seq of its first tick sent while measuring (0: none). Seqs go up by exactly 1
    /// per tick of a symbol, so the window's seqs of symbol `i` are `window_first_seq[i] ..
    /// window_first_seq[i] + window[i]`: what an exactly-once count is checked against.
    pub window_first_seq: Vec<u64>,
}

/// A fixed-rate tick publisher over a list of symbols.
pub struct Publisher {
    /// One multiplexed connection; pipelines keep it busy enough. None on a Redis Cluster, where
    /// every tick goes through the bus ([`Publisher::connect_cluster`]).
    conn: Option<redis::aio::MultiplexedConnection>,
    /// What to publish, round robin.
    symbols: Vec<Symbol>,
    /// Redis channel per symbol, built once.
    channels: Vec<String>,
    /// Next seq per symbol.
    seq: Vec<u64>,
    /// Current price per symbol (a slow random walk, so ticks look alive).
    price: Vec<f64>,
    /// Ticks per second over all symbols.
    rate: u64,
    /// With history ([`Publisher::with_history`]): publish through the ingestors' atomic script
    /// instead of a plain `PUBLISH`.
    bus: Option<tickstream_bus::Redis>,
}

impl Publisher {
    /// Connects to Redis at `url`; seqs start above the current time in µs, so they keep increasing across runs.
    pub async fn connect(url: &str, symbols: &[String], rate: u64) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let conn = client.get_multiplexed_async_connection().await?;
        Self::new(Some(conn), symbols, rate, None)
    }

    /// Publishes into a Redis Cluster (`seeds`: `host:port` of some of its nodes) the way an ingestor
    /// does there: every tick through the bus's single-slot script with `SPUBLISH` (seq, cache and
    /// history included, so [`Publisher::seed_prices`] has nothing to do).
    pub async fn connect_cluster(
        seeds: &[String],
        symbols: &[String],
        rate: u64,
    ) -> anyhow::Result<Self> {
        let mut opts = tickstream_bus::RedisOptions::new("");
        opts.cluster_nodes = seeds.to_vec();
        let bus = tickstream_bus::Redis::connect_lazy(opts)
            .map_err(|e| anyhow::anyhow!("Redis Cluster at {seeds:?}: {e}"))?;
        bus.ping()
            .await
            .map_err(|e| anyhow::anyhow!("Redis Cluster at {seeds:?}: {e}"))?;
        Self::new(None, symbols, rate, Some(bus))
    }

    fn new(
        conn: Option<redis::aio::MultiplexedConnection>,
        symbols: &[String],
        rate: u64,
        bus: Option<tickstream_bus::Redis>,
    ) -> anyhow::Result<Self> {
        let symbols = symbols
            .iter()
            .map(|s| Symbol::parse(s).map_err(|e| anyhow::anyhow!("symbol {s:?}: {e}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let base = u64::try_from(Utc::now().timestamp_micros()).unwrap_or(1);
        Ok(Self {
            conn,
            channels: symbols.iter().map(|s| format!("ticks:{s}")).collect(),
            seq: vec![base; symbols.len()],
            price: (0..symbols.len()).map(|i| 100.0 + i as f64).collect(),
            symbols,
            rate,
            bus,
        })
    }

    /// Publishes like an ingestor from now on: every tick through the bus's atomic script (seq check,
    /// `history:ticks:{SYMBOL}` append, `price:` cache, `PUBLISH`, epoch), so the gateway can replay
    /// what a client missed (`subscribe` with `since`). Costs Redis more per tick than a bare
    /// `PUBLISH`; runs compared with each other should all use it or none.
    pub fn with_history(mut self, url: &str) -> anyhow::Result<Self> {
        let bus = tickstream_bus::Redis::connect_lazy(tickstream_bus::RedisOptions::new(url))
            .map_err(|e| anyhow::anyhow!("Redis at {url}: {e}"))?;
        self.bus = Some(bus);
        Ok(self)
    }

    /// Stores one tick per symbol under `price:{SYMBOL}` so subscribers get a snapshot first, as with a real ingestor.
    pub async fn seed_prices(&mut self) -> anyhow::Result<()> {
        if self.conn.is_none() {
            return Ok(());
        }
        let now = now_micros_time();
        let mut pipe = redis::pipe();
        for i in 0..self.symbols.len() {
            let json = self.tick(i, now).to_json();
            pipe.cmd("SET")
                .arg(format!("price:{}", self.symbols[i]))
                .arg(json)
                .ignore();
        }
        if let Some(conn) = self.conn.as_mut() {
            pipe.query_async::<()>(conn).await?;
        }
        Ok(())
    }

    fn tick(&mut self, i: usize, timestamp: DateTime<Utc>) -> Tick {
        self.seq[i] += 1;
        // A deterministic wiggle: cheap, positive, changes every tick.
        let p = self.price[i] * (1.0 + 0.0001 * (((self.seq[i] % 7) as f64) - 3.0));
        self.price[i] = p;
        Tick {
            symbol: self.symbols[i].clone(),
            price: (p * 100.0).round() / 100.0,
            volume: Some(1_000.0 + (self.seq[i] % 1_000) as f64),
            high: Some((p * 101.0).round() / 100.0),
            low: Some((p * 99.0).round() / 100.0),
            change: Some(0.5),
            change_percent: Some(0.01),
            bid: Some((p * 99.99).round() / 100.0),
            ask: Some((p * 100.01).round() / 100.0),
            timestamp,
            source: SOURCE.to_owned(),
            seq: self.seq[i],
        }
    }

    /// Publishes until `stop` turns true; counts per symbol while `measuring` is set.
    pub async fn run(
        mut self,
        mut stop: watch::Receiver<bool>,
        measuring: Arc<AtomicBool>,
    ) -> Published {
        let mut out = Published {
            window: vec![0; self.symbols.len()],
            window_first_seq: vec![0; self.symbols.len()],
            ..Published::default()
        };
        if self.rate == 0 || self.symbols.is_empty() {
            let _ = stop.wait_for(|s| *s).await;
            return out;
        }
        let max_batch = ((self.rate as f64 * MAX_CATCH_UP) as u64).max(1);
        let started = Instant::now();
        let mut ticker = tokio::time::interval(BATCH_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut next_symbol = 0usize;
        loop {
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                _ = ticker.tick() => {}
            }
            let due = (started.elapsed().as_secs_f64() * self.rate as f64) as u64;
            let n = due.saturating_sub(out.total).min(max_batch);
            if n == 0 {
                continue;
            }
            let measuring_now = measuring.load(Ordering::Relaxed);
            let now = now_micros_time();
            let mut pipe = redis::pipe();
            let mut ticks = Vec::new();
            for _ in 0..n {
                let i = next_symbol;
                next_symbol = (next_symbol + 1) % self.symbols.len();
                let tick = self.tick(i, now);
                if measuring_now {
                    if out.window[i] == 0 {
                        out.window_first_seq[i] = tick.seq;
                    }
                    out.window[i] += 1;
                }
                if self.bus.is_some() {
                    ticks.push(tick);
                } else {
                    pipe.cmd("PUBLISH")
                        .arg(&self.channels[i])
                        .arg(tick.to_json())
                        .ignore();
                }
            }
            // Count what we attempted so the schedule does not try to resend a failed batch.
            out.total += n;
            let failed = match (&self.bus, self.conn.as_mut()) {
                (Some(bus), _) => bus.publish(&ticks).await.is_err(),
                (None, Some(conn)) => pipe.query_async::<()>(conn).await.is_err(),
                (None, None) => true,
            };
            if failed {
                out.errors += 1;
            }
        }
        out
    }
}

/// Now, cut to microseconds (what the tick's timestamp carries).
fn now_micros_time() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

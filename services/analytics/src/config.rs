//! The analytics service's configuration: defaults in code < optional TOML file < environment.
//!
//! ```toml
//! host = "0.0.0.0"                      # HOST
//! port = 9105                           # PORT
//! redis_url = "redis://127.0.0.1:6379"  # REDIS_URL
//!
//! [log]
//! level = "info"                        # LOG_LEVEL
//! format = "pretty"                     # LOG_FORMAT = pretty | json
//!
//! [analytics]
//! symbols = []                  # SYMBOLS=BTCUSDT,AAPL; empty = every symbol an ingestor announces
//! grace_ms = 2000               # TICKSTREAM_ANALYTICS__GRACE_MS: late trades correct a closed bar this long
//! update_ms = 250               # TICKSTREAM_ANALYTICS__UPDATE_MS: least time between two updates of an open bar
//! clock_ms = 100                # TICKSTREAM_ANALYTICS__CLOCK_MS: how often bars are checked for their end
//! signal_refresh_ms = 15000     # TICKSTREAM_ANALYTICS__SIGNAL_REFRESH_MS
//! sentiment_ms = 10000          # TICKSTREAM_ANALYTICS__SENTIMENT_MS
//! universe_refresh_ms = 5000    # TICKSTREAM_ANALYTICS__UNIVERSE_REFRESH_MS: how often heartbeats are re-read
//! fresh_ms = 60000              # TICKSTREAM_ANALYTICS__FRESH_MS: data younger than this counts for the mood
//! indicator_interval = "1m"     # TICKSTREAM_ANALYTICS__INDICATOR_INTERVAL
//! ema_fast = 12                 # TICKSTREAM_ANALYTICS__EMA_FAST
//! ema_slow = 26                 # TICKSTREAM_ANALYTICS__EMA_SLOW
//! rsi_period = 14               # TICKSTREAM_ANALYTICS__RSI_PERIOD
//! volume_window = 20            # TICKSTREAM_ANALYTICS__VOLUME_WINDOW
//! keep_bars = 2000              # TICKSTREAM_ANALYTICS__KEEP_BARS: stored bars per symbol and interval
//! heartbeat_secs = 2            # TICKSTREAM_ANALYTICS__HEARTBEAT_SECS (TTL = 5x)
//! cache_ttl_secs = 86400        # TICKSTREAM_ANALYTICS__CACHE_TTL_SECS: lifetime of last:{channel}
//! ```

use serde::{Deserialize, Serialize};
use tickstream_model::Symbol;
use tickstream_runtime::config::{
    string_or_list, ConfigError, EnvAlias, ServiceConfig, DEFAULT_HOST, DEFAULT_REDIS_URL,
};
use tickstream_runtime::telemetry::LogConfig;

use crate::candle::{Interval, Rules};
use crate::engine::EngineConfig;
use crate::indicators::Periods;

/// The service's own plain-named variables, on top of the common ones.
pub const ALIASES: &[EnvAlias] = &[EnvAlias::list("SYMBOLS", "analytics.symbols")];

/// Upper bound on the universe, so a runaway heartbeat cannot grow memory without bound.
pub const MAX_SYMBOLS: usize = 10_000;

/// Fewest bars stored per symbol and interval (a day of 1m bars is 1,440).
pub const MIN_KEEP_BARS: usize = 1_000;

/// Everything the service reads at start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Address of the ops server (`/health`, `/metrics`).
    pub host: String,
    /// Port of the ops server; 0 picks a free one (tests).
    pub port: u16,
    /// Where ticks and trades are read and results written.
    pub redis_url: String,
    /// Redis Cluster seed nodes `host:port,...` (`REDIS_CLUSTER_NODES`); empty (the default) = one Redis at `redis_url`.
    #[serde(default, deserialize_with = "string_or_list")]
    pub redis_cluster_nodes: Vec<String>,
    /// Log level and format.
    pub log: LogConfig,
    /// What to compute and how often.
    pub analytics: AnalyticsConfig,
}

/// The `[analytics]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalyticsConfig {
    /// Symbols to follow; empty follows every symbol in the ingestors' heartbeats.
    /// (`default`: an empty list leaves no key behind in the layered config.)
    #[serde(default, deserialize_with = "string_or_list")]
    pub symbols: Vec<String>,
    /// How long after its end a closed bar still takes late trades (ms).
    pub grace_ms: u64,
    /// Least time between two publications of one bar in progress (ms).
    pub update_ms: u64,
    /// How often bars are checked for their end (ms); bars close this late at most.
    pub clock_ms: u64,
    /// Period of the signal refresh (ms).
    pub signal_refresh_ms: u64,
    /// Period of the market mood (ms).
    pub sentiment_ms: u64,
    /// How often the ingestors' heartbeats are re-read for new symbols (ms).
    pub universe_refresh_ms: u64,
    /// A symbol counts as fresh for the mood if data arrived within this (ms).
    pub fresh_ms: u64,
    /// The bars indicators and signals are computed on (`1m`, `5m`, `15m`, `1h`, `1d`).
    pub indicator_interval: String,
    /// Fast EMA period.
    pub ema_fast: usize,
    /// Slow EMA period.
    pub ema_slow: usize,
    /// RSI period.
    pub rsi_period: usize,
    /// Volume-ratio window.
    pub volume_window: usize,
    /// Bars stored per symbol and interval.
    pub keep_bars: usize,
    /// Heartbeat period (s); the record lives five periods.
    pub heartbeat_secs: u64,
    /// Lifetime of the `last:{channel}` caches (s).
    pub cache_ttl_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host: DEFAULT_HOST.to_owned(),
            port: 9105,
            redis_url: DEFAULT_REDIS_URL.to_owned(),
            redis_cluster_nodes: Vec::new(),
            log: LogConfig::default(),
            analytics: AnalyticsConfig::default(),
        }
    }
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        Self {
            symbols: Vec::new(),
            grace_ms: 2_000,
            update_ms: 250,
            clock_ms: 100,
            // Refreshed every 15 s and the mood every 10 s, the periods dashboards expect.
            signal_refresh_ms: 15_000,
            sentiment_ms: 10_000,
            universe_refresh_ms: 5_000,
            fresh_ms: 60_000,
            indicator_interval: "1m".to_owned(),
            ema_fast: 12,
            ema_slow: 26,
            rsi_period: 14,
            volume_window: 20,
            keep_bars: 2_000,
            heartbeat_secs: 2,
            cache_ttl_secs: 86_400,
        }
    }
}

impl ServiceConfig for Config {
    const ALIASES: &'static [EnvAlias] = ALIASES;

    /// Checks the rules types cannot express; the error names the key and its variable.
    fn validate(&self) -> Result<(), ConfigError> {
        tickstream_runtime::config::check_host_and_redis(
            &self.host,
            &self.redis_url,
            &self.redis_cluster_nodes,
            ALIASES,
        )?;
        self.analytics.validate()
    }

    fn log(&self) -> &LogConfig {
        &self.log
    }
}

fn range<T: PartialOrd + std::fmt::Display + Copy>(
    key: &str,
    value: T,
    min: T,
    max: T,
) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::invalid(
            key,
            ALIASES,
            format!("must be between {min} and {max}, got {value}"),
        ));
    }
    Ok(())
}

impl AnalyticsConfig {
    /// Validates every field of `[analytics]`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.parsed_symbols()?;
        self.interval()?;
        range("analytics.grace_ms", self.grace_ms, 0, 600_000)?;
        range("analytics.update_ms", self.update_ms, 1, 60_000)?;
        range("analytics.clock_ms", self.clock_ms, 1, 10_000)?;
        range(
            "analytics.signal_refresh_ms",
            self.signal_refresh_ms,
            10,
            3_600_000,
        )?;
        range("analytics.sentiment_ms", self.sentiment_ms, 10, 3_600_000)?;
        range(
            "analytics.universe_refresh_ms",
            self.universe_refresh_ms,
            10,
            3_600_000,
        )?;
        range("analytics.fresh_ms", self.fresh_ms, 1, 86_400_000)?;
        range("analytics.ema_fast", self.ema_fast, 1, 1_000)?;
        range("analytics.ema_slow", self.ema_slow, 1, 1_000)?;
        if self.ema_fast >= self.ema_slow {
            return Err(ConfigError::invalid(
                "analytics.ema_fast",
                ALIASES,
                format!(
                    "must be below analytics.ema_slow ({}), got {}",
                    self.ema_slow, self.ema_fast
                ),
            ));
        }
        range("analytics.rsi_period", self.rsi_period, 1, 1_000)?;
        range("analytics.volume_window", self.volume_window, 1, 1_000)?;
        range(
            "analytics.keep_bars",
            self.keep_bars,
            MIN_KEEP_BARS,
            100_000,
        )?;
        range("analytics.heartbeat_secs", self.heartbeat_secs, 1, 3_600)?;
        range(
            "analytics.cache_ttl_secs",
            self.cache_ttl_secs,
            1,
            30 * 86_400,
        )?;
        Ok(())
    }

    /// The configured symbols, normalized and de-duplicated; empty means "discover".
    pub fn parsed_symbols(&self) -> Result<Vec<Symbol>, ConfigError> {
        let mut out: Vec<Symbol> = Vec::new();
        for raw in &self.symbols {
            let s = Symbol::parse(raw).map_err(|e| {
                ConfigError::invalid("analytics.symbols", ALIASES, format!("{raw:?}: {e}"))
            })?;
            if !out.contains(&s) {
                out.push(s);
            }
        }
        if out.len() > MAX_SYMBOLS {
            return Err(ConfigError::invalid(
                "analytics.symbols",
                ALIASES,
                format!("{} symbols; at most {MAX_SYMBOLS} are allowed", out.len()),
            ));
        }
        Ok(out)
    }

    /// The indicator interval.
    pub fn interval(&self) -> Result<Interval, ConfigError> {
        Interval::parse(self.indicator_interval.trim()).ok_or_else(|| {
            ConfigError::invalid(
                "analytics.indicator_interval",
                ALIASES,
                format!(
                    "{:?} is not one of 1m, 5m, 15m, 1h, 1d",
                    self.indicator_interval
                ),
            )
        })
    }

    /// The engine's settings (after [`AnalyticsConfig::validate`]).
    pub fn engine(&self) -> Result<EngineConfig, ConfigError> {
        Ok(EngineConfig {
            rules: Rules {
                grace_ms: self.grace_ms as i64,
                max_fill: self.keep_bars,
            },
            update_ms: self.update_ms as i64,
            periods: Periods {
                ema_fast: self.ema_fast,
                ema_slow: self.ema_slow,
                rsi: self.rsi_period,
                volume: self.volume_window,
            },
            indicator_interval: self.interval()?,
            fresh_ms: self.fresh_ms as i64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut AnalyticsConfig)) -> AnalyticsConfig {
        let mut c = AnalyticsConfig::default();
        f(&mut c);
        c
    }

    #[test]
    fn defaults_are_valid_and_discover_symbols() {
        Config::default().validate().unwrap();
        assert!(AnalyticsConfig::default()
            .parsed_symbols()
            .unwrap()
            .is_empty());
        assert_eq!(Config::default().port, 9105);
    }

    #[test]
    fn rejects_table() {
        let cases: Vec<(AnalyticsConfig, &str, &str)> = vec![
            (
                with(|c| c.symbols = vec!["BAD SYM".into()]),
                "analytics.symbols",
                "BAD SYM",
            ),
            (
                with(|c| c.indicator_interval = "2m".into()),
                "analytics.indicator_interval",
                "2m",
            ),
            (with(|c| c.update_ms = 0), "analytics.update_ms", "between"),
            (with(|c| c.clock_ms = 0), "analytics.clock_ms", "between"),
            (with(|c| c.ema_fast = 30), "analytics.ema_fast", "below"),
            (
                with(|c| c.rsi_period = 0),
                "analytics.rsi_period",
                "between",
            ),
            (with(|c| c.keep_bars = 10), "analytics.keep_bars", "1000"),
            (
                with(|c| c.grace_ms = 10_000_000),
                "analytics.grace_ms",
                "between",
            ),
            (
                with(|c| c.heartbeat_secs = 0),
                "analytics.heartbeat_secs",
                "between",
            ),
        ];
        for (c, key, detail) in cases {
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(&format!("`{key}`")) && e.contains(detail), "{e}");
        }
        let bad = Config {
            redis_url: "http://x".into(),
            ..Config::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("`redis_url`"));
    }
}

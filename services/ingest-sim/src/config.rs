//! ingest-sim's configuration: defaults in code < optional TOML file < environment.
//!
//! ```toml
//! host = "0.0.0.0"                      # HOST
//! port = 9100                           # PORT
//! redis_url = "redis://127.0.0.1:6379"  # REDIS_URL
//!
//! [log]
//! level = "info"                        # LOG_LEVEL
//! format = "pretty"                     # LOG_FORMAT = pretty | json
//!
//! [sim]
//! symbols = ["BTCUSDT", "AAPL", "EUR/USD"]  # SYMBOLS=BTCUSDT,AAPL,EUR/USD
//! rate = 36.0            # TICKSTREAM_SIM__RATE: ticks/s over all symbols; unset = 4 per symbol
//! price_ttl_secs = 86400 # TICKSTREAM_SIM__PRICE_TTL_SECS: lifetime of price:{SYMBOL}
//! history_len = 10000    # TICKSTREAM_SIM__HISTORY_LEN: entries kept per history stream (0: none)
//! heartbeat_secs = 2     # TICKSTREAM_SIM__HEARTBEAT_SECS: heartbeat period (TTL = 5x)
//! seed = 42              # TICKSTREAM_SIM__SEED: reproducible price paths; unset = random
//! trades = true          # TICKSTREAM_SIM__TRADES: publish the trade behind each tick
//! ```
//!
//! [`ServiceConfig::load`] deserializes and then [`ServiceConfig::validate`]s,
//! so a bad value stops the service at start with an error naming the key and
//! the variable.

use serde::{Deserialize, Serialize};
use tickstream_model::Symbol;
use tickstream_runtime::config::{
    string_or_list, ConfigError, EnvAlias, ServiceConfig, DEFAULT_HOST, DEFAULT_REDIS_URL,
};
use tickstream_runtime::telemetry::LogConfig;

/// ingest-sim's own plain-named variables, on top of the common ones (`HOST`, `PORT`, ...).
pub const ALIASES: &[EnvAlias] = &[EnvAlias::list("SYMBOLS", "sim.symbols")];

/// The default symbol mix: majors of each asset class the gateway serves.
pub const DEFAULT_SYMBOLS: &[&str] = &[
    "BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "ADAUSDT", "AAPL", "MSFT", "NVDA", "EUR/USD",
];

/// Ticks per second per symbol when `sim.rate` is unset: lively but cheap.
pub const DEFAULT_RATE_PER_SYMBOL: f64 = 4.0;

/// Upper bound of `sim.rate`; 20x the 50,000 ticks/s load-test target, and
/// still a rate one pipelined connection can carry in 10 ms batches.
pub const MAX_RATE: f64 = 1_000_000.0;

/// Lower bound of `sim.rate` (one tick every ~17 minutes): below it the
/// simulated time step would be years and the walk meaningless.
pub const MIN_RATE: f64 = 0.001;

/// Upper bound on `sim.symbols`, so a typo in a generated list cannot create
/// millions of keys.
pub const MAX_SYMBOLS: usize = 10_000;

/// Longest heartbeat period: the gateway must still see us within minutes.
pub const MAX_HEARTBEAT_SECS: u64 = 3_600;

/// Everything ingest-sim reads at start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Address of the ops server (`/health`, `/metrics`).
    pub host: String,
    /// Port of the ops server; 0 picks a free one (tests).
    pub port: u16,
    /// Where ticks are published.
    pub redis_url: String,
    /// Redis Cluster seed nodes `host:port,...` (`REDIS_CLUSTER_NODES`); empty (the default) = one Redis at `redis_url`.
    #[serde(default, deserialize_with = "string_or_list")]
    pub redis_cluster_nodes: Vec<String>,
    /// Log level and format.
    pub log: LogConfig,
    /// What to simulate and how fast.
    pub sim: SimConfig,
}

/// The `[sim]` section: the generator's knobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimConfig {
    /// Symbols to simulate, as a TOML list or a comma separated string.
    #[serde(deserialize_with = "string_or_list")]
    pub symbols: Vec<String>,
    /// Total ticks per second across all symbols; `None` means
    /// [`DEFAULT_RATE_PER_SYMBOL`] times the number of symbols.
    /// (Serialized as null when unset, so `--print-env` lists it.)
    #[serde(default)]
    pub rate: Option<f64>,
    /// TTL of `price:{SYMBOL}`, so prices of a stopped simulator eventually vanish.
    pub price_ttl_secs: u64,
    /// Entries kept per `history:` stream (ticks and trades of each symbol); 0 keeps no history.
    #[serde(default = "default_history_len")]
    pub history_len: usize,
    /// How often the heartbeat record is rewritten; its TTL is five periods.
    pub heartbeat_secs: u64,
    /// Seed of the random price paths, for reproducible runs; `None` draws one.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Whether the trade behind each tick is published on `trades:{SYMBOL}`; off, the
    /// simulator is a pure tick load generator (one Redis round trip per batch, not two).
    #[serde(default = "default_trades")]
    pub trades: bool,
}

/// Default `sim.trades`: on.
fn default_trades() -> bool {
    true
}

/// Default `sim.history_len`.
fn default_history_len() -> usize {
    tickstream_bus::store::DEFAULT_HISTORY_LEN
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host: DEFAULT_HOST.to_owned(),
            port: 9100,
            redis_url: DEFAULT_REDIS_URL.to_owned(),
            redis_cluster_nodes: Vec::new(),
            log: LogConfig::default(),
            sim: SimConfig::default(),
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            symbols: DEFAULT_SYMBOLS.iter().map(|s| (*s).to_owned()).collect(),
            rate: None,
            price_ttl_secs: 86_400,
            history_len: tickstream_bus::store::DEFAULT_HISTORY_LEN,
            heartbeat_secs: 2,
            seed: None,
            trades: true,
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
        self.sim.validate()
    }

    fn log(&self) -> &LogConfig {
        &self.log
    }
}

impl SimConfig {
    /// Validates every field of `[sim]`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let symbols = self.parsed_symbols()?;
        self.effective_rate(symbols.len())?;
        if self.price_ttl_secs == 0 {
            return Err(ConfigError::invalid(
                "sim.price_ttl_secs",
                ALIASES,
                "must be at least 1 second",
            ));
        }
        if self.heartbeat_secs == 0 || self.heartbeat_secs > MAX_HEARTBEAT_SECS {
            return Err(ConfigError::invalid(
                "sim.heartbeat_secs",
                ALIASES,
                format!(
                    "must be between 1 and {MAX_HEARTBEAT_SECS}, got {}",
                    self.heartbeat_secs
                ),
            ));
        }
        Ok(())
    }

    /// The symbols, normalized and de-duplicated in the given order; the error names the bad one.
    pub fn parsed_symbols(&self) -> Result<Vec<Symbol>, ConfigError> {
        let mut out: Vec<Symbol> = Vec::with_capacity(self.symbols.len());
        for raw in self.symbols.iter().filter(|s| !s.trim().is_empty()) {
            let symbol = Symbol::parse(raw).map_err(|e| {
                ConfigError::invalid("sim.symbols", ALIASES, format!("{raw:?}: {e}"))
            })?;
            if !out.contains(&symbol) {
                out.push(symbol);
            }
        }
        if out.is_empty() {
            return Err(ConfigError::invalid(
                "sim.symbols",
                ALIASES,
                "at least one symbol is required",
            ));
        }
        if out.len() > MAX_SYMBOLS {
            return Err(ConfigError::invalid(
                "sim.symbols",
                ALIASES,
                format!("{} symbols; at most {MAX_SYMBOLS} are allowed", out.len()),
            ));
        }
        Ok(out)
    }

    /// The total ticks per second for `symbol_count` symbols, checked against `[MIN_RATE, MAX_RATE]`.
    pub fn effective_rate(&self, symbol_count: usize) -> Result<f64, ConfigError> {
        let rate = self
            .rate
            .unwrap_or(DEFAULT_RATE_PER_SYMBOL * symbol_count as f64);
        if !(MIN_RATE..=MAX_RATE).contains(&rate) {
            return Err(ConfigError::invalid(
                "sim.rate",
                ALIASES,
                format!(
                    "must be a positive number of ticks per second from {MIN_RATE} to {MAX_RATE}, got {rate}"
                ),
            ));
        }
        Ok(rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim(f: impl FnOnce(&mut SimConfig)) -> SimConfig {
        let mut s = SimConfig::default();
        f(&mut s);
        s
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::default();
        c.validate().unwrap();
        let symbols = c.sim.parsed_symbols().unwrap();
        assert_eq!(symbols.len(), 9);
        assert_eq!(c.sim.effective_rate(symbols.len()).unwrap(), 36.0);
    }

    #[test]
    fn symbols_are_normalized_and_deduplicated() {
        let s = sim(|s| {
            s.symbols = vec![
                "btcusdt".into(),
                " eur/usd ".into(),
                "BTCUSDT".into(),
                "".into(),
            ]
        });
        let got: Vec<String> = s
            .parsed_symbols()
            .unwrap()
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(got, ["BTCUSDT", "EUR/USD"]);
    }

    #[test]
    fn rejects_table() {
        let cases: Vec<(SimConfig, &str, &str)> = vec![
            (
                sim(|s| s.symbols = vec!["BAD SYMBOL".into()]),
                "sim.symbols",
                "BAD SYMBOL",
            ),
            (
                sim(|s| s.symbols = vec!["AAPL".into(), "x*".into()]),
                "sim.symbols",
                "x*",
            ),
            (sim(|s| s.symbols = vec![]), "sim.symbols", "at least one"),
            (
                sim(|s| s.symbols = vec![" ".into()]),
                "sim.symbols",
                "at least one",
            ),
            (sim(|s| s.rate = Some(-1.0)), "sim.rate", "-1"),
            (sim(|s| s.rate = Some(0.0)), "sim.rate", "got 0"),
            (sim(|s| s.rate = Some(1e-9)), "sim.rate", "positive"),
            (sim(|s| s.rate = Some(f64::NAN)), "sim.rate", "NaN"),
            (sim(|s| s.rate = Some(2_000_000.0)), "sim.rate", "2000000"),
            (
                sim(|s| s.price_ttl_secs = 0),
                "sim.price_ttl_secs",
                "at least",
            ),
            (
                sim(|s| s.heartbeat_secs = 0),
                "sim.heartbeat_secs",
                "between",
            ),
            (
                sim(|s| s.heartbeat_secs = 100_000),
                "sim.heartbeat_secs",
                "between",
            ),
        ];
        for (s, key, detail) in cases {
            let e = s.validate().unwrap_err().to_string();
            assert!(e.contains(&format!("`{key}`")) && e.contains(detail), "{e}");
        }
        let bad_url = Config {
            redis_url: "http://localhost:6379".into(),
            ..Config::default()
        };
        assert!(bad_url
            .validate()
            .unwrap_err()
            .to_string()
            .contains("`redis_url`"));
        let bad_host = Config {
            host: " ".into(),
            ..Config::default()
        };
        assert!(bad_host
            .validate()
            .unwrap_err()
            .to_string()
            .contains("`host`"));
    }

    #[test]
    fn rate_bounds_are_inclusive_at_the_top() {
        assert_eq!(
            sim(|s| s.rate = Some(MAX_RATE)).effective_rate(1).unwrap(),
            MAX_RATE
        );
        assert_eq!(sim(|s| s.rate = Some(0.5)).effective_rate(9).unwrap(), 0.5);
    }

    #[test]
    fn symbols_accept_a_comma_string() {
        let s: SimConfig = serde_json::from_value(serde_json::json!({
            "symbols": "AAPL, MSFT,,", "price_ttl_secs": 10, "heartbeat_secs": 1
        }))
        .unwrap();
        assert_eq!(s.symbols, ["AAPL", "MSFT"]);
        assert_eq!(s.rate, None);
        assert_eq!(s.seed, None);
        let s: SimConfig = serde_json::from_value(serde_json::json!({
            "symbols": ["AAPL"], "rate": 5, "price_ttl_secs": 10, "heartbeat_secs": 1, "seed": 7
        }))
        .unwrap();
        assert_eq!((s.rate, s.seed), (Some(5.0), Some(7)));
    }
}

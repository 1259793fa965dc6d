//! ingest-coinbase's configuration: defaults in code < optional TOML file < environment.
//!
//! ```toml
//! host = "0.0.0.0"                      # HOST
//! port = 9102                           # PORT
//! redis_url = "redis://127.0.0.1:6379"  # REDIS_URL
//!
//! [log]
//! level = "info"                        # LOG_LEVEL
//! format = "pretty"                     # LOG_FORMAT = pretty | json
//!
//! [coinbase]
//! ws_url = "wss://ws-feed.exchange.coinbase.com"    # COINBASE_WS_URL
//! rest_url = "https://api.exchange.coinbase.com"    # COINBASE_REST_URL
//! symbols = ["BTC-USD", "ETH-USD"]                  # SYMBOLS=BTC-USD,ETH-USD (product ids)
//!
//! [upstream]                                        # TICKSTREAM_UPSTREAM__<KEY>, see tickstream-upstream
//! stall_timeout_ms = 60000
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};
use tickstream_model::Symbol;
use tickstream_runtime::config::{
    self as runtime_config, check_url, ConfigError, EnvAlias, HTTP_SCHEMES, WS_SCHEMES,
};
use tickstream_runtime::telemetry::LogConfig;
use tickstream_upstream::settings::string_or_list;
use tickstream_upstream::UpstreamSettings;

/// ingest-coinbase's plain-named variables, on top of the common ones.
pub const ALIASES: &[EnvAlias] = &[
    EnvAlias::list("SYMBOLS", "coinbase.symbols"),
    EnvAlias::scalar("COINBASE_WS_URL", "coinbase.ws_url"),
    EnvAlias::scalar("COINBASE_REST_URL", "coinbase.rest_url"),
];

/// The suggested ops port of ingest-coinbase (DESIGN.md).
pub const DEFAULT_PORT: u16 = 9102;
/// Coinbase Exchange's public WebSocket feed.
pub const DEFAULT_WS_URL: &str = "wss://ws-feed.exchange.coinbase.com";
/// Coinbase Exchange's public REST API.
pub const DEFAULT_REST_URL: &str = "https://api.exchange.coinbase.com";
/// Default products.
pub const DEFAULT_SYMBOLS: &[&str] = &["BTC-USD", "ETH-USD", "SOL-USD"];
/// Upper bound on configured products; each costs one REST call per fallback round.
pub const MAX_SYMBOLS: usize = 500;

/// Everything ingest-coinbase reads at start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Address of the ops server (`/health`, `/metrics`).
    pub host: String,
    /// Port of the ops server; 0 picks a free one (tests).
    pub port: u16,
    /// Where ticks are published.
    pub redis_url: String,
    /// Log level and format.
    pub log: LogConfig,
    /// Coinbase endpoints and products.
    pub coinbase: CoinbaseConfig,
    /// Shared reconnect/stall/fallback timings.
    pub upstream: UpstreamSettings,
}

/// The `[coinbase]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoinbaseConfig {
    /// WebSocket feed URL.
    pub ws_url: String,
    /// REST base URL; `/products/{id}/ticker` is appended.
    pub rest_url: String,
    /// Product ids (`BTC-USD`); the tick symbol is the product id, uppercase.
    #[serde(deserialize_with = "string_or_list")]
    pub symbols: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".to_owned(),
            port: DEFAULT_PORT,
            redis_url: "redis://127.0.0.1:6379".to_owned(),
            log: LogConfig::default(),
            coinbase: CoinbaseConfig {
                ws_url: DEFAULT_WS_URL.to_owned(),
                rest_url: DEFAULT_REST_URL.to_owned(),
                symbols: DEFAULT_SYMBOLS.iter().map(|s| (*s).to_owned()).collect(),
            },
            upstream: UpstreamSettings::default(),
        }
    }
}

impl Config {
    /// Rejects values that cannot work, naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.upstream.validate(ALIASES)?;
        self.symbols()?;
        check_url(
            "coinbase.ws_url",
            &self.coinbase.ws_url,
            WS_SCHEMES,
            ALIASES,
        )?;
        check_url(
            "coinbase.rest_url",
            &self.coinbase.rest_url,
            HTTP_SCHEMES,
            ALIASES,
        )?;
        Ok(())
    }

    /// The configured products as symbols (`btc-usd` → `BTC-USD`), deduplicated.
    pub fn symbols(&self) -> Result<Vec<Symbol>, ConfigError> {
        let mut out: Vec<Symbol> = Vec::new();
        for raw in &self.coinbase.symbols {
            let well_formed = raw.split('-').count() == 2
                && raw
                    .split('-')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()));
            if !well_formed {
                return Err(ConfigError::invalid(
                    "coinbase.symbols",
                    ALIASES,
                    format!("{raw:?} is not a Coinbase product id (BASE-QUOTE, e.g. BTC-USD)"),
                ));
            }
            let sym = Symbol::parse(raw).map_err(|e| {
                ConfigError::invalid("coinbase.symbols", ALIASES, format!("{raw:?}: {e}"))
            })?;
            if !out.contains(&sym) {
                out.push(sym);
            }
        }
        if out.is_empty() || out.len() > MAX_SYMBOLS {
            return Err(ConfigError::invalid(
                "coinbase.symbols",
                ALIASES,
                format!("needs 1 to {MAX_SYMBOLS} products"),
            ));
        }
        Ok(out)
    }
}

/// Loads and validates the configuration.
pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
    let config: Config = runtime_config::load(&Config::default(), file, ALIASES)?;
    config.validate()?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_normalize_and_bad_ones_name_the_key() {
        Config::default().validate().unwrap();
        let mut c = Config::default();
        c.coinbase.symbols = vec!["btc-usd".into(), "BTC-USD".into()];
        assert_eq!(c.symbols().unwrap().len(), 1);
        for bad in ["BTCUSD", "BTC-", "BTC/USD", "A-B-C"] {
            c.coinbase.symbols = vec![bad.into()];
            let e = c.symbols().unwrap_err().to_string();
            assert!(e.contains("coinbase.symbols"), "{bad}: {e}");
        }
    }
}

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

use serde::{Deserialize, Serialize};
use tickstream_model::Symbol;
use tickstream_runtime::config::{
    check_url, string_or_list, ConfigError, EnvAlias, HTTP_SCHEMES, WS_SCHEMES,
};
use tickstream_upstream::{IngestorConfig, VenueConfig};

use crate::CoinbaseVenue;

/// ingest-coinbase's plain-named variables, on top of the common ones.
pub const ALIASES: &[EnvAlias] = &[
    EnvAlias::list("SYMBOLS", "coinbase.symbols"),
    EnvAlias::scalar("COINBASE_WS_URL", "coinbase.ws_url"),
    EnvAlias::scalar("COINBASE_REST_URL", "coinbase.rest_url"),
];

/// The default ops port of ingest-coinbase: each ingestor has its own (the README's table of upstreams).
pub const DEFAULT_PORT: u16 = 9102;
/// Coinbase Exchange's public WebSocket feed.
pub const DEFAULT_WS_URL: &str = "wss://ws-feed.exchange.coinbase.com";
/// Coinbase Exchange's public REST API.
pub const DEFAULT_REST_URL: &str = "https://api.exchange.coinbase.com";
/// Default products.
pub const DEFAULT_SYMBOLS: &[&str] = &["BTC-USD", "ETH-USD", "SOL-USD"];
/// Upper bound on configured products; each costs one REST call per fallback round.
pub const MAX_SYMBOLS: usize = 500;

/// Everything ingest-coinbase reads at start: the common keys, `[coinbase]` and `[upstream]`.
pub type Config = IngestorConfig<CoinbaseConfig>;

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

impl Default for CoinbaseConfig {
    fn default() -> Self {
        Self {
            ws_url: DEFAULT_WS_URL.to_owned(),
            rest_url: DEFAULT_REST_URL.to_owned(),
            symbols: DEFAULT_SYMBOLS.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

impl VenueConfig for CoinbaseConfig {
    const NAME: &'static str = "coinbase";
    const DEFAULT_PORT: u16 = DEFAULT_PORT;
    const ALIASES: &'static [EnvAlias] = ALIASES;
    type Venue = CoinbaseVenue;

    fn validate(&self) -> Result<(), ConfigError> {
        self.symbols()?;
        check_url("coinbase.ws_url", &self.ws_url, WS_SCHEMES, ALIASES)?;
        check_url("coinbase.rest_url", &self.rest_url, HTTP_SCHEMES, ALIASES)?;
        Ok(())
    }

    fn build(&self) -> Result<CoinbaseVenue, ConfigError> {
        CoinbaseVenue::new(self)
    }
}

impl CoinbaseConfig {
    /// The configured products as symbols (`btc-usd` → `BTC-USD`), deduplicated.
    pub fn symbols(&self) -> Result<Vec<Symbol>, ConfigError> {
        let mut out: Vec<Symbol> = Vec::new();
        for raw in &self.symbols {
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

#[cfg(test)]
mod tests {
    use tickstream_runtime::config::ServiceConfig;

    use super::*;

    #[test]
    fn products_normalize_and_bad_ones_name_the_key() {
        Config::default().validate().unwrap();
        let mut c = Config::default();
        c.venue.symbols = vec!["btc-usd".into(), "BTC-USD".into()];
        assert_eq!(c.venue.symbols().unwrap().len(), 1);
        for bad in ["BTCUSD", "BTC-", "BTC/USD", "A-B-C"] {
            c.venue.symbols = vec![bad.into()];
            let e = c.venue.symbols().unwrap_err().to_string();
            assert!(e.contains("coinbase.symbols"), "{bad}: {e}");
        }
    }
}

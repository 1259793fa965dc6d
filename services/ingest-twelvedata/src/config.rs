//! ingest-twelvedata's configuration: defaults in code < optional TOML file < environment.
//!
//! ```toml
//! host = "0.0.0.0"                      # HOST
//! port = 9104                           # PORT
//! redis_url = "redis://127.0.0.1:6379"  # REDIS_URL
//!
//! [log]
//! level = "info"                        # LOG_LEVEL
//! format = "pretty"                     # LOG_FORMAT = pretty | json
//!
//! [twelvedata]
//! ws_url = "wss://ws.twelvedata.com/v1/quotes/price"  # TWELVE_DATA_WS_URL (key added as ?apikey=)
//! rest_url = "https://api.twelvedata.com"             # TWELVE_DATA_REST_URL (/price is appended)
//! api_key = "..."                                     # TWELVE_DATA_API_KEY (required)
//! symbols = ["AAPL", "EUR/USD", "BTC/USD"]            # SYMBOLS, Twelve Data notation
//! heartbeat_secs = 10                                 # TICKSTREAM_TWELVEDATA__HEARTBEAT_SECS
//!
//! [upstream]                                          # TICKSTREAM_UPSTREAM__<KEY>
//! ```

use serde::{Deserialize, Serialize};
use tickstream_model::Symbol;
use tickstream_runtime::config::{
    check_url, string_or_list, ConfigError, EnvAlias, HTTP_SCHEMES, WS_SCHEMES,
};
use tickstream_runtime::secret::Secret;
use tickstream_upstream::{IngestorConfig, VenueConfig};

use crate::TwelveDataVenue;

/// ingest-twelvedata's plain-named variables, on top of the common ones.
pub const ALIASES: &[EnvAlias] = &[
    EnvAlias::list("SYMBOLS", "twelvedata.symbols"),
    EnvAlias::scalar("TWELVE_DATA_WS_URL", "twelvedata.ws_url"),
    EnvAlias::scalar("TWELVE_DATA_REST_URL", "twelvedata.rest_url"),
    EnvAlias::scalar("TWELVE_DATA_API_KEY", "twelvedata.api_key"),
    // For the `alphavantage` secondary REST provider of its stock symbols.
    EnvAlias::scalar("ALPHA_VANTAGE_API_KEY", "upstream.alpha_vantage_api_key"),
];

/// The env variable holding the key, named in `/health` when it is missing.
pub const API_KEY_ENV: &str = "TWELVE_DATA_API_KEY";
/// The default ops port of ingest-twelvedata: each ingestor has its own (the README's table of upstreams).
pub const DEFAULT_PORT: u16 = 9104;
/// Twelve Data's price WebSocket.
pub const DEFAULT_WS_URL: &str = "wss://ws.twelvedata.com/v1/quotes/price";
/// Twelve Data's REST base.
pub const DEFAULT_REST_URL: &str = "https://api.twelvedata.com";
/// Default symbols, in Twelve Data notation.
pub const DEFAULT_SYMBOLS: &[&str] = &["AAPL", "EUR/USD", "BTC/USD"];
/// Twelve Data asks for `{"action":"heartbeat"}` every 10 s.
pub const DEFAULT_HEARTBEAT_SECS: u64 = 10;
/// Upper bound on symbols of one connection.
pub const MAX_SYMBOLS: usize = 500;

/// Everything ingest-twelvedata reads at start: the common keys, `[twelvedata]` and `[upstream]`.
pub type Config = IngestorConfig<TwelveDataConfig>;

/// The `[twelvedata]` section; its key is a [`Secret`], so `Debug` and logs never show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwelveDataConfig {
    /// WebSocket URL; `?apikey=KEY` is appended.
    pub ws_url: String,
    /// REST base URL; `/price` is appended.
    pub rest_url: String,
    /// The API key; empty means the service waits, unhealthy.
    #[serde(default)]
    pub api_key: Secret,
    /// Symbols in Twelve Data notation (`AAPL`, `EUR/USD`, `BTC/USD`); the tick symbol is the same.
    #[serde(deserialize_with = "string_or_list")]
    pub symbols: Vec<String>,
    /// Period of the `{"action":"heartbeat"}` frame, s.
    pub heartbeat_secs: u64,
}

impl Default for TwelveDataConfig {
    fn default() -> Self {
        Self {
            ws_url: DEFAULT_WS_URL.to_owned(),
            rest_url: DEFAULT_REST_URL.to_owned(),
            api_key: Secret::default(),
            symbols: DEFAULT_SYMBOLS.iter().map(|s| (*s).to_owned()).collect(),
            heartbeat_secs: DEFAULT_HEARTBEAT_SECS,
        }
    }
}

impl VenueConfig for TwelveDataConfig {
    const NAME: &'static str = "twelvedata";
    const DEFAULT_PORT: u16 = DEFAULT_PORT;
    const ALIASES: &'static [EnvAlias] = ALIASES;
    type Venue = TwelveDataVenue;

    /// A missing API key is not an error here: the service starts and reports it on `/health`.
    fn validate(&self) -> Result<(), ConfigError> {
        self.symbols()?;
        if self.heartbeat_secs == 0 {
            return Err(ConfigError::invalid(
                "twelvedata.heartbeat_secs",
                ALIASES,
                "must be greater than 0",
            ));
        }
        check_url("twelvedata.ws_url", &self.ws_url, WS_SCHEMES, ALIASES)?;
        check_url("twelvedata.rest_url", &self.rest_url, HTTP_SCHEMES, ALIASES)?;
        Ok(())
    }

    fn build(&self) -> Result<TwelveDataVenue, ConfigError> {
        TwelveDataVenue::new(self)
    }
}

impl TwelveDataConfig {
    /// The key, if set and not blank.
    pub fn api_key(&self) -> Option<&str> {
        self.api_key.non_blank()
    }

    /// The symbols, normalized (`eur/usd` → `EUR/USD`), deduplicated.
    pub fn symbols(&self) -> Result<Vec<Symbol>, ConfigError> {
        let mut out: Vec<Symbol> = Vec::new();
        for raw in &self.symbols {
            let sym = Symbol::parse(raw).map_err(|e| {
                ConfigError::invalid("twelvedata.symbols", ALIASES, format!("{raw:?}: {e}"))
            })?;
            if !out.contains(&sym) {
                out.push(sym);
            }
        }
        if out.is_empty() || out.len() > MAX_SYMBOLS {
            return Err(ConfigError::invalid(
                "twelvedata.symbols",
                ALIASES,
                format!("needs 1 to {MAX_SYMBOLS} symbols"),
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
    fn defaults_symbols_and_key() {
        let mut c = Config::default();
        c.validate().unwrap();
        c.venue.symbols = vec!["eur/usd".into(), "EUR/USD".into(), "aapl".into()];
        let s = c.venue.symbols().unwrap();
        assert_eq!(
            s.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            ["EUR/USD", "AAPL"]
        );
        c.venue.symbols = vec!["EUR USD".into()];
        assert!(c
            .venue
            .symbols()
            .unwrap_err()
            .to_string()
            .contains("twelvedata.symbols"));
        c.venue.api_key = Secret::new("secret");
        assert!(!format!("{:?}", c.venue).contains("secret"));
        assert!(!format!("{c:?}").contains("secret"));
    }
}

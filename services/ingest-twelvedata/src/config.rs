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

use std::path::Path;

use serde::{Deserialize, Serialize};
use tickstream_model::Symbol;
use tickstream_runtime::config::{
    self as runtime_config, check_url, ConfigError, EnvAlias, HTTP_SCHEMES, WS_SCHEMES,
};
use tickstream_runtime::telemetry::LogConfig;
use tickstream_upstream::settings::string_or_list;
use tickstream_upstream::UpstreamSettings;

/// ingest-twelvedata's plain-named variables, on top of the common ones.
pub const ALIASES: &[EnvAlias] = &[
    EnvAlias::list("SYMBOLS", "twelvedata.symbols"),
    EnvAlias::scalar("TWELVE_DATA_WS_URL", "twelvedata.ws_url"),
    EnvAlias::scalar("TWELVE_DATA_REST_URL", "twelvedata.rest_url"),
    EnvAlias::scalar("TWELVE_DATA_API_KEY", "twelvedata.api_key"),
];

/// The env variable holding the key, named in `/health` when it is missing.
pub const API_KEY_ENV: &str = "TWELVE_DATA_API_KEY";
/// The suggested ops port of ingest-twelvedata (DESIGN.md).
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

/// Everything ingest-twelvedata reads at start.
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
    /// Twelve Data endpoints, key and symbols.
    pub twelvedata: TwelveDataConfig,
    /// Shared reconnect/stall/fallback timings.
    pub upstream: UpstreamSettings,
}

/// The `[twelvedata]` section.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct TwelveDataConfig {
    /// WebSocket URL; `?apikey=KEY` is appended.
    pub ws_url: String,
    /// REST base URL; `/price` is appended.
    pub rest_url: String,
    /// The API key; empty means the service waits, unhealthy.
    #[serde(default)]
    pub api_key: String,
    /// Symbols in Twelve Data notation (`AAPL`, `EUR/USD`, `BTC/USD`); the tick symbol is the same.
    #[serde(deserialize_with = "string_or_list")]
    pub symbols: Vec<String>,
    /// Period of the `{"action":"heartbeat"}` frame, s.
    pub heartbeat_secs: u64,
}

// Hand-written so the key never reaches a log line.
impl std::fmt::Debug for TwelveDataConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwelveDataConfig")
            .field("ws_url", &self.ws_url)
            .field("rest_url", &self.rest_url)
            .field(
                "api_key",
                &if self.api_key.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field("symbols", &self.symbols)
            .field("heartbeat_secs", &self.heartbeat_secs)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".to_owned(),
            port: DEFAULT_PORT,
            redis_url: "redis://127.0.0.1:6379".to_owned(),
            log: LogConfig::default(),
            twelvedata: TwelveDataConfig {
                ws_url: DEFAULT_WS_URL.to_owned(),
                rest_url: DEFAULT_REST_URL.to_owned(),
                api_key: String::new(),
                symbols: DEFAULT_SYMBOLS.iter().map(|s| (*s).to_owned()).collect(),
                heartbeat_secs: DEFAULT_HEARTBEAT_SECS,
            },
            upstream: UpstreamSettings::default(),
        }
    }
}

impl Config {
    /// Rejects values that cannot work, naming the key. A missing API key is
    /// not an error here: the service starts and reports it on `/health`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.upstream.validate(ALIASES)?;
        self.symbols()?;
        if self.twelvedata.heartbeat_secs == 0 {
            return Err(ConfigError::invalid(
                "twelvedata.heartbeat_secs",
                ALIASES,
                "must be greater than 0",
            ));
        }
        check_url(
            "twelvedata.ws_url",
            &self.twelvedata.ws_url,
            WS_SCHEMES,
            ALIASES,
        )?;
        check_url(
            "twelvedata.rest_url",
            &self.twelvedata.rest_url,
            HTTP_SCHEMES,
            ALIASES,
        )?;
        Ok(())
    }

    /// The key, if set and not blank.
    pub fn api_key(&self) -> Option<&str> {
        Some(self.twelvedata.api_key.trim()).filter(|k| !k.is_empty())
    }

    /// The symbols, normalized (`eur/usd` → `EUR/USD`), deduplicated.
    pub fn symbols(&self) -> Result<Vec<Symbol>, ConfigError> {
        let mut out: Vec<Symbol> = Vec::new();
        for raw in &self.twelvedata.symbols {
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
    fn defaults_symbols_and_key() {
        let mut c = Config::default();
        c.validate().unwrap();
        c.twelvedata.symbols = vec!["eur/usd".into(), "EUR/USD".into(), "aapl".into()];
        let s = c.symbols().unwrap();
        assert_eq!(
            s.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            ["EUR/USD", "AAPL"]
        );
        c.twelvedata.symbols = vec!["EUR USD".into()];
        assert!(c
            .symbols()
            .unwrap_err()
            .to_string()
            .contains("twelvedata.symbols"));
        c.twelvedata.api_key = "secret".into();
        assert!(!format!("{:?}", c.twelvedata).contains("secret"));
    }
}

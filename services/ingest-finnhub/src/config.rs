//! ingest-finnhub's configuration: defaults in code < optional TOML file < environment.
//!
//! ```toml
//! host = "0.0.0.0"                      # HOST
//! port = 9103                           # PORT
//! redis_url = "redis://127.0.0.1:6379"  # REDIS_URL
//!
//! [log]
//! level = "info"                        # LOG_LEVEL
//! format = "pretty"                     # LOG_FORMAT = pretty | json
//!
//! [finnhub]
//! ws_url = "wss://ws.finnhub.io"        # FINNHUB_WS_URL (the key is added as ?token=)
//! rest_url = "https://finnhub.io"       # FINNHUB_REST_URL (/api/v1/quote is appended)
//! api_key = "..."                       # FINNHUB_API_KEY (required; without it /health is unhealthy)
//! symbols = ["AAPL", "MSFT", "BINANCE:BTCUSDT"]  # SYMBOLS, Finnhub notation
//! alpha_vantage_url = "https://www.alphavantage.co"  # ALPHA_VANTAGE_URL
//! alpha_vantage_api_key = ""            # ALPHA_VANTAGE_API_KEY (fallback when no Finnhub key)
//!
//! [upstream]                            # TICKSTREAM_UPSTREAM__<KEY>, see tickstream-upstream
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

/// ingest-finnhub's plain-named variables, on top of the common ones.
pub const ALIASES: &[EnvAlias] = &[
    EnvAlias::list("SYMBOLS", "finnhub.symbols"),
    EnvAlias::scalar("FINNHUB_WS_URL", "finnhub.ws_url"),
    EnvAlias::scalar("FINNHUB_REST_URL", "finnhub.rest_url"),
    EnvAlias::scalar("FINNHUB_API_KEY", "finnhub.api_key"),
    EnvAlias::scalar("ALPHA_VANTAGE_URL", "finnhub.alpha_vantage_url"),
    EnvAlias::scalar("ALPHA_VANTAGE_API_KEY", "finnhub.alpha_vantage_api_key"),
];

/// The env variable holding the key, named in `/health` when it is missing.
pub const API_KEY_ENV: &str = "FINNHUB_API_KEY";
/// The suggested ops port of ingest-finnhub (DESIGN.md).
pub const DEFAULT_PORT: u16 = 9103;
/// Finnhub's WebSocket endpoint.
pub const DEFAULT_WS_URL: &str = "wss://ws.finnhub.io";
/// Finnhub's REST base.
pub const DEFAULT_REST_URL: &str = "https://finnhub.io";
/// Alpha Vantage's REST base, the second fallback.
pub const DEFAULT_ALPHA_VANTAGE_URL: &str = "https://www.alphavantage.co";
/// Default symbols, in Finnhub notation.
pub const DEFAULT_SYMBOLS: &[&str] = &["AAPL", "MSFT", "NVDA"];
/// Free-tier limit on symbols per connection (Finnhub allows 50).
pub const MAX_SYMBOLS: usize = 50;

/// Everything ingest-finnhub reads at start.
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
    /// Finnhub endpoints, key and symbols.
    pub finnhub: FinnhubConfig,
    /// Shared reconnect/stall/fallback timings.
    pub upstream: UpstreamSettings,
}

/// The `[finnhub]` section.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct FinnhubConfig {
    /// WebSocket URL; `?token=KEY` is appended.
    pub ws_url: String,
    /// REST base URL; `/api/v1/quote` is appended.
    pub rest_url: String,
    /// The API key; empty means the service waits, unhealthy.
    #[serde(default)]
    pub api_key: String,
    /// Symbols in Finnhub notation (`AAPL`, `BINANCE:BTCUSDT`).
    #[serde(deserialize_with = "string_or_list")]
    pub symbols: Vec<String>,
    /// Alpha Vantage base URL (`/query?function=GLOBAL_QUOTE` is appended).
    pub alpha_vantage_url: String,
    /// Alpha Vantage key: the REST fallback uses `GLOBAL_QUOTE` when no Finnhub key is set.
    #[serde(default)]
    pub alpha_vantage_api_key: String,
}

// Hand-written so the key never reaches a log line.
impl std::fmt::Debug for FinnhubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FinnhubConfig")
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
            .field("alpha_vantage_url", &self.alpha_vantage_url)
            .field(
                "alpha_vantage_api_key",
                &if self.alpha_vantage_api_key.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
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
            finnhub: FinnhubConfig {
                ws_url: DEFAULT_WS_URL.to_owned(),
                rest_url: DEFAULT_REST_URL.to_owned(),
                api_key: String::new(),
                symbols: DEFAULT_SYMBOLS.iter().map(|s| (*s).to_owned()).collect(),
                alpha_vantage_url: DEFAULT_ALPHA_VANTAGE_URL.to_owned(),
                alpha_vantage_api_key: String::new(),
            },
            upstream: UpstreamSettings::default(),
        }
    }
}

/// The tick symbol of a Finnhub symbol: the exchange prefix is dropped
/// (`BINANCE:BTCUSDT` → `BTCUSDT`, `OANDA:EUR_USD` → `EUR_USD`), stocks stay (`AAPL`).
pub fn normalize(raw: &str) -> Result<Symbol, tickstream_model::SymbolError> {
    let name = raw.rsplit(':').next().unwrap_or(raw);
    Symbol::parse(name)
}

impl Config {
    /// Rejects values that cannot work, naming the key. A missing API key is
    /// not an error here: the service starts and reports it on `/health`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.upstream.validate(ALIASES)?;
        self.symbols()?;
        check_url("finnhub.ws_url", &self.finnhub.ws_url, WS_SCHEMES, ALIASES)?;
        check_url(
            "finnhub.rest_url",
            &self.finnhub.rest_url,
            HTTP_SCHEMES,
            ALIASES,
        )?;
        check_url(
            "finnhub.alpha_vantage_url",
            &self.finnhub.alpha_vantage_url,
            HTTP_SCHEMES,
            ALIASES,
        )?;
        Ok(())
    }

    /// The key, if set and not blank.
    pub fn api_key(&self) -> Option<&str> {
        Some(self.finnhub.api_key.trim()).filter(|k| !k.is_empty())
    }

    /// The Alpha Vantage key, if set and not blank.
    pub fn alpha_vantage_api_key(&self) -> Option<&str> {
        Some(self.finnhub.alpha_vantage_api_key.trim()).filter(|k| !k.is_empty())
    }

    /// Pairs of (Finnhub notation, tick symbol), deduplicated by tick symbol.
    pub fn symbols(&self) -> Result<Vec<(String, Symbol)>, ConfigError> {
        let mut out: Vec<(String, Symbol)> = Vec::new();
        for raw in &self.finnhub.symbols {
            let upstream = raw.trim().to_ascii_uppercase();
            let sym = normalize(&upstream).map_err(|e| {
                ConfigError::invalid("finnhub.symbols", ALIASES, format!("{raw:?}: {e}"))
            })?;
            if !out.iter().any(|(_, s)| *s == sym) {
                out.push((upstream, sym));
            }
        }
        if out.is_empty() || out.len() > MAX_SYMBOLS {
            return Err(ConfigError::invalid(
                "finnhub.symbols",
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
    fn symbols_normalize_table() {
        for (raw, want) in [
            ("AAPL", "AAPL"),
            ("binance:btcusdt", "BTCUSDT"),
            ("OANDA:EUR_USD", "EUR_USD"),
            ("BRK.B", "BRK.B"),
        ] {
            assert_eq!(normalize(&raw.to_ascii_uppercase()).unwrap().as_str(), want);
        }
        let mut c = Config::default();
        c.finnhub.symbols = vec!["A B".into()];
        assert!(c
            .symbols()
            .unwrap_err()
            .to_string()
            .contains("finnhub.symbols"));
        c.finnhub.api_key = "  ".into();
        assert_eq!(c.api_key(), None);
        let dbg = format!(
            "{:?}",
            FinnhubConfig {
                api_key: "secret".into(),
                ..Config::default().finnhub
            }
        );
        assert!(!dbg.contains("secret"));
    }
}

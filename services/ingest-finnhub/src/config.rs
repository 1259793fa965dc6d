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

use serde::{Deserialize, Serialize};
use tickstream_model::Symbol;
use tickstream_runtime::config::{
    check_url, string_or_list, ConfigError, EnvAlias, HTTP_SCHEMES, WS_SCHEMES,
};
use tickstream_runtime::secret::Secret;
use tickstream_upstream::{IngestorConfig, VenueConfig};

use crate::FinnhubVenue;

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
/// The default ops port of ingest-finnhub: each ingestor has its own (the README's table of upstreams).
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

/// Everything ingest-finnhub reads at start: the common keys, `[finnhub]` and `[upstream]`.
pub type Config = IngestorConfig<FinnhubConfig>;

/// The `[finnhub]` section; its keys are [`Secret`]s, so `Debug` and logs never show them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinnhubConfig {
    /// WebSocket URL; `?token=KEY` is appended.
    pub ws_url: String,
    /// REST base URL; `/api/v1/quote` is appended.
    pub rest_url: String,
    /// The API key; empty means the service waits, unhealthy.
    #[serde(default)]
    pub api_key: Secret,
    /// Symbols in Finnhub notation (`AAPL`, `BINANCE:BTCUSDT`).
    #[serde(deserialize_with = "string_or_list")]
    pub symbols: Vec<String>,
    /// Alpha Vantage base URL (`/query?function=GLOBAL_QUOTE` is appended).
    pub alpha_vantage_url: String,
    /// Alpha Vantage key: the REST fallback uses `GLOBAL_QUOTE` when no Finnhub key is set.
    #[serde(default)]
    pub alpha_vantage_api_key: Secret,
}

impl Default for FinnhubConfig {
    fn default() -> Self {
        Self {
            ws_url: DEFAULT_WS_URL.to_owned(),
            rest_url: DEFAULT_REST_URL.to_owned(),
            api_key: Secret::default(),
            symbols: DEFAULT_SYMBOLS.iter().map(|s| (*s).to_owned()).collect(),
            alpha_vantage_url: DEFAULT_ALPHA_VANTAGE_URL.to_owned(),
            alpha_vantage_api_key: Secret::default(),
        }
    }
}

/// The tick symbol of a Finnhub symbol: the exchange prefix is dropped
/// (`BINANCE:BTCUSDT` → `BTCUSDT`, `OANDA:EUR_USD` → `EUR_USD`), stocks stay (`AAPL`).
pub fn normalize(raw: &str) -> Result<Symbol, tickstream_model::SymbolError> {
    let name = raw.rsplit(':').next().unwrap_or(raw);
    Symbol::parse(name)
}

impl VenueConfig for FinnhubConfig {
    const NAME: &'static str = "finnhub";
    const DEFAULT_PORT: u16 = DEFAULT_PORT;
    const ALIASES: &'static [EnvAlias] = ALIASES;
    type Venue = FinnhubVenue;

    /// A missing API key is not an error here: the service starts and reports it on `/health`.
    fn validate(&self) -> Result<(), ConfigError> {
        self.symbols()?;
        check_url("finnhub.ws_url", &self.ws_url, WS_SCHEMES, ALIASES)?;
        check_url("finnhub.rest_url", &self.rest_url, HTTP_SCHEMES, ALIASES)?;
        check_url(
            "finnhub.alpha_vantage_url",
            &self.alpha_vantage_url,
            HTTP_SCHEMES,
            ALIASES,
        )?;
        Ok(())
    }

    fn build(&self) -> Result<FinnhubVenue, ConfigError> {
        FinnhubVenue::new(self)
    }
}

impl FinnhubConfig {
    /// The key, if set and not blank.
    pub fn api_key(&self) -> Option<&str> {
        self.api_key.non_blank()
    }

    /// The Alpha Vantage key, if set and not blank.
    pub fn alpha_vantage_api_key(&self) -> Option<&str> {
        self.alpha_vantage_api_key.non_blank()
    }

    /// Pairs of (Finnhub notation, tick symbol), deduplicated by tick symbol.
    pub fn symbols(&self) -> Result<Vec<(String, Symbol)>, ConfigError> {
        let mut out: Vec<(String, Symbol)> = Vec::new();
        for raw in &self.symbols {
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
        c.venue.symbols = vec!["A B".into()];
        assert!(c
            .venue
            .symbols()
            .unwrap_err()
            .to_string()
            .contains("finnhub.symbols"));
        c.venue.api_key = Secret::new("  ");
        assert_eq!(c.venue.api_key(), None);
        let dbg = format!(
            "{:?}",
            FinnhubConfig {
                api_key: Secret::new("secret"),
                alpha_vantage_api_key: Secret::new("av-secret"),
                ..Config::default().venue
            }
        );
        assert!(!dbg.contains("secret"), "{dbg}");
    }
}

//! ingest-binance's configuration: defaults in code < optional TOML file < environment.
//!
//! ```toml
//! host = "0.0.0.0"                      # HOST
//! port = 9101                           # PORT
//! redis_url = "redis://127.0.0.1:6379"  # REDIS_URL
//!
//! [log]
//! level = "info"                        # LOG_LEVEL
//! format = "pretty"                     # LOG_FORMAT = pretty | json
//!
//! [binance]
//! ws_url = "wss://stream.binance.com:9443"   # BINANCE_WS_URL
//! rest_url = "https://api.binance.com"       # BINANCE_REST_URL
//! symbols = ["btcusdt", "ethusdt"]           # SYMBOLS=btcusdt,ethusdt (Binance notation, any case)
//!
//! [upstream]                                 # TICKSTREAM_UPSTREAM__<KEY>, see tickstream-upstream
//! stall_timeout_ms = 60000
//! fallback_after_ms = 15000
//! rest_interval_ms = 15000
//! ```

use serde::{Deserialize, Serialize};
use tickstream_model::Symbol;
use tickstream_runtime::config::{
    check_url, string_or_list, ConfigError, EnvAlias, HTTP_SCHEMES, WS_SCHEMES,
};
use tickstream_upstream::{IngestorConfig, VenueConfig};

use crate::BinanceVenue;

/// ingest-binance's plain-named variables, on top of the common ones.
pub const ALIASES: &[EnvAlias] = &[
    EnvAlias::list("SYMBOLS", "binance.symbols"),
    EnvAlias::scalar("BINANCE_WS_URL", "binance.ws_url"),
    EnvAlias::scalar("BINANCE_REST_URL", "binance.rest_url"),
];

/// The default ops port of ingest-binance: each ingestor has its own (the README's table of upstreams).
pub const DEFAULT_PORT: u16 = 9101;
/// Binance's public market-data WebSocket endpoint.
pub const DEFAULT_WS_URL: &str = "wss://stream.binance.com:9443";
/// Binance's public REST endpoint.
pub const DEFAULT_REST_URL: &str = "https://api.binance.com";
/// Default symbols, in Binance's notation.
pub const DEFAULT_SYMBOLS: &[&str] = &["btcusdt", "ethusdt", "solusdt", "bnbusdt", "adausdt"];
/// Upper bound on configured symbols (each is two streams, ticker and trades; 1024 streams per connection).
pub const MAX_SYMBOLS: usize = 4096;

/// Everything ingest-binance reads at start: the common keys, `[binance]` and `[upstream]`.
pub type Config = IngestorConfig<BinanceConfig>;

/// The `[binance]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinanceConfig {
    /// WebSocket base URL; `/stream?streams=...` is appended.
    pub ws_url: String,
    /// REST base URL; `/api/v3/ticker/24hr` is appended.
    pub rest_url: String,
    /// Symbols in Binance notation (`btcusdt`); normalized to `BTCUSDT`.
    #[serde(deserialize_with = "string_or_list")]
    pub symbols: Vec<String>,
}

impl Default for BinanceConfig {
    fn default() -> Self {
        Self {
            ws_url: DEFAULT_WS_URL.to_owned(),
            rest_url: DEFAULT_REST_URL.to_owned(),
            symbols: DEFAULT_SYMBOLS.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

impl VenueConfig for BinanceConfig {
    const NAME: &'static str = "binance";
    const DEFAULT_PORT: u16 = DEFAULT_PORT;
    const ALIASES: &'static [EnvAlias] = ALIASES;
    type Venue = BinanceVenue;

    fn validate(&self) -> Result<(), ConfigError> {
        self.symbols()?;
        check_url("binance.ws_url", &self.ws_url, WS_SCHEMES, ALIASES)?;
        check_url("binance.rest_url", &self.rest_url, HTTP_SCHEMES, ALIASES)?;
        Ok(())
    }

    fn build(&self) -> Result<BinanceVenue, ConfigError> {
        BinanceVenue::new(self)
    }
}

impl BinanceConfig {
    /// The configured symbols, normalized (`btcusdt` → `BTCUSDT`), deduplicated.
    pub fn symbols(&self) -> Result<Vec<Symbol>, ConfigError> {
        let mut out: Vec<Symbol> = Vec::new();
        for raw in &self.symbols {
            if !raw.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(ConfigError::invalid(
                    "binance.symbols",
                    ALIASES,
                    format!("{raw:?} is not a Binance symbol (letters and digits, e.g. btcusdt)"),
                ));
            }
            let sym = Symbol::parse(raw).map_err(|e| {
                ConfigError::invalid("binance.symbols", ALIASES, format!("{raw:?}: {e}"))
            })?;
            if !out.contains(&sym) {
                out.push(sym);
            }
        }
        if out.is_empty() {
            return Err(ConfigError::invalid(
                "binance.symbols",
                ALIASES,
                "needs at least one symbol",
            ));
        }
        if out.len() > MAX_SYMBOLS {
            return Err(ConfigError::invalid(
                "binance.symbols",
                ALIASES,
                format!("at most {MAX_SYMBOLS} symbols"),
            ));
        }
        Ok(out)
    }
}

/// The keys whose values differ between `running` and `fresh`, other than
/// `binance.symbols` (the only one a SIGHUP reload applies).
pub fn changed_except_symbols(running: &Config, fresh: &Config) -> Vec<&'static str> {
    let checks = [
        ("host", running.host != fresh.host),
        ("port", running.port != fresh.port),
        ("redis_url", running.redis_url != fresh.redis_url),
        ("log", running.log != fresh.log),
        ("binance.ws_url", running.venue.ws_url != fresh.venue.ws_url),
        (
            "binance.rest_url",
            running.venue.rest_url != fresh.venue.rest_url,
        ),
        ("upstream", running.upstream != fresh.upstream),
    ];
    checks
        .into_iter()
        .filter_map(|(key, changed)| changed.then_some(key))
        .collect()
}

#[cfg(test)]
mod tests {
    use tickstream_runtime::config::ServiceConfig;

    use super::*;

    #[test]
    fn defaults_are_valid_and_symbols_normalize() {
        let c = Config::default();
        c.validate().unwrap();
        let mut c = Config::default();
        c.venue.symbols = vec!["btcusdt".into(), "BTCUSDT".into(), "ethbtc".into()];
        let s = c.venue.symbols().unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].as_str(), "BTCUSDT");
        for bad in ["btc-usdt", "btc/usdt", ""] {
            c.venue.symbols = vec![bad.into()];
            let e = c.venue.symbols().unwrap_err().to_string();
            assert!(e.contains("binance.symbols"), "{bad}: {e}");
        }
        let mut c = Config::default();
        c.venue.ws_url = "http://x".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("binance.ws_url"));
    }

    #[test]
    fn reload_reports_settings_it_does_not_apply() {
        let running = Config::default();
        let mut fresh = running.clone();
        fresh.venue.symbols = vec!["xrpbtc".into()];
        assert!(changed_except_symbols(&running, &fresh).is_empty());
        fresh.port = 1;
        fresh.upstream.stall_timeout_ms = 5;
        assert_eq!(
            changed_except_symbols(&running, &fresh),
            ["port", "upstream"]
        );
    }
}

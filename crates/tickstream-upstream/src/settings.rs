//! The `[upstream]` config section every upstream ingestor shares
//! (`TICKSTREAM_UPSTREAM__<KEY>`), with defaults and validation.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tickstream_runtime::config::{ConfigError, EnvAlias};

/// First reconnect delay after a connection fails or drops (doubles up to the cap, with jitter).
pub const DEFAULT_RECONNECT_INITIAL_MS: u64 = 500;
/// Reconnect delay cap: a venue that is down is retried at least this often.
pub const DEFAULT_RECONNECT_MAX_MS: u64 = 30_000;
/// Silence after which the watchdog reconnects. Binance pings every 20 s and
/// its tickers update every 1 s; Coinbase heartbeats every 1 s; Finnhub pings;
/// Twelve Data answers our 10 s heartbeat. 60 s covers all of them.
pub const DEFAULT_STALL_TIMEOUT_MS: u64 = 60_000;
/// Bound on TCP + TLS + WebSocket handshake.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 10_000;
/// How long the stream must be down before the REST fallback starts polling.
pub const DEFAULT_FALLBACK_AFTER_MS: u64 = 15_000;
/// REST poll interval: free tiers allow about 1 request/s (Finnhub 60/min,
/// CoinGecko ~30/min, Alpha Vantage 25/day); 15 s per round stays inside.
pub const DEFAULT_REST_INTERVAL_MS: u64 = 15_000;
/// Proactive reconnect age: Binance cuts every connection at 24 h, so rotate at 23 h.
pub const DEFAULT_MAX_CONNECTION_AGE_SECS: u64 = 23 * 3600;
/// Heartbeat record period (the record lives 5 periods).
pub const DEFAULT_HEARTBEAT_SECS: u64 = 2;
/// TTL of `price:{SYMBOL}`.
pub const DEFAULT_PRICE_TTL_SECS: u64 = 86_400;

/// Timings of the shared machinery; every one is overridable so tests run fast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSettings {
    /// First reconnect delay, ms.
    pub reconnect_initial_ms: u64,
    /// Reconnect delay cap, ms.
    pub reconnect_max_ms: u64,
    /// No frame at all for this long → reconnect, ms.
    pub stall_timeout_ms: u64,
    /// Connect + handshake bound, ms.
    pub connect_timeout_ms: u64,
    /// Stream down this long → REST fallback polls, ms; 0 disables the fallback.
    pub fallback_after_ms: u64,
    /// Pause between REST fallback rounds, ms.
    pub rest_interval_ms: u64,
    /// Open a replacement connection (before closing the old one) at this age, s.
    pub max_connection_age_secs: u64,
    /// Heartbeat record period, s.
    pub heartbeat_secs: u64,
    /// TTL of the price cache, s.
    pub price_ttl_secs: u64,
    /// Entries kept per `history:` stream of a ticks or trades channel (0: no history).
    #[serde(default = "default_history_len")]
    pub history_len: usize,
    /// Stream the configured symbols plus those of `on_demand_symbols` some gateway's clients want
    /// (`tickstream:interest`), changing streams live; venues with live changes (Binance, Coinbase,
    /// Finnhub, Twelve Data).
    #[serde(default)]
    pub on_demand: bool,
    /// Symbols this ingestor may add on demand, in the venue's notation (`ETHUSDT`, `ETH-USD`,
    /// Finnhub `BINANCE:BTCUSDT`); others are never streamed.
    #[serde(
        default,
        deserialize_with = "tickstream_runtime::config::string_or_list"
    )]
    pub on_demand_symbols: Vec<String>,
    /// An on-demand symbol is dropped after nobody has wanted it for this long, ms.
    #[serde(default = "default_on_demand_grace_ms")]
    pub on_demand_grace_ms: u64,
    /// Secondary REST fallbacks polled when the venue's own REST round gives nothing (`coingecko`).
    #[serde(
        default,
        deserialize_with = "tickstream_runtime::config::string_or_list"
    )]
    pub rest_providers: Vec<String>,
    /// CoinGecko's base URL (`/api/v3/simple/price` is appended).
    #[serde(default = "default_coingecko_url")]
    pub coingecko_url: String,
    /// ExchangeRate-API's base URL (`/v6/{key}/latest/{BASE}` is appended).
    #[serde(default = "default_exchangerate_url")]
    pub exchangerate_url: String,
    /// ExchangeRate-API key, required when `exchangerate` is a REST provider; never logged.
    #[serde(default)]
    pub exchangerate_api_key: tickstream_runtime::secret::Secret,
    /// Alpha Vantage's base URL (`/query?function=GLOBAL_QUOTE...` is appended).
    #[serde(default = "default_alphavantage_url")]
    pub alpha_vantage_url: String,
    /// Alpha Vantage key, required when `alphavantage` is a REST provider; never logged.
    #[serde(default)]
    pub alpha_vantage_api_key: tickstream_runtime::secret::Secret,
}

fn default_alphavantage_url() -> String {
    crate::providers::DEFAULT_ALPHAVANTAGE_URL.to_owned()
}

fn default_exchangerate_url() -> String {
    crate::providers::DEFAULT_EXCHANGERATE_URL.to_owned()
}

fn default_coingecko_url() -> String {
    crate::providers::DEFAULT_COINGECKO_URL.to_owned()
}

/// Default `upstream.on_demand_grace_ms`: a symbol nobody wants any more is dropped after this.
pub const DEFAULT_ON_DEMAND_GRACE_MS: u64 = 30_000;

fn default_on_demand_grace_ms() -> u64 {
    DEFAULT_ON_DEMAND_GRACE_MS
}

/// Default `upstream.history_len`.
fn default_history_len() -> usize {
    tickstream_bus::store::DEFAULT_HISTORY_LEN
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        Self {
            reconnect_initial_ms: DEFAULT_RECONNECT_INITIAL_MS,
            reconnect_max_ms: DEFAULT_RECONNECT_MAX_MS,
            stall_timeout_ms: DEFAULT_STALL_TIMEOUT_MS,
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            fallback_after_ms: DEFAULT_FALLBACK_AFTER_MS,
            rest_interval_ms: DEFAULT_REST_INTERVAL_MS,
            max_connection_age_secs: DEFAULT_MAX_CONNECTION_AGE_SECS,
            heartbeat_secs: DEFAULT_HEARTBEAT_SECS,
            price_ttl_secs: DEFAULT_PRICE_TTL_SECS,
            history_len: tickstream_bus::store::DEFAULT_HISTORY_LEN,
            on_demand: false,
            on_demand_symbols: Vec::new(),
            on_demand_grace_ms: DEFAULT_ON_DEMAND_GRACE_MS,
            rest_providers: Vec::new(),
            coingecko_url: default_coingecko_url(),
            exchangerate_url: default_exchangerate_url(),
            exchangerate_api_key: tickstream_runtime::secret::Secret::default(),
            alpha_vantage_url: default_alphavantage_url(),
            alpha_vantage_api_key: tickstream_runtime::secret::Secret::default(),
        }
    }
}

impl UpstreamSettings {
    /// Rejects values that would spin (zero intervals), naming the key.
    pub fn validate(&self, aliases: &[EnvAlias]) -> Result<(), ConfigError> {
        let positive = [
            ("upstream.reconnect_initial_ms", self.reconnect_initial_ms),
            ("upstream.reconnect_max_ms", self.reconnect_max_ms),
            ("upstream.stall_timeout_ms", self.stall_timeout_ms),
            ("upstream.connect_timeout_ms", self.connect_timeout_ms),
            ("upstream.rest_interval_ms", self.rest_interval_ms),
            (
                "upstream.max_connection_age_secs",
                self.max_connection_age_secs,
            ),
            ("upstream.heartbeat_secs", self.heartbeat_secs),
            ("upstream.price_ttl_secs", self.price_ttl_secs),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(ConfigError::invalid(key, aliases, "must be greater than 0"));
            }
        }
        for raw in &self.on_demand_symbols {
            // Written in the venue's notation: an exchange prefix (Finnhub
            // `BINANCE:BTCUSDT`) is allowed; the venue reads the whole entry at start.
            let name = raw.rsplit(':').next().unwrap_or(raw);
            tickstream_model::Symbol::parse(name).map_err(|e| {
                ConfigError::invalid(
                    "upstream.on_demand_symbols",
                    aliases,
                    format!("{raw:?}: {e}"),
                )
            })?;
        }
        if self.on_demand && self.on_demand_symbols.is_empty() {
            return Err(ConfigError::invalid(
                "upstream.on_demand_symbols",
                aliases,
                "on-demand mode needs the symbols it may add",
            ));
        }
        for name in &self.rest_providers {
            if !crate::providers::PROVIDERS.contains(&name.as_str()) {
                return Err(ConfigError::invalid(
                    "upstream.rest_providers",
                    aliases,
                    format!(
                        "{name:?}: expected one of {:?}",
                        crate::providers::PROVIDERS
                    ),
                ));
            }
        }
        for (key, url) in [
            ("upstream.coingecko_url", &self.coingecko_url),
            ("upstream.exchangerate_url", &self.exchangerate_url),
            ("upstream.alpha_vantage_url", &self.alpha_vantage_url),
        ] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::invalid(
                    key,
                    aliases,
                    "must start with http:// or https://",
                ));
            }
        }
        let av = self.alpha_vantage_api_key.expose();
        if self.rest_providers.iter().any(|p| p == "alphavantage")
            && (av.is_empty() || !av.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return Err(ConfigError::invalid(
                "upstream.alpha_vantage_api_key",
                aliases,
                "the alphavantage REST provider needs its API key (letters and digits)",
            ));
        }
        let key = self.exchangerate_api_key.expose();
        if self.rest_providers.iter().any(|p| p == "exchangerate")
            && (key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        {
            return Err(ConfigError::invalid(
                "upstream.exchangerate_api_key",
                aliases,
                "the exchangerate REST provider needs its API key (letters, digits and dashes)",
            ));
        }
        if self.reconnect_max_ms < self.reconnect_initial_ms {
            return Err(ConfigError::invalid(
                "upstream.reconnect_max_ms",
                aliases,
                "must be at least upstream.reconnect_initial_ms",
            ));
        }
        Ok(())
    }

    /// [`Self::reconnect_initial_ms`] as a duration.
    pub fn reconnect_initial(&self) -> Duration {
        Duration::from_millis(self.reconnect_initial_ms)
    }
    /// [`Self::reconnect_max_ms`] as a duration.
    pub fn reconnect_max(&self) -> Duration {
        Duration::from_millis(self.reconnect_max_ms)
    }
    /// [`Self::stall_timeout_ms`] as a duration.
    pub fn stall_timeout(&self) -> Duration {
        Duration::from_millis(self.stall_timeout_ms)
    }
    /// [`Self::connect_timeout_ms`] as a duration.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
    /// [`Self::fallback_after_ms`] as a duration; `None` when the fallback is disabled.
    pub fn fallback_after(&self) -> Option<Duration> {
        (self.fallback_after_ms > 0).then(|| Duration::from_millis(self.fallback_after_ms))
    }
    /// [`Self::rest_interval_ms`] as a duration.
    pub fn rest_interval(&self) -> Duration {
        Duration::from_millis(self.rest_interval_ms)
    }
    /// [`Self::max_connection_age_secs`] as a duration.
    pub fn max_connection_age(&self) -> Duration {
        Duration::from_secs(self.max_connection_age_secs)
    }
    /// The CoinGecko base URL when `coingecko` is among the REST providers.
    pub fn coingecko(&self) -> Option<String> {
        self.rest_providers
            .iter()
            .any(|p| p == "coingecko")
            .then(|| self.coingecko_url.trim_end_matches('/').to_owned())
    }
    /// Alpha Vantage's base URL and key when `alphavantage` is among the REST providers.
    pub fn alphavantage(&self) -> Option<(String, String)> {
        self.rest_providers
            .iter()
            .any(|p| p == "alphavantage")
            .then(|| {
                (
                    self.alpha_vantage_url.trim_end_matches('/').to_owned(),
                    self.alpha_vantage_api_key.expose().to_owned(),
                )
            })
    }
    /// ExchangeRate-API's base URL and key when `exchangerate` is among the REST providers.
    pub fn exchangerate(&self) -> Option<(String, String)> {
        self.rest_providers
            .iter()
            .any(|p| p == "exchangerate")
            .then(|| {
                (
                    self.exchangerate_url.trim_end_matches('/').to_owned(),
                    self.exchangerate_api_key.expose().to_owned(),
                )
            })
    }
    /// [`Self::on_demand_grace_ms`] as a duration.
    pub fn on_demand_grace(&self) -> Duration {
        Duration::from_millis(self.on_demand_grace_ms)
    }
    /// [`Self::heartbeat_secs`] as a duration.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_zero_is_refused() {
        assert!(UpstreamSettings::default().validate(&[]).is_ok());
        let bad = UpstreamSettings {
            stall_timeout_ms: 0,
            ..UpstreamSettings::default()
        };
        let e = bad.validate(&[]).unwrap_err().to_string();
        assert!(e.contains("upstream.stall_timeout_ms"), "{e}");
        let bad = UpstreamSettings {
            reconnect_initial_ms: 10,
            reconnect_max_ms: 5,
            ..UpstreamSettings::default()
        };
        assert!(bad.validate(&[]).is_err());
        let off = UpstreamSettings {
            fallback_after_ms: 0,
            ..UpstreamSettings::default()
        };
        assert_eq!(off.fallback_after(), None);
    }
}

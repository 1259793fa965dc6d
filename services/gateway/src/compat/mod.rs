//! Compatibility with clients written for other market-data servers, so they work unchanged.
//!
//! # Layout
//! - [`aliases`]: the configurable symbol alias table (`BTC` → `BTCUSDT`), shared by every profile and REST.
//! - [`dashboard_profile`]: the Socket.IO trading-dashboard profile (`connection_status`,
//!   `subscription_confirmed`, a periodic `market_update` map, re-shaped signals and sentiment).
//! - [`streams`]: the Vue plain-WebSocket client's `/ws/market/stream`, `/ws/trading/signals/stream`
//!   and `/ws/trading/binary/stream`.
//!
//! The settings live in `[gateway.compat]` ([`CompatSection`]); `docs/compatibility.md`
//! documents the profile, the mappings and the alias table.

pub mod aliases;
pub mod dashboard_profile;
pub mod streams;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tickstream_model::Symbol;
use tickstream_runtime::config::ConfigError;

use crate::config::ALIASES as ENV_ALIASES;

/// Which Socket.IO vocabulary a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SocketIoProfile {
    /// The gateway's own events (`connected`, `subscribed`, `price_update`, ...).
    Default,
    /// The trading-dashboard client's events (`connection_status`, `market_update` maps, ...).
    Dashboard,
}

impl SocketIoProfile {
    /// Parses a `?profile=` value; `None` for an unknown name (the gateway's default applies).
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "default" | "native" => Some(Self::Default),
            "dashboard" => Some(Self::Dashboard),
            _ => None,
        }
    }
}

/// `[gateway.compat]`: profiles for existing clients and the symbol alias table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct CompatSection {
    /// The Socket.IO profile of connections that do not ask for one with `?profile=`.
    pub socketio_profile: SocketIoProfile,
    /// Period of the dashboard profile's `market_update` map, in ms.
    pub dashboard_market_interval_ms: u64,
    /// Symbols (client names, aliases allowed) every dashboard connection receives before and besides its own subscribe.
    #[serde(deserialize_with = "tickstream_runtime::config::string_or_list")]
    pub dashboard_symbols: Vec<String>,
    /// What a bare crypto base (`BTC`, `BTC/USD`) maps to: the base followed by this suffix (`USDT`: Binance and the simulator; `-USD`: Coinbase).
    pub usd_suffix: String,
    /// Crypto bases that get the `BASE` and `BASE/USD` aliases automatically.
    #[serde(deserialize_with = "tickstream_runtime::config::string_or_list")]
    pub crypto_bases: Vec<String>,
    /// Explicit aliases (client name → feed symbol); they win over the generated ones.
    pub aliases: BTreeMap<String, String>,
    /// Symbols (client names, aliases allowed) the plain-WebSocket market and signals streams push.
    #[serde(deserialize_with = "tickstream_runtime::config::string_or_list")]
    pub stream_symbols: Vec<String>,
    /// Period of `/ws/market/stream` in ms (newest tick per symbol each period); 0 = every tick.
    pub market_stream_interval_ms: u64,
}

/// The crypto bases of the simulator's and Binance's usual symbols.
pub const DEFAULT_CRYPTO_BASES: &[&str] = &[
    "BTC", "ETH", "SOL", "BNB", "ADA", "XRP", "DOGE", "DOT", "LINK", "LTC", "AVAX", "MATIC", "TRX",
    "SHIB", "ATOM", "UNI",
];

impl Default for CompatSection {
    fn default() -> Self {
        Self {
            socketio_profile: SocketIoProfile::Default,
            dashboard_market_interval_ms: 2_000,
            dashboard_symbols: ["BTC", "ETH", "ADA"].map(str::to_owned).to_vec(),
            usd_suffix: "USDT".to_owned(),
            crypto_bases: DEFAULT_CRYPTO_BASES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            aliases: BTreeMap::new(),
            stream_symbols: [
                "BTC", "ETH", "SOL", "BNB", "ADA", "AAPL", "MSFT", "NVDA", "EUR/USD",
            ]
            .map(str::to_owned)
            .to_vec(),
            market_stream_interval_ms: 5_000,
        }
    }
}

impl CompatSection {
    /// Checks every key (the error names it), so a bad alias table stops the gateway at start.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.dashboard_market_interval_ms == 0 {
            return Err(invalid(
                "gateway.compat.dashboard_market_interval_ms",
                "must be greater than 0".to_owned(),
            ));
        }
        for raw in &self.dashboard_symbols {
            Symbol::parse(raw).map_err(|e| {
                invalid("gateway.compat.dashboard_symbols", format!("{raw:?}: {e}"))
            })?;
        }
        for raw in &self.stream_symbols {
            Symbol::parse(raw)
                .map_err(|e| invalid("gateway.compat.stream_symbols", format!("{raw:?}: {e}")))?;
        }
        for base in &self.crypto_bases {
            let sym = format!("{base}{}", self.usd_suffix);
            Symbol::parse(base)
                .and_then(|_| Symbol::parse(&sym))
                .map_err(|e| {
                    invalid(
                        "gateway.compat.crypto_bases",
                        format!("{base:?} (with usd_suffix {:?}): {e}", self.usd_suffix),
                    )
                })?;
        }
        for (from, to) in &self.aliases {
            let key = format!("gateway.compat.aliases.{from}");
            let parsed =
                Symbol::parse(from).map_err(|e| invalid(&key, format!("{from:?}: {e}")))?;
            if parsed.as_str() != from {
                return Err(invalid(
                    &key,
                    format!("write the alias as {:?}", parsed.as_str()),
                ));
            }
            Symbol::parse(to).map_err(|e| invalid(&key, format!("target {to:?}: {e}")))?;
        }
        Ok(())
    }
}

fn invalid(key: &str, reason: String) -> ConfigError {
    ConfigError::invalid(key, ENV_ALIASES, reason)
}

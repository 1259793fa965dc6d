//! ingest-finnhub: Finnhub trades published to the tickstream bus.
//!
//! Symbols come from `SYMBOLS` in Finnhub's notation (`AAPL`,
//! `BINANCE:BTCUSDT`, `OANDA:EUR_USD`); the tick symbol drops the exchange
//! prefix (`AAPL`, `BTCUSDT`, `EUR_USD`). A `trade` message carries a batch;
//! the last trade per symbol becomes a tick (`p` price, `t` time) with the
//! running volume of the UTC day (summed `v` since the service started that
//! day). Finnhub gives no bid/ask/high/low on the stream: they stay absent.
//! `{"type":"ping"}` is ignored. Without `FINNHUB_API_KEY` the service starts,
//! reports `unhealthy` naming the variable, and never calls Finnhub. The REST
//! fallback polls `/api/v1/quote` (price, change, percent, day high/low), or,
//! with only `ALPHA_VANTAGE_API_KEY` set, Alpha Vantage `GLOBAL_QUOTE` (which
//! has no time of day: those ticks carry the receive time). In on-demand mode
//! (`upstream.on_demand`, its symbols in Finnhub notation) symbols are added
//! and dropped on the open connection with `subscribe`/`unsubscribe` frames.
//!
//! # Layout
//! - [`config`]: the `[finnhub]` section, symbol notation, defaults and validation.
//! - [`messages`]: Finnhub wire types with their documented JSON.
//! - [`parse`]: wire types → quotes and events.
//! - [`ws`]: the token URL, subscribe and unsubscribe frames.
//! - [`rest`]: the quote fallback.
//! - [`FinnhubVenue`]; the binary runs it with [`tickstream_upstream::main`].

#![forbid(unsafe_code)]

pub mod config;
pub mod messages;
pub mod parse;
pub mod rest;
pub mod ws;

use std::collections::HashMap;
use std::sync::RwLock;

use tickstream_model::Symbol;
use tickstream_runtime::config::ConfigError;
use tickstream_runtime::secret::Secret;
use tickstream_upstream::{
    LiveSubscriptions, ParseError, Quote, RestRequest, SubscriptionChange, Venue, WsConnection,
    WsEvent,
};

pub use config::{Config, FinnhubConfig};

/// The tick `source` and metric label.
pub const SOURCE: &str = "finnhub";

/// Finnhub as a [`Venue`].
#[derive(Debug)]
pub struct FinnhubVenue {
    /// (Finnhub notation, tick symbol).
    symbols: Vec<(String, Symbol)>,
    /// WebSocket URL without the token.
    ws_url: String,
    /// REST base.
    rest_url: String,
    /// The key, if configured.
    api_key: Option<Secret>,
    /// Alpha Vantage base URL.
    alpha_vantage_url: String,
    /// Alpha Vantage key, if configured.
    alpha_vantage_api_key: Option<Secret>,
    /// Stateful parser (day volumes).
    parser: parse::FinnhubParser,
    /// Finnhub notation of every tick symbol it may stream (configured and on-demand),
    /// so a control frame names `BINANCE:BTCUSDT` for the tick symbol `BTCUSDT`.
    /// Written once at start (on-demand symbols), read by every control frame.
    names: RwLock<HashMap<Symbol, String>>,
}

impl FinnhubVenue {
    /// A venue for a validated `[finnhub]` section.
    pub fn new(config: &FinnhubConfig) -> Result<Self, ConfigError> {
        let symbols = config.symbols()?;
        let names = symbols
            .iter()
            .map(|(u, s)| (s.clone(), u.clone()))
            .collect();
        Ok(Self {
            names: RwLock::new(names),
            symbols,
            ws_url: config.ws_url.clone(),
            rest_url: config.rest_url.clone(),
            api_key: config.api_key().map(Secret::new),
            alpha_vantage_url: config.alpha_vantage_url.clone(),
            alpha_vantage_api_key: config.alpha_vantage_api_key().map(Secret::new),
            parser: parse::FinnhubParser::default(),
        })
    }

    /// The Finnhub notation of a tick symbol (the tick symbol itself when unknown).
    fn upstream_name(&self, symbol: &Symbol) -> String {
        let names = match self.names.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        names
            .get(symbol)
            .cloned()
            .unwrap_or_else(|| symbol.to_string())
    }

    /// `symbols` as (Finnhub notation, tick symbol) pairs.
    fn pairs(&self, symbols: &[Symbol]) -> Vec<(String, Symbol)> {
        symbols
            .iter()
            .map(|s| (self.upstream_name(s), s.clone()))
            .collect()
    }

    /// The REST fallback round for `symbols`: Finnhub's quote with a key, else Alpha Vantage.
    fn rest_round(&self, symbols: &[(String, Symbol)]) -> Vec<RestRequest> {
        match (&self.api_key, &self.alpha_vantage_api_key) {
            (Some(key), _) => rest::requests(&self.rest_url, key.expose(), symbols),
            (None, Some(key)) => {
                rest::alpha_vantage_requests(&self.alpha_vantage_url, key.expose(), symbols)
            }
            (None, None) => Vec::new(),
        }
    }
}

impl Venue for FinnhubVenue {
    fn name(&self) -> &'static str {
        SOURCE
    }

    fn symbols(&self) -> Vec<Symbol> {
        self.symbols.iter().map(|(_, s)| s.clone()).collect()
    }

    fn credentials_problem(&self) -> Option<String> {
        self.api_key.is_none().then(|| {
            format!(
                "{} is not set: get a free key at finnhub.io and restart",
                config::API_KEY_ENV
            )
        })
    }

    fn connections(&self) -> Vec<WsConnection> {
        let upstream: Vec<String> = self.symbols.iter().map(|(u, _)| u.clone()).collect();
        ws::connections(
            &self.ws_url,
            self.api_key.as_ref().map_or("", Secret::expose),
            &upstream,
        )
    }

    fn parse(&self, text: &str) -> Result<WsEvent, ParseError> {
        self.parser.parse_ws(text)
    }

    fn live(&self) -> Option<&dyn LiveSubscriptions> {
        Some(self)
    }

    fn rest_requests(&self) -> Vec<RestRequest> {
        self.rest_round(&self.symbols)
    }

    fn rest_rate_limited(&self, body: &str) -> bool {
        // Alpha Vantage answers over-quota calls with HTTP 200 and a `Note`/`Information` text.
        body.contains("\"Note\"") || body.contains("\"Information\"")
    }

    fn parse_rest(&self, request: &RestRequest, body: &str) -> Result<Vec<Quote>, ParseError> {
        let symbol = request
            .symbols
            .first()
            .ok_or_else(|| ParseError::field("symbol", "request without a symbol"))?;
        if request.url.contains("function=GLOBAL_QUOTE") {
            let now = tickstream_model::time::now_millis();
            return Ok(vec![parse::parse_global_quote(symbol, body, now)?]);
        }
        Ok(vec![parse::parse_rest(symbol, body)?])
    }
}

impl LiveSubscriptions for FinnhubVenue {
    fn max_symbols_per_connection(&self) -> usize {
        ws::MAX_SYMBOLS_PER_CONNECTION
    }

    fn max_symbols_per_message(&self) -> usize {
        ws::MAX_SYMBOLS_PER_MESSAGE
    }

    fn connection_for(&self, symbols: &[Symbol]) -> WsConnection {
        let upstream: Vec<String> = symbols.iter().map(|s| self.upstream_name(s)).collect();
        ws::connection_for(
            &self.ws_url,
            self.api_key.as_ref().map_or("", Secret::expose),
            &upstream,
        )
    }

    fn control_frame(&self, change: SubscriptionChange, symbols: &[Symbol], _id: u64) -> String {
        // One symbol per frame (max_symbols_per_message); a longer list never comes.
        let name = symbols
            .first()
            .map(|s| self.upstream_name(s))
            .unwrap_or_default();
        ws::control_frame(change, &name)
    }

    fn rest_requests_for(&self, symbols: &[Symbol]) -> Vec<RestRequest> {
        self.rest_round(&self.pairs(symbols))
    }

    fn replies_by_id(&self) -> bool {
        false
    }

    fn on_demand_symbol(&self, raw: &str) -> Result<Symbol, String> {
        let upstream = raw.trim().to_ascii_uppercase();
        let symbol = config::normalize(&upstream).map_err(|e| e.to_string())?;
        let mut names = match self.names.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        names.entry(symbol.clone()).or_insert(upstream);
        Ok(symbol)
    }
}

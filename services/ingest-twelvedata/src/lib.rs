//! ingest-twelvedata: Twelve Data prices published to the tickstream bus.
//!
//! Symbols come from `SYMBOLS` in Twelve Data's notation (`AAPL`, `EUR/USD`,
//! `BTC/USD`), which is also the tick symbol. `price` events map to the tick:
//! `price`, `bid`/`ask` when given (crypto, forex), `day_volume`, `timestamp`
//! (seconds). `subscribe-status` is logged, refused symbols (`fails`) are
//! counted as upstream errors; `{"action":"heartbeat"}` is sent every 10 s.
//! Without `TWELVE_DATA_API_KEY` the service starts, reports `unhealthy`
//! naming the variable, and never calls Twelve Data. The REST fallback polls
//! `/price` (price only; its timestamp is the receive time, `/price` has none).
//! In on-demand mode (`upstream.on_demand`) the open connection subscribes
//! again for added symbols and unsubscribes dropped ones ([`ws`]).
//!
//! # Layout
//! - [`config`]: the `[twelvedata]` section, defaults and validation.
//! - [`messages`]: Twelve Data wire types with their documented JSON.
//! - [`parse`]: wire types → quotes and events.
//! - [`ws`]: the key URL, subscribe, unsubscribe and heartbeat frames.
//! - [`rest`]: the `/price` fallback.
//! - [`TwelveDataVenue`]; the binary runs it with [`tickstream_upstream::main`].

#![forbid(unsafe_code)]

pub mod config;
pub mod messages;
pub mod parse;
pub mod rest;
pub mod ws;

use std::time::Duration;

use tickstream_model::Symbol;
use tickstream_runtime::config::ConfigError;
use tickstream_runtime::secret::Secret;
use tickstream_upstream::{
    LiveSubscriptions, ParseError, Quote, RestRequest, SubscriptionChange, Venue, WsConnection,
    WsEvent,
};

pub use config::{Config, TwelveDataConfig};

/// The tick `source` and metric label.
pub const SOURCE: &str = "twelvedata";

/// Twelve Data as a [`Venue`].
#[derive(Debug)]
pub struct TwelveDataVenue {
    /// Symbols (Twelve Data notation = tick symbol).
    symbols: Vec<Symbol>,
    /// WebSocket URL without the key.
    ws_url: String,
    /// REST base.
    rest_url: String,
    /// The key, if configured.
    api_key: Option<Secret>,
    /// Period of `{"action":"heartbeat"}`.
    heartbeat: Duration,
}

impl TwelveDataVenue {
    /// A venue for a validated `[twelvedata]` section.
    pub fn new(config: &TwelveDataConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            symbols: config.symbols()?,
            ws_url: config.ws_url.clone(),
            rest_url: config.rest_url.clone(),
            api_key: config.api_key().map(Secret::new),
            heartbeat: Duration::from_secs(config.heartbeat_secs),
        })
    }
}

impl Venue for TwelveDataVenue {
    fn name(&self) -> &'static str {
        SOURCE
    }

    fn symbols(&self) -> Vec<Symbol> {
        self.symbols.clone()
    }

    fn credentials_problem(&self) -> Option<String> {
        self.api_key.is_none().then(|| {
            format!(
                "{} is not set: get a key at twelvedata.com and restart",
                config::API_KEY_ENV
            )
        })
    }

    fn connections(&self) -> Vec<WsConnection> {
        ws::connections(
            &self.ws_url,
            self.api_key.as_ref().map_or("", Secret::expose),
            &self.symbols,
        )
    }

    fn app_heartbeat(&self) -> Option<(Duration, String)> {
        Some((self.heartbeat, ws::HEARTBEAT_FRAME.to_owned()))
    }

    fn parse(&self, text: &str) -> Result<WsEvent, ParseError> {
        parse::parse_ws(text)
    }

    fn control_message_interval(&self) -> Duration {
        ws::CONTROL_MESSAGE_INTERVAL
    }

    fn live(&self) -> Option<&dyn LiveSubscriptions> {
        Some(self)
    }

    fn rest_requests(&self) -> Vec<RestRequest> {
        self.rest_requests_for(&self.symbols)
    }

    fn rest_rate_limited(&self, body: &str) -> bool {
        parse::is_rate_limited(body)
    }

    fn parse_rest(&self, request: &RestRequest, body: &str) -> Result<Vec<Quote>, ParseError> {
        parse::parse_rest(&request.symbols, body, tickstream_model::time::now_millis())
    }
}

impl LiveSubscriptions for TwelveDataVenue {
    fn max_symbols_per_connection(&self) -> usize {
        ws::MAX_SYMBOLS_PER_CONNECTION
    }

    fn max_symbols_per_message(&self) -> usize {
        ws::MAX_SYMBOLS_PER_MESSAGE
    }

    fn connection_for(&self, symbols: &[Symbol]) -> WsConnection {
        ws::connection_for(
            &self.ws_url,
            self.api_key.as_ref().map_or("", Secret::expose),
            symbols,
        )
    }

    fn control_frame(&self, change: SubscriptionChange, symbols: &[Symbol], _id: u64) -> String {
        ws::control_frame(change, symbols)
    }

    fn rest_requests_for(&self, symbols: &[Symbol]) -> Vec<RestRequest> {
        match &self.api_key {
            Some(key) => rest::requests(&self.rest_url, key.expose(), symbols),
            None => Vec::new(),
        }
    }

    fn replies_by_id(&self) -> bool {
        false
    }
}

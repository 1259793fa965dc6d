//! ingest-coinbase: Coinbase Exchange tickers published to the tickstream bus.
//!
//! Symbols come from `SYMBOLS` as Coinbase product ids (`BTC-USD`) and are
//! published under the same name. The `ticker` channel maps to the tick:
//! `price`, `best_bid`/`best_ask`, `volume_24h`, `high_24h`/`low_24h`,
//! change and changePercent from `open_24h`, `time`; a ticker with an older
//! `sequence` than one already seen is dropped. `heartbeat` (1/s per product)
//! keeps the stall watchdog quiet; `error` messages are logged and counted.
//! The REST fallback polls `GET /products/{id}/ticker` (price, bid, ask, volume).
//! In on-demand mode (`upstream.on_demand`) products are added and dropped on
//! the open connection with `subscribe`/`unsubscribe` messages ([`ws`]).
//!
//! # Layout
//! - [`config`]: the `[coinbase]` section, its defaults and validation.
//! - [`messages`]: Coinbase wire types with their documented JSON.
//! - [`parse`]: wire types → quotes and events.
//! - [`ws`]: the subscribe frame and the live subscribe/unsubscribe messages.
//! - [`rest`]: the REST ticker fallback.
//! - [`CoinbaseVenue`]; the binary runs it with [`tickstream_upstream::main`].

#![forbid(unsafe_code)]

pub mod config;
pub mod messages;
pub mod parse;
pub mod rest;
pub mod ws;

use std::time::Duration;
use tickstream_model::Symbol;
use tickstream_runtime::config::ConfigError;

use tickstream_upstream::{
    LiveSubscriptions, ParseError, Quote, RestRequest, SubscriptionChange, Venue, WsConnection,
    WsEvent,
};

pub use config::{CoinbaseConfig, Config};

/// The tick `source` and metric label.
pub const SOURCE: &str = "coinbase";

/// Coinbase Exchange as a [`Venue`].
#[derive(Debug)]
pub struct CoinbaseVenue {
    /// Product ids as symbols.
    symbols: Vec<Symbol>,
    /// Feed URL.
    ws_url: String,
    /// REST base URL.
    rest_url: String,
    /// Stateful parser (sequence bookkeeping).
    parser: parse::CoinbaseParser,
}

impl CoinbaseVenue {
    /// A venue for a validated `[coinbase]` section.
    pub fn new(config: &CoinbaseConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            symbols: config.symbols()?,
            ws_url: config.ws_url.clone(),
            rest_url: config.rest_url.clone(),
            parser: parse::CoinbaseParser::default(),
        })
    }
}

impl Venue for CoinbaseVenue {
    fn name(&self) -> &'static str {
        SOURCE
    }

    fn symbols(&self) -> Vec<Symbol> {
        self.symbols.clone()
    }

    fn connections(&self) -> Vec<WsConnection> {
        ws::connections(&self.ws_url, &self.symbols)
    }

    fn parse(&self, text: &str) -> Result<WsEvent, ParseError> {
        self.parser.parse_ws(text)
    }

    fn control_message_interval(&self) -> Duration {
        ws::CONTROL_MESSAGE_INTERVAL
    }

    fn live(&self) -> Option<&dyn LiveSubscriptions> {
        Some(self)
    }

    fn rest_requests(&self) -> Vec<RestRequest> {
        rest::requests(&self.rest_url, &self.symbols)
    }

    fn parse_rest(&self, request: &RestRequest, body: &str) -> Result<Vec<Quote>, ParseError> {
        let symbol = request
            .symbols
            .first()
            .ok_or_else(|| ParseError::field("product_id", "request without a product"))?;
        Ok(vec![parse::parse_rest(symbol, body)?])
    }
}

impl LiveSubscriptions for CoinbaseVenue {
    fn max_symbols_per_connection(&self) -> usize {
        ws::MAX_PRODUCTS_PER_CONNECTION
    }

    fn max_symbols_per_message(&self) -> usize {
        ws::MAX_PRODUCTS_PER_MESSAGE
    }

    fn connection_for(&self, symbols: &[Symbol]) -> WsConnection {
        ws::connection_for(&self.ws_url, symbols)
    }

    fn control_frame(&self, change: SubscriptionChange, symbols: &[Symbol], _id: u64) -> String {
        ws::control_frame(change, symbols)
    }

    fn rest_requests_for(&self, symbols: &[Symbol]) -> Vec<RestRequest> {
        rest::requests(&self.rest_url, symbols)
    }

    fn replies_by_id(&self) -> bool {
        false
    }
}

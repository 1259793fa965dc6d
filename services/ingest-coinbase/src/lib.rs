//! ingest-coinbase: Coinbase Exchange tickers published to the tickstream bus.
//!
//! Symbols come from `SYMBOLS` as Coinbase product ids (`BTC-USD`) and are
//! published under the same name. The `ticker` channel maps to the tick:
//! `price`, `best_bid`/`best_ask`, `volume_24h`, `high_24h`/`low_24h`,
//! change and changePercent from `open_24h`, `time`; a ticker with an older
//! `sequence` than one already seen is dropped. `heartbeat` (1/s per product)
//! keeps the stall watchdog quiet; `error` messages are logged and counted.
//! The REST fallback polls `GET /products/{id}/ticker` (price, bid, ask, volume).
//!
//! # Layout
//! - [`config`]: the config struct, its defaults and validation.
//! - [`messages`]: Coinbase wire types with their documented JSON.
//! - [`parse`]: wire types → quotes and events.
//! - [`ws`]: the subscribe frame.
//! - [`rest`]: the REST ticker fallback.
//! - [`CoinbaseVenue`] and [`run`].

#![forbid(unsafe_code)]

pub mod config;
pub mod messages;
pub mod parse;
pub mod rest;
pub mod ws;

use std::future::Future;

use tickstream_model::Symbol;
use tickstream_runtime::config::ConfigError;
use tickstream_upstream::{
    ParseError, Quote, RestRequest, ServiceOptions, Venue, WsConnection, WsEvent,
};

pub use config::Config;

/// The tick `source` and metric label.
pub const SOURCE: &str = "coinbase";

/// Why the service could not run; start-up failures only.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is invalid; the message names the key.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The shared machinery could not start (port, Redis URL).
    #[error(transparent)]
    Upstream(#[from] tickstream_upstream::Error),
}

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
    /// A venue for validated `config`.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        Ok(Self {
            symbols: config.symbols()?,
            ws_url: config.coinbase.ws_url.clone(),
            rest_url: config.coinbase.rest_url.clone(),
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

/// Runs ingest-coinbase until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let venue = CoinbaseVenue::new(&config)?;
    let opts = ServiceOptions {
        host: config.host,
        port: config.port,
        redis_url: config.redis_url,
        settings: config.upstream,
    };
    tickstream_upstream::run(venue, opts, shutdown).await?;
    Ok(())
}

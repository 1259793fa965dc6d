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
//!
//! # Layout
//! - [`config`]: the config struct, defaults and validation.
//! - [`messages`]: Twelve Data wire types with their documented JSON.
//! - [`parse`]: wire types → quotes and events.
//! - [`ws`]: the key URL, subscribe and heartbeat frames.
//! - [`rest`]: the `/price` fallback.
//! - [`TwelveDataVenue`] and [`run`].

#![forbid(unsafe_code)]

pub mod config;
pub mod messages;
pub mod parse;
pub mod rest;
pub mod ws;

use std::future::Future;
use std::time::Duration;

use tickstream_model::Symbol;
use tickstream_runtime::config::ConfigError;
use tickstream_upstream::{
    ParseError, Quote, RestRequest, ServiceOptions, Venue, WsConnection, WsEvent,
};

pub use config::Config;

/// The tick `source` and metric label.
pub const SOURCE: &str = "twelvedata";

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
    api_key: Option<String>,
    /// Period of `{"action":"heartbeat"}`.
    heartbeat: Duration,
}

impl TwelveDataVenue {
    /// A venue for validated `config`.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        Ok(Self {
            symbols: config.symbols()?,
            ws_url: config.twelvedata.ws_url.clone(),
            rest_url: config.twelvedata.rest_url.clone(),
            api_key: config.api_key().map(str::to_owned),
            heartbeat: Duration::from_secs(config.twelvedata.heartbeat_secs),
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
            self.api_key.as_deref().unwrap_or(""),
            &self.symbols,
        )
    }

    fn app_heartbeat(&self) -> Option<(Duration, String)> {
        Some((self.heartbeat, ws::HEARTBEAT_FRAME.to_owned()))
    }

    fn parse(&self, text: &str) -> Result<WsEvent, ParseError> {
        parse::parse_ws(text)
    }

    fn rest_requests(&self) -> Vec<RestRequest> {
        match &self.api_key {
            Some(key) => rest::requests(&self.rest_url, key, &self.symbols),
            None => Vec::new(),
        }
    }

    fn rest_rate_limited(&self, body: &str) -> bool {
        parse::is_rate_limited(body)
    }

    fn parse_rest(&self, request: &RestRequest, body: &str) -> Result<Vec<Quote>, ParseError> {
        parse::parse_rest(&request.symbols, body, tickstream_model::time::now_millis())
    }
}

/// Runs ingest-twelvedata until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let venue = TwelveDataVenue::new(&config)?;
    let opts = ServiceOptions {
        host: config.host,
        port: config.port,
        redis_url: config.redis_url,
        settings: config.upstream,
    };
    tickstream_upstream::run(venue, opts, shutdown).await?;
    Ok(())
}

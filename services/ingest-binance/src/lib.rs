//! ingest-binance: Binance spot 24hr tickers and trades published to the tickstream bus.
//!
//! Symbols come from `SYMBOLS` in Binance's notation (`btcusdt`, any case) and
//! are published as `BTCUSDT`. Each symbol's `<symbol>@ticker` stream
//! (pushed every second) maps to the full tick: `c` price, `h` high, `l` low,
//! `v` volume, `p` change, `P` changePercent, `b`/`a` bid/ask, `E` timestamp.
//! Its `<symbol>@trade` stream, on the same connection, maps each trade to
//! `trades:{SYMBOL}`: `p` price, `q` size, `t` trade id, `T` time, and the
//! taker's side from `m` (buyer is maker ⇒ the taker sold).
//! Everything else — reconnecting, answering Binance's pings, the stall
//! watchdog, rotating before the 24 h cut or on `serverShutdown`, the REST
//! fallback, seq, `/health` and `/metrics` — is `tickstream-upstream` and
//! the shell it runs in, `tickstream-ingest-shell`.
//!
//! On SIGHUP the configuration is loaded again (defaults < `--config` file <
//! environment) and the difference in `binance.symbols` is applied live with
//! paced `SUBSCRIBE`/`UNSUBSCRIBE` messages ([`ws`]); a reload that fails
//! keeps the running set.
//!
//! # Layout
//! - [`config`]: the `[binance]` section, its defaults and validation.
//! - [`messages`]: Binance wire types with their documented JSON.
//! - [`parse`]: wire types → quotes and events.
//! - [`ws`]: combined-stream URLs, control messages and their limits.
//! - [`rest`]: the `GET /api/v3/ticker/24hr` fallback.
//! - [`BinanceVenue`] and [`run`].

#![forbid(unsafe_code)]

pub mod config;
pub mod messages;
pub mod parse;
pub mod rest;
pub mod ws;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tickstream_model::Symbol;
use tickstream_runtime::config::{ConfigError, ServiceConfig};
use tickstream_upstream::{
    Error, LiveSubscriptions, ParseError, Quote, ReloadFn, RestRequest, SubscriptionChange, Venue,
    VenueConfig, WsConnection, WsEvent,
};

pub use config::{BinanceConfig, Config};

/// The tick `source` and metric label.
pub const SOURCE: &str = "binance";

/// Binance as a [`Venue`].
#[derive(Debug, Clone)]
pub struct BinanceVenue {
    /// Normalized symbols.
    symbols: Vec<Symbol>,
    /// WebSocket base URL.
    ws_url: String,
    /// REST base URL.
    rest_url: String,
}

impl BinanceVenue {
    /// A venue for a validated `[binance]` section.
    pub fn new(config: &BinanceConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            symbols: config.symbols()?,
            ws_url: config.ws_url.clone(),
            rest_url: config.rest_url.clone(),
        })
    }
}

impl Venue for BinanceVenue {
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
        parse::parse_ws(text)
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

    fn parse_rest(&self, _request: &RestRequest, body: &str) -> Result<Vec<Quote>, ParseError> {
        parse::parse_rest(body)
    }
}

impl LiveSubscriptions for BinanceVenue {
    fn max_symbols_per_connection(&self) -> usize {
        ws::MAX_SYMBOLS_PER_CONNECTION
    }

    fn max_symbols_per_message(&self) -> usize {
        ws::MAX_SYMBOLS_PER_MESSAGE
    }

    fn connection_for(&self, symbols: &[Symbol]) -> WsConnection {
        ws::connection_for(&self.ws_url, symbols)
    }

    fn control_frame(&self, change: SubscriptionChange, symbols: &[Symbol], id: u64) -> String {
        ws::control_frame(change, symbols, id)
    }

    fn rest_requests_for(&self, symbols: &[Symbol]) -> Vec<RestRequest> {
        rest::requests(&self.rest_url, symbols)
    }
}

/// Runs ingest-binance until `shutdown` resolves; on SIGHUP reloads `file`
/// (and the environment) and applies the new `binance.symbols` live.
pub async fn run(
    config: Config,
    file: Option<PathBuf>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let venue = config.venue.build()?;
    let reload = reloader(config.clone(), file);
    tickstream_upstream::run_with_reload(venue, config.options(), Some(reload), shutdown).await
}

/// Loads the configuration as at start and returns its symbols; warns about
/// changed settings that only a restart applies.
fn reloader(running: Config, file: Option<PathBuf>) -> ReloadFn {
    Arc::new(move || {
        let fresh = Config::load(file.as_deref()).map_err(|e| e.to_string())?;
        let pending = config::changed_except_symbols(&running, &fresh);
        if !pending.is_empty() {
            tracing::warn!(
                keys = %pending.join(","),
                "Only `binance.symbols` is applied on reload; restart ingest-binance to apply the other changed settings."
            );
        }
        fresh.venue.symbols().map_err(|e| e.to_string())
    })
}

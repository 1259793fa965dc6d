//! Twelve Data wire types, named for the venue, each with its documented JSON.

use std::collections::HashMap;

use serde::Deserialize;

/// Every WebSocket event, tagged by `event`.
#[derive(Debug, Deserialize)]
#[serde(tag = "event")]
pub enum TwelveDataWsEvent {
    /// A price update.
    #[serde(rename = "price")]
    Price(TwelveDataPrice),
    /// The answer to a subscribe; `fails` lists symbols that were refused.
    ///
    /// ```json
    /// {"event":"subscribe-status","status":"ok","success":[{"symbol":"AAPL","exchange":"NASDAQ",
    ///  "country":"United States","type":"Common Stock"}],"fails":[{"symbol":"INVALID"}]}
    /// ```
    #[serde(rename = "subscribe-status")]
    SubscribeStatus {
        /// `ok` or `error`.
        status: String,
        /// Refused symbols (`null` when none).
        #[serde(default)]
        fails: Option<Vec<TwelveDataSymbolRef>>,
    },
    /// The answer to a live `{"action":"unsubscribe",...}` (on-demand mode); read like
    /// `subscribe-status`, so a refusal is counted.
    #[serde(rename = "unsubscribe-status")]
    UnsubscribeStatus {
        /// `ok` or `error`.
        status: String,
        /// Symbols it could not drop (`null` when none).
        #[serde(default)]
        fails: Option<Vec<TwelveDataSymbolRef>>,
    },
    /// The answer to our `{"action":"heartbeat"}`.
    ///
    /// ```json
    /// {"event":"heartbeat","status":"ok"}
    /// ```
    #[serde(rename = "heartbeat")]
    Heartbeat {
        /// `ok` when the connection is fine.
        status: String,
    },
}

/// A symbol named in `subscribe-status`.
#[derive(Debug, Deserialize)]
pub struct TwelveDataSymbolRef {
    /// The symbol as sent.
    pub symbol: String,
}

/// The `price` event.
///
/// ```json
/// {"event":"price","symbol":"AAPL","currency":"USD","exchange":"NASDAQ","type":"Common Stock",
///  "timestamp":1592249566,"price":342.0157,"day_volume":27631112}
/// ```
#[derive(Debug, Deserialize)]
pub struct TwelveDataPrice {
    /// Symbol in Twelve Data notation.
    pub symbol: String,
    /// Event time, epoch seconds.
    pub timestamp: i64,
    /// Last price.
    pub price: f64,
    /// Best bid (crypto and forex only).
    #[serde(default)]
    pub bid: Option<f64>,
    /// Best ask (crypto and forex only).
    #[serde(default)]
    pub ask: Option<f64>,
    /// Volume of the day so far (not for forex).
    #[serde(default)]
    pub day_volume: Option<f64>,
}

/// `GET /price?symbol=AAPL`.
///
/// ```json
/// {"price":"200.99001"}
/// ```
#[derive(Debug, Deserialize)]
pub struct TwelveDataRestPrice {
    /// Last price as a decimal string.
    pub price: String,
}

/// `GET /price?symbol=AAPL,EUR/USD`: one [`TwelveDataRestPrice`] per symbol.
///
/// ```json
/// {"AAPL":{"price":"200.99001"},"EUR/USD":{"price":"1.08720"}}
/// ```
pub type TwelveDataRestBatch = HashMap<String, TwelveDataRestPrice>;

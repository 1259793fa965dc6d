//! Finnhub wire types, named for the venue, each with its documented JSON.

use serde::Deserialize;

/// Every WebSocket message, tagged by `type`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum FinnhubWsMessage {
    /// A batch of trades, possibly of several symbols.
    ///
    /// ```json
    /// {"data":[{"p":7296.89,"s":"BINANCE:BTCUSDT","t":1575526691134,"v":0.011467}],"type":"trade"}
    /// ```
    Trade {
        /// The trades, oldest first.
        data: Vec<FinnhubTrade>,
    },
    /// Keep-alive, ignored (but it resets the stall watchdog).
    ///
    /// ```json
    /// {"type":"ping"}
    /// ```
    Ping,
    /// A refused request, e.g. too many symbols.
    ///
    /// ```json
    /// {"type":"error","msg":"Subscribing to too many symbols"}
    /// ```
    Error {
        /// What went wrong.
        msg: String,
    },
}

/// One trade of a `trade` message: published as a trade (`p` price, `v` size,
/// `t` time; Finnhub gives no side and no id) and folded into the symbol's quote.
///
/// ```json
/// {"c":["1","8","24","12"],"p":122.1,"s":"TSLA","t":1672348887195,"v":1}
/// ```
#[derive(Debug, Deserialize)]
pub struct FinnhubTrade {
    /// Symbol in Finnhub notation.
    #[serde(rename = "s")]
    pub symbol: String,
    /// Price.
    #[serde(rename = "p")]
    pub price: f64,
    /// Trade time, epoch ms.
    #[serde(rename = "t")]
    pub time_ms: i64,
    /// Volume of this trade.
    #[serde(default, rename = "v")]
    pub volume: Option<f64>,
    /// Trade conditions (not mapped).
    #[serde(default, rename = "c")]
    pub conditions: Option<Vec<String>>,
}

/// `GET /api/v1/quote?symbol=AAPL`.
///
/// ```json
/// {"c":261.74,"d":2.29,"dp":0.8826,"h":263.31,"l":260.68,"o":261.07,"pc":259.45,"t":1582641000}
/// ```
#[derive(Debug, Deserialize)]
pub struct FinnhubQuote {
    /// Current price.
    pub c: f64,
    /// Change.
    #[serde(default)]
    pub d: Option<f64>,
    /// Percent change.
    #[serde(default)]
    pub dp: Option<f64>,
    /// Day high.
    #[serde(default)]
    pub h: Option<f64>,
    /// Day low.
    #[serde(default)]
    pub l: Option<f64>,
    /// Day open (not mapped: `d`/`dp` are given).
    #[serde(default)]
    pub o: Option<f64>,
    /// Previous close (not mapped).
    #[serde(default)]
    pub pc: Option<f64>,
    /// Quote time, epoch seconds.
    pub t: i64,
}

/// Alpha Vantage `GET /query?function=GLOBAL_QUOTE&symbol=IBM`.
///
/// ```json
/// {"Global Quote":{"01. symbol":"IBM","02. open":"133.5900","03. high":"134.8900",
///  "04. low":"133.1400","05. price":"134.2400","06. volume":"3436541",
///  "07. latest trading day":"2023-02-22","08. previous close":"133.2000",
///  "09. change":"1.0400","10. change percent":"0.7808%"}}
/// ```
#[derive(Debug, Deserialize)]
pub struct AlphaVantageGlobalQuoteResponse {
    /// The quote; absent when Alpha Vantage answers with a rate-limit `Note`.
    #[serde(rename = "Global Quote")]
    pub quote: AlphaVantageGlobalQuote,
}

/// The fields of a `Global Quote` (all decimal strings).
#[derive(Debug, Deserialize)]
pub struct AlphaVantageGlobalQuote {
    /// Symbol.
    #[serde(rename = "01. symbol")]
    pub symbol: String,
    /// Day high.
    #[serde(default, rename = "03. high")]
    pub high: Option<String>,
    /// Day low.
    #[serde(default, rename = "04. low")]
    pub low: Option<String>,
    /// Last price.
    #[serde(rename = "05. price")]
    pub price: String,
    /// Day volume.
    #[serde(default, rename = "06. volume")]
    pub volume: Option<String>,
    /// Change against the previous close.
    #[serde(default, rename = "09. change")]
    pub change: Option<String>,
    /// Percent change, with a trailing `%`.
    #[serde(default, rename = "10. change percent")]
    pub change_percent: Option<String>,
}

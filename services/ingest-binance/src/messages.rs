//! Binance wire types, named for the venue, each with its documented JSON.
//!
//! Numbers arrive as JSON strings (`"0.0025"`) to keep exchange precision;
//! [`crate::parse`] turns them into `f64` once, naming the field on failure.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// A frame on a combined-stream connection: data wrapped with its stream name,
/// or a reply to a control message (`{"result":null,"id":1}`, `{"error":{..},"id":1}`,
/// `{"code":2,"msg":".."}`).
///
/// ```json
/// {"stream":"bnbbtc@ticker","data":{"e":"24hrTicker","E":1672515782136,"s":"BNBBTC", ...}}
/// ```
#[derive(Debug, Deserialize)]
pub struct BinanceWsFrame<'a> {
    /// `<symbol>@ticker`, present on combined-stream data.
    #[serde(default, borrow)]
    pub stream: Option<&'a str>,
    /// The raw event inside the combined wrapper.
    #[serde(default, borrow)]
    pub data: Option<&'a serde_json::value::RawValue>,
    /// The event type when the frame is a raw (unwrapped) event.
    #[serde(default, rename = "e", borrow)]
    pub event_type: Option<&'a str>,
    /// An error reply to a control message.
    #[serde(default)]
    pub error: Option<BinanceWsError>,
    /// Error code of the flat error form the docs' "Error Messages" table shows.
    #[serde(default)]
    pub code: Option<i64>,
    /// Reason of the flat error form.
    #[serde(default)]
    pub msg: Option<String>,
    /// Id of the control message this frame answers.
    #[serde(default)]
    pub id: Option<serde_json::Value>,
}

/// A live subscription change sent on an open connection (at most 5 messages/s).
///
/// ```json
/// {"method":"SUBSCRIBE","params":["btcusdt@aggTrade","btcusdt@depth"],"id":1}
/// ```
#[derive(Debug, Serialize)]
pub struct BinanceWsRequest<'a> {
    /// `SUBSCRIBE` or `UNSUBSCRIBE`.
    pub method: &'static str,
    /// Stream names, lowercase (`btcusdt@ticker`).
    pub params: &'a [String],
    /// Unique id echoed in the reply (`{"result":null,"id":1}`).
    pub id: u64,
}

/// A market event, tagged by `e`.
/// Only a frame's event type (`e`), read first so the event itself is decoded
/// straight into its struct (an internally tagged enum would buffer every
/// field generically first: twice as slow).
///
/// Known types: `24hrTicker` ([`BinanceTicker`]) and `serverShutdown`
/// (`{"e":"serverShutdown","E":1696244100000}`: the server is about to close
/// this connection, reconnect now).
#[derive(Debug, Deserialize)]
pub struct BinanceEventType<'a> {
    /// Event type.
    #[serde(default, rename = "e", borrow)]
    pub event_type: Option<Cow<'a, str>>,
}

/// The 24 h rolling-window ticker of one symbol (documented field names).
///
/// ```json
/// {"e":"24hrTicker","E":1672515782136,"s":"BNBBTC","p":"0.0015","P":"250.00","w":"0.0018",
///  "x":"0.0009","c":"0.0025","Q":"10","b":"0.0024","B":"10","a":"0.0026","A":"100",
///  "o":"0.0010","h":"0.0025","l":"0.0010","v":"10000","q":"18","O":0,"C":86400000,
///  "F":0,"L":18150,"n":18151}
/// ```
#[derive(Debug, Deserialize)]
pub struct BinanceTicker<'a> {
    /// Event time, ms: the tick's timestamp.
    #[serde(rename = "E")]
    pub event_time: i64,
    /// Symbol, uppercase.
    #[serde(rename = "s", borrow)]
    pub symbol: Cow<'a, str>,
    /// Price change over 24 h.
    #[serde(default, rename = "p", borrow)]
    pub price_change: Option<Cow<'a, str>>,
    /// Price change percent over 24 h.
    #[serde(default, rename = "P", borrow)]
    pub price_change_percent: Option<Cow<'a, str>>,
    /// Weighted average price (not mapped).
    #[serde(default, rename = "w", borrow)]
    pub weighted_avg_price: Option<Cow<'a, str>>,
    /// Last price before the window (not mapped).
    #[serde(default, rename = "x", borrow)]
    pub first_trade_price: Option<Cow<'a, str>>,
    /// Last price.
    #[serde(rename = "c", borrow)]
    pub last_price: Cow<'a, str>,
    /// Last quantity (not mapped).
    #[serde(default, rename = "Q", borrow)]
    pub last_qty: Option<Cow<'a, str>>,
    /// Best bid price.
    #[serde(default, rename = "b", borrow)]
    pub bid: Option<Cow<'a, str>>,
    /// Best bid quantity (not mapped).
    #[serde(default, rename = "B", borrow)]
    pub bid_qty: Option<Cow<'a, str>>,
    /// Best ask price.
    #[serde(default, rename = "a", borrow)]
    pub ask: Option<Cow<'a, str>>,
    /// Best ask quantity (not mapped).
    #[serde(default, rename = "A", borrow)]
    pub ask_qty: Option<Cow<'a, str>>,
    /// Open price of the window (not mapped: `p`/`P` are given).
    #[serde(default, rename = "o", borrow)]
    pub open: Option<Cow<'a, str>>,
    /// High of the window.
    #[serde(default, rename = "h", borrow)]
    pub high: Option<Cow<'a, str>>,
    /// Low of the window.
    #[serde(default, rename = "l", borrow)]
    pub low: Option<Cow<'a, str>>,
    /// Base-asset volume of the window.
    #[serde(default, rename = "v", borrow)]
    pub volume: Option<Cow<'a, str>>,
    /// Quote-asset volume (not mapped).
    #[serde(default, rename = "q", borrow)]
    pub quote_volume: Option<Cow<'a, str>>,
    /// Window open time, ms (not mapped).
    #[serde(default, rename = "O")]
    pub open_time: Option<i64>,
    /// Window close time, ms (not mapped).
    #[serde(default, rename = "C")]
    pub close_time: Option<i64>,
    /// First trade id (not mapped).
    #[serde(default, rename = "F")]
    pub first_trade_id: Option<i64>,
    /// Last trade id (not mapped).
    #[serde(default, rename = "L")]
    pub last_trade_id: Option<i64>,
    /// Number of trades (not mapped).
    #[serde(default, rename = "n")]
    pub trades: Option<u64>,
}

/// An error reply to a control message.
///
/// ```json
/// {"error":{"code":2,"msg":"Invalid request: ..."},"id":312}
/// ```
#[derive(Debug, Deserialize)]
pub struct BinanceWsError {
    /// Binance's error code.
    pub code: i64,
    /// Human-readable reason.
    pub msg: String,
}

/// One element of `GET /api/v3/ticker/24hr?symbols=[...]` (FULL type).
///
/// ```json
/// {"symbol":"BNBBTC","priceChange":"-94.99999800","priceChangePercent":"-95.960",
///  "weightedAvgPrice":"0.29628482","prevClosePrice":"0.10002000","lastPrice":"4.00000200",
///  "lastQty":"200.00000000","bidPrice":"4.00000000","bidQty":"100.00000000",
///  "askPrice":"4.00000200","askQty":"100.00000000","openPrice":"99.00000000",
///  "highPrice":"100.00000000","lowPrice":"0.10000000","volume":"8913.30000000",
///  "quoteVolume":"15.30000000","openTime":1499783499040,"closeTime":1499869899040,
///  "firstId":28385,"lastId":28460,"count":76}
/// ```
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BinanceRestTicker {
    /// Symbol, uppercase.
    pub symbol: String,
    /// Price change over 24 h.
    #[serde(default)]
    pub price_change: Option<String>,
    /// Price change percent over 24 h.
    #[serde(default)]
    pub price_change_percent: Option<String>,
    /// Last price.
    pub last_price: String,
    /// Best bid.
    #[serde(default)]
    pub bid_price: Option<String>,
    /// Best ask.
    #[serde(default)]
    pub ask_price: Option<String>,
    /// High of the window.
    #[serde(default)]
    pub high_price: Option<String>,
    /// Low of the window.
    #[serde(default)]
    pub low_price: Option<String>,
    /// Base-asset volume of the window.
    #[serde(default)]
    pub volume: Option<String>,
    /// Window close time, ms: the statistics' as-of time, used as the tick's timestamp.
    pub close_time: i64,
}

//! Coinbase Exchange wire types, named for the venue, each with its documented JSON.

use serde::Deserialize;

/// Every message of the feed this service subscribes to, tagged by `type`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum CoinbaseWsMessage {
    /// A trade happened: last price, best bid/ask and 24 h statistics.
    Ticker(Box<CoinbaseTicker>),
    /// A trade on the `matches` channel.
    Match(Box<CoinbaseMatch>),
    /// The most recent trade before we subscribed, sent once per product on subscribing
    /// to `matches`; the same shape as [`CoinbaseWsMessage::Match`].
    #[serde(rename = "last_match")]
    LastMatch(Box<CoinbaseMatch>),
    /// Once a second per product, so a quiet product still proves the connection alive.
    ///
    /// ```json
    /// {"type":"heartbeat","sequence":90,"last_trade_id":20,"product_id":"BTC-USD","time":"2014-11-07T08:19:28.464459Z"}
    /// ```
    Heartbeat {
        /// The product.
        product_id: String,
    },
    /// The answer to a subscribe: what we are subscribed to now.
    ///
    /// ```json
    /// {"type":"subscriptions","channels":[{"name":"ticker","product_ids":["ETH-USD"]}]}
    /// ```
    Subscriptions {
        /// Channels with their products.
        channels: Vec<CoinbaseChannel>,
    },
    /// A refused request; logged and counted, the connection stays.
    ///
    /// ```json
    /// {"type":"error","message":"Failed to subscribe","reason":"ETH-XYZ is not a valid product"}
    /// ```
    Error {
        /// Short description.
        message: String,
        /// Details, when given.
        #[serde(default)]
        reason: Option<String>,
    },
}

/// One channel of a `subscriptions` message.
#[derive(Debug, Deserialize)]
pub struct CoinbaseChannel {
    /// `ticker`, `heartbeat`, ...
    pub name: String,
    /// Products subscribed on it.
    #[serde(default)]
    pub product_ids: Vec<String>,
}

/// The `ticker` channel's message.
///
/// ```json
/// {"type":"ticker","sequence":37475248783,"product_id":"ETH-USD","price":"1285.22",
///  "open_24h":"1310.79","volume_24h":"245532.79269678","low_24h":"1280.52","high_24h":"1313.8",
///  "volume_30d":"9788783.60117027","best_bid":"1285.04","best_bid_size":"0.46688654",
///  "best_ask":"1285.27","best_ask_size":"1.56637040","side":"buy",
///  "time":"2022-10-19T23:28:22.061769Z","trade_id":370843401,"last_size":"11.4396987"}
/// ```
#[derive(Debug, Deserialize)]
pub struct CoinbaseTicker {
    /// Per-product sequence number; an older one than already seen is dropped.
    #[serde(default)]
    pub sequence: Option<u64>,
    /// The product, e.g. `ETH-USD`.
    pub product_id: String,
    /// Last trade price.
    pub price: String,
    /// Price 24 h ago: change and changePercent are derived from it.
    #[serde(default)]
    pub open_24h: Option<String>,
    /// 24 h volume (base currency).
    #[serde(default)]
    pub volume_24h: Option<String>,
    /// 24 h low.
    #[serde(default)]
    pub low_24h: Option<String>,
    /// 24 h high.
    #[serde(default)]
    pub high_24h: Option<String>,
    /// Best bid.
    #[serde(default)]
    pub best_bid: Option<String>,
    /// Best ask.
    #[serde(default)]
    pub best_ask: Option<String>,
    /// Trade time, RFC 3339 with microseconds.
    pub time: String,
}

/// The `matches` channel's message: one trade between a resting (maker) order and
/// an incoming (taker) order. `side` is the **maker** order's side: `"sell"` means a
/// resting sell was lifted by a buying taker (an up-tick).
///
/// ```json
/// {"type":"match","trade_id":10,"sequence":50,
///  "maker_order_id":"ac928c66-ca53-498f-9c13-a110027a60e8",
///  "taker_order_id":"132fb6ae-456b-4654-b4e0-d681ac05cea1",
///  "time":"2014-11-07T08:19:27.028459Z","product_id":"BTC-USD","size":"5.23512",
///  "price":"400.23","side":"sell"}
/// ```
#[derive(Debug, Deserialize)]
pub struct CoinbaseMatch {
    /// Per-product trade id, increasing; a match not newer than one already seen is dropped.
    pub trade_id: u64,
    /// Per-product feed sequence number (not mapped: a ticker shares it with its match).
    #[serde(default)]
    pub sequence: Option<u64>,
    /// The resting order (not mapped).
    #[serde(default)]
    pub maker_order_id: Option<String>,
    /// The incoming order (not mapped).
    #[serde(default)]
    pub taker_order_id: Option<String>,
    /// Trade time, RFC 3339 with microseconds.
    pub time: String,
    /// The product, e.g. `BTC-USD`.
    pub product_id: String,
    /// Traded quantity (base currency).
    pub size: String,
    /// Trade price.
    pub price: String,
    /// The maker order's side, `buy` or `sell`; the taker's is the opposite.
    pub side: String,
}

/// `GET /products/{product_id}/ticker`.
///
/// ```json
/// {"ask":"6267.71","bid":"6265.15","volume":"53602.03940154","trade_id":86326522,
///  "price":"6268.48","size":"0.00698254","time":"2020-03-20T00:22:57.833Z","rfq_volume":"123.122"}
/// ```
#[derive(Debug, Deserialize)]
pub struct CoinbaseRestTicker {
    /// Last trade price.
    pub price: String,
    /// Best bid.
    #[serde(default)]
    pub bid: Option<String>,
    /// Best ask.
    #[serde(default)]
    pub ask: Option<String>,
    /// 24 h volume.
    #[serde(default)]
    pub volume: Option<String>,
    /// Last trade time.
    pub time: String,
}

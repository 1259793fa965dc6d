//! Binance wire types, named for the venue, each with its documented JSON.
//!
//! Numbers arrive as JSON strings (`"0.0025"`) to keep exchange precision;
//! [`crate::parse`] turns them into `f64` once, naming the field on failure.

use std::borrow::Cow;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

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
/// Known types: `24hrTicker` ([`BinanceTicker`]), `trade` ([`BinanceTrade`]) and `serverShutdown`
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

/// One trade of a `<symbol>@trade` stream (documented field names).
///
/// ```json
/// {"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100",
///  "T":1672515782136,"m":true,"M":true}
/// ```
#[derive(Debug, Deserialize)]
pub struct BinanceTrade<'a> {
    /// Event time, ms (not mapped: `T` is the trade's own time).
    #[serde(rename = "E")]
    pub event_time: i64,
    /// Symbol, uppercase.
    #[serde(rename = "s", borrow)]
    pub symbol: Cow<'a, str>,
    /// Trade id.
    #[serde(rename = "t")]
    pub trade_id: u64,
    /// Price.
    #[serde(rename = "p", borrow)]
    pub price: Cow<'a, str>,
    /// Quantity (base asset).
    #[serde(rename = "q", borrow)]
    pub quantity: Cow<'a, str>,
    /// Trade time, ms: the trade's timestamp.
    #[serde(rename = "T")]
    pub trade_time: i64,
    /// Whether the buyer was the maker: `true` means the taker sold.
    #[serde(default, rename = "m")]
    pub buyer_is_maker: Option<bool>,
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

/// A whole frame read in one pass (the hot path of [`crate::parse::parse_ws`]):
/// the control-reply fields, the event inside a combined wrapper (`data`) decoded
/// in place, and the fields of a raw (unwrapped) event, so a ticker is neither
/// buffered nor parsed three times.
///
/// Each field has the type it has in [`BinanceWsFrame`] or [`BinanceTicker`], a
/// repeated known key is an error, and only JSON objects are read: whatever this
/// accepts, the three-pass [`BinanceWsFrame`] → [`BinanceEventType`] →
/// [`BinanceTicker`] decoding accepts too, with the same values.
#[derive(Debug, Default)]
pub struct BinanceWsMessage<'a> {
    /// `<symbol>@ticker`, present on combined-stream data.
    pub stream: Option<&'a str>,
    /// The event inside the combined wrapper.
    pub data: Option<BinanceEvent<'a>>,
    /// An error reply to a control message.
    pub error: Option<BinanceWsError>,
    /// Error code of the flat error form.
    pub code: Option<i64>,
    /// Reason of the flat error form.
    pub msg: Option<String>,
    /// Id of the control message this frame answers.
    pub id: Option<serde_json::Value>,
    /// The frame's own event fields, used when it is a raw (unwrapped) event.
    pub event: BinanceEvent<'a>,
}

/// An event's type, the 24hr-ticker fields a quote is built from and the trade
/// fields a trade is built from, each optional, read straight from the event
/// object. The ticker's other fields (`w`, `x`, `Q`, `B`, `A`, `o`, `O`, `C`,
/// `F`, `L`, `n`) are checked to have their [`BinanceTicker`] type and not kept.
#[derive(Debug, Default)]
pub struct BinanceEvent<'a> {
    /// Event type (`e`).
    pub event_type: Option<Cow<'a, str>>,
    /// Event time, ms (`E`).
    pub event_time: Option<i64>,
    /// Symbol (`s`).
    pub symbol: Option<Cow<'a, str>>,
    /// Last price (`c`).
    pub last_price: Option<Cow<'a, str>>,
    /// Price change over 24 h (`p`).
    pub price_change: Option<Cow<'a, str>>,
    /// Price change percent over 24 h (`P`).
    pub price_change_percent: Option<Cow<'a, str>>,
    /// Best bid price (`b`).
    pub bid: Option<Cow<'a, str>>,
    /// Best ask price (`a`).
    pub ask: Option<Cow<'a, str>>,
    /// High of the window (`h`).
    pub high: Option<Cow<'a, str>>,
    /// Low of the window (`l`).
    pub low: Option<Cow<'a, str>>,
    /// Base-asset volume of the window (`v`).
    pub volume: Option<Cow<'a, str>>,
    /// `q`: a trade's quantity (a ticker's quote-asset volume, not mapped).
    pub quantity: Option<Cow<'a, str>>,
    /// `t`: a trade's id.
    pub trade_id: Option<u64>,
    /// `T`: a trade's time, ms.
    pub trade_time: Option<i64>,
    /// `m`: whether a trade's buyer was the maker.
    pub buyer_is_maker: Option<bool>,
}

/// The keys [`BinanceWsMessage`] and [`BinanceEvent`] know; the discriminant is the
/// key's bit in the `seen` mask that refuses repeated keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    EventType,
    EventTime,
    Symbol,
    PriceChange,
    PriceChangePercent,
    WeightedAvgPrice,
    FirstTradePrice,
    LastPrice,
    LastQty,
    Bid,
    BidQty,
    Ask,
    AskQty,
    Open,
    High,
    Low,
    Volume,
    QuoteVolume,
    OpenTime,
    CloseTime,
    FirstTradeId,
    LastTradeId,
    Trades,
    TradeId,
    TradeTime,
    BuyerIsMaker,
    Stream,
    Data,
    Error,
    Code,
    Msg,
    Id,
    Other,
}

impl Key {
    fn bit(self) -> u64 {
        1 << (self as u64)
    }

    /// The wire name, for the duplicate-key error.
    fn name(self) -> &'static str {
        match self {
            Key::EventType => "e",
            Key::EventTime => "E",
            Key::Symbol => "s",
            Key::PriceChange => "p",
            Key::PriceChangePercent => "P",
            Key::WeightedAvgPrice => "w",
            Key::FirstTradePrice => "x",
            Key::LastPrice => "c",
            Key::LastQty => "Q",
            Key::Bid => "b",
            Key::BidQty => "B",
            Key::Ask => "a",
            Key::AskQty => "A",
            Key::Open => "o",
            Key::High => "h",
            Key::Low => "l",
            Key::Volume => "v",
            Key::QuoteVolume => "q",
            Key::OpenTime => "O",
            Key::CloseTime => "C",
            Key::FirstTradeId => "F",
            Key::LastTradeId => "L",
            Key::Trades => "n",
            Key::TradeId => "t",
            Key::TradeTime => "T",
            Key::BuyerIsMaker => "m",
            Key::Stream => "stream",
            Key::Data => "data",
            Key::Error => "error",
            Key::Code => "code",
            Key::Msg => "msg",
            Key::Id => "id",
            Key::Other => "",
        }
    }

    fn from_wire(key: &str) -> Key {
        match key.as_bytes() {
            [c] => match c {
                b'e' => Key::EventType,
                b'E' => Key::EventTime,
                b's' => Key::Symbol,
                b'p' => Key::PriceChange,
                b'P' => Key::PriceChangePercent,
                b'w' => Key::WeightedAvgPrice,
                b'x' => Key::FirstTradePrice,
                b'c' => Key::LastPrice,
                b'Q' => Key::LastQty,
                b'b' => Key::Bid,
                b'B' => Key::BidQty,
                b'a' => Key::Ask,
                b'A' => Key::AskQty,
                b'o' => Key::Open,
                b'h' => Key::High,
                b'l' => Key::Low,
                b'v' => Key::Volume,
                b'q' => Key::QuoteVolume,
                b'O' => Key::OpenTime,
                b'C' => Key::CloseTime,
                b'F' => Key::FirstTradeId,
                b'L' => Key::LastTradeId,
                b'n' => Key::Trades,
                b't' => Key::TradeId,
                b'T' => Key::TradeTime,
                b'm' => Key::BuyerIsMaker,
                _ => Key::Other,
            },
            b"stream" => Key::Stream,
            b"data" => Key::Data,
            b"error" => Key::Error,
            b"code" => Key::Code,
            b"msg" => Key::Msg,
            b"id" => Key::Id,
            _ => Key::Other,
        }
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(Key::from_wire(v))
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

/// Marks `key` seen, refusing it the second time (as serde's derive does).
fn first_time<E: de::Error>(seen: &mut u64, key: Key) -> Result<(), E> {
    if *seen & key.bit() != 0 {
        return Err(E::custom(format_args!("duplicate field `{}`", key.name())));
    }
    *seen |= key.bit();
    Ok(())
}

/// Reads `key`'s value the first time the key is seen.
fn take<'de, T: Deserialize<'de>, A: MapAccess<'de>>(
    map: &mut A,
    seen: &mut u64,
    key: Key,
) -> Result<T, A::Error> {
    first_time(seen, key)?;
    map.next_value()
}

/// A string or `null` (`Option<Cow<str>>`), borrowed unless it has escapes (serde's own
/// `Cow<str>` always allocates, and `#[serde(borrow)]` does not reach inside an `Option`),
/// read with one `deserialize_any` instead of `Option`'s two deserializer calls.
struct OptStr<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for OptStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct OptStrVisitor;
        impl<'de> Visitor<'de> for OptStrVisitor {
            type Value = OptStr<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or null")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OptStr(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OptStr(None))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(OptStr(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(OptStr(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(OptStr(Some(Cow::Owned(v))))
            }
        }
        d.deserialize_any(OptStrVisitor)
    }
}

/// An integer or `null` (`Option<i64>` / `Option<u64>`), type-checked and dropped:
/// the ticker's unmapped times and ids.
struct OptInt<const SIGNED: bool>;

impl<'de, const SIGNED: bool> Deserialize<'de> for OptInt<SIGNED> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct OptIntVisitor<const SIGNED: bool>;
        impl<const SIGNED: bool> Visitor<'_> for OptIntVisitor<SIGNED> {
            type Value = OptInt<SIGNED>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(if SIGNED { "i64 or null" } else { "u64 or null" })
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OptInt)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OptInt)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                if SIGNED || v >= 0 {
                    Ok(OptInt)
                } else {
                    Err(E::invalid_value(de::Unexpected::Signed(v), &self))
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                if !SIGNED || i64::try_from(v).is_ok() {
                    Ok(OptInt)
                } else {
                    Err(E::invalid_value(de::Unexpected::Unsigned(v), &self))
                }
            }
        }
        d.deserialize_any(OptIntVisitor::<SIGNED>)
    }
}

/// Reads an optional string value the first time `key` is seen.
fn take_str<'de, A: MapAccess<'de>>(
    map: &mut A,
    seen: &mut u64,
    key: Key,
) -> Result<Option<Cow<'de, str>>, A::Error> {
    Ok(take::<OptStr<'de>, A>(map, seen, key)?.0)
}

/// Reads a required string value (`Cow<str>`, `null` refused) the first time `key` is seen.
fn take_required_str<'de, A: MapAccess<'de>>(
    map: &mut A,
    seen: &mut u64,
    key: Key,
) -> Result<Cow<'de, str>, A::Error> {
    take_str(map, seen, key)?
        .ok_or_else(|| de::Error::invalid_type(de::Unexpected::Unit, &"a string"))
}

/// Reads an optional `&str` value the first time `key` is seen: a string with escapes
/// cannot be borrowed and is refused, as serde refuses it for `Option<&str>`.
fn take_borrowed_str<'de, A: MapAccess<'de>>(
    map: &mut A,
    seen: &mut u64,
    key: Key,
) -> Result<Option<&'de str>, A::Error> {
    match take_str(map, seen, key)? {
        None => Ok(None),
        Some(Cow::Borrowed(v)) => Ok(Some(v)),
        Some(Cow::Owned(v)) => Err(de::Error::invalid_type(
            de::Unexpected::Str(&v),
            &"a borrowed string",
        )),
    }
}

impl<'de> BinanceEvent<'de> {
    /// Reads the value of a ticker key (any key but `e`) with its [`BinanceTicker`] type;
    /// `false` when `key` is not a ticker key, its value still unread.
    fn read_ticker_value<A: MapAccess<'de>>(
        &mut self,
        key: Key,
        seen: &mut u64,
        map: &mut A,
    ) -> Result<bool, A::Error> {
        match key {
            Key::EventTime => self.event_time = Some(take(map, seen, key)?),
            Key::Symbol => {
                self.symbol = Some(take_required_str(map, seen, key)?);
            }
            Key::LastPrice => {
                self.last_price = Some(take_required_str(map, seen, key)?);
            }
            Key::PriceChange => self.price_change = take_str(map, seen, key)?,
            Key::PriceChangePercent => self.price_change_percent = take_str(map, seen, key)?,
            Key::Bid => self.bid = take_str(map, seen, key)?,
            Key::Ask => self.ask = take_str(map, seen, key)?,
            Key::High => self.high = take_str(map, seen, key)?,
            Key::Low => self.low = take_str(map, seen, key)?,
            Key::Volume => self.volume = take_str(map, seen, key)?,
            Key::QuoteVolume => self.quantity = take_str(map, seen, key)?,
            Key::TradeId => self.trade_id = take(map, seen, key)?,
            Key::TradeTime => self.trade_time = take(map, seen, key)?,
            Key::BuyerIsMaker => self.buyer_is_maker = take(map, seen, key)?,
            // Not mapped: only their type is checked.
            Key::WeightedAvgPrice
            | Key::FirstTradePrice
            | Key::LastQty
            | Key::BidQty
            | Key::AskQty
            | Key::Open => {
                take_str(map, seen, key)?;
            }
            Key::OpenTime | Key::CloseTime | Key::FirstTradeId | Key::LastTradeId => {
                take::<OptInt<true>, A>(map, seen, key)?;
            }
            Key::Trades => {
                take::<OptInt<false>, A>(map, seen, key)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Fills a [`BinanceEvent`] in place from a JSON object (no copy of the decoded event).
struct EventFill<'m, 'de>(&'m mut BinanceEvent<'de>);

impl<'de> Visitor<'de> for EventFill<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a Binance event object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = 0;
        while let Some(key) = map.next_key::<Key>()? {
            if key == Key::EventType {
                self.0.event_type = take_str(&mut map, &mut seen, key)?;
            } else if !self.0.read_ticker_value(key, &mut seen, &mut map)? {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for BinanceEvent<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut event = BinanceEvent::default();
        d.deserialize_map(EventFill(&mut event))?;
        Ok(event)
    }
}

/// Fills `data` in place: `null` leaves it `None`, an object decodes into it.
struct DataFill<'m, 'de>(&'m mut Option<BinanceEvent<'de>>);

impl<'de> DeserializeSeed<'de> for DataFill<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for DataFill<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a Binance event object or null")
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(EventFill(self.0.insert(BinanceEvent::default())))
    }
}

/// Fills a [`BinanceWsMessage`] in place from a JSON object.
struct MessageFill<'m, 'de>(&'m mut BinanceWsMessage<'de>);

impl<'de> DeserializeSeed<'de> for MessageFill<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MessageFill<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a Binance WebSocket frame object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let msg = self.0;
        let mut seen = 0;
        while let Some(key) = map.next_key::<Key>()? {
            if msg.event.read_ticker_value(key, &mut seen, &mut map)? {
                continue;
            }
            match key {
                // `&str` as in [`BinanceWsFrame`], so an escaped value is refused as there.
                Key::EventType => {
                    msg.event.event_type =
                        take_borrowed_str(&mut map, &mut seen, key)?.map(Cow::Borrowed);
                }
                Key::Stream => msg.stream = take_borrowed_str(&mut map, &mut seen, key)?,
                Key::Data => {
                    first_time(&mut seen, key)?;
                    map.next_value_seed(DataFill(&mut msg.data))?;
                }
                Key::Error => msg.error = take(&mut map, &mut seen, key)?,
                Key::Code => msg.code = take(&mut map, &mut seen, key)?,
                Key::Msg => msg.msg = take(&mut map, &mut seen, key)?,
                Key::Id => msg.id = take(&mut map, &mut seen, key)?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

impl<'a> BinanceWsMessage<'a> {
    /// Decodes one frame, filling the message in place (the hot path's entry point).
    pub fn from_json(text: &'a str) -> Result<Self, serde_json::Error> {
        let mut msg = BinanceWsMessage::default();
        let mut de = serde_json::Deserializer::from_str(text);
        MessageFill(&mut msg).deserialize(&mut de)?;
        de.end()?;
        Ok(msg)
    }
}

impl<'de> Deserialize<'de> for BinanceWsMessage<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut msg = BinanceWsMessage::default();
        MessageFill(&mut msg).deserialize(d)?;
        Ok(msg)
    }
}

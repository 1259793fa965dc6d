//! The small trait a venue implements, and the normalized values it returns.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tickstream_model::{Side, Symbol, Tick, TickError, Trade};

/// One normalized observation before the shared machinery stamps `source` and `seq`.
///
/// Venues build it from their wire types; fields the upstream does not give
/// stay `None` (never invented).
#[derive(Debug, Clone, PartialEq)]
pub struct Quote {
    /// Normalized symbol (`BTCUSDT`, `BTC-USD`, `AAPL`, `EUR/USD`).
    pub symbol: Symbol,
    /// Last price.
    pub price: f64,
    /// 24 h or day volume, if given.
    pub volume: Option<f64>,
    /// 24 h or day high, if given.
    pub high: Option<f64>,
    /// 24 h or day low, if given.
    pub low: Option<f64>,
    /// Absolute change over the window, if given or derivable from a given open.
    pub change: Option<f64>,
    /// Percent change over the window, if given or derivable from a given open.
    pub change_percent: Option<f64>,
    /// Best bid, if given.
    pub bid: Option<f64>,
    /// Best ask, if given.
    pub ask: Option<f64>,
    /// The upstream's event time.
    pub timestamp: DateTime<Utc>,
}

impl Quote {
    /// A quote with only the required fields, for venues that give little.
    pub fn new(symbol: Symbol, price: f64, timestamp: DateTime<Utc>) -> Self {
        Self {
            symbol,
            price,
            volume: None,
            high: None,
            low: None,
            change: None,
            change_percent: None,
            bid: None,
            ask: None,
            timestamp,
        }
    }

    /// Checks the tick contract's rules (positive price; non-negative volume, high,
    /// low, bid, ask; finite changes) so no venue publishes a tick the gateway drops.
    pub fn validated(self) -> Result<Self, ParseError> {
        let tick = self.clone().into_tick("quote", 0);
        match tick.validate() {
            Ok(()) => Ok(self),
            Err(TickError::Field { field, reason }) => Err(ParseError::Field { field, reason }),
            Err(TickError::Json(e)) => Err(ParseError::Json(e)),
        }
    }

    /// Stamps the quote as a contract [`Tick`] from `source` with `seq`.
    pub fn into_tick(self, source: &str, seq: u64) -> Tick {
        Tick {
            symbol: self.symbol,
            price: self.price,
            volume: self.volume,
            high: self.high,
            low: self.low,
            change: self.change,
            change_percent: self.change_percent,
            bid: self.bid,
            ask: self.ask,
            timestamp: self.timestamp,
            source: source.to_owned(),
            seq,
        }
    }
}

/// One normalized trade before the shared machinery stamps `source` and its trade `seq`.
///
/// Venues build it from their wire types; `side` and `trade_id` stay `None`
/// when the upstream does not give them (never guessed).
#[derive(Debug, Clone, PartialEq)]
pub struct TradePrint {
    /// Normalized symbol (`BTCUSDT`, `BTC-USD`, `AAPL`).
    pub symbol: Symbol,
    /// Execution price.
    pub price: f64,
    /// Executed quantity in the base asset.
    pub size: f64,
    /// The taker's (aggressor's) side, when the venue says it.
    pub side: Option<Side>,
    /// The venue's trade id, when it gives one.
    pub trade_id: Option<String>,
    /// The upstream's execution time.
    pub timestamp: DateTime<Utc>,
}

impl TradePrint {
    /// Checks the trade contract's rules (positive price, non-negative size, id length)
    /// so no venue publishes a trade the gateway drops.
    pub fn validated(self) -> Result<Self, ParseError> {
        match self.clone().into_trade("quote", 0).validate() {
            Ok(()) => Ok(self),
            Err(TickError::Field { field, reason }) => Err(ParseError::Field { field, reason }),
            Err(TickError::Json(e)) => Err(ParseError::Json(e)),
        }
    }

    /// Stamps the print as a contract [`Trade`] from `source` with its trade `seq`.
    pub fn into_trade(self, source: &str, seq: u64) -> Trade {
        Trade {
            symbol: self.symbol,
            price: self.price,
            size: self.size,
            side: self.side,
            trade_id: self.trade_id,
            timestamp: self.timestamp,
            source: source.to_owned(),
            seq,
        }
    }
}

/// What one WebSocket text frame meant, as the venue's parser decided.
#[derive(Debug, Clone, PartialEq)]
pub enum WsEvent {
    /// Market data to publish.
    Quotes(Vec<Quote>),
    /// Trades to publish on `trades:{SYMBOL}`, with the quotes the same frame also
    /// gives (Finnhub's last price per symbol; empty when a frame carries only trades).
    Trades {
        /// The frame's trades, in the upstream's order.
        trades: Vec<TradePrint>,
        /// Quotes published as ticks first, as [`WsEvent::Quotes`] would be.
        quotes: Vec<Quote>,
    },
    /// A control frame the venue answers for itself (heartbeat, ping, subscription ack).
    Control,
    /// The upstream reported an error (Coinbase `error`, a failed subscription); logged and counted.
    UpstreamError(String),
    /// The server announced it will close (Binance `serverShutdown`): open a new connection now.
    Rotate,
    /// The answer to the control message `id` (Binance `{"result":null,"id":7}`); `error` is the
    /// upstream's reason when it refused (`{"error":{"code":2,"msg":..},"id":7}`). Matched to what was sent, logged.
    Reply {
        /// The id the control message carried.
        id: u64,
        /// `None` on success, else the upstream's reason (counted as an upstream error).
        error: Option<String>,
    },
}

/// Why a frame could not be understood; counted in `tickstream_upstream_parse_errors_total` and skipped.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not JSON, truncated, or not the documented shape.
    #[error("malformed message: {0}")]
    Json(#[from] serde_json::Error),
    /// JSON of the right shape with a value that breaks a rule (bad number, bad symbol, bad time).
    #[error("invalid field `{field}`: {reason}")]
    Field {
        /// The wire name of the field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl ParseError {
    /// Shorthand for a [`ParseError::Field`].
    pub fn field(field: &'static str, reason: impl Into<String>) -> Self {
        ParseError::Field {
            field,
            reason: reason.into(),
        }
    }
}

/// Parses a decimal the way exchanges send numbers (as JSON strings), naming the field on failure.
pub fn parse_num(field: &'static str, raw: &str) -> Result<f64, ParseError> {
    match raw.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(ParseError::field(field, format!("not a number: {raw:?}"))),
    }
}

/// Parses an optional decimal string; absent stays absent, a present bad value is an error.
pub fn parse_opt_num(field: &'static str, raw: Option<&str>) -> Result<Option<f64>, ParseError> {
    raw.map(|r| parse_num(field, r)).transpose()
}

/// Parses a symbol from the wire, naming the field on failure.
pub fn parse_symbol(field: &'static str, raw: &str) -> Result<Symbol, ParseError> {
    Symbol::parse(raw).map_err(|e| ParseError::field(field, e.to_string()))
}

/// Parses an RFC 3339 time (Coinbase `time`), naming the field on failure.
pub fn parse_rfc3339(field: &'static str, raw: &str) -> Result<DateTime<Utc>, ParseError> {
    tickstream_model::time::parse(raw).map_err(|e| ParseError::field(field, e.to_string()))
}

/// Converts epoch milliseconds (Binance `E`, Finnhub `t`), naming the field when out of range.
pub fn epoch_millis(field: &'static str, ms: i64) -> Result<DateTime<Utc>, ParseError> {
    tickstream_model::time::from_millis(ms)
        .ok_or_else(|| ParseError::field(field, format!("out of range: {ms}")))
}

/// Converts epoch seconds (Twelve Data `timestamp`, Finnhub REST `t`), naming the field when out of range.
pub fn epoch_seconds(field: &'static str, secs: i64) -> Result<DateTime<Utc>, ParseError> {
    secs.checked_mul(1000)
        .and_then(tickstream_model::time::from_millis)
        .ok_or_else(|| ParseError::field(field, format!("out of range: {secs}")))
}

/// Appends `key=value` (value URL-encoded by the caller) to `url`'s query,
/// adding the `/` path a WebSocket handshake needs when the URL has none.
pub fn append_query(url: &str, pair: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[authority_start..];
    let has_path = rest.split('?').next().is_some_and(|a| a.contains('/'));
    let mut out = url.to_owned();
    if !has_path {
        match out.find('?') {
            Some(q) => out.insert(q, '/'),
            None => out.push('/'),
        }
    }
    out.push(if out.contains('?') { '&' } else { '?' });
    out.push_str(pair);
    out
}

/// The URL without its query, which may hold an API key: what logs may show.
pub fn redact(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// Change and percent change from a price and an opening price, when the open is usable.
pub fn change_from_open(price: f64, open: Option<f64>) -> (Option<f64>, Option<f64>) {
    match open {
        Some(open) if open > 0.0 => {
            let change = price - open;
            (Some(change), Some(change / open * 100.0))
        }
        _ => (None, None),
    }
}

/// One WebSocket connection the service keeps open, with what to send after connecting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsConnection {
    /// Full `ws://`/`wss://` URL, including any stream list or token.
    pub url: String,
    /// Text frames to send after every (re)connect, in order.
    pub subscribe: Vec<String>,
}

/// One GET of the REST fallback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestRequest {
    /// Full URL including the query (and key, which is never logged).
    pub url: String,
    /// Which symbols it asks for, handed back to [`Venue::parse_rest`].
    pub symbols: Vec<Symbol>,
}

/// Which way a control message moves a connection's stream set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionChange {
    /// Start streaming these symbols on the open connection.
    Subscribe,
    /// Stop streaming them.
    Unsubscribe,
}

impl SubscriptionChange {
    /// A stable lowercase word, for logs and for the venues whose control messages use it
    /// (Coinbase, Finnhub, Twelve Data).
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionChange::Subscribe => "subscribe",
            SubscriptionChange::Unsubscribe => "unsubscribe",
        }
    }
}

/// What a venue that changes an open connection's symbols with control messages
/// (Binance `SUBSCRIBE`/`UNSUBSCRIBE`, Coinbase and Finnhub `subscribe`/`unsubscribe`,
/// Twelve Data's `subscribe`/`unsubscribe` actions) tells the shared machinery, so a
/// SIGHUP reload or an on-demand change is applied without reconnecting. Pacing uses [`Venue::control_message_interval`].
pub trait LiveSubscriptions: Send + Sync {
    /// Most symbols one connection may carry (Binance: 1024 streams); more open another connection.
    fn max_symbols_per_connection(&self) -> usize;

    /// Most symbols named in one control message, so no frame grows past what the upstream accepts.
    fn max_symbols_per_message(&self) -> usize;

    /// The connection that carries exactly `symbols` from its first frame; rebuilt on every
    /// (re)connect so nothing is lost across reconnects.
    fn connection_for(&self, symbols: &[Symbol]) -> WsConnection;

    /// The control frame that applies `change` to `symbols` on an open connection, carrying `id`.
    fn control_frame(&self, change: SubscriptionChange, symbols: &[Symbol], id: u64) -> String;

    /// The REST fallback round for the current `symbols` (they change with a reload).
    fn rest_requests_for(&self, symbols: &[Symbol]) -> Vec<RestRequest>;

    /// Whether the upstream answers each control frame with a reply carrying its id
    /// (Binance `{"result":null,"id":7}`), so sent frames are kept until matched. Coinbase,
    /// Finnhub and Twelve Data answer without an id (or not at all): nothing is kept.
    fn replies_by_id(&self) -> bool {
        true
    }

    /// The tick symbol of one `upstream.on_demand_symbols` entry written in the venue's
    /// own notation, so its control frames name it as the upstream does (Finnhub
    /// `BINANCE:BTCUSDT` streams as `BTCUSDT`); the default reads it as a tick symbol.
    fn on_demand_symbol(&self, raw: &str) -> Result<Symbol, String> {
        Symbol::parse(raw).map_err(|e| e.to_string())
    }
}

/// A venue: where to connect, what to send, how to read its frames and its REST fallback.
///
/// Everything else (reconnect, backoff, heartbeats, stall watchdog, fallback
/// scheduling, seq and publishing, health and metrics) is shared.
pub trait Venue: Send + Sync + 'static {
    /// The tick `source` and metric label (`binance`); REST ticks get `<name>-rest`.
    fn name(&self) -> &'static str;

    /// Normalized symbols served at start (a SIGHUP reload may change them later).
    fn symbols(&self) -> Vec<Symbol>;

    /// `Some(message naming the env var)` when a required key is missing: no connection is attempted.
    fn credentials_problem(&self) -> Option<String> {
        None
    }

    /// The WebSocket connections to keep open (more than one past a venue's per-connection limit).
    fn connections(&self) -> Vec<WsConnection>;

    /// An application-level heartbeat to send on an interval (Twelve Data `{"action":"heartbeat"}`).
    fn app_heartbeat(&self) -> Option<(Duration, String)> {
        None
    }

    /// Least time between two control frames on one connection (subscribe frames, live
    /// subscription changes, pongs), for venues that limit incoming messages per second.
    fn control_message_interval(&self) -> Duration {
        Duration::ZERO
    }

    /// `Some` when the venue changes an open connection's symbols with control messages, so a
    /// SIGHUP reload and on-demand mode apply live; `None` (the default): changes need a
    /// restart and on-demand mode is refused.
    fn live(&self) -> Option<&dyn LiveSubscriptions> {
        None
    }

    /// Reads one text frame.
    fn parse(&self, text: &str) -> Result<WsEvent, ParseError>;

    /// The GETs of one REST fallback round; empty when there is no usable fallback.
    fn rest_requests(&self) -> Vec<RestRequest> {
        Vec::new()
    }

    /// Whether a 200 response body is really a rate-limit answer (Twelve Data
    /// `{"code":429,...}`, Alpha Vantage `{"Note":...}`); treated like HTTP 429.
    fn rest_rate_limited(&self, _body: &str) -> bool {
        false
    }

    /// Reads one REST response body of `request`.
    fn parse_rest(&self, _request: &RestRequest, _body: &str) -> Result<Vec<Quote>, ParseError> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validated_refuses_what_the_tick_contract_refuses() {
        let at = tickstream_model::time::from_millis(1_700_000_000_000).unwrap();
        let q = Quote::new(Symbol::parse("BNBBTC").unwrap(), 0.0025, at);
        assert!(q.clone().validated().is_ok());
        let mut bad = q.clone();
        bad.volume = Some(-10000.0);
        assert!(
            matches!(
                bad.validated(),
                Err(ParseError::Field {
                    field: "volume",
                    ..
                })
            ),
            "negative volume (fuzz: Binance \"v\":\"-10000\")"
        );
        let mut bad = q;
        bad.volume = Some(f64::INFINITY);
        assert!(bad.validated().is_err(), "overflowed running volume");
    }

    #[test]
    fn trade_print_validation_and_stamping() {
        let at = tickstream_model::time::from_millis(1_700_000_000_000).unwrap();
        let p = TradePrint {
            symbol: Symbol::parse("BTCUSDT").unwrap(),
            price: 0.001,
            size: 100.0,
            side: Some(Side::Sell),
            trade_id: Some("12345".to_owned()),
            timestamp: at,
        };
        let t = p.clone().validated().unwrap().into_trade("binance", 9);
        assert_eq!(
            (t.seq, t.source.as_str(), t.side),
            (9, "binance", Some(Side::Sell))
        );
        for (bad, field) in [
            (
                TradePrint {
                    price: 0.0,
                    ..p.clone()
                },
                "price",
            ),
            (
                TradePrint {
                    size: -1.0,
                    ..p.clone()
                },
                "size",
            ),
            (
                TradePrint {
                    size: f64::NAN,
                    ..p.clone()
                },
                "size",
            ),
            (
                TradePrint {
                    trade_id: Some(String::new()),
                    ..p.clone()
                },
                "trade_id",
            ),
        ] {
            assert!(
                matches!(bad.validated(), Err(ParseError::Field { field: f, .. }) if f == field),
                "{field}"
            );
        }
    }

    #[test]
    fn append_query_table() {
        for (url, want) in [
            ("wss://ws.finnhub.io", "wss://ws.finnhub.io/?token=k"),
            ("ws://127.0.0.1:9", "ws://127.0.0.1:9/?token=k"),
            (
                "wss://ws.twelvedata.com/v1/quotes/price",
                "wss://ws.twelvedata.com/v1/quotes/price?token=k",
            ),
            ("ws://h/p?a=1", "ws://h/p?a=1&token=k"),
            ("ws://h?a=1", "ws://h/?a=1&token=k"),
        ] {
            assert_eq!(append_query(url, "token=k"), want, "{url}");
        }
    }

    #[test]
    fn redacts_query() {
        assert_eq!(
            redact("wss://ws.finnhub.io?token=secret"),
            "wss://ws.finnhub.io"
        );
        assert_eq!(redact("ws://a/b"), "ws://a/b");
    }

    #[test]
    fn numbers_and_change() {
        assert_eq!(parse_num("c", "0.0025").unwrap(), 0.0025);
        assert!(parse_num("c", "abc").is_err());
        assert!(parse_num("c", "NaN").is_err());
        assert_eq!(parse_opt_num("b", None).unwrap(), None);
        let (c, p) = change_from_open(110.0, Some(100.0));
        assert_eq!(c, Some(10.0));
        assert!((p.unwrap() - 10.0).abs() < 1e-9);
        assert_eq!(change_from_open(110.0, Some(0.0)), (None, None));
        assert_eq!(change_from_open(110.0, None), (None, None));
    }

    #[test]
    fn quote_into_tick_keeps_absent_fields_absent() {
        let t = Quote::new(
            Symbol::parse("AAPL").unwrap(),
            190.5,
            tickstream_model::time::from_millis(1_700_000_000_000).unwrap(),
        )
        .into_tick("finnhub", 7);
        assert_eq!(t.seq, 7);
        assert_eq!(t.source, "finnhub");
        assert_eq!(t.bid, None);
        assert!(t.validate().is_ok());
    }
}

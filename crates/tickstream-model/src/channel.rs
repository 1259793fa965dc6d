//! Channels: everything a client can subscribe to, named once for Redis and clients alike.
//!
//! A channel is a stream kind plus a key (`ticks:BTCUSDT`, `trades:BTCUSDT`,
//! `candles:1m:BTCUSDT`, `signals:BTCUSDT`, `sentiment`, `feeds`). The name
//! a client subscribes to is the Redis pub/sub channel it is published on,
//! so the gateway needs no mapping. What differs between kinds (the event
//! name clients see, whether a key is a symbol, whether a cached value is
//! sent on subscribe) is data in [`KINDS`]: adding a kind is one entry
//! there, and the gateway's fan-out engine stays the same.

use std::fmt;
use std::sync::Arc;

use crate::symbol::{Symbol, SymbolError};

/// What follows a kind's name in its channels, so parsing is table-driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyShape {
    /// No key: one channel of this kind (`sentiment`, `feeds`).
    None,
    /// `kind:{SYMBOL}`.
    Symbol,
    /// `kind:{INTERVAL}:{SYMBOL}`, INTERVAL from [`CANDLE_INTERVALS`].
    IntervalSymbol,
}

/// Where a channel's latest value is cached, so a new subscriber can get it first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    /// `price:{SYMBOL}` (the tick price cache that predates channels).
    Price,
    /// `last:{channel}`, written by the producer in the same atomic step as its PUBLISH.
    Last,
}

/// One row of the kind table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindSpec {
    /// The channel prefix (`ticks`, `candles`, ...).
    pub name: &'static str,
    /// The event clients receive (`price_update`, `candle`, ...), in every protocol.
    pub event: &'static str,
    /// What follows the name.
    pub key: KeyShape,
    /// Where the latest value is cached.
    pub cache: Cache,
    /// Whether the cached value is sent on subscribe (a feed's last status alone would mislead).
    pub snapshot: bool,
    /// Whether publications carry a `seq` and are kept in a `history:{channel}` stream (replay, recovery).
    pub history: bool,
}

/// Every stream kind tickstream carries; the one place a new kind is added.
pub const KINDS: &[KindSpec] = &[
    KindSpec {
        name: "ticks",
        event: "price_update",
        key: KeyShape::Symbol,
        cache: Cache::Price,
        snapshot: true,
        history: true,
    },
    KindSpec {
        name: "trades",
        event: "trade",
        key: KeyShape::Symbol,
        cache: Cache::Last,
        snapshot: true,
        history: true,
    },
    KindSpec {
        name: "candles",
        event: "candle",
        key: KeyShape::IntervalSymbol,
        cache: Cache::Last,
        snapshot: true,
        history: false,
    },
    KindSpec {
        name: "signals",
        event: "trading_signal",
        key: KeyShape::Symbol,
        cache: Cache::Last,
        snapshot: true,
        history: false,
    },
    KindSpec {
        name: "sentiment",
        event: "sentiment_update",
        key: KeyShape::None,
        cache: Cache::Last,
        snapshot: true,
        history: false,
    },
    KindSpec {
        name: "feeds",
        event: "feed_status",
        key: KeyShape::None,
        cache: Cache::Last,
        snapshot: false,
        history: false,
    },
];

/// Candle intervals the analytics service builds; a `candles:` channel names one of them.
pub const CANDLE_INTERVALS: &[&str] = &["1m", "5m", "15m", "1h", "1d"];

/// Longest channel name accepted (`candles:15m:` plus the longest symbol, with room to spare).
pub const MAX_CHANNEL_LEN: usize = 64;

/// Why a string is not a channel, so the client's `invalid_channel` error can say exactly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// The prefix names no kind.
    #[error(
        "unknown channel kind {0:?}; expected ticks, trades, candles, signals, sentiment or feeds"
    )]
    UnknownKind(String),
    /// A kind with a key was named without one, or a keyless kind with one.
    #[error("{kind} channels are written {shape}")]
    Shape {
        /// The kind's name.
        kind: &'static str,
        /// How its channels are written.
        shape: String,
    },
    /// The interval of a `candles:` channel is not one of [`CANDLE_INTERVALS`].
    #[error("candle interval {0:?} is not one of 1m, 5m, 15m, 1h, 1d")]
    Interval(String),
    /// The symbol part fails [`Symbol::parse`].
    #[error("{0}")]
    Symbol(#[from] SymbolError),
    /// Longer than [`MAX_CHANNEL_LEN`].
    #[error("channel name is longer than {MAX_CHANNEL_LEN} characters")]
    TooLong,
}

/// A validated channel name in canonical form (kind lowercase, symbol uppercase).
///
/// Cheap to clone (one `Arc`), since the hub, every subscribed client and every
/// queued publication hold one. Equality, order and hash are the name's alone
/// (the other fields follow from it), so maps keyed by `Channel` can be
/// looked up with the `&str` a Redis message carries.
#[derive(Clone)]
pub struct Channel {
    /// The canonical name, also the Redis pub/sub channel.
    name: Arc<str>,
    /// Index into [`KINDS`].
    kind: u8,
    /// Byte offset of the symbol in `name` (0: no symbol).
    symbol_at: u8,
}

impl Channel {
    /// Validates and normalizes a client- or producer-supplied name.
    pub fn parse(raw: &str) -> Result<Self, ChannelError> {
        let raw = raw.trim();
        if raw.len() > MAX_CHANNEL_LEN {
            return Err(ChannelError::TooLong);
        }
        let (kind_name, rest) = match raw.split_once(':') {
            Some((k, r)) => (k, Some(r)),
            None => (raw, None),
        };
        let (index, spec) = KINDS
            .iter()
            .enumerate()
            .find(|(_, k)| k.name.eq_ignore_ascii_case(kind_name))
            .ok_or_else(|| ChannelError::UnknownKind(kind_name.chars().take(32).collect()))?;
        let shape = |shape: &str| ChannelError::Shape {
            kind: spec.name,
            shape: shape.replace("{kind}", spec.name),
        };
        let (name, symbol_at) = match (spec.key, rest) {
            (KeyShape::None, None) => (spec.name.to_owned(), 0),
            (KeyShape::None, Some(_)) => return Err(shape("without a key")),
            (KeyShape::Symbol, Some(sym)) => {
                let sym = Symbol::parse(sym)?;
                (format!("{}:{}", spec.name, sym), spec.name.len() + 1)
            }
            (KeyShape::IntervalSymbol, Some(rest)) => {
                let (interval, sym) = rest
                    .split_once(':')
                    .ok_or_else(|| shape("{kind}:{INTERVAL}:{SYMBOL}"))?;
                let interval = CANDLE_INTERVALS
                    .iter()
                    .find(|i| i.eq_ignore_ascii_case(interval))
                    .ok_or_else(|| ChannelError::Interval(interval.chars().take(16).collect()))?;
                let sym = Symbol::parse(sym)?;
                let prefix = format!("{}:{}:", spec.name, interval);
                let at = prefix.len();
                (format!("{prefix}{sym}"), at)
            }
            (KeyShape::Symbol, None) => return Err(shape("{kind}:{SYMBOL}")),
            (KeyShape::IntervalSymbol, None) => return Err(shape("{kind}:{INTERVAL}:{SYMBOL}")),
        };
        Ok(Self {
            name: name.into(),
            kind: index as u8,
            symbol_at: symbol_at as u8,
        })
    }

    /// The `ticks:` channel of a symbol: what the `symbols` shorthand subscribes to.
    pub fn ticks(symbol: &Symbol) -> Self {
        Self::of_symbol(0, symbol)
    }

    /// The channel of kind `kind` (a name from [`KINDS`] with a symbol key) for `symbol`.
    pub fn for_symbol(kind: &str, symbol: &Symbol) -> Option<Self> {
        let index = KINDS
            .iter()
            .position(|k| k.name == kind && k.key == KeyShape::Symbol)?;
        Some(Self::of_symbol(index, symbol))
    }

    fn of_symbol(index: usize, symbol: &Symbol) -> Self {
        let spec = &KINDS[index];
        Self {
            name: format!("{}:{}", spec.name, symbol).into(),
            kind: index as u8,
            symbol_at: (spec.name.len() + 1) as u8,
        }
    }

    /// The same kind (and interval) for another symbol: `candles:1m:BTC` → `candles:1m:BTCUSDT`.
    /// `None` for keyless kinds.
    pub fn with_symbol(&self, symbol: &Symbol) -> Option<Self> {
        let at = usize::from(self.symbol_at);
        if at == 0 {
            return None;
        }
        Some(Self {
            name: format!("{}{}", &self.name[..at], symbol).into(),
            kind: self.kind,
            symbol_at: self.symbol_at,
        })
    }

    /// The canonical name (also the Redis pub/sub channel).
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// This channel's row of [`KINDS`]: event name, cache, snapshot rule.
    pub fn spec(&self) -> &'static KindSpec {
        &KINDS[usize::from(self.kind)]
    }

    /// This channel's position in [`KINDS`], for per-kind tables (metrics) without hashing names.
    pub fn kind_index(&self) -> usize {
        usize::from(self.kind)
    }

    /// The event name clients receive for publications on this channel.
    pub fn event(&self) -> &'static str {
        self.spec().event
    }

    /// Whether this is a `ticks:` channel (the one kind the price cache and `symbols` shorthand know).
    pub fn is_ticks(&self) -> bool {
        self.kind == 0
    }

    /// The symbol this channel is about, for kinds keyed by one.
    pub fn symbol(&self) -> Option<&str> {
        (self.symbol_at > 0).then(|| &self.name[usize::from(self.symbol_at)..])
    }

    /// The Redis key holding the channel's latest value.
    pub fn cache_key(&self) -> String {
        match self.spec().cache {
            Cache::Price => format!("price:{}", self.symbol().unwrap_or_default()),
            Cache::Last => format!("last:{}", self.name),
        }
    }
}

impl PartialEq for Channel {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Channel {}

impl std::hash::Hash for Channel {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Must hash exactly as `str` does, for `Borrow<str>` lookups.
        self.name.hash(state);
    }
}

impl PartialOrd for Channel {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Channel {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name.cmp(&other.name)
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Channel({})", self.name)
    }
}

impl AsRef<str> for Channel {
    fn as_ref(&self) -> &str {
        &self.name
    }
}

impl std::borrow::Borrow<str> for Channel {
    fn borrow(&self) -> &str {
        &self.name
    }
}

impl serde::Serialize for Channel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_to_its_canonical_name() {
        let cases = [
            (
                "ticks:btcusdt",
                "ticks:BTCUSDT",
                "price_update",
                Some("BTCUSDT"),
            ),
            ("trades:BTCUSDT", "trades:BTCUSDT", "trade", Some("BTCUSDT")),
            (
                "candles:1M:eth-usd",
                "candles:1m:ETH-USD",
                "candle",
                Some("ETH-USD"),
            ),
            (
                "candles:15m:EUR/USD",
                "candles:15m:EUR/USD",
                "candle",
                Some("EUR/USD"),
            ),
            (
                "signals:AAPL",
                "signals:AAPL",
                "trading_signal",
                Some("AAPL"),
            ),
            ("sentiment", "sentiment", "sentiment_update", None),
            (" FEEDS ", "feeds", "feed_status", None),
        ];
        for (raw, name, event, symbol) in cases {
            let c = Channel::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(c.as_str(), name, "{raw}");
            assert_eq!(c.event(), event, "{raw}");
            assert_eq!(c.symbol(), symbol, "{raw}");
        }
    }

    #[test]
    fn bad_shapes_are_refused_with_a_reason() {
        let cases = [
            ("news:BTC", "unknown channel kind"),
            ("ticks", "ticks:{SYMBOL}"),
            ("trades", "trades:{SYMBOL}"),
            ("signals:", "empty"),
            ("ticks:", "empty"),
            ("ticks:BTC USDT", "contains"),
            ("sentiment:BTC", "without a key"),
            ("candles:BTCUSDT", "candles:{INTERVAL}:{SYMBOL}"),
            ("candles:2m:BTCUSDT", "interval"),
            ("", "unknown channel kind"),
        ];
        for (raw, needle) in cases {
            let e = Channel::parse(raw).expect_err(raw).to_string();
            assert!(e.contains(needle), "{raw}: {e}");
        }
        assert_eq!(
            Channel::parse(&format!("ticks:{}", "A".repeat(70))),
            Err(ChannelError::TooLong)
        );
    }

    #[test]
    fn helpers_agree_with_parse() {
        let sym = Symbol::parse("btcusdt").unwrap();
        assert_eq!(
            Channel::ticks(&sym),
            Channel::parse("ticks:BTCUSDT").unwrap()
        );
        assert_eq!(
            Channel::for_symbol("trades", &sym),
            Channel::parse("trades:BTCUSDT").ok()
        );
        assert_eq!(Channel::for_symbol("sentiment", &sym), None);
        assert_eq!(Channel::ticks(&sym).cache_key(), "price:BTCUSDT");
        assert_eq!(
            Channel::parse("candles:1h:BTCUSDT").unwrap().cache_key(),
            "last:candles:1h:BTCUSDT"
        );
        assert!(Channel::ticks(&sym).is_ticks());
        let target = Symbol::parse("BTCUSDT").unwrap();
        let alias = Channel::parse("candles:1m:BTC").unwrap();
        assert_eq!(
            alias.with_symbol(&target),
            Channel::parse("candles:1m:BTCUSDT").ok()
        );
        assert_eq!(
            Channel::parse("sentiment").unwrap().with_symbol(&target),
            None
        );
        assert!(!Channel::parse("sentiment").unwrap().is_ticks());
    }

    #[test]
    fn maps_keyed_by_channel_find_it_by_name() {
        let mut map = std::collections::HashMap::new();
        map.insert(Channel::parse("candles:1m:btcusdt").unwrap(), 1);
        assert_eq!(map.get("candles:1m:BTCUSDT"), Some(&1));
        assert_eq!(map.get("candles:5m:BTCUSDT"), None);
    }

    #[test]
    fn kind_names_and_events_are_unique() {
        for (i, a) in KINDS.iter().enumerate() {
            for b in &KINDS[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.event, b.event);
            }
        }
    }
}

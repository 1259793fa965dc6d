//! Coinbase wire types → normalized [`Quote`]s and [`WsEvent`]s.

use std::collections::HashMap;
use std::sync::Mutex;

use tickstream_model::{Side, Symbol};
use tickstream_upstream::venue::{
    change_from_open, parse_num, parse_opt_num, parse_rfc3339, parse_symbol,
};
use tickstream_upstream::{ParseError, Quote, TradePrint, WsEvent};

use crate::messages::{CoinbaseMatch, CoinbaseRestTicker, CoinbaseTicker, CoinbaseWsMessage};

/// Reads feed messages; drops tickers older than one already seen (by `sequence`)
/// and matches not newer than one already seen (by `trade_id`, so the `last_match`
/// repeated on every resubscribe is published once).
#[derive(Debug, Default)]
pub struct CoinbaseParser {
    /// Highest ticker `sequence` seen per product.
    last_sequence: Mutex<HashMap<String, u64>>,
    /// Highest match `trade_id` seen per product. Apart from `last_sequence`: a ticker
    /// carries the same `sequence` as the match that caused it.
    last_trade_id: Mutex<HashMap<String, u64>>,
}

impl CoinbaseParser {
    /// Reads one text frame.
    pub fn parse_ws(&self, text: &str) -> Result<WsEvent, ParseError> {
        match serde_json::from_str::<CoinbaseWsMessage>(text)? {
            CoinbaseWsMessage::Ticker(t) => {
                if let Some(seq) = t.sequence {
                    let mut last = match self.last_sequence.lock() {
                        Ok(g) => g,
                        Err(p) => p.into_inner(),
                    };
                    let entry = last.entry(t.product_id.clone()).or_insert(0);
                    if seq <= *entry {
                        return Ok(WsEvent::Control);
                    }
                    *entry = seq;
                }
                Ok(WsEvent::Quotes(vec![ticker_to_quote(&t)?]))
            }
            CoinbaseWsMessage::Match(m) | CoinbaseWsMessage::LastMatch(m) => {
                let print = match_to_trade(&m)?;
                let mut last = match self.last_trade_id.lock() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                match last.get_mut(&m.product_id) {
                    Some(seen) if m.trade_id <= *seen => return Ok(WsEvent::Control),
                    Some(seen) => *seen = m.trade_id,
                    None => {
                        last.insert(m.product_id.clone(), m.trade_id);
                    }
                }
                Ok(WsEvent::Trades {
                    trades: vec![print],
                    quotes: Vec::new(),
                })
            }
            CoinbaseWsMessage::Heartbeat { .. } | CoinbaseWsMessage::Subscriptions { .. } => {
                Ok(WsEvent::Control)
            }
            CoinbaseWsMessage::Error { message, reason } => {
                Ok(WsEvent::UpstreamError(match reason {
                    Some(r) => format!("{message}: {r}"),
                    None => message,
                }))
            }
        }
    }
}

/// Maps `ticker`: `price`, `best_bid`/`best_ask`, `volume_24h`, `high_24h`/`low_24h`,
/// change from `open_24h`, `time`.
pub fn ticker_to_quote(t: &CoinbaseTicker) -> Result<Quote, ParseError> {
    let price = parse_num("price", &t.price)?;
    if price <= 0.0 {
        return Err(ParseError::field("price", "must be positive"));
    }
    let open = parse_opt_num("open_24h", t.open_24h.as_deref())?;
    let (change, change_percent) = change_from_open(price, open);
    Ok(Quote {
        symbol: parse_symbol("product_id", &t.product_id)?,
        price,
        volume: parse_opt_num("volume_24h", t.volume_24h.as_deref())?,
        high: parse_opt_num("high_24h", t.high_24h.as_deref())?,
        low: parse_opt_num("low_24h", t.low_24h.as_deref())?,
        change,
        change_percent,
        bid: parse_opt_num("best_bid", t.best_bid.as_deref())?,
        ask: parse_opt_num("best_ask", t.best_ask.as_deref())?,
        timestamp: parse_rfc3339("time", &t.time)?,
    })
}

/// Maps `match`/`last_match`: `price`, `size`, `trade_id`, `time`, and the taker's side.
///
/// Coinbase's `side` is the MAKER order's side (the resting order); the trade's
/// aggressor, the taker, was on the other side: `"side":"sell"` is a taker buy.
pub fn match_to_trade(m: &CoinbaseMatch) -> Result<TradePrint, ParseError> {
    let side = match m.side.as_str() {
        "sell" => Side::Buy,
        "buy" => Side::Sell,
        other => {
            return Err(ParseError::field(
                "side",
                format!("not buy or sell: {other:?}"),
            ))
        }
    };
    TradePrint {
        symbol: parse_symbol("product_id", &m.product_id)?,
        price: parse_num("price", &m.price)?,
        size: parse_num("size", &m.size)?,
        side: Some(side),
        trade_id: Some(m.trade_id.to_string()),
        timestamp: parse_rfc3339("time", &m.time)?,
    }
    .validated()
}

/// Reads a `GET /products/{id}/ticker` body for `symbol` (the body does not name it).
pub fn parse_rest(symbol: &Symbol, body: &str) -> Result<Quote, ParseError> {
    let t: CoinbaseRestTicker = serde_json::from_str(body)?;
    let price = parse_num("price", &t.price)?;
    if price <= 0.0 {
        return Err(ParseError::field("price", "must be positive"));
    }
    let mut q = Quote::new(symbol.clone(), price, parse_rfc3339("time", &t.time)?);
    q.bid = parse_opt_num("bid", t.bid.as_deref())?;
    q.ask = parse_opt_num("ask", t.ask.as_deref())?;
    q.volume = parse_opt_num("volume", t.volume.as_deref())?;
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{}/test_data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn documented_ticker_maps_every_field() {
        let p = CoinbaseParser::default();
        let WsEvent::Quotes(q) = p.parse_ws(&fixture("ws_ticker.json")).unwrap() else {
            panic!()
        };
        let q = &q[0];
        assert_eq!(q.symbol.as_str(), "ETH-USD");
        assert_eq!(q.price, 1285.22);
        assert_eq!(q.bid, Some(1285.04));
        assert_eq!(q.ask, Some(1285.27));
        assert_eq!(q.volume, Some(245532.79269678));
        assert_eq!(q.high, Some(1313.8));
        assert_eq!(q.low, Some(1280.52));
        assert!((q.change.unwrap() - (1285.22 - 1310.79)).abs() < 1e-9);
        assert!((q.change_percent.unwrap() - (-25.57 / 1310.79 * 100.0)).abs() < 1e-6);
        assert_eq!(
            tickstream_model::time::format(&q.timestamp),
            "2022-10-19T23:28:22.061769Z"
        );
        // The same sequence again is stale.
        assert_eq!(
            p.parse_ws(&fixture("ws_ticker.json")).unwrap(),
            WsEvent::Control
        );
    }

    #[test]
    fn documented_match_maps_the_taker_side() {
        let p = CoinbaseParser::default();
        let WsEvent::Trades { trades, quotes } = p.parse_ws(&fixture("ws_match.json")).unwrap()
        else {
            panic!()
        };
        assert!(quotes.is_empty());
        let t = &trades[0];
        assert_eq!(t.symbol.as_str(), "BTC-USD");
        assert_eq!((t.price, t.size), (400.23, 5.23512));
        assert_eq!(t.trade_id.as_deref(), Some("10"));
        // "side":"sell" is the maker's side: a resting sell was lifted by a buying taker.
        assert_eq!(t.side, Some(Side::Buy));
        assert_eq!(
            tickstream_model::time::format(&t.timestamp),
            "2014-11-07T08:19:27.028459Z"
        );
    }

    #[test]
    fn match_table() {
        let good = fixture("ws_match.json");
        // (frame, expected taker side, trade id) for frames that are trades.
        let cases = [
            (good.clone(), Side::Buy, "10"),
            (
                good.replace("\"side\": \"sell\"", "\"side\": \"buy\""),
                Side::Sell,
                "10",
            ),
            (
                good.replace("\"type\": \"match\"", "\"type\": \"last_match\""),
                Side::Buy,
                "10",
            ),
            (
                good.replace("\"trade_id\": 10", "\"trade_id\": 370843401"),
                Side::Buy,
                "370843401",
            ),
        ];
        for (frame, side, id) in cases {
            let p = CoinbaseParser::default();
            let Ok(WsEvent::Trades { trades, .. }) = p.parse_ws(&frame) else {
                panic!("{frame}")
            };
            assert_eq!(
                (trades[0].side, trades[0].trade_id.as_deref()),
                (Some(side), Some(id)),
                "{frame}"
            );
        }
        let p = CoinbaseParser::default();
        for bad in [
            good.replace("\"side\": \"sell\"", "\"side\": \"hold\""),
            good.replace("\"price\": \"400.23\"", "\"price\": \"0\""),
            good.replace("\"size\": \"5.23512\"", "\"size\": \"-1\""),
            good.replace("\"size\": \"5.23512\",", ""),
            good.replace("\"trade_id\": 10,", ""),
            good.replace(
                "\"time\": \"2014-11-07T08:19:27.028459Z\"",
                "\"time\": \"now\"",
            ),
        ] {
            assert!(p.parse_ws(&bad).is_err(), "accepted: {bad}");
        }
    }

    #[test]
    fn a_match_not_newer_than_one_seen_is_dropped_and_tickers_count_apart() {
        let p = CoinbaseParser::default();
        let m = fixture("ws_match.json");
        assert!(matches!(p.parse_ws(&m), Ok(WsEvent::Trades { .. })));
        // The last_match repeated after a resubscribe is not published twice.
        let again = m.replace("\"type\": \"match\"", "\"type\": \"last_match\"");
        assert_eq!(p.parse_ws(&again).unwrap(), WsEvent::Control);
        let next = m.replace("\"trade_id\": 10", "\"trade_id\": 11");
        assert!(matches!(p.parse_ws(&next), Ok(WsEvent::Trades { .. })));
        // A ticker sharing the match's sequence is still a new ticker.
        let ticker = fixture("ws_ticker.json")
            .replace("37475248783", "50")
            .replace("ETH-USD", "BTC-USD");
        assert!(matches!(p.parse_ws(&ticker), Ok(WsEvent::Quotes(_))));
    }

    #[test]
    fn control_messages_table() {
        let p = CoinbaseParser::default();
        for name in ["ws_heartbeat.json", "ws_subscriptions.json"] {
            assert_eq!(
                p.parse_ws(&fixture(name)).unwrap(),
                WsEvent::Control,
                "{name}"
            );
        }
        assert_eq!(
            p.parse_ws(&fixture("ws_error.json")).unwrap(),
            WsEvent::UpstreamError("Failed to subscribe: ETH-XYZ is not a valid product".into())
        );
    }

    #[test]
    fn rejects_table() {
        let p = CoinbaseParser::default();
        let good = fixture("ws_ticker.json");
        let cases = [
            "garbage".to_owned(),
            good[..40].to_owned(),
            good.replace("\"price\": \"1285.22\",", ""),
            good.replace(
                "\"time\": \"2022-10-19T23:28:22.061769Z\"",
                "\"time\": \"yesterday\"",
            ),
            good.replace("\"type\": \"ticker\"", "\"type\": \"l2update\""),
            good.replace("\"product_id\": \"ETH-USD\"", "\"product_id\": \"ETH USD\""),
        ];
        for raw in cases {
            assert!(p.parse_ws(&raw).is_err(), "accepted: {raw}");
        }
    }

    #[test]
    fn documented_rest_ticker() {
        let sym = Symbol::parse("BTC-USD").unwrap();
        let q = parse_rest(&sym, &fixture("rest_ticker.json")).unwrap();
        assert_eq!(q.price, 6268.48);
        assert_eq!((q.bid, q.ask), (Some(6265.15), Some(6267.71)));
        assert_eq!(q.volume, Some(53602.03940154));
        assert_eq!(q.high, None);
        assert_eq!(q.timestamp.timestamp_millis(), 1584663777833);
    }
}

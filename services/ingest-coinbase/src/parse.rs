//! Coinbase wire types → normalized [`Quote`]s and [`WsEvent`]s.

use std::collections::HashMap;
use std::sync::Mutex;

use tickstream_model::Symbol;
use tickstream_upstream::venue::{
    change_from_open, parse_num, parse_opt_num, parse_rfc3339, parse_symbol,
};
use tickstream_upstream::{ParseError, Quote, WsEvent};

use crate::messages::{CoinbaseRestTicker, CoinbaseTicker, CoinbaseWsMessage};

/// Reads feed messages and drops tickers older than one already seen (by `sequence`).
#[derive(Debug, Default)]
pub struct CoinbaseParser {
    /// Highest `sequence` seen per product.
    last_sequence: Mutex<HashMap<String, u64>>,
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

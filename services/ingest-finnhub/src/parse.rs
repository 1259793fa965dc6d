//! Finnhub wire types → normalized [`Quote`]s and [`WsEvent`]s.

use std::collections::HashMap;
use std::sync::Mutex;

use tickstream_model::Symbol;
use tickstream_upstream::venue::{epoch_millis, epoch_seconds, parse_num, parse_opt_num};
use tickstream_upstream::{ParseError, Quote, TradePrint, WsEvent};

use crate::config::normalize;
use crate::messages::{AlphaVantageGlobalQuoteResponse, FinnhubQuote, FinnhubWsMessage};

/// Milliseconds per UTC day, the window of the running volume.
const DAY_MS: i64 = 86_400_000;

/// Reads trade batches: every trade with a volume is published as a trade
/// (`p` price, `v` size, `t` time; Finnhub gives no side and no trade id), and
/// the last trade per symbol per message also becomes a quote, with the
/// running volume of the (UTC) day so far.
#[derive(Debug, Default)]
pub struct FinnhubParser {
    /// Per symbol: (UTC day number, volume traded that day since we started).
    day_volume: Mutex<HashMap<Symbol, (i64, f64)>>,
}

impl FinnhubParser {
    /// Reads one text frame.
    pub fn parse_ws(&self, text: &str) -> Result<WsEvent, ParseError> {
        let data = match serde_json::from_str::<FinnhubWsMessage>(text)? {
            FinnhubWsMessage::Trade { data } => data,
            FinnhubWsMessage::Ping => return Ok(WsEvent::Control),
            FinnhubWsMessage::Error { msg } => return Ok(WsEvent::UpstreamError(msg)),
        };
        // Validate the whole batch before touching the running volumes.
        let mut trades = Vec::with_capacity(data.len());
        for t in &data {
            if !t.price.is_finite() || t.price <= 0.0 {
                return Err(ParseError::field(
                    "p",
                    format!("must be positive, got {}", t.price),
                ));
            }
            let volume = t.volume.unwrap_or(0.0);
            if !volume.is_finite() || volume < 0.0 {
                return Err(ParseError::field(
                    "v",
                    format!("must be non-negative, got {volume}"),
                ));
            }
            let symbol = normalize(&t.symbol).map_err(|e| ParseError::field("s", e.to_string()))?;
            trades.push((
                symbol,
                t.price,
                volume,
                epoch_millis("t", t.time_ms)?,
                t.time_ms,
            ));
        }
        let mut volumes = match self.day_volume.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let mut last: Vec<Quote> = Vec::new();
        let mut prints = Vec::with_capacity(trades.len());
        for (t, (symbol, price, volume, timestamp, ms)) in data.iter().zip(trades) {
            // A price update without volume (Finnhub sends those for forex, which has no
            // trades) moves the quote but is not a trade: its size would be invented.
            if t.volume.is_some_and(|v| v > 0.0) {
                prints.push(TradePrint {
                    symbol: symbol.clone(),
                    price,
                    size: volume,
                    side: None,
                    trade_id: None,
                    timestamp,
                });
            }
            let day = ms.div_euclid(DAY_MS);
            let entry = volumes.entry(symbol.clone()).or_insert((day, 0.0));
            if entry.0 != day {
                *entry = (day, 0.0);
            }
            entry.1 += volume;
            let mut q = Quote::new(symbol, price, timestamp);
            q.volume = Some(entry.1);
            match last.iter_mut().find(|l| l.symbol == q.symbol) {
                Some(slot) => *slot = q,
                None => last.push(q),
            }
        }
        Ok(WsEvent::Trades {
            trades: prints,
            quotes: last,
        })
    }
}

/// Reads a `GET /api/v1/quote` body for `symbol`: `c` price, `d`/`dp`, `h`/`l`, `t` seconds.
pub fn parse_rest(symbol: &Symbol, body: &str) -> Result<Quote, ParseError> {
    let q: FinnhubQuote = serde_json::from_str(body)?;
    // Finnhub answers an unknown symbol with zeros.
    if !q.c.is_finite() || q.c <= 0.0 {
        return Err(ParseError::field("c", format!("no price ({})", q.c)));
    }
    let mut out = Quote::new(symbol.clone(), q.c, epoch_seconds("t", q.t)?);
    out.change = q.d;
    out.change_percent = q.dp;
    out.high = q.h;
    out.low = q.l;
    Ok(out)
}

/// Reads an Alpha Vantage `GLOBAL_QUOTE` body for `symbol`. It gives only a
/// trading day, no time, so the timestamp is `received`, the receive time.
pub fn parse_global_quote(
    symbol: &Symbol,
    body: &str,
    received: chrono::DateTime<chrono::Utc>,
) -> Result<Quote, ParseError> {
    let r: AlphaVantageGlobalQuoteResponse = serde_json::from_str(body)?;
    let g = r.quote;
    let price = parse_num("05. price", &g.price)?;
    if price <= 0.0 {
        return Err(ParseError::field("05. price", "must be positive"));
    }
    let mut q = Quote::new(symbol.clone(), price, received);
    q.high = parse_opt_num("03. high", g.high.as_deref())?;
    q.low = parse_opt_num("04. low", g.low.as_deref())?;
    q.volume = parse_opt_num("06. volume", g.volume.as_deref())?;
    q.change = parse_opt_num("09. change", g.change.as_deref())?;
    q.change_percent = parse_opt_num(
        "10. change percent",
        g.change_percent.as_deref().map(|p| p.trim_end_matches('%')),
    )?;
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{}/test_data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn documented_trade_maps_price_time_and_volume() {
        let p = FinnhubParser::default();
        let WsEvent::Trades { trades, quotes: q } = p.parse_ws(&fixture("ws_trade.json")).unwrap()
        else {
            panic!()
        };
        assert_eq!(q.len(), 1);
        assert_eq!(trades.len(), 1);
        let t = &trades[0];
        assert_eq!(
            (
                t.symbol.as_str(),
                t.price,
                t.size,
                t.side,
                t.trade_id.as_deref()
            ),
            ("BTCUSDT", 7296.89, 0.011467, None, None),
            "no side, no id: Finnhub gives neither"
        );
        assert_eq!(t.timestamp, q[0].timestamp);
        assert_eq!(q[0].symbol.as_str(), "BTCUSDT");
        assert_eq!(q[0].price, 7296.89);
        assert_eq!(q[0].volume, Some(0.011467));
        assert_eq!(q[0].bid, None);
        assert_eq!(
            tickstream_model::time::format(&q[0].timestamp),
            "2019-12-05T06:18:11.134Z"
        );
    }

    #[test]
    fn last_trade_per_symbol_and_running_day_volume() {
        let p = FinnhubParser::default();
        let batch = r#"{"data":[{"p":10,"s":"AAPL","t":1575526691000,"v":1},{"p":20,"s":"MSFT","t":1575526691001,"v":2},{"p":11,"s":"AAPL","t":1575526691002,"v":3}],"type":"trade"}"#;
        let WsEvent::Trades { trades, quotes: q } = p.parse_ws(batch).unwrap() else {
            panic!()
        };
        assert_eq!(q.len(), 2);
        let each: Vec<(&str, f64, f64)> = trades
            .iter()
            .map(|t| (t.symbol.as_str(), t.price, t.size))
            .collect();
        assert_eq!(
            each,
            [
                ("AAPL", 10.0, 1.0),
                ("MSFT", 20.0, 2.0),
                ("AAPL", 11.0, 3.0)
            ],
            "every trade, in order, not only the last"
        );
        assert_eq!(
            (q[0].symbol.as_str(), q[0].price, q[0].volume),
            ("AAPL", 11.0, Some(4.0))
        );
        assert_eq!((q[1].symbol.as_str(), q[1].volume), ("MSFT", Some(2.0)));
        // Same day: accumulates; next day: starts again.
        let next = r#"{"data":[{"p":12,"s":"AAPL","t":1575526692000,"v":5}],"type":"trade"}"#;
        let WsEvent::Trades { quotes: q, .. } = p.parse_ws(next).unwrap() else {
            panic!()
        };
        assert_eq!(q[0].volume, Some(9.0));
        let tomorrow = r#"{"data":[{"p":12,"s":"AAPL","t":1575613091000,"v":5}],"type":"trade"}"#;
        let WsEvent::Trades { quotes: q, .. } = p.parse_ws(tomorrow).unwrap() else {
            panic!()
        };
        assert_eq!(q[0].volume, Some(5.0));
    }

    #[test]
    fn trades_table() {
        /// A published trade: (symbol, price, size, time ms).
        type Row<'a> = (&'a str, f64, f64, i64);
        // (frame, trades published, quotes)
        let cases: &[(&str, &[Row<'static>], usize)] = &[
            (
                r#"{"data":[{"c":["1","8","24","12"],"p":122.1,"s":"TSLA","t":1672348887195,"v":1}],"type":"trade"}"#,
                &[("TSLA", 122.1, 1.0, 1672348887195)],
                1,
            ),
            (
                r#"{"data":[{"p":1.0841,"s":"OANDA:EUR_USD","t":1575526691134,"v":0}],"type":"trade"}"#,
                &[],
                1,
            ),
            (
                r#"{"data":[{"p":1.0841,"s":"OANDA:EUR_USD","t":1575526691134}],"type":"trade"}"#,
                &[],
                1,
            ),
            (r#"{"data":[],"type":"trade"}"#, &[], 0),
        ];
        for (frame, want, quotes) in cases {
            let p = FinnhubParser::default();
            let Ok(WsEvent::Trades { trades, quotes: q }) = p.parse_ws(frame) else {
                panic!("{frame}")
            };
            let got: Vec<Row> = trades
                .iter()
                .map(|t| {
                    assert_eq!((t.side, t.trade_id.as_deref()), (None, None), "{frame}");
                    (
                        t.symbol.as_str(),
                        t.price,
                        t.size,
                        t.timestamp.timestamp_millis(),
                    )
                })
                .collect();
            assert_eq!(got, *want, "{frame}");
            assert_eq!(q.len(), *quotes, "{frame}");
        }
    }

    #[test]
    fn control_and_rejects_table() {
        let p = FinnhubParser::default();
        assert_eq!(
            p.parse_ws(&fixture("ws_ping.json")).unwrap(),
            WsEvent::Control
        );
        assert_eq!(
            p.parse_ws(r#"{"type":"error","msg":"Invalid token"}"#)
                .unwrap(),
            WsEvent::UpstreamError("Invalid token".into())
        );
        for bad in [
            "nope",
            r#"{"data":[{"p":1,"s":"AAPL","t":1"#,
            r#"{"data":[{"s":"AAPL","t":1,"v":1}],"type":"trade"}"#,
            r#"{"data":[{"p":0,"s":"AAPL","t":1,"v":1}],"type":"trade"}"#,
            r#"{"data":[{"p":1,"s":"A A","t":1,"v":1}],"type":"trade"}"#,
            r#"{"data":[{"p":1,"s":"AAPL","t":1,"v":-1}],"type":"trade"}"#,
            r#"{"type":"news"}"#,
        ] {
            assert!(p.parse_ws(bad).is_err(), "accepted {bad}");
        }
    }

    #[test]
    fn documented_global_quote() {
        let sym = Symbol::parse("IBM").unwrap();
        let at = tickstream_model::time::now_millis();
        let q = parse_global_quote(&sym, &fixture("rest_global_quote.json"), at).unwrap();
        assert_eq!(q.price, 134.24);
        assert_eq!((q.change, q.change_percent), (Some(1.04), Some(0.7808)));
        assert_eq!(
            (q.high, q.low, q.volume),
            (Some(134.89), Some(133.14), Some(3436541.0))
        );
        assert_eq!(q.timestamp, at);
        let note = r#"{"Note":"Thank you for using Alpha Vantage! Our standard API rate limit is 25 requests per day."}"#;
        assert!(parse_global_quote(&sym, note, at).is_err());
    }

    #[test]
    fn documented_quote() {
        let sym = Symbol::parse("AAPL").unwrap();
        let q = parse_rest(&sym, &fixture("rest_quote.json")).unwrap();
        assert_eq!(q.price, 261.74);
        assert_eq!((q.change, q.change_percent), (Some(2.29), Some(0.8826)));
        assert_eq!((q.high, q.low), (Some(263.31), Some(260.68)));
        assert_eq!(q.volume, None);
        assert_eq!(q.timestamp.timestamp(), 1582641000);
        assert!(parse_rest(
            &sym,
            r#"{"c":0,"d":null,"dp":null,"h":0,"l":0,"o":0,"pc":0,"t":0}"#
        )
        .is_err());
    }
}

//! Binance wire types → normalized [`Quote`]s, [`TradePrint`]s and [`WsEvent`]s.

use tickstream_model::time::from_millis;
use tickstream_model::Side;
use tickstream_upstream::venue::{parse_num, parse_opt_num, parse_symbol};
use tickstream_upstream::{ParseError, Quote, TradePrint, WsEvent};

use crate::messages::{
    BinanceEvent, BinanceEventType, BinanceRestTicker, BinanceTicker, BinanceTrade, BinanceWsFrame,
    BinanceWsMessage,
};

/// Reads one WebSocket text frame: combined-stream data, a raw event, or a control reply.
///
/// One pass ([`BinanceWsMessage`]) decodes the frame, its event included. When that pass
/// fails, the three-pass reference decoding reads the frame again and gives the answer,
/// so malformed and unusual frames get exactly its result and error message.
pub fn parse_ws(text: &str) -> Result<WsEvent, ParseError> {
    let Ok(frame) = BinanceWsMessage::from_json(text) else {
        return parse_ws_reference(text);
    };
    let event = if let Some(data) = frame.data {
        data
    } else if frame.event.event_type.is_some() {
        frame.event
    } else {
        return control_reply(
            frame.error.map(|e| (e.code, e.msg)),
            frame.code,
            frame.msg,
            frame.id.as_ref(),
        );
    };
    match event.event_type.as_deref() {
        Some("24hrTicker") => match TickerView::of_event(&event) {
            Some(t) => Ok(WsEvent::Quotes(vec![t.to_quote()?])),
            // A required field is missing: the reference names it.
            None => parse_ws_reference(text),
        },
        Some("trade") => match TradeView::of_event(&event) {
            Some(t) => trades(t.to_trade()?),
            None => parse_ws_reference(text),
        },
        other => other_event(other),
    }
}

/// One trade as the event a frame carries.
fn trades(print: TradePrint) -> Result<WsEvent, ParseError> {
    Ok(WsEvent::Trades {
        trades: vec![print],
        quotes: Vec::new(),
    })
}

/// The trade fields a trade is built from, borrowed from either wire type.
struct TradeView<'a> {
    symbol: &'a str,
    trade_id: u64,
    price: &'a str,
    quantity: &'a str,
    trade_time: i64,
    buyer_is_maker: Option<bool>,
}

impl<'a> TradeView<'a> {
    fn of_trade(t: &'a BinanceTrade<'_>) -> Self {
        Self {
            symbol: &t.symbol,
            trade_id: t.trade_id,
            price: &t.price,
            quantity: &t.quantity,
            trade_time: t.trade_time,
            buyer_is_maker: t.buyer_is_maker,
        }
    }

    /// `None` when a field [`BinanceTrade`] requires (`E`, `s`, `t`, `p`, `q`, `T`) is missing.
    fn of_event(e: &'a BinanceEvent<'_>) -> Option<Self> {
        e.event_time?;
        Some(Self {
            symbol: e.symbol.as_deref()?,
            trade_id: e.trade_id?,
            price: e.price_change.as_deref()?,
            quantity: e.quantity.as_deref()?,
            trade_time: e.trade_time?,
            buyer_is_maker: e.buyer_is_maker,
        })
    }

    /// `p` price, `q` size, `t` id, `T` time; `m` (the buyer was the maker) means the
    /// taker, the aggressor, sold.
    fn to_trade(&self) -> Result<TradePrint, ParseError> {
        let timestamp = from_millis(self.trade_time)
            .ok_or_else(|| ParseError::field("T", format!("out of range: {}", self.trade_time)))?;
        TradePrint {
            symbol: parse_symbol("s", self.symbol)?,
            price: parse_num("p", self.price)?,
            size: parse_num("q", self.quantity)?,
            side: self.buyer_is_maker.map(|buyer_is_maker| {
                if buyer_is_maker {
                    Side::Sell
                } else {
                    Side::Buy
                }
            }),
            trade_id: Some(self.trade_id.to_string()),
            timestamp,
        }
        .validated()
    }
}

/// Maps one `<symbol>@trade` event: `p` price, `q` size, `t` id, `T` time, side from `m`.
pub fn trade_to_print(t: &BinanceTrade<'_>) -> Result<TradePrint, ParseError> {
    TradeView::of_trade(t).to_trade()
}

/// The ticker fields a quote is built from, borrowed from either wire type.
struct TickerView<'a> {
    event_time: i64,
    symbol: &'a str,
    last_price: &'a str,
    volume: Option<&'a str>,
    high: Option<&'a str>,
    low: Option<&'a str>,
    price_change: Option<&'a str>,
    price_change_percent: Option<&'a str>,
    bid: Option<&'a str>,
    ask: Option<&'a str>,
}

impl<'a> TickerView<'a> {
    fn of_ticker(t: &'a BinanceTicker<'_>) -> Self {
        Self {
            event_time: t.event_time,
            symbol: &t.symbol,
            last_price: &t.last_price,
            volume: t.volume.as_deref(),
            high: t.high.as_deref(),
            low: t.low.as_deref(),
            price_change: t.price_change.as_deref(),
            price_change_percent: t.price_change_percent.as_deref(),
            bid: t.bid.as_deref(),
            ask: t.ask.as_deref(),
        }
    }

    /// `None` when a field the ticker requires (`E`, `s`, `c`) is missing.
    fn of_event(e: &'a BinanceEvent<'_>) -> Option<Self> {
        Some(Self {
            event_time: e.event_time?,
            symbol: e.symbol.as_deref()?,
            last_price: e.last_price.as_deref()?,
            volume: e.volume.as_deref(),
            high: e.high.as_deref(),
            low: e.low.as_deref(),
            price_change: e.price_change.as_deref(),
            price_change_percent: e.price_change_percent.as_deref(),
            bid: e.bid.as_deref(),
            ask: e.ask.as_deref(),
        })
    }

    fn to_quote(&self) -> Result<Quote, ParseError> {
        let timestamp = from_millis(self.event_time)
            .ok_or_else(|| ParseError::field("E", format!("out of range: {}", self.event_time)))?;
        let price = parse_num("c", self.last_price)?;
        if price <= 0.0 {
            return Err(ParseError::field("c", "must be positive"));
        }
        Ok(Quote {
            symbol: parse_symbol("s", self.symbol)?,
            price,
            volume: parse_opt_num("v", self.volume)?,
            high: parse_opt_num("h", self.high)?,
            low: parse_opt_num("l", self.low)?,
            change: parse_opt_num("p", self.price_change)?,
            change_percent: parse_opt_num("P", self.price_change_percent)?,
            bid: parse_opt_num("b", self.bid)?,
            ask: parse_opt_num("a", self.ask)?,
            timestamp,
        })
    }
}

/// The answer to a frame that carries no event: a control reply, or an error.
fn control_reply(
    error: Option<(i64, String)>,
    code: Option<i64>,
    msg: Option<String>,
    id_value: Option<&serde_json::Value>,
) -> Result<WsEvent, ParseError> {
    // Our requests carry integer ids; a reply with another id cannot be ours.
    let id = id_value.and_then(serde_json::Value::as_u64);
    let refused = |code: i64, msg: &str| {
        let error = format!("code {code}: {msg}");
        match id {
            Some(id) => WsEvent::Reply {
                id,
                error: Some(error),
            },
            None => WsEvent::UpstreamError(error),
        }
    };
    if let Some((code, msg)) = &error {
        Ok(refused(*code, msg))
    } else if let (Some(code), Some(msg)) = (code, &msg) {
        Ok(refused(code, msg))
    } else if id_value.is_some() {
        // `{"result":null,"id":N}` (a change was accepted) or
        // `{"result":[...],"id":N}` (LIST_SUBSCRIPTIONS).
        Ok(match id {
            Some(id) => WsEvent::Reply { id, error: None },
            None => WsEvent::Control,
        })
    } else {
        Err(ParseError::field(
            "e",
            "neither a combined-stream frame, an event nor a control reply",
        ))
    }
}

/// The answer to an event that is neither a ticker nor a trade.
fn other_event(event_type: Option<&str>) -> Result<WsEvent, ParseError> {
    match event_type {
        Some("serverShutdown") => Ok(WsEvent::Rotate),
        Some(other) => Err(ParseError::field(
            "e",
            format!("unknown event type `{other}`"),
        )),
        None => Err(ParseError::field("e", "missing")),
    }
}

/// The reference decoding, three serde passes: the frame with `data` kept raw, the
/// event type, then the event. Slower, used when [`parse_ws`]'s single pass fails.
fn parse_ws_reference(text: &str) -> Result<WsEvent, ParseError> {
    let frame: BinanceWsFrame<'_> = serde_json::from_str(text)?;
    let event: &str = if let Some(data) = frame.data {
        data.get()
    } else if frame.event_type.is_some() {
        text
    } else {
        return control_reply(
            frame.error.map(|e| (e.code, e.msg)),
            frame.code,
            frame.msg,
            frame.id.as_ref(),
        );
    };
    let kind: BinanceEventType<'_> = serde_json::from_str(event)?;
    match kind.event_type.as_deref() {
        Some("24hrTicker") => {
            let t: BinanceTicker<'_> = serde_json::from_str(event)?;
            Ok(WsEvent::Quotes(vec![ticker_to_quote(&t)?]))
        }
        Some("trade") => {
            let t: BinanceTrade<'_> = serde_json::from_str(event)?;
            trades(trade_to_print(&t)?)
        }
        other => other_event(other),
    }
}

/// Maps the 24hr ticker: `c` price, `h`/`l`, `v` volume, `p`/`P` change, `b`/`a`, `E` time.
pub fn ticker_to_quote(t: &BinanceTicker<'_>) -> Result<Quote, ParseError> {
    TickerView::of_ticker(t).to_quote()
}

/// Maps one REST 24hr ticker; its timestamp is `closeTime`, the statistics' as-of time.
pub fn rest_ticker_to_quote(t: &BinanceRestTicker) -> Result<Quote, ParseError> {
    let timestamp = from_millis(t.close_time)
        .ok_or_else(|| ParseError::field("closeTime", format!("out of range: {}", t.close_time)))?;
    let price = parse_num("lastPrice", &t.last_price)?;
    if price <= 0.0 {
        return Err(ParseError::field("lastPrice", "must be positive"));
    }
    Ok(Quote {
        symbol: parse_symbol("symbol", &t.symbol)?,
        price,
        volume: parse_opt_num("volume", t.volume.as_deref())?,
        high: parse_opt_num("highPrice", t.high_price.as_deref())?,
        low: parse_opt_num("lowPrice", t.low_price.as_deref())?,
        change: parse_opt_num("priceChange", t.price_change.as_deref())?,
        change_percent: parse_opt_num("priceChangePercent", t.price_change_percent.as_deref())?,
        bid: parse_opt_num("bidPrice", t.bid_price.as_deref())?,
        ask: parse_opt_num("askPrice", t.ask_price.as_deref())?,
        timestamp,
    })
}

/// Reads a `GET /api/v3/ticker/24hr?symbols=[...]` body (an array; a single object is accepted too).
pub fn parse_rest(body: &str) -> Result<Vec<Quote>, ParseError> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<BinanceRestTicker>),
        One(Box<BinanceRestTicker>),
    }
    let tickers = match serde_json::from_str::<OneOrMany>(body)? {
        OneOrMany::Many(v) => v,
        OneOrMany::One(t) => vec![*t],
    };
    tickers.iter().map(rest_ticker_to_quote).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{}/test_data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn documented_ticker_maps_every_field() {
        for name in ["ws_ticker_combined.json", "ws_ticker_raw.json"] {
            let WsEvent::Quotes(q) = parse_ws(&fixture(name)).unwrap() else {
                panic!("{name}: not quotes");
            };
            let q = &q[0];
            assert_eq!(q.symbol.as_str(), "BNBBTC");
            assert_eq!(q.price, 0.0025);
            assert_eq!(q.high, Some(0.0025));
            assert_eq!(q.low, Some(0.0010));
            assert_eq!(q.volume, Some(10000.0));
            assert_eq!(q.change, Some(0.0015));
            assert_eq!(q.change_percent, Some(250.0));
            assert_eq!(q.bid, Some(0.0024));
            assert_eq!(q.ask, Some(0.0026));
            assert_eq!(
                tickstream_model::time::format(&q.timestamp),
                "2022-12-31T19:43:02.136Z"
            );
        }
    }

    #[test]
    fn documented_trade_maps_every_field() {
        for name in ["ws_trade_combined.json", "ws_trade_raw.json"] {
            let WsEvent::Trades { trades, quotes } = parse_ws(&fixture(name)).unwrap() else {
                panic!("{name}: not trades");
            };
            assert!(quotes.is_empty());
            let t = &trades[0];
            assert_eq!(t.symbol.as_str(), "BNBBTC");
            assert_eq!((t.price, t.size), (0.001, 100.0));
            assert_eq!(t.trade_id.as_deref(), Some("12345"));
            // "m": true, the buyer was the maker: the taker sold.
            assert_eq!(t.side, Some(Side::Sell));
            assert_eq!(
                tickstream_model::time::format(&t.timestamp),
                "2022-12-31T19:43:02.136Z"
            );
        }
    }

    #[test]
    fn trade_table() {
        // (fields after "e":"trade", side, id, time ms)
        let cases = [
            (
                r#""E":1,"s":"BTCUSDT","t":7,"p":"43250.5","q":"0.012","T":2,"m":true"#,
                Some(Side::Sell),
                "7",
                2,
            ),
            (
                r#""E":1,"s":"BTCUSDT","t":8,"p":"43250.5","q":"0.012","T":3,"m":false"#,
                Some(Side::Buy),
                "8",
                3,
            ),
            (
                r#""E":1,"s":"BTCUSDT","t":9,"p":"43250.5","q":"0.012","T":4"#,
                None,
                "9",
                4,
            ),
            (
                r#""E":1,"s":"BTCUSDT","t":18446744073709551615,"p":"1","q":"0","T":5,"M":false"#,
                None,
                "18446744073709551615",
                5,
            ),
        ];
        for (fields, side, id, ms) in cases {
            for raw in [
                format!(r#"{{"stream":"btcusdt@trade","data":{{"e":"trade",{fields}}}}}"#),
                format!(r#"{{"e":"trade",{fields}}}"#),
            ] {
                let Ok(WsEvent::Trades { trades, .. }) = parse_ws(&raw) else {
                    panic!("{raw}")
                };
                let t = &trades[0];
                assert_eq!(
                    (
                        t.side,
                        t.trade_id.as_deref(),
                        t.timestamp.timestamp_millis()
                    ),
                    (side, Some(id), ms),
                    "{raw}"
                );
            }
        }
        for bad in [
            r#"{"stream":"x","data":{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"0","q":"1","T":1}}"#,
            r#"{"stream":"x","data":{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1","q":"-1","T":1}}"#,
            r#"{"stream":"x","data":{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"abc","q":"1","T":1}}"#,
            r#"{"stream":"x","data":{"e":"trade","E":1,"s":"BTC USDT","t":1,"p":"1","q":"1","T":1}}"#,
            r#"{"stream":"x","data":{"e":"trade","E":1,"s":"BTCUSDT","p":"1","q":"1","T":1}}"#,
            r#"{"stream":"x","data":{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1","T":1}}"#,
            r#"{"stream":"x","data":{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1","q":"1"}}"#,
            r#"{"stream":"x","data":{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1","q":"1","T":1,"m":1}}"#,
        ] {
            assert!(parse_ws(bad).is_err(), "accepted: {bad}");
        }
    }

    #[test]
    fn control_frames_table() {
        assert_eq!(
            parse_ws(&fixture("ws_server_shutdown.json")).unwrap(),
            WsEvent::Rotate
        );
        assert_eq!(
            parse_ws(r#"{"stream":"x","data":{"e":"serverShutdown","E":1}}"#).unwrap(),
            WsEvent::Rotate
        );
        assert_eq!(
            parse_ws(&fixture("ws_subscribe_response.json")).unwrap(),
            WsEvent::Reply {
                id: 312,
                error: None
            }
        );
        assert_eq!(
            parse_ws(&fixture("ws_list_subscriptions_response.json")).unwrap(),
            WsEvent::Reply { id: 3, error: None }
        );
        let WsEvent::Reply {
            id: 312,
            error: Some(m),
        } = parse_ws(&fixture("ws_error.json")).unwrap()
        else {
            panic!("error reply not matched to its id");
        };
        assert!(m.contains("code 2"), "{m}");
        // The flat form of the docs' "Error Messages" table, without an id: an upstream error.
        let WsEvent::UpstreamError(m) = parse_ws(&fixture("ws_error_flat.json")).unwrap() else {
            panic!("flat error not reported");
        };
        assert!(m.contains("code 3") && m.contains("Invalid JSON"), "{m}");
        // ... and with one: matched to the request.
        assert_eq!(
            parse_ws(r#"{"code":0,"msg":"Unknown property","id":5}"#).unwrap(),
            WsEvent::Reply {
                id: 5,
                error: Some("code 0: Unknown property".into())
            }
        );
        // An id we never send (a string) is not matched.
        assert_eq!(
            parse_ws(r#"{"result":null,"id":"abc"}"#).unwrap(),
            WsEvent::Control
        );
    }

    #[test]
    fn missing_optional_fields_stay_absent_and_extra_fields_are_ignored() {
        let raw = r#"{"stream":"btcusdt@ticker","data":{"e":"24hrTicker","E":1672515782136,"s":"BTCUSDT","c":"43250.5","new_field":[1,2]}}"#;
        let WsEvent::Quotes(q) = parse_ws(raw).unwrap() else {
            panic!()
        };
        assert_eq!(q[0].price, 43250.5);
        assert_eq!((q[0].bid, q[0].volume, q[0].change), (None, None, None));
    }

    #[test]
    fn rejects_table() {
        let cases = [
            "not json",
            r#"{"stream":"btcusdt@ticker","data":{"e":"24hrTicker","E":1672515782136,"s":"BTCUSDT""#,
            r#"{"stream":"btcusdt@ticker","data":{"e":"24hrTicker","E":1672515782136,"s":"BTCUSDT"}}"#,
            r#"{"stream":"btcusdt@ticker","data":{"e":"24hrTicker","E":1,"s":"BTCUSDT","c":"abc"}}"#,
            r#"{"stream":"btcusdt@ticker","data":{"e":"24hrTicker","E":1,"s":"BTCUSDT","c":"0"}}"#,
            r#"{"stream":"btcusdt@ticker","data":{"e":"24hrTicker","E":1,"s":"BTC USDT","c":"1"}}"#,
            r#"{"stream":"btcusdt@ticker","data":{"e":"24hrTicker","E":"soon","s":"BTCUSDT","c":"1"}}"#,
            r#"{"stream":"btcusdt@ticker","data":{"e":"somethingNew","E":1}}"#,
            r#"{"hello":"world"}"#,
            "[]",
        ];
        for raw in cases {
            assert!(parse_ws(raw).is_err(), "accepted: {raw}");
        }
    }

    #[test]
    fn single_pass_agrees_with_the_reference_decoding() {
        let mut cases: Vec<String> = [
            "ws_ticker_combined.json",
            "ws_ticker_raw.json",
            "ws_server_shutdown.json",
            "ws_subscribe_response.json",
            "ws_list_subscriptions_response.json",
            "ws_error.json",
            "ws_error_flat.json",
        ]
        .into_iter()
        .map(fixture)
        .collect();
        for name in [
            "ws_ticker_combined.json",
            "ws_ticker_raw.json",
            "ws_trade_combined.json",
            "ws_trade_raw.json",
        ] {
            let text = fixture(name);
            assert!(
                BinanceWsMessage::from_json(&text).is_ok(),
                "{name} takes the single pass"
            );
            assert!(serde_json::from_str::<BinanceWsMessage<'_>>(&text).is_ok());
        }
        let t = r#""E":1672515782136,"s":"BTCUSDT","c":"43250.5""#;
        cases.extend([
            format!(r#"{{"stream":"x","data":{{"e":"24hrTicker",{t}}}}}"#),
            format!(r#"{{"data":{{{t},"e":"24hrTicker"}},"stream":"x"}}"#),
            format!(r#"{{"e":"24hrTicker",{t},"stream":"x","id":1}}"#),
            format!(r#"{{"e":"24hrTicker",{t},"data":null}}"#),
            format!(r#"{{"e":"24hr\u0054icker",{t}}}"#),
            format!(r#"{{"stream":"x","data":{{"e":"24hr\u0054icker",{t}}}}}"#),
            format!(r#"{{"stream":"x","data":{{"e":"24hrTicker",{t},"b":"\u0031"}}}}"#),
            format!(r#"{{"stream":"x","data":{{"e":"24hrTicker",{t},"b":null,"n":null}}}}"#),
            format!(r#"{{"stream":"x","data":{{"e":"24hrTicker",{t},"n":-1}}}}"#),
            format!(r#"{{"stream":"x","data":{{"e":"24hrTicker",{t},"O":"0"}}}}"#),
            format!(r#"{{"stream":"x","data":{{"e":"24hrTicker",{t},"O":1.5,"C":-0,"n":-0}}}}"#),
            format!(r#"{{"stream":"x","data":{{"e":"24hrTicker",{t},"F":9223372036854775808}}}}"#),
            format!(r#"{{"stream":"x","data":{{"e":"24hrTicker",{t},"n":18446744073709551615}}}}"#),
            format!(r#"{{"stream":"x","data":{{"e":"24hrTicker",{t},"n":18446744073709551616}}}}"#),
            format!(r#"{{"stream":"x","data":{{"e":"24hrTicker",{t},"L":-9223372036854775808}}}}"#),
            format!(r#"{{"stream":"x","data":{{"e":"24hrTicker",{t},"w":1,"q":[]}}}}"#),
            format!(r#"{{"stream":"x","data":{{"e":"24hrTicker",{t},"w":{{}}}}}}"#),
            format!(r#"{{"stream":"x","data":{{"e":"24hrTicker",{t},"w":true}}}}"#),
            format!(r#"{{"stream":"x","data":{{"e":"24hrTicker",{t},"w":nul}}}}"#),
            format!(r#"{{"stream":"x","data":{{"e":"24hrTicker",{t},"v":"1e3","p":"-0.5"}}}}"#),
            format!(r#"{{"stream":"x","data":{{"e":"24hrTicker",{t},"c":"1"}}}}"#),
            format!(r#"{{"stream":"x","data":{{"e":"24hrTicker","e":"24hrTicker",{t}}}}}"#),
            format!(r#"{{"stream":"x","data":{{"e":"24hrTicker",{t}}},"data":null}}"#),
            format!(r#"{{"stream":"x","data":{{"e":"24hrTicker",{t}}},"c":5}}"#),
            format!(r#"{{"stream":"x","data":{{"e":"24hrTicker",{t}}},"error":1}}"#),
            format!(r#"{{"stream":"x","data":{{"e":"24hrTicker",{t},"stream":1,"data":2}}}}"#),
            format!(r#"{{"stream":"\u0078","data":{{"e":"24hrTicker",{t}}}}}"#),
            format!(r#"{{"stream":"x","data":{{"e":"24hrTicker",{t}}}}} x"#),
            format!(r#"["x",{{"e":"24hrTicker",{t}}}]"#),
            format!(r#"{{"stream":"x","data":["24hrTicker",{t}]}}"#),
            r#"{"stream":"x","data":{"e":"24hrTicker","s":"BTCUSDT","c":"1"}}"#.into(),
            fixture("ws_trade_combined.json"),
            fixture("ws_trade_raw.json"),
            // The older documented trade shape, with numeric buyer/seller order ids `b`/`a`.
            r#"{"e":"trade","E":1,"s":"BNBBTC","t":1,"p":"0.001","q":"100","b":88,"a":50,"T":1,"m":true,"M":true}"#.into(),
            r#"{"stream":"x","data":{"e":"trade","E":1,"s":"BNBBTC","t":1,"p":"1","q":"2","T":1}}"#.into(),
            r#"{"stream":"x","data":{"e":"trade","E":1,"s":"BNBBTC","t":1,"p":"1","q":"2","T":1,"m":null}}"#.into(),
            r#"{"stream":"x","data":{"e":"trade","E":1,"s":"BNBBTC","t":-1,"p":"1","q":"2","T":1}}"#.into(),
            r#"{"stream":"x","data":{"e":"trade","E":1,"s":"BNBBTC","t":null,"p":"1","q":"2","T":1}}"#.into(),
            r#"{"stream":"x","data":{"e":"trade","E":1,"s":"BNBBTC","p":"1","q":"2","T":1}}"#.into(),
            r#"{"stream":"x","data":{"e":"trade","s":"BNBBTC","t":1,"p":"1","q":"2","T":1}}"#.into(),
            r#"{"stream":"x","data":{"e":"trade","E":1,"s":"BNBBTC","t":1,"p":"1","q":"2","T":"1"}}"#.into(),
            r#"{"stream":"x","data":{"e":"trade","E":1,"s":"BNBBTC","t":1,"p":"1","q":"2","T":1,"m":"yes"}}"#.into(),
            r#"{"stream":"x","data":{"e":"trade","E":1,"s":"BNBBTC","t":1,"p":"1","q":"2","T":1,"t":2}}"#.into(),
            r#"{"stream":"x","data":{"e":"trade","E":1,"s":"BNBBTC","t":1,"p":"1","q":"-2","T":1}}"#.into(),
            r#"{"stream":"x","data":{"e":"trade","E":1,"s":"BNBBTC","t":1,"p":"0","q":"2","T":1}}"#.into(),
            r#"{"stream":"x","data":{"e":"trade","E":1,"s":"BNBBTC","t":1,"p":"1","q":null,"T":1}}"#.into(),
            r#"{"stream":"x","data":{"e":"24hrTicker","E":1,"s":"BTCUSDT","c":"1","m":"x","t":"y"}}"#.into(),
            r#"{"stream":"x","data":{"e":"serverShutdown","E":"soon","s":1}}"#.into(),
            r#"{"e":"serverShutdown","E":1,"c":7}"#.into(),
            r#"{"stream":"x","data":{"E":1}}"#.into(),
            r#"{"stream":"x","data":{"e":null}}"#.into(),
            r#"{"stream":"x","data":null,"id":4}"#.into(),
            r#"{"result":null,"id":7,"code":1}"#.into(),
            r#"{"result":null,"id":-7}"#.into(),
            r#"{"result":null,"id":null}"#.into(),
            r#"{"code":1,"msg":"m","id":2,"error":{"code":5,"msg":"n"}}"#.into(),
            r#"{"error":{"code":5},"id":2}"#.into(),
            r#"{"code":1}"#.into(),
            r#"{}"#.into(),
            "[]".into(),
            "null".into(),
            "".into(),
        ]);
        for raw in &cases {
            assert_eq!(
                format!("{:?}", parse_ws(raw)),
                format!("{:?}", parse_ws_reference(raw)),
                "{raw}"
            );
        }
    }

    #[test]
    fn documented_rest_response() {
        let q = parse_rest(&fixture("rest_ticker_24hr.json")).unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].symbol.as_str(), "BNBBTC");
        assert_eq!(q[0].price, 4.000002);
        assert_eq!(q[0].change_percent, Some(-95.96));
        assert_eq!(q[0].bid, Some(4.0));
        assert_eq!(q[0].volume, Some(8913.3));
        assert_eq!(q[0].timestamp.timestamp_millis(), 1499869899040);
        assert!(parse_rest("{\"code\":-1121,\"msg\":\"Invalid symbol.\"}").is_err());
    }
}

//! Binance wire types → normalized [`Quote`]s and [`WsEvent`]s.

use tickstream_model::time::from_millis;
use tickstream_upstream::venue::{parse_num, parse_opt_num, parse_symbol};
use tickstream_upstream::{ParseError, Quote, WsEvent};

use crate::messages::{BinanceEventType, BinanceRestTicker, BinanceTicker, BinanceWsFrame};

/// Reads one WebSocket text frame: combined-stream data, a raw event, or a control reply.
pub fn parse_ws(text: &str) -> Result<WsEvent, ParseError> {
    let frame: BinanceWsFrame<'_> = serde_json::from_str(text)?;
    // Our requests carry integer ids; a reply with another id cannot be ours.
    let id = frame.id.as_ref().and_then(serde_json::Value::as_u64);
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
    let event: &str = if let Some(data) = frame.data {
        data.get()
    } else if frame.event_type.is_some() {
        text
    } else if let Some(err) = &frame.error {
        return Ok(refused(err.code, &err.msg));
    } else if let (Some(code), Some(msg)) = (frame.code, &frame.msg) {
        return Ok(refused(code, msg));
    } else if frame.id.is_some() {
        // `{"result":null,"id":N}` (a change was accepted) or
        // `{"result":[...],"id":N}` (LIST_SUBSCRIPTIONS).
        return Ok(match id {
            Some(id) => WsEvent::Reply { id, error: None },
            None => WsEvent::Control,
        });
    } else {
        return Err(ParseError::field(
            "e",
            "neither a combined-stream frame, an event nor a control reply",
        ));
    };
    let kind: BinanceEventType<'_> = serde_json::from_str(event)?;
    match kind.event_type.as_deref() {
        Some("24hrTicker") => {
            let t: BinanceTicker<'_> = serde_json::from_str(event)?;
            Ok(WsEvent::Quotes(vec![ticker_to_quote(&t)?]))
        }
        Some("serverShutdown") => Ok(WsEvent::Rotate),
        Some(other) => Err(ParseError::field(
            "e",
            format!("unknown event type `{other}`"),
        )),
        None => Err(ParseError::field("e", "missing")),
    }
}

/// Maps the 24hr ticker: `c` price, `h`/`l`, `v` volume, `p`/`P` change, `b`/`a`, `E` time.
pub fn ticker_to_quote(t: &BinanceTicker<'_>) -> Result<Quote, ParseError> {
    let timestamp = from_millis(t.event_time)
        .ok_or_else(|| ParseError::field("E", format!("out of range: {}", t.event_time)))?;
    let price = parse_num("c", &t.last_price)?;
    if price <= 0.0 {
        return Err(ParseError::field("c", "must be positive"));
    }
    Ok(Quote {
        symbol: parse_symbol("s", &t.symbol)?,
        price,
        volume: parse_opt_num("v", t.volume.as_deref())?,
        high: parse_opt_num("h", t.high.as_deref())?,
        low: parse_opt_num("l", t.low.as_deref())?,
        change: parse_opt_num("p", t.price_change.as_deref())?,
        change_percent: parse_opt_num("P", t.price_change_percent.as_deref())?,
        bid: parse_opt_num("b", t.bid.as_deref())?,
        ask: parse_opt_num("a", t.ask.as_deref())?,
        timestamp,
    })
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

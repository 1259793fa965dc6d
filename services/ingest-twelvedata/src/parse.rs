//! Twelve Data wire types → normalized [`Quote`]s and [`WsEvent`]s.

use chrono::{DateTime, Utc};
use tickstream_model::Symbol;
use tickstream_upstream::venue::{epoch_seconds, parse_num, parse_symbol};
use tickstream_upstream::{ParseError, Quote, WsEvent};

use crate::messages::{
    TwelveDataPrice, TwelveDataRestBatch, TwelveDataRestPrice, TwelveDataSymbolRef,
    TwelveDataWsEvent,
};

/// Reads one WebSocket text frame.
pub fn parse_ws(text: &str) -> Result<WsEvent, ParseError> {
    match serde_json::from_str::<TwelveDataWsEvent>(text)? {
        TwelveDataWsEvent::Price(p) => Ok(WsEvent::Quotes(vec![price_to_quote(&p)?])),
        TwelveDataWsEvent::SubscribeStatus { status, fails } => {
            Ok(status_event("subscribe", &status, fails))
        }
        TwelveDataWsEvent::UnsubscribeStatus { status, fails } => {
            Ok(status_event("unsubscribe", &status, fails))
        }
        TwelveDataWsEvent::Heartbeat { status } if status == "ok" => Ok(WsEvent::Control),
        TwelveDataWsEvent::Heartbeat { status } => {
            Ok(WsEvent::UpstreamError(format!("heartbeat status {status}")))
        }
    }
}

/// A `subscribe-status`/`unsubscribe-status`: refused symbols or a status other than `ok`
/// are an upstream error, else a control frame.
fn status_event(action: &str, status: &str, fails: Option<Vec<TwelveDataSymbolRef>>) -> WsEvent {
    let failed: Vec<String> = fails
        .unwrap_or_default()
        .into_iter()
        .map(|f| f.symbol)
        .collect();
    if !failed.is_empty() {
        let what = if action == "subscribe" {
            "subscription"
        } else {
            "unsubscription"
        };
        WsEvent::UpstreamError(format!("{what} refused for: {}", failed.join(", ")))
    } else if status != "ok" {
        WsEvent::UpstreamError(format!("{action}-status {status}"))
    } else {
        WsEvent::Control
    }
}

/// Maps `price`: `price`, optional `bid`/`ask`, `day_volume`, `timestamp` (seconds).
pub fn price_to_quote(p: &TwelveDataPrice) -> Result<Quote, ParseError> {
    if !p.price.is_finite() || p.price <= 0.0 {
        return Err(ParseError::field(
            "price",
            format!("must be positive, got {}", p.price),
        ));
    }
    let mut q = Quote::new(
        parse_symbol("symbol", &p.symbol)?,
        p.price,
        epoch_seconds("timestamp", p.timestamp)?,
    );
    q.bid = p.bid;
    q.ask = p.ask;
    q.volume = p.day_volume;
    Ok(q)
}

/// Reads a `/price` body for `symbols`: one object for one symbol, a map for several.
///
/// `/price` carries no time, so the tick's timestamp is `received`, the receive time.
pub fn parse_rest(
    symbols: &[Symbol],
    body: &str,
    received: DateTime<Utc>,
) -> Result<Vec<Quote>, ParseError> {
    let at = received;
    let one = |symbol: &Symbol, p: &TwelveDataRestPrice| -> Result<Quote, ParseError> {
        let price = parse_num("price", &p.price)?;
        if price <= 0.0 {
            return Err(ParseError::field("price", "must be positive"));
        }
        Ok(Quote::new(symbol.clone(), price, at))
    };
    match symbols {
        [symbol] => Ok(vec![one(symbol, &serde_json::from_str(body)?)?]),
        _ => {
            let batch: TwelveDataRestBatch = serde_json::from_str(body)?;
            let mut out = Vec::with_capacity(batch.len());
            for symbol in symbols {
                if let Some(p) = batch.get(symbol.as_str()) {
                    out.push(one(symbol, p)?);
                }
            }
            Ok(out)
        }
    }
}

/// Whether a `/price` body is Twelve Data's out-of-credits answer, which
/// arrives with HTTP 200: `{"code":429,"message":"...","status":"error"}`.
pub fn is_rate_limited(body: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct TwelveDataRestError {
        code: u16,
        status: String,
    }
    serde_json::from_str::<TwelveDataRestError>(body)
        .is_ok_and(|e| e.code == 429 && e.status == "error")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{}/test_data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn documented_price_events() {
        let WsEvent::Quotes(q) = parse_ws(&fixture("ws_price_stock.json")).unwrap() else {
            panic!()
        };
        assert_eq!(q[0].symbol.as_str(), "AAPL");
        assert_eq!(q[0].price, 342.0157);
        assert_eq!(q[0].volume, Some(27631112.0));
        assert_eq!((q[0].bid, q[0].ask, q[0].high), (None, None, None));
        assert_eq!(q[0].timestamp.timestamp(), 1592249566);
        let WsEvent::Quotes(q) = parse_ws(&fixture("ws_price_crypto.json")).unwrap() else {
            panic!()
        };
        assert_eq!(q[0].symbol.as_str(), "BTC/USD");
        assert_eq!((q[0].bid, q[0].ask), (Some(30202.1), Some(30202.1)));
    }

    #[test]
    fn control_events_table() {
        assert_eq!(
            parse_ws(&fixture("ws_subscribe_status.json")).unwrap(),
            WsEvent::UpstreamError("subscription refused for: INVALID".into())
        );
        assert_eq!(
            parse_ws(r#"{"event":"subscribe-status","status":"ok","success":[],"fails":null}"#)
                .unwrap(),
            WsEvent::Control
        );
        assert_eq!(
            parse_ws(&fixture("ws_heartbeat.json")).unwrap(),
            WsEvent::Control
        );
        assert_eq!(
            parse_ws(r#"{"event":"unsubscribe-status","status":"ok","success":[{"symbol":"AAPL"}],"fails":[]}"#)
                .unwrap(),
            WsEvent::Control
        );
        assert_eq!(
            parse_ws(
                r#"{"event":"unsubscribe-status","status":"error","fails":[{"symbol":"AAPL"}]}"#
            )
            .unwrap(),
            WsEvent::UpstreamError("unsubscription refused for: AAPL".into())
        );
        for bad in [
            "x",
            r#"{"event":"price","symbol":"AAPL","timestamp":1592249566"#,
            r#"{"event":"price","symbol":"AAPL","timestamp":1592249566}"#,
            r#"{"event":"price","symbol":"AAPL","timestamp":"now","price":1}"#,
            r#"{"event":"price","symbol":"AAPL","timestamp":1,"price":-1}"#,
            r#"{"event":"quote","symbol":"AAPL"}"#,
        ] {
            assert!(parse_ws(bad).is_err(), "accepted {bad}");
        }
    }

    #[test]
    fn rate_limit_in_the_body() {
        assert!(is_rate_limited(
            r#"{"code":429,"message":"You have run out of API credits for the current minute.","status":"error"}"#
        ));
        assert!(!is_rate_limited(&fixture("rest_price.json")));
        assert!(!is_rate_limited(
            r#"{"code":400,"message":"bad symbol","status":"error"}"#
        ));
    }

    #[test]
    fn documented_rest_prices() {
        let at = tickstream_model::time::now_millis();
        let one = Symbol::parse_list("AAPL").unwrap();
        let q = parse_rest(&one, &fixture("rest_price.json"), at).unwrap();
        assert_eq!((q[0].price, q[0].timestamp), (200.99001, at));
        let two = Symbol::parse_list("AAPL,EUR/USD").unwrap();
        let q = parse_rest(&two, &fixture("rest_price_batch.json"), at).unwrap();
        assert_eq!(q.len(), 2);
        assert_eq!((q[1].symbol.as_str(), q[1].price), ("EUR/USD", 1.0872));
        assert!(parse_rest(
            &one,
            r#"{"code":429,"message":"out of credits","status":"error"}"#,
            at
        )
        .is_err());
    }
}

//! Native framing: `{"event": NAME, "data": PAYLOAD, "id"?: ...}` both ways.
//!
//! Parsing is total: any input yields either a [`Request`] or a [`ClientError`]
//! with a code from [`ErrorCode`], which the connection sends back as an
//! `error` frame. The request vocabulary itself (events, payloads) is shared
//! with Socket.IO in [`crate::client::request`]. Nothing here touches the network.

use serde_json::{json, Value};

use crate::client::request::{
    connected_data, error_data, parse_action, Action, ClientError, ErrorCode,
};

/// A parsed request and its optional correlation id.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The action.
    pub action: Action,
    /// Echoed in the reply so clients can match answers to requests.
    pub id: Option<Value>,
}

/// Parses one text frame. `max_symbols` bounds list sizes before any per-item work.
pub fn parse(text: &str, max_symbols: usize) -> Result<Request, ClientError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ClientError::new(ErrorCode::BadJson, format!("invalid JSON: {e}")))?;
    let Value::Object(mut obj) = value else {
        return Err(ClientError::new(
            ErrorCode::BadJson,
            "expected an object like {\"event\":\"subscribe\",\"data\":{\"symbols\":[\"BTCUSDT\"]}}",
        ));
    };
    let id = match obj.remove("id") {
        None | Some(Value::Null) => None,
        Some(v @ (Value::String(_) | Value::Number(_))) => Some(v),
        Some(_) => {
            return Err(ClientError::new(
                ErrorCode::BadJson,
                "`id` must be a string or a number",
            ))
        }
    };
    let with_id = |mut e: ClientError| {
        e.id = id.clone();
        e
    };
    let event = match obj.remove("event") {
        Some(Value::String(s)) => s,
        Some(_) => {
            return Err(with_id(ClientError::new(
                ErrorCode::BadJson,
                "`event` must be a string",
            )))
        }
        None => {
            return Err(with_id(ClientError::new(
                ErrorCode::BadJson,
                "missing `event`",
            )))
        }
    };
    let data = obj.remove("data").unwrap_or(Value::Null);
    let action = parse_action(&event, &data, max_symbols).map_err(with_id)?;
    Ok(Request { action, id })
}

/// Serializes a native frame `{"event", "data", "id"?}`.
pub fn frame(event: &str, data: Value, id: Option<&Value>) -> String {
    let mut v = json!({ "event": event, "data": data });
    if let (Some(id), Value::Object(obj)) = (id, &mut v) {
        obj.insert("id".to_owned(), id.clone());
    }
    v.to_string()
}

/// The first native frame of every connection.
pub fn connected(client_id: &str) -> String {
    frame("connected", connected_data(client_id), None)
}

/// A native `error` frame.
pub fn error(e: &ClientError) -> String {
    frame("error", error_data(e), e.id.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::request::{subscribed_data, Targets};
    use tickstream_model::{Channel, Symbol};

    fn code(text: &str) -> ErrorCode {
        parse(text, 5).unwrap_err().code
    }

    #[test]
    fn parses_requests() {
        let r = parse(
            r#"{"event":"subscribe","data":{"symbols":["btcusdt","ETHUSDT","BTCUSDT"]},"id":7}"#,
            5,
        )
        .unwrap();
        assert_eq!(r.id, Some(json!(7)));
        assert_eq!(
            r.action,
            Action::Subscribe {
                targets: Targets {
                    symbols: vec![
                        Symbol::parse("BTCUSDT").unwrap(),
                        Symbol::parse("ETHUSDT").unwrap()
                    ],
                    channels: vec![],
                },
                max_hz: None,
                recovery: None,
            }
        );
        let r = parse(
            r#"{"event":"unsubscribe","data":{"symbols":"AAPL,MSFT"},"id":"x"}"#,
            5,
        )
        .unwrap();
        assert!(matches!(r.action, Action::Unsubscribe(ref t) if t.symbols.len() == 2));
        assert_eq!(
            parse(r#"{"event":"list"}"#, 5).unwrap().action,
            Action::List
        );
        assert_eq!(
            parse(
                r#"{"event":"subscribe","data":{"symbols":["A"],"max_hz":2.5}}"#,
                5
            )
            .unwrap()
            .action,
            Action::Subscribe {
                targets: Targets {
                    symbols: vec![Symbol::parse("A").unwrap()],
                    channels: vec![],
                },
                max_hz: Some(2.5),
                recovery: None,
            }
        );
        let r = parse(
            r#"{"event":"subscribe","data":{"symbols":["A"],"channels":["Trades:a","sentiment","ticks:A","sentiment"]}}"#,
            5,
        )
        .unwrap();
        let Action::Subscribe { targets, .. } = r.action else {
            panic!("not a subscribe: {:?}", r.action)
        };
        let names: Vec<&str> = targets.channels.iter().map(Channel::as_str).collect();
        assert_eq!(names, ["trades:A", "sentiment", "ticks:A"]);
        let all: Vec<String> = targets.all().iter().map(|c| c.to_string()).collect();
        assert_eq!(
            all,
            ["ticks:A", "trades:A", "sentiment"],
            "deduplicated across both lists"
        );
        let r = parse(
            r#"{"event":"unsubscribe","data":{"channels":"candles:1m:A,feeds"}}"#,
            5,
        )
        .unwrap();
        assert!(
            matches!(r.action, Action::Unsubscribe(ref t) if t.channels.len() == 2 && t.symbols.is_empty())
        );
        assert_eq!(
            parse(r#"{"event":"ping","data":null}"#, 5).unwrap().action,
            Action::Ping
        );
    }

    #[test]
    fn error_table() {
        let cases = [
            ("not json", ErrorCode::BadJson),
            ("[1,2]", ErrorCode::BadJson),
            ("{\"event\":42}", ErrorCode::BadJson),
            ("{\"data\":{}}", ErrorCode::BadJson),
            ("{\"event\":\"subscribe\"}", ErrorCode::BadJson),
            ("{\"event\":\"subscribe\",\"data\":{\"symbols\":[1]}}", ErrorCode::BadJson),
            ("{\"event\":\"subscribe\",\"data\":{\"symbols\":{}}}", ErrorCode::BadJson),
            ("{\"event\":\"ping\",\"id\":{}}", ErrorCode::BadJson),
            ("{\"event\":\"fly\"}", ErrorCode::UnknownEvent),
            ("{\"event\":\"subscribe\",\"data\":{\"symbols\":[\"A\"],\"max_hz\":0}}", ErrorCode::BadJson),
            ("{\"event\":\"subscribe\",\"data\":{\"symbols\":[\"A\"],\"max_hz\":\"2\"}}", ErrorCode::BadJson),
            ("{\"event\":\"subscribe\",\"data\":{\"symbols\":[\"A\"],\"max_hz\":1e9}}", ErrorCode::BadJson),
            ("{\"event\":\"subscribe\",\"data\":{\"symbols\":[\"BAD SYM\"]}}", ErrorCode::InvalidSymbol),
            ("{\"event\":\"subscribe\",\"data\":{\"symbols\":[]}}", ErrorCode::InvalidSymbol),
            ("{\"event\":\"subscribe\",\"data\":{\"symbols\":[\"A\",\"B\",\"C\",\"D\",\"E\",\"F\"]}}", ErrorCode::TooManySymbols),
            ("{\"event\":\"subscribe\",\"data\":{\"symbols\":[\"A\",\"B\",\"C\"],\"channels\":[\"feeds\",\"sentiment\",\"trades:A\"]}}", ErrorCode::TooManySymbols),
            ("{\"event\":\"subscribe\",\"data\":{\"channels\":[\"news:A\"]}}", ErrorCode::InvalidChannel),
            ("{\"event\":\"subscribe\",\"data\":{\"channels\":[\"candles:2m:A\"]}}", ErrorCode::InvalidChannel),
            ("{\"event\":\"subscribe\",\"data\":{\"channels\":[\"trades:BAD SYM\"]}}", ErrorCode::InvalidChannel),
            ("{\"event\":\"subscribe\",\"data\":{\"channels\":[]}}", ErrorCode::InvalidChannel),
            ("{\"event\":\"subscribe\",\"data\":{\"channels\":[7]}}", ErrorCode::BadJson),
            ("{\"event\":\"unsubscribe\",\"data\":{\"channels\":\"sentiment:X\"}}", ErrorCode::InvalidChannel),
        ];
        for (text, want) in cases {
            assert_eq!(code(text), want, "{text}");
        }
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(code(&deep), ErrorCode::BadJson);
    }

    #[test]
    fn id_is_echoed_on_errors_and_replies() {
        let e = parse(r#"{"event":"fly","id":"abc"}"#, 5).unwrap_err();
        let v: Value = serde_json::from_str(&error(&e)).unwrap();
        assert_eq!(v["event"], "error");
        assert_eq!(v["id"], "abc");
        assert_eq!(v["data"]["code"], "unknown_event");
        let targets = Targets {
            symbols: vec![Symbol::parse("A").unwrap()],
            channels: vec![],
        };
        let v: Value = serde_json::from_str(&frame(
            "subscribed",
            subscribed_data(&targets, &[], None),
            Some(&json!(3)),
        ))
        .unwrap();
        assert_eq!(v["id"], 3);
        assert_eq!(v["data"]["message"], "Subscribed to 1 symbols");
        assert_eq!(v["data"]["channels"], json!([]));
        assert_eq!(v["data"]["pending"], json!([]));
        let targets = Targets {
            symbols: vec![Symbol::parse("A").unwrap()],
            channels: vec![Channel::parse("sentiment").unwrap()],
        };
        let data = subscribed_data(
            &targets,
            &[Channel::parse("sentiment").unwrap()],
            Some("e1"),
        );
        assert_eq!(
            data,
            json!({"symbols":["A"],"channels":["sentiment"],"pending":["sentiment"],"epoch":"e1","message":"Subscribed to 2 channels"})
        );
    }
}

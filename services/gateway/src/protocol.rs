//! The native JSON protocol: `{"event": NAME, "data": PAYLOAD, "id"?: ...}` both ways.
//!
//! Parsing is total: any input yields either a [`Request`] or a [`ClientError`]
//! with a code from [`ErrorCode`], which the connection sends back as an
//! `error` frame. Nothing here touches the network.

use serde::Serialize;
use serde_json::{json, Value};
use tickstream_model::Symbol;

/// Machine-readable error codes of the `error` event (DESIGN.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, not an object, or a field of the wrong type.
    BadJson,
    /// `event` names nothing we know.
    UnknownEvent,
    /// A symbol fails validation (charset, length, empty).
    InvalidSymbol,
    /// The request would exceed the per-connection symbol limit.
    TooManySymbols,
    /// More subscribe/unsubscribe requests per second than allowed.
    RateLimited,
    /// Missing or bad credentials, or a symbol the token does not grant.
    Unauthorized,
    /// The frame exceeds the maximum message size.
    TooLarge,
}

impl ErrorCode {
    /// The wire name, also the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::UnknownEvent => "unknown_event",
            ErrorCode::InvalidSymbol => "invalid_symbol",
            ErrorCode::TooManySymbols => "too_many_symbols",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::TooLarge => "too_large",
        }
    }
}

/// A request the client got wrong, answered with an `error` frame.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientError {
    /// What kind of mistake.
    pub code: ErrorCode,
    /// A sentence for humans.
    pub message: String,
    /// The request's `id`, echoed when we could read it.
    pub id: Option<Value>,
}

impl ClientError {
    /// Builds an error without an id.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            id: None,
        }
    }
}

/// What a client asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Start receiving these symbols (cached tick first).
    Subscribe(Vec<Symbol>),
    /// Start receiving these symbols, at most `max_hz` updates per second each, always the newest (`"max_hz": N`).
    SubscribeAtMost {
        /// The symbols.
        symbols: Vec<Symbol>,
        /// Updates per second per symbol, in (0, [`MAX_HZ_LIMIT`]].
        max_hz: f64,
    },
    /// Stop receiving these symbols.
    Unsubscribe(Vec<Symbol>),
    /// Tell me what I am subscribed to.
    List,
    /// Application-level liveness check (answered with `pong`).
    Ping,
}

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

/// Turns an event name and its data into an [`Action`]; shared by every protocol (Socket.IO passes its first event argument).
pub fn parse_action(event: &str, data: &Value, max_symbols: usize) -> Result<Action, ClientError> {
    Ok(match event {
        "subscribe" => {
            let symbols = symbols_of(data, max_symbols)?;
            match max_hz_of(data)? {
                Some(max_hz) => Action::SubscribeAtMost { symbols, max_hz },
                None => Action::Subscribe(symbols),
            }
        }
        "unsubscribe" => Action::Unsubscribe(symbols_of(data, max_symbols)?),
        "list" => Action::List,
        "ping" => Action::Ping,
        other => {
            let shown: String = other.chars().take(64).collect();
            return Err(ClientError::new(
                ErrorCode::UnknownEvent,
                format!("unknown event {shown:?}; expected subscribe, unsubscribe, list or ping"),
            ));
        }
    })
}

/// Largest accepted `max_hz` (anything faster is the same as no cap).
pub const MAX_HZ_LIMIT: f64 = 1000.0;

/// Reads the optional `data.max_hz`: a number in (0, [`MAX_HZ_LIMIT`]].
fn max_hz_of(data: &Value) -> Result<Option<f64>, ClientError> {
    match data.get("max_hz") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(hz) if hz > 0.0 && hz <= MAX_HZ_LIMIT => Ok(Some(hz)),
            _ => Err(ClientError::new(
                ErrorCode::BadJson,
                format!("`data.max_hz` must be a number greater than 0 and at most {MAX_HZ_LIMIT}"),
            )),
        },
        Some(_) => Err(ClientError::new(
            ErrorCode::BadJson,
            "`data.max_hz` must be a number (updates per second per symbol)",
        )),
    }
}

/// Reads `data.symbols` as an array of strings (or one comma-separated string).
fn symbols_of(data: &Value, max_symbols: usize) -> Result<Vec<Symbol>, ClientError> {
    let raw = match data.get("symbols") {
        Some(Value::Array(items)) => {
            if items.len() > max_symbols {
                return Err(ClientError::new(
                    ErrorCode::TooManySymbols,
                    format!(
                        "{} symbols in one request; the limit is {max_symbols}",
                        items.len()
                    ),
                ));
            }
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::String(s) => out.push(s.as_str()),
                    _ => {
                        return Err(ClientError::new(
                            ErrorCode::BadJson,
                            "`data.symbols` must contain only strings",
                        ))
                    }
                }
            }
            out
        }
        Some(Value::String(s)) => s.split(',').filter(|p| !p.trim().is_empty()).collect(),
        Some(_) => {
            return Err(ClientError::new(
                ErrorCode::BadJson,
                "`data.symbols` must be an array of strings",
            ))
        }
        None => {
            return Err(ClientError::new(
                ErrorCode::BadJson,
                "missing `data.symbols`, e.g. {\"symbols\":[\"BTCUSDT\"]}",
            ))
        }
    };
    if raw.len() > max_symbols {
        return Err(ClientError::new(
            ErrorCode::TooManySymbols,
            format!(
                "{} symbols in one request; the limit is {max_symbols}",
                raw.len()
            ),
        ));
    }
    let mut symbols: Vec<Symbol> = Vec::with_capacity(raw.len());
    for r in raw {
        let sym = Symbol::parse(r).map_err(|e| {
            let shown: String = r.chars().take(40).collect();
            ClientError::new(ErrorCode::InvalidSymbol, format!("{shown:?}: {e}"))
        })?;
        if !symbols.contains(&sym) {
            symbols.push(sym);
        }
    }
    if symbols.is_empty() {
        return Err(ClientError::new(
            ErrorCode::InvalidSymbol,
            "no symbols given",
        ));
    }
    Ok(symbols)
}

/// Serializes a native frame `{"event", "data", "id"?}`.
pub fn frame(event: &str, data: Value, id: Option<&Value>) -> String {
    let mut v = json!({ "event": event, "data": data });
    if let (Some(id), Value::Object(obj)) = (id, &mut v) {
        obj.insert("id".to_owned(), id.clone());
    }
    v.to_string()
}

/// Payload of `connected`, the first event of every connection.
pub fn connected_data(client_id: &str) -> Value {
    json!({"client_id": client_id, "message": "Connected to WebSocket Streaming Service"})
}

/// Payload of `subscribed` (seed 004's wording).
pub fn subscribed_data(symbols: &[Symbol]) -> Value {
    json!({"symbols": symbols, "message": format!("Subscribed to {} symbols", symbols.len())})
}

/// Payload of `unsubscribed` (seed 004's wording).
pub fn unsubscribed_data(symbols: &[Symbol]) -> Value {
    json!({"symbols": symbols, "message": format!("Unsubscribed from {} symbols", symbols.len())})
}

/// Payload of `subscriptions`, the reply to `list`.
pub fn subscriptions_data(symbols: &[Symbol]) -> Value {
    json!({ "symbols": symbols })
}

/// Payload of `pong`, the reply to `ping`.
pub fn pong_data() -> Value {
    let now = tickstream_model::time::format(&chrono::Utc::now());
    json!({ "timestamp": now })
}

/// Payload of `error`.
pub fn error_data(e: &ClientError) -> Value {
    json!({"code": e.code, "message": e.message})
}

/// The first native frame of every connection.
pub fn connected(client_id: &str) -> String {
    frame("connected", connected_data(client_id), None)
}

/// Native reply to `subscribe`.
pub fn subscribed(symbols: &[Symbol], id: Option<&Value>) -> String {
    frame("subscribed", subscribed_data(symbols), id)
}

/// A native `error` frame.
pub fn error(e: &ClientError) -> String {
    frame("error", error_data(e), e.id.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            Action::Subscribe(vec![
                Symbol::parse("BTCUSDT").unwrap(),
                Symbol::parse("ETHUSDT").unwrap()
            ])
        );
        let r = parse(
            r#"{"event":"unsubscribe","data":{"symbols":"AAPL,MSFT"},"id":"x"}"#,
            5,
        )
        .unwrap();
        assert!(matches!(r.action, Action::Unsubscribe(ref s) if s.len() == 2));
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
            Action::SubscribeAtMost {
                symbols: vec![Symbol::parse("A").unwrap()],
                max_hz: 2.5
            }
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
        let v: Value =
            serde_json::from_str(&subscribed(&[Symbol::parse("A").unwrap()], Some(&json!(3))))
                .unwrap();
        assert_eq!(v["id"], 3);
        assert_eq!(v["data"]["message"], "Subscribed to 1 symbols");
    }
}

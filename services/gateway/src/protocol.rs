//! The native JSON protocol: `{"event": NAME, "data": PAYLOAD, "id"?: ...}` both ways.
//!
//! Parsing is total: any input yields either a [`Request`] or a [`ClientError`]
//! with a code from [`ErrorCode`], which the connection sends back as an
//! `error` frame. Nothing here touches the network.

use serde::Serialize;
use serde_json::{json, Value};
use tickstream_model::{Channel, Symbol};

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
    /// A channel name fails validation (unknown kind, wrong shape, bad interval or symbol).
    InvalidChannel,
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
            ErrorCode::InvalidChannel => "invalid_channel",
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

/// What a subscribe or unsubscribe names: symbols (the `ticks:` shorthand) and channels.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Targets {
    /// `data.symbols`, as given (normalized, deduplicated); each stands for its `ticks:` channel.
    pub symbols: Vec<Symbol>,
    /// `data.channels`, as given (canonical, deduplicated).
    pub channels: Vec<Channel>,
}

impl Targets {
    /// Every channel named, the symbols' `ticks:` channels first, without duplicates.
    pub fn all(&self) -> Vec<Channel> {
        let mut out: Vec<Channel> = self.symbols.iter().map(Channel::ticks).collect();
        for c in &self.channels {
            if !out.contains(c) {
                out.push(c.clone());
            }
        }
        out
    }

    /// Whether the request named only symbols (the original vocabulary, whose replies keep their wording).
    pub fn symbols_only(&self) -> bool {
        self.channels.is_empty()
    }
}

/// What a client asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Start receiving these channels (cached value first where the kind has one).
    Subscribe {
        /// The symbols and channels.
        targets: Targets,
        /// At most this many updates per second per channel, always the newest (`"max_hz": N`), in (0, [`MAX_HZ_LIMIT`]].
        max_hz: Option<f64>,
    },
    /// Stop receiving these channels.
    Unsubscribe(Targets),
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
        "subscribe" => Action::Subscribe {
            targets: targets_of(data, max_symbols)?,
            max_hz: max_hz_of(data)?,
        },
        "unsubscribe" => Action::Unsubscribe(targets_of(data, max_symbols)?),
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

/// Reads `data.symbols` and `data.channels`; at least one must be present, together at most `max` names.
fn targets_of(data: &Value, max: usize) -> Result<Targets, ClientError> {
    let symbols = names_of(data, "symbols", max)?;
    let channels = names_of(data, "channels", max)?;
    let (symbols, channels) = match (symbols, channels) {
        (None, None) => {
            return Err(ClientError::new(
                ErrorCode::BadJson,
                "missing `data.symbols` or `data.channels`, e.g. {\"symbols\":[\"BTCUSDT\"]} or {\"channels\":[\"trades:BTCUSDT\"]}",
            ))
        }
        pair => pair,
    };
    let total = symbols.as_ref().map_or(0, Vec::len) + channels.as_ref().map_or(0, Vec::len);
    if total > max {
        return Err(ClientError::new(
            ErrorCode::TooManySymbols,
            format!("{total} symbols and channels in one request; the limit is {max}"),
        ));
    }
    let mut targets = Targets::default();
    for raw in symbols.iter().flatten() {
        let sym = Symbol::parse(raw).map_err(|e| {
            let shown: String = raw.chars().take(40).collect();
            ClientError::new(ErrorCode::InvalidSymbol, format!("{shown:?}: {e}"))
        })?;
        if !targets.symbols.contains(&sym) {
            targets.symbols.push(sym);
        }
    }
    for raw in channels.iter().flatten() {
        let ch = Channel::parse(raw).map_err(|e| {
            let shown: String = raw.chars().take(40).collect();
            ClientError::new(ErrorCode::InvalidChannel, format!("{shown:?}: {e}"))
        })?;
        if !targets.channels.contains(&ch) {
            targets.channels.push(ch);
        }
    }
    if targets.symbols.is_empty() && targets.channels.is_empty() {
        return Err(match channels {
            Some(_) if symbols.is_none() => {
                ClientError::new(ErrorCode::InvalidChannel, "no channels given")
            }
            _ => ClientError::new(ErrorCode::InvalidSymbol, "no symbols given"),
        });
    }
    Ok(targets)
}

/// Reads `data.{field}` as an array of strings (or one comma-separated string); `None` when absent.
fn names_of<'a>(
    data: &'a Value,
    field: &str,
    max: usize,
) -> Result<Option<Vec<&'a str>>, ClientError> {
    let raw: Vec<&str> = match data.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => {
            if items.len() > max {
                return Err(ClientError::new(
                    ErrorCode::TooManySymbols,
                    format!("{} {field} in one request; the limit is {max}", items.len()),
                ));
            }
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::String(s) => out.push(s.as_str()),
                    _ => {
                        return Err(ClientError::new(
                            ErrorCode::BadJson,
                            format!("`data.{field}` must contain only strings"),
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
                format!("`data.{field}` must be an array of strings"),
            ))
        }
    };
    if raw.len() > max {
        return Err(ClientError::new(
            ErrorCode::TooManySymbols,
            format!("{} {field} in one request; the limit is {max}", raw.len()),
        ));
    }
    Ok(Some(raw))
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

/// Payload of `subscribed`: what was asked for, and which of those channels no producer serves now.
///
/// A request naming only symbols keeps the original wording ("Subscribed to
/// 2 symbols"); `channels` and `pending` are always present so a client can
/// rely on them.
pub fn subscribed_data(targets: &Targets, pending: &[Channel]) -> Value {
    let message = if targets.symbols_only() {
        format!("Subscribed to {} symbols", targets.symbols.len())
    } else {
        format!("Subscribed to {} channels", targets.all().len())
    };
    json!({
        "symbols": targets.symbols,
        "channels": targets.channels,
        "pending": pending,
        "message": message,
    })
}

/// Payload of `unsubscribed`, in the same shape as `subscribed`.
pub fn unsubscribed_data(targets: &Targets) -> Value {
    let message = if targets.symbols_only() {
        format!("Unsubscribed from {} symbols", targets.symbols.len())
    } else {
        format!("Unsubscribed from {} channels", targets.all().len())
    };
    json!({"symbols": targets.symbols, "channels": targets.channels, "message": message})
}

/// Payload of `subscriptions`, the reply to `list`: the `ticks:` symbols, and every channel held.
pub fn subscriptions_data(channels: &[Channel]) -> Value {
    let symbols: Vec<&str> = channels
        .iter()
        .filter(|c| c.is_ticks())
        .filter_map(Channel::symbol)
        .collect();
    json!({ "symbols": symbols, "channels": channels })
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
            Action::Subscribe {
                targets: Targets {
                    symbols: vec![
                        Symbol::parse("BTCUSDT").unwrap(),
                        Symbol::parse("ETHUSDT").unwrap()
                    ],
                    channels: vec![],
                },
                max_hz: None,
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
                max_hz: Some(2.5)
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
            subscribed_data(&targets, &[]),
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
        let data = subscribed_data(&targets, &[Channel::parse("sentiment").unwrap()]);
        assert_eq!(
            data,
            json!({"symbols":["A"],"channels":["sentiment"],"pending":["sentiment"],"message":"Subscribed to 2 channels"})
        );
    }
}

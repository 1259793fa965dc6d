//! What a client can ask, in any protocol: the request vocabulary and the payloads of its replies.
//!
//! Native `/ws` frames and Socket.IO events carry the same event names and
//! data; each transport unwraps its framing and hands the event name and data
//! to [`parse_action`]. Parsing is total: any input yields an [`Action`] or a
//! [`ClientError`] with a code from [`ErrorCode`]. Nothing here touches the network.

use serde_json::{json, Value};
use tickstream_model::{Channel, Symbol};

pub use crate::vocabulary::ErrorCode;

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

/// A subscribe's request to recover what the client missed (`"since"`, `"epoch"`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Recovery {
    /// The last seq the client saw, per channel with history (ticks, trades).
    pub since: Vec<(Channel, u64)>,
    /// The epoch the client's seqs belong to, when it kept it; a different one means its seqs mean nothing now.
    pub epoch: Option<String>,
}

/// What a client asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Start receiving these channels (cached value first where the kind has one, or the missed items on recovery).
    Subscribe {
        /// The symbols and channels (channels named only in `since` included).
        targets: Targets,
        /// At most this many updates per second per channel, always the newest (`"max_hz": N`), in (0, [`MAX_HZ_LIMIT`]].
        max_hz: Option<f64>,
        /// Replay after these seqs instead of a snapshot, where history still has them.
        recovery: Option<Recovery>,
    },
    /// Items of a channel's history after a seq (`history {"channel","since_seq","limit"}`).
    History {
        /// A channel whose kind keeps history.
        channel: Channel,
        /// Items after this seq (0: from the oldest kept).
        since_seq: u64,
        /// At most this many (capped by `gateway.history_max_items`; `None`: the cap).
        limit: Option<usize>,
    },
    /// Stop receiving these channels.
    Unsubscribe(Targets),
    /// Tell me what I am subscribed to.
    List,
    /// Application-level liveness check (answered with `pong`).
    Ping,
}

/// Turns an event name and its data into an [`Action`]; shared by every protocol (Socket.IO passes its first event argument).
pub fn parse_action(event: &str, data: &Value, max_symbols: usize) -> Result<Action, ClientError> {
    Ok(match event {
        "subscribe" => {
            let recovery = recovery_of(data, max_symbols)?;
            let mut targets = targets_of(data, max_symbols, recovery.is_some())?;
            for (channel, _) in recovery.iter().flat_map(|r| &r.since) {
                if !targets.all().contains(channel) {
                    targets.channels.push(channel.clone());
                }
            }
            Action::Subscribe {
                targets,
                max_hz: max_hz_of(data)?,
                recovery,
            }
        }
        "history" => history_of(data)?,
        "unsubscribe" => Action::Unsubscribe(targets_of(data, max_symbols, false)?),
        "list" => Action::List,
        "ping" => Action::Ping,
        other => {
            let shown: String = other.chars().take(64).collect();
            return Err(ClientError::new(
                ErrorCode::UnknownEvent,
                format!("unknown event {shown:?}; expected subscribe, unsubscribe, list, history or ping"),
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

/// Reads `data.symbols` and `data.channels`; at least one must be present (unless
/// `data.since` names the channels), together at most `max` names.
fn targets_of(data: &Value, max: usize, has_since: bool) -> Result<Targets, ClientError> {
    let symbols = names_of(data, "symbols", max)?;
    let channels = names_of(data, "channels", max)?;
    let (symbols, channels) = match (symbols, channels) {
        (None, None) if has_since => return Ok(Targets::default()),
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

/// Reads `data.since` (`{"ticks:BTCUSDT": 1842, ...}`) and `data.epoch`; `None` without `since`.
fn recovery_of(data: &Value, max: usize) -> Result<Option<Recovery>, ClientError> {
    let since = match data.get("since") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(ClientError::new(
                ErrorCode::BadJson,
                "`data.since` must be an object of channel → last seq seen, e.g. {\"ticks:BTCUSDT\":1842}",
            ))
        }
    };
    if since.len() > max {
        return Err(ClientError::new(
            ErrorCode::TooManySymbols,
            format!("{} channels in `since`; the limit is {max}", since.len()),
        ));
    }
    let mut out = Recovery::default();
    for (name, seq) in since {
        let channel = history_channel(name)?;
        let Some(seq) = seq.as_u64() else {
            return Err(ClientError::new(
                ErrorCode::BadJson,
                format!(
                    "`data.since[{:?}]` must be a non-negative integer seq",
                    shown(name)
                ),
            ));
        };
        if !out.since.iter().any(|(c, _)| *c == channel) {
            out.since.push((channel, seq));
        }
    }
    out.epoch = match data.get("epoch") {
        None | Some(Value::Null) => None,
        Some(Value::String(e)) if e.len() <= 64 => Some(e.clone()),
        Some(_) => {
            return Err(ClientError::new(
                ErrorCode::BadJson,
                "`data.epoch` must be the string a `subscribed` reply gave",
            ))
        }
    };
    Ok(Some(out))
}

/// Reads a `history` request's data.
fn history_of(data: &Value) -> Result<Action, ClientError> {
    let channel = match data.get("channel") {
        Some(Value::String(c)) => history_channel(c)?,
        _ => {
            return Err(ClientError::new(
                ErrorCode::BadJson,
                "missing `data.channel`, e.g. {\"channel\":\"ticks:BTCUSDT\",\"since_seq\":0,\"limit\":100}",
            ))
        }
    };
    let number = |field: &str| -> Result<Option<u64>, ClientError> {
        match data.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                ClientError::new(
                    ErrorCode::BadJson,
                    format!("`data.{field}` must be a non-negative integer"),
                )
            }),
        }
    };
    Ok(Action::History {
        channel,
        since_seq: number("since_seq")?.unwrap_or(0),
        limit: number("limit")?.map(|l| usize::try_from(l).unwrap_or(usize::MAX)),
    })
}

/// A channel that keeps history (ticks, trades); anything else is `invalid_channel`.
fn history_channel(raw: &str) -> Result<Channel, ClientError> {
    let channel = Channel::parse(raw).map_err(|e| {
        ClientError::new(ErrorCode::InvalidChannel, format!("{:?}: {e}", shown(raw)))
    })?;
    if !channel.spec().history {
        return Err(ClientError::new(
            ErrorCode::InvalidChannel,
            format!(
                "{channel} keeps no history (ticks and trades channels do; candles are served by GET /candles)"
            ),
        ));
    }
    Ok(channel)
}

/// At most 40 characters of client input, for error messages.
fn shown(raw: &str) -> String {
    raw.chars().take(40).collect()
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

/// Payload of `connected`, the first event of every connection.
pub fn connected_data(client_id: &str) -> Value {
    json!({"client_id": client_id, "message": "Connected to WebSocket Streaming Service"})
}

/// Payload of `subscribed`: what was asked for, which of those channels no producer serves now,
/// and the epoch of the data set the seqs belong to (`null` before any producer ran).
///
/// A request naming only symbols keeps the original wording ("Subscribed to
/// 2 symbols"); `channels`, `pending` and `epoch` are always present so a
/// client can rely on them.
pub fn subscribed_data(targets: &Targets, pending: &[Channel], epoch: Option<&str>) -> Value {
    let message = if targets.symbols_only() {
        format!("Subscribed to {} symbols", targets.symbols.len())
    } else {
        format!("Subscribed to {} channels", targets.all().len())
    };
    json!({
        "symbols": targets.symbols,
        "channels": targets.channels,
        "pending": pending,
        "epoch": epoch,
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

/// Payload of `history`: the channel, the data set's epoch, and the items (each a JSON object as published).
pub fn history_data(channel: &Channel, epoch: &str, items: Vec<Value>) -> Value {
    json!({"channel": channel, "epoch": epoch, "items": items})
}

/// Payload of `pong`, the reply to `ping`.
pub fn pong_data() -> Value {
    // Millisecond precision, like every other timestamp of the contract.
    let now = tickstream_model::time::format(&tickstream_model::time::now_millis());
    json!({ "timestamp": now })
}

/// Payload of `error`.
pub fn error_data(e: &ClientError) -> Value {
    json!({"code": e.code, "message": e.message})
}

//! The words every protocol speaks, each in one table: protocols, outbound events, error codes, disconnect reasons.
//!
//! Metric label lists come from these tables (the gateway's metrics module), so a new
//! code, event or reason is one entry here and shows up everywhere it should.
//! The wire contract they define is written out in `docs/native-protocol.md`
//! and `docs/socketio.md`.

use serde::Serialize;

/// The protocol a client speaks, used as the `protocol` metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `/ws`, the native JSON protocol.
    Native,
    /// `/socket.io/`, Engine.IO v4 / Socket.IO v5.
    SocketIo,
}

impl Protocol {
    /// Every protocol, so metrics and the shutdown drain can cover them all.
    pub const ALL: [Protocol; 2] = [Protocol::Native, Protocol::SocketIo];

    /// The metric label value.
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Native => "native",
            Protocol::SocketIo => "socketio",
        }
    }
}

/// Events the gateway sends that answer or frame a client's session (publications
/// carry their channel kind's event from [`tickstream_model::KINDS`]).
pub const EVENTS: &[(&str, &str)] = &[
    (
        "connected",
        "the first frame of every connection: client id and greeting",
    ),
    (
        "subscribed",
        "reply to subscribe: symbols, channels, pending",
    ),
    ("unsubscribed", "reply to unsubscribe"),
    (
        "subscriptions",
        "reply to list: the symbols and channels held",
    ),
    ("pong", "reply to ping, with the server time"),
    ("error", "a request the client got wrong: code and message"),
];

/// Machine-readable error codes of the `error` event.
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
    /// The request would exceed the per-connection channel limit.
    TooManySymbols,
    /// More subscribe/unsubscribe requests per second than allowed.
    RateLimited,
    /// Missing or bad credentials, or a symbol the token does not grant.
    Unauthorized,
    /// The frame exceeds the maximum message size.
    TooLarge,
    /// The request needs Redis, which does not answer right now; retrying later can succeed.
    Unavailable,
}

impl ErrorCode {
    /// Every code, for the metric's pre-created labels.
    pub const ALL: [ErrorCode; 9] = [
        ErrorCode::BadJson,
        ErrorCode::UnknownEvent,
        ErrorCode::InvalidSymbol,
        ErrorCode::InvalidChannel,
        ErrorCode::TooManySymbols,
        ErrorCode::RateLimited,
        ErrorCode::Unauthorized,
        ErrorCode::TooLarge,
        ErrorCode::Unavailable,
    ];

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
            ErrorCode::Unavailable => "unavailable",
        }
    }
}

/// Why the gateway closed a connection: one row per reason, shared by every protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disconnect {
    /// Too many bad requests in a row.
    Abuse,
    /// A frame over `gateway.max_frame_bytes`.
    FrameTooLarge,
    /// No sign of life from the client within the idle (or Engine.IO ping) timeout.
    Idle,
    /// The gateway is stopping.
    Shutdown,
    /// A WebSocket or Engine.IO protocol violation.
    ProtocolError,
    /// A text frame that is not UTF-8 (RFC 6455: 1007); counted as `protocol_error`.
    InvalidUtf8,
    /// Behind or blocked past `gateway.slow_consumer_timeout_ms`.
    SlowConsumer,
}

impl Disconnect {
    /// Every reason, for the metric's pre-created labels.
    pub const ALL: [Disconnect; 7] = [
        Disconnect::Abuse,
        Disconnect::FrameTooLarge,
        Disconnect::Idle,
        Disconnect::Shutdown,
        Disconnect::ProtocolError,
        Disconnect::InvalidUtf8,
        Disconnect::SlowConsumer,
    ];

    /// The WebSocket close code sent.
    pub fn close_code(self) -> u16 {
        match self {
            Disconnect::Abuse | Disconnect::Idle | Disconnect::SlowConsumer => 1008,
            Disconnect::FrameTooLarge => 1009,
            Disconnect::Shutdown => 1001,
            Disconnect::ProtocolError => 1002,
            Disconnect::InvalidUtf8 => 1007,
        }
    }

    /// The close frame's reason text.
    pub fn reason(self) -> &'static str {
        match self {
            Disconnect::Abuse => "too many invalid requests",
            Disconnect::FrameTooLarge => "frame too large",
            Disconnect::Idle => "idle timeout",
            Disconnect::Shutdown => "server shutting down",
            Disconnect::ProtocolError => "protocol error",
            Disconnect::InvalidUtf8 => "invalid UTF-8",
            Disconnect::SlowConsumer => "slow consumer",
        }
    }

    /// The `reason` label of `tickstream_gateway_disconnects_total`.
    pub fn label(self) -> &'static str {
        match self {
            Disconnect::Abuse => "abuse",
            Disconnect::FrameTooLarge => "frame_too_large",
            Disconnect::Idle => "idle",
            Disconnect::Shutdown => "shutdown",
            Disconnect::ProtocolError | Disconnect::InvalidUtf8 => "protocol_error",
            Disconnect::SlowConsumer => "slow_consumer",
        }
    }

    /// The close frame for this reason, in actix's types (both protocols' WebSocket writers take it).
    pub fn close_reason(self) -> actix_ws::CloseReason {
        actix_ws::CloseReason {
            code: actix_ws::CloseCode::from(self.close_code()),
            description: Some(self.reason().to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_have_unique_wire_names() {
        let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        for (i, c) in codes.iter().enumerate() {
            assert!(!codes[..i].contains(c), "{c}");
            let json = serde_json::to_value(ErrorCode::ALL[i]).unwrap_or_default();
            assert_eq!(json, *c, "serde name = wire name");
        }
        for (i, (e, _)) in EVENTS.iter().enumerate() {
            assert!(!EVENTS[..i].iter().any(|(o, _)| o == e), "{e}");
            assert!(
                !tickstream_model::KINDS.iter().any(|k| k.event == *e),
                "{e} is also a publication event"
            );
        }
        for d in Disconnect::ALL {
            assert!((1000..=1011).contains(&d.close_code()), "{d:?}");
            assert!(!d.reason().is_empty() && d.reason().len() <= 123, "{d:?}");
        }
    }
}

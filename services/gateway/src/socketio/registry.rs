//! The Engine.IO session registry and the messages HTTP handlers send a session.
//!
//! Kept apart from the handlers and session tasks (which need the gateway's
//! shared state) so that the shared state can hold the registry without the
//! two modules depending on each other.

use std::collections::HashMap;
use std::sync::Mutex;

use actix_web::http::StatusCode;
use actix_ws::{AggregatedMessage, ProtocolError};
use bytestring::ByteString;
use tokio::sync::{mpsc, oneshot};

use crate::websocket::write::WsOut;

/// Engine.IO error codes and messages, as the reference server (`engine.io` `Server.errors`) sends them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EioError {
    /// 0: `transport` is not `polling` or `websocket`.
    UnknownTransport,
    /// 1: no such `sid` (never existed, closed or reaped).
    UnknownSid,
    /// 2: a handshake (no `sid`) that is not a GET.
    BadHandshakeMethod,
    /// 3: anything else malformed (transport mismatch, overlapping GET, bad packet).
    BadRequest,
    /// 4: refused by policy.
    Forbidden,
    /// 5: `EIO` is not 4.
    UnsupportedProtocolVersion,
}

impl EioError {
    /// The numeric code of the error JSON.
    pub fn code(self) -> u8 {
        match self {
            EioError::UnknownTransport => 0,
            EioError::UnknownSid => 1,
            EioError::BadHandshakeMethod => 2,
            EioError::BadRequest => 3,
            EioError::Forbidden => 4,
            EioError::UnsupportedProtocolVersion => 5,
        }
    }

    /// The reference server's message for the code.
    pub fn message(self) -> &'static str {
        match self {
            EioError::UnknownTransport => "Transport unknown",
            EioError::UnknownSid => "Session ID unknown",
            EioError::BadHandshakeMethod => "Bad handshake method",
            EioError::BadRequest => "Bad request",
            EioError::Forbidden => "Forbidden",
            EioError::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }

    /// The HTTP status the reference uses (403 for Forbidden, else 400).
    pub(super) fn status(self) -> StatusCode {
        match self {
            EioError::Forbidden => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// What an HTTP handler asks of a session.
pub enum Command {
    /// A long-polling GET waiting for packets.
    Poll(oneshot::Sender<Result<Vec<ByteString>, EioError>>),
    /// A POST body (`None`: not UTF-8 or binary content, which v4 never sends).
    Post(Option<String>, oneshot::Sender<Result<(), EioError>>),
    /// A WebSocket opened with this sid to probe and upgrade.
    Upgrade(WsConn),
}

/// Frames a WebSocket's reader task forwards (the read half of an actix WebSocket is bound to its worker thread).
pub(super) type WsInbound = Result<AggregatedMessage, ProtocolError>;

/// A WebSocket that upgrades a polling session: write half and the frames its reader task forwards.
pub struct WsConn {
    /// Write half: pre-encoded frames straight to the socket (usable from any thread).
    pub(super) out: WsOut,
    /// Read half, fed by the reader task; closed when the socket ends.
    pub(super) rx: mpsc::Receiver<WsInbound>,
}

/// How HTTP requests reach one live session.
#[derive(Clone)]
pub(super) enum Entry {
    /// On long-polling (or upgrading from it): handlers hand its task commands.
    Polling(mpsc::Sender<Command>),
    /// On WebSocket for good: every HTTP request with its sid is the wrong
    /// transport, answered by the handler alone, so a WebSocket session keeps
    /// no command queue (tokio allocates a 32-slot block per channel).
    WebSocket,
}

/// Live Engine.IO sessions by `sid`.
#[derive(Default)]
pub struct Sessions {
    /// Removed by the session task itself when it ends, so no entry outlives its task.
    map: Mutex<HashMap<String, Entry>>,
}

impl Sessions {
    pub(super) fn insert(&self, sid: String, entry: Entry) {
        if let Ok(mut map) = self.map.lock() {
            map.insert(sid, entry);
        }
    }

    pub(super) fn get(&self, sid: &str) -> Option<Entry> {
        self.map.lock().ok()?.get(sid).cloned()
    }

    /// The session has switched to WebSocket for good: requests stop reaching its task.
    pub(super) fn set_websocket(&self, sid: &str) {
        if let Ok(mut map) = self.map.lock() {
            if let Some(entry) = map.get_mut(sid) {
                *entry = Entry::WebSocket;
            }
        }
    }

    pub(super) fn remove(&self, sid: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(sid);
        }
    }

    /// Number of live sessions (for tests and the shutdown drain).
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

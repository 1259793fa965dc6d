//! Socket.IO v4 at `/socket.io/`: Engine.IO v4 (polling, WebSocket, upgrade) and Socket.IO v5 on `/`.
//!
//! Stock `socket.io-client` 4.x and `python-socketio` clients work unchanged.
//! Events and payloads are the native protocol's ([`crate::protocol`]): the
//! same [`ClientSession`](crate::client::session::ClientSession) does the work, this
//! module only speaks the framing.
//!
//! # Why hand-written
//! Crates evaluated (November 2026):
//! - `socketioxide` / `engineioxide` (maintained, complete): tower `Service`s
//!   for hyper-based frameworks (axum, hyper, salvo, viz). actix-web is not
//!   tower, so mounting them would need a second HTTP server on another port
//!   (the contract is one gateway on :5021, same paths) or a tower↔actix
//!   bridge that does not exist for WebSocket upgrades. They also own the
//!   per-socket emit path, so a tick could not be shared as one pre-encoded
//!   buffer across receivers the way the hub shares [`TickFrame`](crate::fanout::TickFrame)s.
//!   Their parser crates (`socketioxide-parser-common`) are bound to
//!   socketioxide-core's value types and release train.
//! - `actix-web-socket-io` (0.1.x, March 2025, ~460 lines): actix but built
//!   on the deprecated `actix-web-actors`, one global server singleton, little
//!   documentation; too young and too coupled to trust with the hot path.
//! - `engine_io_server` (0.1.0, 2020): unmaintained.
//! - `rust_socketio`: a client, not a server.
//!
//! The wire format is small (two digit-prefixed text formats and an open
//! packet), so [`packet`] hand-writes it with table tests, and the real npm
//! and PyPI clients test it end to end (`tests/socketio_clients.rs`).
//!
//! # Layout
//! - [`packet`]: Engine.IO/Socket.IO packet parsing and encoding.
//! - [`conn`]: one task per Engine.IO session (polling, upgrade, WebSocket, pings).
//! - [`registry`]: the session table, Engine.IO errors, and the commands handlers send a session.
//! - this file: the HTTP entry point and request validation.

pub mod conn;
pub mod packet;
pub mod registry;

use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};
use futures_util::StreamExt as _;
use rand::Rng as _;
use tokio::sync::{mpsc, oneshot};

use crate::client::limits::{self, Admission, TokenPolicy};
use crate::state::AppState;
use registry::Entry;
pub use registry::{Command, EioError, Sessions};

/// Protocol timings and limits for Engine.IO sessions.
#[derive(Debug, Clone, Copy)]
pub struct EioConfig {
    /// Server ping period (reference server default 25 000 ms).
    pub ping_interval: Duration,
    /// How long to wait for the pong (reference default 20 000 ms); a session that stops polling is reaped after interval + timeout.
    pub ping_timeout: Duration,
    /// Largest accepted POST body or WebSocket message (reference default 1 000 000 bytes).
    pub max_payload: usize,
    /// How long a probed WebSocket may take to send `5` (reference `upgradeTimeout` 10 000 ms).
    pub upgrade_timeout: Duration,
}

/// Commands queued per session before a handler waits (requests of one client are sequential anyway).
const COMMAND_QUEUE: usize = 8;

/// Engine.IO sid length: 20 alphanumerics, like the reference's base64id.
const SID_LEN: usize = 20;

/// The query string of an Engine.IO request.
#[derive(Debug, Default, serde::Deserialize)]
struct EioQuery {
    #[serde(rename = "EIO")]
    eio: Option<String>,
    transport: Option<String>,
    sid: Option<String>,
    /// `?profile=dashboard|default` (socket.io-client's `query` option) overrides `gateway.compat.socketio_profile`.
    profile: Option<String>,
}

/// Transports we serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Polling,
    WebSocket,
}

/// Every request to `/socket.io/`: validates, then handshakes, polls, posts or upgrades.
pub async fn route(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    if !limits::origin_allowed(&req, &state.cfg.gateway.allowed_origins) {
        state
            .metrics
            .connections_rejected
            .with_label_values(&["origin_forbidden"])
            .inc();
        // No CORS headers: the origin is not allowed to read anything.
        return HttpResponse::build(EioError::Forbidden.status())
            .json(error_body(EioError::Forbidden));
    }
    if req.method() == Method::OPTIONS {
        return preflight(&req);
    }
    let query = web::Query::<EioQuery>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let transport = match query.transport.as_deref() {
        Some("polling") => Transport::Polling,
        Some("websocket") => Transport::WebSocket,
        _ => return error(&req, EioError::UnknownTransport),
    };
    if query.eio.as_deref() != Some("4") {
        return error(&req, EioError::UnsupportedProtocolVersion);
    }
    let is_upgrade = is_websocket_upgrade(&req);
    let profile = query
        .profile
        .as_deref()
        .and_then(crate::compat::SocketIoProfile::parse)
        .unwrap_or(state.cfg.gateway.compat.socketio_profile);
    let admit = || state.gate.admit(&req, TokenPolicy::AtConnect);
    match (query.sid, transport) {
        (None, _) if req.method() != Method::GET => error(&req, EioError::BadHandshakeMethod),
        (None, Transport::Polling) => match admit() {
            Ok(admission) => handshake_polling(&req, state.into_inner(), admission, profile),
            Err(refusal) => with_cors(&req, refusal.response()),
        },
        (None, Transport::WebSocket) if is_upgrade => {
            let admission = match admit() {
                Ok(a) => a,
                Err(refusal) => return with_cors(&req, refusal.response()),
            };
            let max_payload = state.cfg.gateway.socketio_max_payload_bytes;
            match crate::websocket::write::handle(&req, body, max_payload) {
                Ok((response, out, inbound)) => {
                    conn::spawn_websocket(state.into_inner(), out, inbound, admission, profile);
                    response
                }
                Err(_) => error(&req, EioError::BadRequest),
            }
        }
        (None, Transport::WebSocket) => error(&req, EioError::BadRequest),
        (Some(sid), transport) => {
            let tx = match state.socketio.get(&sid) {
                None => return error(&req, EioError::UnknownSid),
                Some(Entry::WebSocket) => {
                    return on_websocket_session(&req, body, transport, is_upgrade, &state)
                }
                Some(Entry::Polling(tx)) => tx,
            };
            match (transport, req.method()) {
                (Transport::Polling, &Method::GET) => poll(&req, tx).await,
                (Transport::Polling, &Method::POST) => post(&req, tx, body, &state).await,
                (Transport::WebSocket, &Method::GET) if is_upgrade => {
                    let max_payload = state.cfg.gateway.socketio_max_payload_bytes;
                    match crate::websocket::write::handle(&req, body, max_payload) {
                        Ok((response, out, inbound)) => {
                            let ws = conn::websocket(out, inbound);
                            if tx.send(Command::Upgrade(ws)).await.is_err() {
                                return error(&req, EioError::UnknownSid);
                            }
                            response
                        }
                        Err(_) => error(&req, EioError::BadRequest),
                    }
                }
                _ => error(&req, EioError::BadRequest),
            }
        }
    }
}

/// A request naming a session that is on WebSocket for good: a second
/// WebSocket is opened and closed at once (as the reference server does with
/// an upgrade it cannot take), anything else is the wrong transport.
fn on_websocket_session(
    req: &HttpRequest,
    body: web::Payload,
    transport: Transport,
    is_upgrade: bool,
    state: &AppState,
) -> HttpResponse {
    if transport == Transport::WebSocket && req.method() == Method::GET && is_upgrade {
        let max_payload = state.cfg.gateway.socketio_max_payload_bytes;
        if let Ok((response, out, _inbound)) =
            crate::websocket::write::handle(req, body, max_payload)
        {
            conn::refuse_upgrade(&out);
            return response;
        }
    }
    error(req, EioError::BadRequest)
}

fn is_websocket_upgrade(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// A new random session id.
fn new_sid() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(SID_LEN)
        .map(char::from)
        .collect()
}

/// `GET ?EIO=4&transport=polling`: creates a session and answers with its open packet.
fn handshake_polling(
    req: &HttpRequest,
    state: std::sync::Arc<AppState>,
    admission: Admission,
    profile: crate::compat::SocketIoProfile,
) -> HttpResponse {
    let eio = conn::eio_config(&state.cfg);
    let sid = new_sid();
    let open = packet::open(
        &sid,
        &["websocket"],
        millis(eio.ping_interval),
        millis(eio.ping_timeout),
        eio.max_payload,
    );
    conn::spawn_polling(state, sid, admission, profile);
    text(req, StatusCode::OK, open)
}

/// `GET ?sid=..`: hands a reply slot to the session and waits for its packets.
async fn poll(req: &HttpRequest, tx: mpsc::Sender<Command>) -> HttpResponse {
    let (reply_tx, reply_rx) = oneshot::channel();
    if tx.send(Command::Poll(reply_tx)).await.is_err() {
        return error(req, EioError::UnknownSid);
    }
    match reply_rx.await {
        Ok(Ok(packets)) => {
            let mut body = String::with_capacity(packets.iter().map(|p| p.len() + 1).sum());
            for (i, p) in packets.iter().enumerate() {
                if i > 0 {
                    body.push(packet::SEPARATOR);
                }
                body.push_str(p);
            }
            text(req, StatusCode::OK, body)
        }
        Ok(Err(e)) => error(req, e),
        Err(_) => error(req, EioError::UnknownSid),
    }
}

/// `POST ?sid=..`: reads at most `maxPayload` bytes and hands the packets to the session.
async fn post(
    req: &HttpRequest,
    tx: mpsc::Sender<Command>,
    mut body: web::Payload,
    state: &AppState,
) -> HttpResponse {
    let max = conn::eio_config(&state.cfg).max_payload;
    let mut bytes = web::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else {
            return error(req, EioError::BadRequest);
        };
        if bytes.len() + chunk.len() > max {
            // As the reference server: 413, the session itself is untouched.
            let mut res = cors(req, HttpResponse::build(StatusCode::PAYLOAD_TOO_LARGE));
            return res.json(error_body(EioError::BadRequest));
        }
        bytes.extend_from_slice(&chunk);
    }
    let binary = req
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/octet-stream"));
    // Engine.IO v4 polling carries binary as `b`+base64 text, never as octet-stream.
    let body = if binary {
        None
    } else {
        String::from_utf8(bytes.to_vec()).ok()
    };
    let (reply_tx, reply_rx) = oneshot::channel();
    if tx.send(Command::Post(body, reply_tx)).await.is_err() {
        return error(req, EioError::UnknownSid);
    }
    match reply_rx.await {
        Ok(Ok(())) => {
            let mut res = cors(req, HttpResponse::Ok());
            res.content_type("text/html").body("ok")
        }
        Ok(Err(e)) => error(req, e),
        Err(_) => error(req, EioError::UnknownSid),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn error_body(e: EioError) -> serde_json::Value {
    serde_json::json!({"code": e.code(), "message": e.message()})
}

/// The Engine.IO error JSON with the reference server's status.
fn error(req: &HttpRequest, e: EioError) -> HttpResponse {
    cors(req, HttpResponse::build(e.status())).json(error_body(e))
}

fn text(req: &HttpRequest, status: StatusCode, body: String) -> HttpResponse {
    cors(req, HttpResponse::build(status))
        .content_type("text/plain; charset=UTF-8")
        .body(body)
}

/// Browsers poll cross-origin (a dashboard on another port): echo the caller's origin, like the original Node.js Socket.IO service did (only allowed origins get this far).
fn cors(req: &HttpRequest, mut builder: HttpResponseBuilder) -> HttpResponseBuilder {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        builder.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone()));
        builder.insert_header((
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        ));
    }
    builder
}

/// Adds the CORS headers to a finished refusal, so a browser can read it.
fn with_cors(req: &HttpRequest, mut res: HttpResponse) -> HttpResponse {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        res.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        res.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    res
}

/// CORS preflight for clients that send extra headers.
fn preflight(req: &HttpRequest) -> HttpResponse {
    let mut res = cors(req, HttpResponse::NoContent());
    res.insert_header((
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    ));
    if let Some(h) = req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        res.insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, h.clone()));
    }
    res.finish()
}
